"""Writing an ``.npz`` block by block, so exporting a large store holds one block in memory.

Each plain member is a temporary ``.npy`` file in a scratch folder next to the output: its
header (full shape) is written first, then :meth:`NpzBlockWriter.write` appends blocks in row
order (plain file writes, not memory maps, whose dirty pages would count as resident memory);
members given whole (:meth:`NpzBlockWriter.put`: small arrays, or dicts/lists that must be
pickled as object arrays) are saved with ``np.save``. :meth:`NpzBlockWriter.close` zips the
members (stored, like ``np.savez``, or deflated, like ``np.savez_compressed``) into a temporary
file renamed onto the output; on an error nothing is left behind, and the scratch folder of a
killed writer (``.hmr-npz-<pid>-*``, its process gone) is removed by the next one. ``np.load`` reads the result
like any npz.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.utils.atomic import atomic_path, scratch_dir


class NpzBlockWriter:
    """``with NpzBlockWriter(out) as w: w.create(k, shape, dtype); w.write(k, start, block)``."""

    def __init__(self, out: str | os.PathLike, *, compress: bool = False, overwrite: bool = True):
        self.out = Path(out)
        self.compress = compress
        self.overwrite = overwrite
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # .hmr-npz-<pid>-<random>: a rerun removes those of killed (dead) writers.
        self._dir = scratch_dir(self.out.parent, ".hmr-npz-")
        self._files: dict[str, _Member] = {}
        self._order: list[str] = []

    def create(self, key: str, shape: tuple[int, ...], dtype: Any) -> None:
        fh = open(self._dir / f"{key}.npy", "wb")
        dtype = np.dtype(dtype)
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": tuple(shape)})
        self._files[key] = _Member(fh, tuple(shape), dtype)
        self._order.append(key)

    def write(self, key: str, start: int, block: np.ndarray) -> None:
        """Append rows ``start .. start + len(block)``; blocks must arrive in row order."""
        member = self._files[key]
        if start != member.rows:
            raise ValueError(f"npz member '{key}': block starts at row {start}, expected {member.rows}")
        data = np.ascontiguousarray(np.asarray(block).astype(member.dtype, copy=False))
        if data.shape[1:] != member.shape[1:]:
            raise ValueError(f"npz member '{key}': block rows have shape {data.shape[1:]}, "
                             f"expected {member.shape[1:]}")
        member.fh.write(data.tobytes())
        member.rows += len(data)

    def put(self, key: str, value: Any) -> None:
        """A whole member; dicts and lists of dicts become pickled object arrays, as np.savez
        would store them."""
        arr = np.asanyarray(value) if not isinstance(value, (dict, list)) else _object_array(value)
        np.save(self._dir / f"{key}.npy", arr, allow_pickle=True)
        self._order.append(key)

    def drop(self, key: str) -> None:
        """Leave a created member out of the file."""
        member = self._files.pop(key, None)
        if member is not None:
            member.fh.close()
        self._order.remove(key)
        (self._dir / f"{key}.npy").unlink(missing_ok=True)

    def _close_members(self) -> None:
        for member in self._files.values():
            member.fh.close()

    def close(self) -> Path:
        self._close_members()
        short = [k for k, m in self._files.items() if m.rows != m.shape[0]]
        if short:
            self.abort()
            raise ValueError(f"npz members {short} were not filled to their declared rows")
        self._files.clear()
        method = zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED
        try:
            with atomic_path(self.out, overwrite=self.overwrite) as tmp:
                with zipfile.ZipFile(tmp, "w", compression=method, allowZip64=True) as zf:
                    for key in self._order:
                        zf.write(self._dir / f"{key}.npy", arcname=f"{key}.npy")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        self._close_members()
        self._files.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "NpzBlockWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass
class _Member:
    fh: Any
    shape: tuple[int, ...]
    dtype: np.dtype
    rows: int = 0


def _object_array(value: dict | list) -> np.ndarray:
    """What ``np.asanyarray`` makes of a dict (0-d object) or a list of dicts ((N,) object)."""
    if isinstance(value, dict):
        arr = np.empty((), dtype=object)
        arr[()] = value
        return arr
    if value and all(isinstance(v, dict) for v in value):
        arr = np.empty(len(value), dtype=object)
        arr[:] = value
        return arr
    return np.asanyarray(value)
