"""Schema-v1 containers: a chunked zarr store (lazy, appendable) and a single npz file.

Both hold the same content: one array per field (first axis = sample) plus the store
attributes. Stores are written through :class:`StoreWriter`, which validates every block,
writes under a temporary name and renames on close, and marks the store complete last:
a store whose ``complete`` attribute is not true, or whose arrays are shorter than
``num_samples``, is refused on open (zarr reads missing chunks back as fill values,
silently, so the marker is what makes a killed conversion visible).

What a reader trusts, and what it checks on open (docs/reliability.md;
:mod:`hmr.core.schema.integrity`):

- Every chunk is written, even one that holds only fill values (zarr skips those by
  default), and the attribute ``every_chunk_written`` says so: a store with that attribute
  is refused on open when any chunk its shape implies is missing, so a deleted chunk is
  never read back as zeros.
- Only the codecs this writer uses are accepted (Blosc compression, the UTF-8 string
  filter), checked in each array's metadata before any chunk is read: a store naming
  numcodecs' ``pickle`` codec is refused whatever ``NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE``
  says.
- A chunk that cannot be decoded is reported with the store, the field and the chunk file.
  A chunk whose bytes changed but still decode is only caught against the output
  manifest's digests (``manifests.check_store_files``, run by ``store validate``, ``shard``
  and ``evaluate``).

Writers hold an exclusive lock on the output (:func:`hmr.core.utils.atomic.output_lock`),
so a second writer of the same store refuses instead of deleting the first one's files.

Zarr layout: zarr format 2 (readable by zarr-python 2.x and 3.x), one array per field at
the group root, chunked along the sample axis only (``chunk_rows`` rows per chunk, default
1024: never one chunk per sample), Blosc-zstd compression, strings as variable-length
UTF-8. Attributes live on the root group.

npz layout: one ``<field>.npy`` member per field (strings as fixed-width unicode, no
pickles) plus ``__attrs__``: a 0-d unicode array holding the attributes as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import HmrError, SchemaError
from hmr.core.schema.fields import (
    EXTRA_PREFIX, FIELD_BY_NAME, FIELDS, GENDERS, SCHEMA_VERSION, SMPL_SOURCES, default_value,
)
from hmr.core.schema.integrity import EVERY_CHUNK, check_codecs, missing_chunks
from hmr.core.schema.validate import validate_attrs, validate_columns
from hmr.core.utils.atomic import (
    aside_name, output_lock, partial_name, remove_stale_partials, scratch_dir, write_error,
)

DEFAULT_CHUNK_ROWS = 1024
ATTRS_KEY = "__attrs__"
UNITS = {"keypoints2d": "px", "bbox_xywh": "px", "keypoints3d": "m", "smpl_transl": "m",
         "smpl_global_orient": "rad (axis-angle)", "smpl_body_pose": "rad (axis-angle)",
         "cam_intrinsics": "px", "cam_extrinsics": "m"}


def store_format(path: str | os.PathLike) -> str:
    """'zarr' or 'npz', from the path's suffix (or, for an existing path, its kind)."""
    p = Path(path)
    if p.suffix == ".npz":
        return "npz"
    if p.suffix == ".zarr" or p.is_dir():
        return "zarr"
    raise SchemaError("store path must end in .zarr or .npz", path=p)


def _zarr():
    import zarr  # imported lazily: zarr starts an asyncio thread (docs/pitfalls.md, zarr)

    return zarr


def _compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)


