"""Readers for raw dataset files that fail with the file's name: a missing, truncated or
unparsable file raises :class:`~hmr.core.errors.DatasetFormatError` carrying its path,
which the CLI prints as one line."""

from __future__ import annotations

import json
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


def read_mat(path: Path) -> dict[str, Any]:
    """MATLAB files up to v7.2 through scipy. v7.3 files are HDF5: use :func:`open_h5`."""
    import scipy.io

    require_file(path)
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DatasetFormatError("MATLAB v7.3 (HDF5) file: read it with h5py", path=path) from None
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetFormatError(f"unreadable or truncated .mat file: {exc}", path=path) from None


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


def image_size_hw(path: Path) -> tuple[int, int]:
    """(height, width) of an image from its header (no full decode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DatasetFormatError("image file is missing", path=path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetFormatError(f"unreadable image: {exc}", path=path) from None
    return height, width
