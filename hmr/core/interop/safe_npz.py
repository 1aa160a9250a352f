"""Reading ``.npz`` files that may hold pickled object arrays, without trusting them.

An ``.npz`` is a zip of ``<key>.npy`` members. A plain numeric or string array is a
header plus raw bytes; an *object* array (dtype ``O``: MMHuman3D's ``smpl``/``meta``/
``misc`` dicts saved as 0-d arrays, ``cam_param`` lists of dicts) is a header followed by
a **pickle** of the whole array. ``np.load(f, allow_pickle=True)`` would run whatever that
pickle names, so we never call it on a user's file: :class:`SafeNpz` reads each member's
header itself, returns plain arrays through ``np.lib.format.read_array(allow_pickle=False)``,
and unpickles object arrays with :func:`hmr.core.utils.safe_pickle.load` (numpy arrays and plain
containers only). A pickle naming anything else raises
:class:`~hmr.core.errors.UnsafePickleError` with the file and the key.

Members are read lazily, one key at a time, so a reader that needs ``imgname`` and
``center`` never decompresses ``S``; :meth:`SafeNpz.blocks` streams a plain member in row
blocks, so importing a file never holds more than a block of it (object members excepted).
"""

from __future__ import annotations

import contextlib
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import DatasetFormatError, UnsafePickleError


class SafeNpz:
    """Lazy, pickle-safe view of an ``.npz`` file: ``keys()``, ``in``, ``[key]``.

    ``npz[key]`` returns a numpy array for plain members; for object members the
    unpickled value, with a 0-d object array unwrapped to the object it holds (what
    ``HumanData.load`` does with ``value.item()``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetFormatError("expected npz file is missing", path=self.path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:  # NotImplemented: zip version
            raise DatasetFormatError(f"not a readable npz (zip) file: {exc}", path=self.path) from None
        self._members = {n[:-4]: n for n in self._zip.namelist() if n.endswith(".npy")}

    def keys(self) -> list[str]:
        return sorted(self._members)

    def __contains__(self, key: str) -> bool:
        return key in self._members

    def __getitem__(self, key: str) -> Any:
        with self._errors(key):
            fh, shape, fortran, dtype = self._open_member(key)
            with fh:
                if dtype.hasobject:
                    return self._unpickle(fh, key)
                count = int(np.prod(shape, dtype=np.int64))
                arr = np.frombuffer(self._read_exact(fh, count * dtype.itemsize), dtype=dtype, count=count)
                return arr.reshape(shape, order="F" if fortran else "C").copy()

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of a member, read from its header only."""
        with self._errors(key):
            fh, shape, _, dtype = self._open_member(key)
            fh.close()
            return tuple(shape), dtype

    def blocks(self, key: str, rows: int) -> Iterator[np.ndarray]:
        """Member ``key`` as consecutive blocks of up to ``rows`` rows (first axis), read
        sequentially from the zip stream: memory holds one block, not the member. Object
        and Fortran-ordered members are read whole, then sliced."""
        shape, dtype = self.header(key)
        if dtype.hasobject or not shape or self._fortran(key):
            value = np.asarray(self[key]) if not dtype.hasobject else self[key]
            for start in range(0, len(value), rows):
                yield value[start:start + rows]
            return
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        with self._errors(key):
            fh, *_ = self._open_member(key)
            with fh:
                for start in range(0, shape[0], rows):
                    m = min(rows, shape[0] - start)
                    data = self._read_exact(fh, m * row_bytes)
                    yield np.frombuffer(data, dtype=dtype).reshape(m, *shape[1:]).copy()

    # -- internals --------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        if key not in self._members:
            raise DatasetFormatError(f"has no key '{key}' (keys: {', '.join(self.keys())})",
                                     path=self.path)
        try:
            yield
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, NotImplementedError,
                SyntaxError, tokenize.TokenError) as exc:  # the last three: compression method, .npy header
            raise DatasetFormatError(f"key '{key}' is unreadable or truncated ({type(exc).__name__}: "
                                     f"{exc})", path=self.path, record=key) from None

    def _open_member(self, key: str) -> tuple[Any, tuple[int, ...], bool, np.dtype]:
        fh = self._zip.open(self._members[key])
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            fh.close()
            raise ValueError(f"unsupported .npy format version {version}")
        return fh, shape, fortran, dtype

    def _fortran(self, key: str) -> bool:
        fh, _, fortran, _ = self._open_member(key)
        fh.close()
        return bool(fortran)

    @staticmethod
    def _read_exact(fh: Any, size: int) -> bytes:
        data = fh.read(size)
        if len(data) != size:
            raise EOFError(f"member holds {len(data)} of {size} expected bytes")
        return data

    def _unpickle(self, fh: Any, key: str) -> Any:
        from hmr.core.utils.safe_pickle import load

        try:
            value = load(fh.read())
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"key '{key}': {exc.message}", path=self.path, record=key) from None
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject:
            return value.item()
        return value

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "SafeNpz":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_npz(path: str | os.PathLike) -> SafeNpz:
    """Open ``path`` for pickle-safe, lazy reading (use as a context manager)."""
    return SafeNpz(path)