def _as_str_array(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        return arr
    return np.array([str(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)


def _cast(values: np.ndarray, field: Any, offset: int, path: Path) -> np.ndarray:
    """Cast to the field's dtype: floats always (converters may compute in float64),
    integers and booleans only when no value changes."""
    target = np.dtype(field.dtype)
    if values.dtype == target:
        return values
    cast = values.astype(target)
    if target.kind != "f" and values.size and not np.array_equal(cast, values):
        bad = (cast != values).reshape(len(values), -1).any(axis=1)
        raise SchemaError(f"values do not fit dtype {target}", field=field.name,
                          index=offset + int(np.argmax(bad)), path=path)
    return cast


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
class StoreWriter:
    """Append samples block by block; ``close()`` makes the store visible under its name.

    ``add(sample)`` takes one sample as a mapping (fields absent from it take their
    defaults, see :func:`hmr.core.schema.fields.default_value`); ``add_columns(cols)`` takes a
    block. Extra per-sample columns must start with ``extra_``.

    Use as a context manager: an exception inside the ``with`` — or inside ``close()``
    itself (a bad row found at the last flush, a full disk) — removes the partial output
    and leaves any previous store of that name untouched. A bad row is named by its
    ``source_key``; with ``on_bad_row(row, error)`` given, the writer calls it and drops the
    row instead of failing (the converter driver's ``--skip-bad``).
    """

    def __init__(self, path: str | os.PathLike, *, dataset: str, split: str, converter: str,
                 converter_version: str, image_root: str | os.PathLike = "",
                 keypoint_convention: str = "superset", chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 overwrite: bool = False, attrs: Mapping[str, Any] | None = None,
                 on_bad_row: Any = None):
        self.path = Path(path)
        self.format = store_format(self.path)
        self.on_bad_row = on_bad_row
        self._closed = True  # until the lock is held and the partial exists
        self._tmp: Path | None = None
        self._scratch: Path | None = None
        self._lock = output_lock(self.path)
        self._lock.__enter__()  # held until close() or abort()
        try:
            remove_stale_partials(self.path)
            if self.path.exists() and not overwrite:
                raise FileExistsError(f"{self.path} exists (use overwrite to replace it)")
            self._open(dataset, split, converter, converter_version, image_root,
                       keypoint_convention, chunk_rows, attrs)
        except OSError as exc:
            self.abort()
            if isinstance(exc, FileExistsError):
                raise
            raise write_error(exc, self.path, "cannot create the store") from exc
        except BaseException:
            self.abort()
            raise

    def _open(self, dataset, split, converter, converter_version, image_root, keypoint_convention,
              chunk_rows, attrs) -> None:
        from hmr.core.keypoints import get_convention, superset_digest

        conv = get_convention(keypoint_convention)
        self.num_keypoints = conv.num_joints
        self.chunk_rows = int(chunk_rows)
        self.attrs: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "dataset": dataset, "split": split,
            "keypoint_convention": conv.name, "num_keypoints": conv.num_joints,
            "converter": converter, "converter_version": converter_version,
            "image_root": str(image_root), "units": UNITS, "smpl_sources": list(SMPL_SOURCES),
            "genders": list(GENDERS), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if conv.name == "superset":
            self.attrs["superset_digest"] = superset_digest()
        if attrs:
            self.attrs.update(attrs)
        validate_attrs(self.attrs, path=self.path)
        self._tmp = partial_name(self.path)
        # npz is written from a temporary zarr at close, so memory never grows with N.
        if self.format == "zarr":
            zarr_dir = self._tmp
        else:
            self._scratch = scratch_dir(self.path.parent, ".hmr-npz-")
            zarr_dir = self._scratch / "store.zarr"
        self._closed = False
        self._group = _zarr().open_group(str(zarr_dir), mode="w", zarr_format=2)
        self._group.attrs.update({**self.attrs, "complete": False, "num_samples": 0,
                                  EVERY_CHUNK: True})
        self._arrays: dict[str, Any] = {}
        self._pending: list[dict[str, Any]] = []
        self.num_samples = 0
        self._finished = False

    # -- public API -------------------------------------------------------------------
    def add(self, sample: Mapping[str, Any]) -> None:
        unknown = [k for k in sample if k not in FIELD_BY_NAME and not k.startswith(EXTRA_PREFIX)]
        if unknown:
            self._bad_row(dict(sample), SchemaError(f"unknown fields {sorted(unknown)}",
                                                    index=self.num_samples + len(self._pending),
                                                    path=self.path))
            return
        self._pending.append(dict(sample))
        if len(self._pending) >= self.chunk_rows:
            self.flush()

    def add_columns(self, cols: Mapping[str, Any]) -> None:
        self.flush()
        n = len(cols["image_path"])
        full = self._fill_defaults({k: np.asarray(v) for k, v in cols.items()}, n)
        for start in range(0, n, self.chunk_rows):
            self._guarded(self._write_block, {k: v[start:start + self.chunk_rows] for k, v in full.items()})

    def flush(self) -> None:
        """Write the buffered rows. A row the schema refuses is named by its ``source_key``
        (not the row that filled the buffer) and, with ``on_bad_row``, dropped."""
        while self._pending:
            rows, self._pending = self._pending, []
            try:
                self._guarded(self._write_block, self._rows_to_columns(rows))
                return
            except (SchemaError, ValueError, TypeError) as exc:
                bad = self._find_bad_row(rows, exc)
                if bad is None:
                    raise
                index, error = bad
                self._pending = rows[:index] + rows[index + 1:]
                self._bad_row(rows[index], error)

    def _find_bad_row(self, rows: list[dict[str, Any]], exc: Exception
                      ) -> tuple[int, Exception] | None:
        """(position in ``rows``, its error) of the row that made a block fail."""
        index = getattr(exc, "index", None)
        if isinstance(exc, SchemaError) and index is not None and 0 <= index - self.num_samples < len(rows):
            return index - self.num_samples, exc
        for i, row in enumerate(rows):  # slow path, only after a failure: one row at a time
            try:
                validate_columns(self._rows_to_columns([row]), self.num_keypoints,
                                 offset=self.num_samples + i, path=self.path)
            except (SchemaError, ValueError, TypeError) as err:
                return i, err
        return None

    def _bad_row(self, row: Mapping[str, Any], exc: Exception) -> None:
        key = str(row.get("source_key", "") or "")
        if self.on_bad_row is not None:
            self.on_bad_row(row, exc)
            return
        if isinstance(exc, HmrError):
            exc.record = f"source_key {key!r}" if key else exc.record
            raise exc
        raise SchemaError(f"{type(exc).__name__}: {exc}" + (f" (source_key {key!r})" if key else ""),
                          index=self.num_samples, path=self.path) from None

    def _guarded(self, write: Any, *args: Any) -> Any:
        """Run a write step; an OSError (a full disk) removes the partial output and
        becomes one line naming the store."""
        try:
            return write(*args)
        except OSError as exc:
            self.abort()
            raise write_error(exc, self.path, "cannot write the store") from exc

    def _rows_to_columns(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        names = {k for r in rows for k in r}
        cols: dict[str, np.ndarray] = {}
        for name in names:
            field = FIELD_BY_NAME.get(name)
            default = default_value(field, self.num_keypoints) if field else None
            values = [r.get(name, default) for r in rows]
            if field is not None and field.is_string:
                cols[name] = np.array([str(v) for v in values], dtype=object)
            elif field is not None:
                cols[name] = np.asarray(values, dtype=field.dtype)
            else:
                if any(v is None for v in values):
                    missing = next(i for i, v in enumerate(values) if v is None)
                    raise SchemaError("extra column missing in some samples", field=name,
                                      index=self.num_samples + missing, path=self.path)
                cols[name] = np.asarray(values)
        return self._fill_defaults(cols, len(rows))

    def finish(self) -> None:
        """Flush and mark the store complete under its temporary name (nothing visible yet);
        ``close()`` then renames it into place. On any failure the partial is removed."""
        if self._closed or self._finished:
            return
        try:
            self.flush()
            self._group.attrs.update({"num_samples": self.num_samples, "complete": True})
            if self.format == "npz":
                _zarr_to_npz(self._group, self._tmp)
                shutil.rmtree(self._scratch, ignore_errors=True)
        except OSError as exc:
            self.abort()
            raise write_error(exc, self.path, "cannot write the store") from exc
        except BaseException:
            self.abort()
            raise
        self._finished = True

    def close(self) -> Path:
        """Flush, mark complete, rename into place. Returns the final path.

        An old store of the same name is replaced atomically: moved aside, the new one
        renamed in, then the old one deleted; a run killed in between leaves either store
        whole under the name, and the next writer restores or removes the aside copy."""
        if self._closed:
            return self.path
        self.finish()
        try:
            if self.path.is_dir() and not self.path.is_symlink():
                old = aside_name(self.path)
                os.replace(self.path, old)
                os.replace(self._tmp, self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:  # a file (npz) is replaced by one rename
                os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise write_error(exc, self.path, "cannot rename the finished store into place") from exc
        self._closed = True
        self._release()
        return self.path

    def abort(self) -> None:
        self._closed = True
        for p in (self._tmp, self._scratch):
            if p is None:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.__exit__(None, None, None)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals --------------------------------------------------------------------
    def _fill_defaults(self, cols: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        out = dict(cols)
        for field in FIELDS:
            if field.name not in out:
                default = default_value(field, self.num_keypoints)
                if field.is_string:
                    out[field.name] = np.full(n, default, dtype=object)
                else:
                    out[field.name] = np.broadcast_to(default, (n, *np.shape(default))).astype(field.dtype)
            elif field.is_string:
                out[field.name] = _as_str_array(out[field.name])
            else:
                out[field.name] = _cast(out[field.name], field, self.num_samples, self.path)
        return out

    def _write_block(self, cols: dict[str, np.ndarray]) -> None:
        n = validate_columns(cols, self.num_keypoints, offset=self.num_samples, path=self.path)
        if not self._arrays:
            self._create_arrays(cols)
        elif set(cols) != set(self._arrays):
            raise SchemaError(f"block has columns {sorted(set(cols) ^ set(self._arrays))} "
                              "that differ from the first block", path=self.path)
        for name, arr in self._arrays.items():
            values = cols[name]
            arr.append(np.asarray(values, dtype=object) if values.dtype.kind in "OUT" else values)
        self.num_samples += n

    def _create_arrays(self, cols: Mapping[str, np.ndarray]) -> None:
        for name, values in cols.items():
            is_str = values.dtype.kind in "OUT"
            shape = (0, *values.shape[1:])
            # Every chunk is written, even all-fill ones, so readers can tell a deleted
            # chunk from a skipped one (EVERY_CHUNK).
            self._arrays[name] = self._group.create_array(
                name, shape=shape, chunks=(self.chunk_rows, *values.shape[1:]),
                dtype=str if is_str else values.dtype,
                compressors=None if is_str else _compressor(),
                config={"write_empty_chunks": True},
            )


def _zarr_to_npz(group: Any, out: Path, block_rows: int = 65536) -> None:
    """Stream a zarr group into an npz file, one field at a time, ``block_rows`` at a time."""
    attrs = dict(group.attrs)
    n = int(attrs["num_samples"])
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name in sorted(group.array_keys()):
            arr = group[name]
            is_str = arr.dtype.kind in "OUT" or str(arr.dtype).startswith("StringDType") or arr.dtype == object
            if is_str:
                width = max([1] + [len(str(s)) for start in range(0, n, block_rows)
                                   for s in arr[start:start + block_rows]])
                dtype = np.dtype(f"<U{width}")
            else:
                dtype = np.dtype(arr.dtype)
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                      "shape": (n, *arr.shape[1:])}
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_2_0(fh, header)
                for start in range(0, n, block_rows):
                    block = arr[start:start + block_rows]
                    fh.write(np.ascontiguousarray(np.asarray(block, dtype=dtype)).tobytes())
        with zf.open(f"{ATTRS_KEY}.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array(json.dumps(attrs, sort_keys=True)))


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
class SampleStore:
    """Read access to a schema-v1 store; zarr stores are read lazily, block by block.

    ``store[i]`` returns sample ``i`` as a dict (reads one chunk per field, never the
    whole store); ``store.read(field, start, stop)`` and ``store.blocks()`` are the fast
    paths. String fields come back as object arrays of ``str``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no store at {self.path}")
        self.format = store_format(self.path)
        if self.format == "zarr":
            check_codecs(self.path)  # before zarr builds any codec or reads any chunk
            try:
                self._group = _zarr().open_group(str(self.path), mode="r")
                self.attrs: dict[str, Any] = dict(self._group.attrs)
                self._arrays = {name: self._group[name] for name in self._group.array_keys()}
            except Exception as exc:  # zarr raises several types for a non-store folder
                raise SchemaError(f"not a zarr store ({type(exc).__name__}: {exc})", path=self.path) from None
        else:
            try:
                self._npz = np.load(self.path, allow_pickle=False)
                self.attrs = json.loads(str(self._npz[ATTRS_KEY]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise SchemaError(f"not a schema npz ({type(exc).__name__}: {exc})", path=self.path) from None
            self._arrays = {k: None for k in self._npz.files if k != ATTRS_KEY}
        self._check_complete()
        self.num_keypoints = int(self.attrs["num_keypoints"])

    def _check_complete(self) -> None:
        if not self.attrs.get("complete", False):
            raise SchemaError("store is incomplete (its writer did not finish): convert again",
                              path=self.path)
        validate_attrs(self.attrs, path=self.path)
        n = int(self.attrs["num_samples"])
        missing = [f.name for f in FIELDS if f.name not in self._arrays]
        if missing:
            raise SchemaError(f"store lacks fields {missing}", path=self.path)
        for name in self._arrays:
            length = self._shape(name)[0]
            if length != n:
                raise SchemaError(f"has {length} rows but the store declares {n} samples",
                                  field=name, path=self.path)
        if self.format == "zarr" and self.attrs.get(EVERY_CHUNK):
            for name, arr in self._arrays.items():
                missing = missing_chunks(self.path / name, tuple(arr.shape), tuple(arr.chunks))
                if missing:
                    raise SchemaError(f"{len(missing)} chunk file(s) missing (first: {name}/{missing[0]}); "
                                      "zarr would read them back as zeros: convert again",
                                      field=name, path=self.path)

    def _shape(self, name: str) -> tuple[int, ...]:
        if self.format == "zarr":
            return tuple(self._arrays[name].shape)
        return self._npz_array(name).shape

    def _npz_array(self, name: str) -> np.ndarray:
        if self._arrays[name] is None:
            self._arrays[name] = self._npz[name]
        return self._arrays[name]

    # -- public API -------------------------------------------------------------------
    @property
    def fields(self) -> list[str]:
        return sorted(self._arrays)

    @property
    def dataset(self) -> str:
        return str(self.attrs["dataset"])

    @property
    def split(self) -> str:
        return str(self.attrs["split"])

    def __len__(self) -> int:
        return int(self.attrs["num_samples"])

    def read(self, field: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        if field not in self._arrays:
            raise SchemaError(f"no such field (fields: {', '.join(self.fields)})", field=field, path=self.path)
        stop = len(self) if stop is None else min(stop, len(self))
        try:
            if self.format == "zarr":
                values = self._arrays[field][start:stop]
            else:
                values = self._npz_array(field)[start:stop]
        except Exception as exc:  # blosc / zip / decode errors: name what could not be read
            raise SchemaError(f"cannot read rows {start}..{stop} ({self._chunk_files(field, start, stop)}): "
                              f"{type(exc).__name__}: {exc}; the store is corrupt, convert again",
                              field=field, path=self.path) from None
        if values.dtype.kind in "OUT":
            return _as_str_array(values)
        return np.asarray(values)

    def columns(self, start: int = 0, stop: int | None = None,
                fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return {name: self.read(name, start, stop) for name in (fields or self.fields)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"sample {index} out of range for {n} samples in {self.path}")
        index %= n
        return {name: values[0] for name, values in self.columns(index, index + 1).items()}

    def _chunk_files(self, field: str, start: int, stop: int) -> str:
        """The chunk file that fails to decode among rows ``start..stop`` (tried one by one)."""
        if self.format != "zarr":
            return f"member {field}.npy"
        arr = self._arrays[field]
        rows = int(arr.chunks[0])
        tail = ".0" * (len(arr.shape) - 1)
        chunks = range(start // rows, max(start, stop - 1) // rows + 1)
        for c in chunks:
            try:
                arr[c * rows:(c + 1) * rows]
            except Exception:  # noqa: BLE001 - any decode failure names this chunk
                return f"chunk {field}/{c}{tail}"
        return f"chunks {field}/{chunks[0]}{tail}..{field}/{chunks[-1]}{tail}"

    def block_rows(self) -> int:
        if self.format == "zarr" and self._arrays:
            return int(self._arrays["keypoints2d"].chunks[0])
        return DEFAULT_CHUNK_ROWS * 16

    def blocks(self, rows: int | None = None, fields: Sequence[str] | None = None
               ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(offset, columns)`` blocks aligned to the store's chunks."""
        rows = rows or self.block_rows()
        for start in range(0, len(self), rows):
            yield start, self.columns(start, start + rows, fields)

    def validate(self) -> int:
        """Validate every sample, block by block; returns the number of samples checked."""
        total = 0
        for offset, cols in self.blocks():
            total += validate_columns(cols, self.num_keypoints, offset=offset, path=self.path)
        return total


def open_store(path: str | os.PathLike) -> SampleStore:
    return SampleStore(path)


def copy_store(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False,
               chunk_rows: int | None = None) -> Path:
    """Copy a store into another container (zarr ⇄ npz), block by block, losslessly."""
    store = open_store(src)
    keep = {k: v for k, v in store.attrs.items() if k not in ("complete", "num_samples")}
    core = {k: keep.pop(k) for k in ("dataset", "split", "converter", "converter_version",
                                      "image_root", "keypoint_convention")}
    keep.pop("num_keypoints", None)
    keep.pop("schema_version", None)
    with StoreWriter(dst, overwrite=overwrite, chunk_rows=chunk_rows or store.block_rows(),
                     attrs=keep, **core) as writer:
        for _, cols in store.blocks():
            writer.add_columns(cols)
    return Path(dst)
