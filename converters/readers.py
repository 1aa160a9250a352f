"""Readers for raw dataset files that fail with the file's name: a missing, truncated or
unparsable file raises :class:`~hmr.core.errors.DatasetFormatError` carrying its path,
which the CLI prints as one line."""

from __future__ import annotations

import json
import struct
import warnings
import zlib
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
    """MATLAB files up to v7.2 through scipy (``loadmat_options`` passed on), after
    :func:`check_mat5_layout`. v7.3 files are HDF5: use :func:`open_h5`."""
    import scipy.io

    require_file(path)
    check_mat5_layout(path)
    try:
        return scipy.io.loadmat(str(path), **loadmat_options)
    except NotImplementedError:
        raise DatasetFormatError("MATLAB v7.3 (HDF5) file: read it with h5py", path=path) from None
    except MemoryError:
        raise DatasetFormatError("unreadable .mat file: a header claims more memory than there is", path=path) from None
    except Exception as exc:  # noqa: BLE001  scipy's parser fails on a corrupt file with many types
        raise DatasetFormatError(f"unreadable or truncated .mat file ({type(exc).__name__}: {exc})",
                                 path=path) from None


_MI_MATRIX, _MI_COMPRESSED = 14, 15  # MATLAB v5 data element types that hold other elements
#: miINT8 .. miDOUBLE, miINT64, miUINT64, miMATRIX, miCOMPRESSED, miUTF8/16/32
_MI_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18})
_MAT5_MAX_DEPTH = 64


def check_mat5_layout(path: Path) -> None:
    """Check that every data element of a MATLAB v5 file lies inside its parent before scipy
    reads it. scipy's reader trusts the sizes it finds: in a file whose variable-name length
    was raised from 6 to 124 it read past its buffer and the process died (segmentation
    fault, scipy 1.17), before any error could name the file. v5 layout (MathWorks, "MAT-File
    Format"): a 128-byte header ending in the endian mark ``IM``/``MI``, then elements of an
    8-byte tag (type, size) and data padded to 8 bytes; a tag whose upper 16 bits are not
    zero is a small element (size ≤ 4 in those bits, data in the tag's second word); the
    type is one of the 15 the format defines (an unknown one also crashed scipy);
    ``miMATRIX`` (14) holds sub-elements, ``miCOMPRESSED`` (15) a zlib stream of elements.
    v7.3 files (HDF5) and v4 files are left to scipy's own version check."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI") or data[:4] == b"\x89HDF":
        return  # not v5 (v4, HDF5, or too short): scipy decides and names the problem
    try:
        _check_elements(data, 128, len(data), "<" if data[126:128] == b"IM" else ">", 0)
    except (ValueError, zlib.error) as exc:
        raise DatasetFormatError(f"corrupt .mat file: {exc}", path=path) from None


def _check_elements(buf: bytes, start: int, end: int, order: str, depth: int) -> tuple[int, int | None]:
    """Check the elements in ``buf[start:end]``; return their count and the first data word
    of the first one (an array's flags, when these are an ``miMATRIX``'s sub-elements)."""
    if depth > _MAT5_MAX_DEPTH:
        raise ValueError(f"elements nested more than {_MAT5_MAX_DEPTH} deep")
    unpack = _TAGS[order].unpack_from
    pos, count, first = start, 0, None
    while end - pos >= 8:
        tag, size = unpack(buf, pos)
        kind = tag & 0xFFFF
        if kind not in _MI_TYPES:
            raise ValueError(f"data element at byte {pos} has unknown type {kind}")
        count += 1
        if tag >> 16:  # small data element: its data is the tag's second word
            if tag >> 16 > 4:
                raise ValueError(f"small data element at byte {pos} claims {tag >> 16} bytes (at most 4)")
            first = size if first is None else first
            pos += 8
            continue
        body = pos + 8
        if size > end - body:
            raise ValueError(f"data element at byte {pos} claims {size:,} bytes, {end - body:,} remain")
        if first is None and size >= 8:
            first = unpack(buf, body)[0]
        if kind == _MI_COMPRESSED:
            inner = zlib.decompress(buf[body:body + size])
            _check_elements(inner, 0, len(inner), order, depth + 1)
            pos = body + size  # compressed elements are not padded
            continue
        if kind == _MI_MATRIX and size:
            _check_matrix(*_check_elements(buf, body, body + size, order, depth + 1), pos)
        pos = body + size + (-size % 8)
    return count, first


_TAGS = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}


def _check_matrix(parts: int, flags: int | None, pos: int) -> None:
    """An ``miMATRIX``'s sub-elements: array flags first (class 1-17); a numeric or character
    array marked complex must carry its imaginary part (scipy crashed reading a real array
    whose complex bit was set)."""
    if flags is None:
        raise ValueError(f"array at byte {pos} has no array flags")
    mx_class, is_complex = flags & 0xFF, bool(flags & 0x800)
    if not 1 <= mx_class <= 17:
        raise ValueError(f"array at byte {pos} has unknown class {mx_class}")
    # flags, dims, name, then the data: real (+ imaginary) part, sparse: ir, jc, real (+ imaginary)
    needed = {5: 6}.get(mx_class, 4) + is_complex if 4 <= mx_class <= 15 else 3
    if parts < needed:
        raise ValueError(f"array at byte {pos} ({'complex, ' if is_complex else ''}class {mx_class}) has "
                         f"{parts} of its {needed} parts")


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
