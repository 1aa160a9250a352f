"""Readers for raw dataset files that fail with the file's name: a missing, truncated or
unparsable file raises :class:`~hmr.core.errors.DatasetFormatError` carrying its path,
which the CLI prints as one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from hmr.core.errors import DatasetFormatError


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DatasetFormatError("expected file is missing", path=path)
    return path


def read_json(path: Path) -> Any:
    require_file(path)
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"invalid or truncated JSON at line {exc.lineno} column {exc.colno}: "
                                 f"{exc.msg}", path=path) from None
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"not UTF-8 JSON: {exc}", path=path) from None
    except RecursionError:  # json recurses once per nesting level: a "nesting bomb"
        raise DatasetFormatError("JSON nested too deeply to read (corrupt or hostile file)", path=path) from None


def read_mat(path: Path, **loadmat_options: Any) -> dict[str, Any]:
    """MATLAB files up to v7.2 through scipy (``loadmat_options`` passed on). v7.3 files are
    HDF5: use :func:`open_h5`."""
    import scipy.io

    require_file(path)
    try:
        return scipy.io.loadmat(str(path), **loadmat_options)
    except NotImplementedError:
        raise DatasetFormatError("MATLAB v7.3 (HDF5) file: read it with h5py", path=path) from None
    except MemoryError:
        raise DatasetFormatError("unreadable .mat file: a header claims more memory than there is", path=path) from None
    except Exception as exc:  # noqa: BLE001  scipy's parser fails on a corrupt file with many types
        raise DatasetFormatError(f"unreadable or truncated .mat file ({type(exc).__name__}: {exc})",
                                 path=path) from None


def open_h5(path: Path):
    import h5py

    require_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"unreadable or truncated HDF5 file: {exc}", path=path) from None


def read_pickle(path: Path, **kwargs: Any) -> Any:
    """Dataset pickles through the restricted unpickler (numpy arrays, plain containers)."""
    from hmr.core.utils.safe_pickle import load

    require_file(path)
    return load(path, **kwargs)


#: the largest image a header may claim: no dataset we convert comes near it (AGORA's frames
#: are 3840 x 2160, 3DHP's 2048 x 2048); a larger claim is a corrupt or hostile header
MAX_IMAGE_SIDE_PX = 20_000
MAX_IMAGE_PIXELS = 150_000_000


def image_size_hw(path: Path) -> tuple[int, int]:
    """(height, width) of an image from its header (no full decode); a header claiming more
    than :data:`MAX_IMAGE_SIDE_PX` a side or :data:`MAX_IMAGE_PIXELS` in all is refused."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged below
            with Image.open(path) as im:
                width, height = im.size
    except FileNotFoundError:
        raise DatasetFormatError("image file is missing", path=path) from None
    except Image.DecompressionBombError:  # over PIL's own limit (2 x 89 Mpx): read the claim to name it
        width, height = _claimed_size(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetFormatError(f"unreadable image: {exc}", path=path) from None
    if min(width, height) <= 0 or max(width, height) > MAX_IMAGE_SIDE_PX or width * height > MAX_IMAGE_PIXELS:
        raise DatasetFormatError(f"image header claims {width}\u00d7{height} px (limit {MAX_IMAGE_SIDE_PX:,} "
                                 f"px a side, {MAX_IMAGE_PIXELS:,} px in all): corrupt or hostile header",
                                 path=path)
    return height, width


def _claimed_size(path: Path) -> tuple[int, int]:
    """(width, height) a header claims beyond PIL's decompression-bomb limit. PIL's documented
    switch for that limit is the module-level ``Image.MAX_IMAGE_PIXELS``: lifted for this one
    header read (nothing is decoded), then restored."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit
