"""Output manifests: what a converter run produced, and from what.

Every converter run writes ``<store name>.manifest.json`` next to its store (a zarr
folder such as ``out/coco_train.zarr/`` or a single file such as ``out/coco_train.npz``)::

    {
      "format": "hmrkit-output-manifest", "format_version": 1,
      "store": "coco_train.zarr", "store_kind": "dir",
      "files": [{"path": "zarr.json", "size": 512, "sha256": "…"}, …],   # every store file
      "store_sha256": "…",              # tree digest of "files" (manifests.hashing.tree_digest)
      "converter": {"name": "converters.coco", "version": "1.0"},
      "schema_version": 1,
      "source_manifest": {"name": "coco2014", "sha256": "…", "location": "…"} | null,
      "raw": {"root": "/data/coco", "hash_max_bytes": 4294967296, "digest": "…",
              "files": [{"path": "annotations/person_keypoints_train2014.json",
                         "size": 238884731, "mtime_ns": …, "sha256": "…"}]},
      "counts": {"train": 28344}, "argv": ["hmr", "convert", …],
      "created_at": "2026-11-23T10:00:00+00:00", "hmrkit_version": "0.1.0"
    }

Raw-file digests: converters pass the raw files they *read* (annotation files, not every
image). Each gets size and mtime; files up to ``raw_hash_max_bytes`` (4 GiB by default)
also get a sha256, hashed in parallel with a progress bar. Bigger files (a 13 GB image
archive passed by mistake) keep size+mtime only, so a conversion never spends minutes
re-hashing what ``hmr verify`` already checks; ``raw.digest`` covers what was recorded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from hmr.core import __version__
from hmr.core.errors import HmrError, SchemaError
from hmr.core.utils.atomic import atomic_write_text
from manifests.hashing import HashJob, hash_many, tree_digest
from manifests.model import manifest_digest, manifest_location

FORMAT = "hmrkit-output-manifest"
FORMAT_VERSION = 1
SUFFIX = ".manifest.json"
RAW_HASH_MAX_BYTES = 4 * 1024**3


def output_manifest_path(store_path: str | os.PathLike) -> Path:
    store = Path(store_path)
    return store.with_name(store.name + SUFFIX)


def store_files(store: Path) -> dict[str, Path]:
    """``{path relative to the store's parent-side name: absolute path}`` of a store.

    For a folder store the keys are relative to the folder; a file store has one key,
    its own file name.
    """
    if store.is_file():
        return {store.name: store}
    if not store.is_dir():
        raise FileNotFoundError(f"{store}: store not found (expected a folder or a file)")
    out = {}
    for current, _dirs, names in os.walk(store):
        for name in names:
            full = Path(current) / name
            out[full.relative_to(store).as_posix()] = full
    return dict(sorted(out.items()))


def _store_sizes(store: Path) -> dict[str, tuple[Path, int]]:
    """``{relative path: (absolute path, size)}`` of a store, as :func:`store_files` orders it:
    one ``scandir`` walk whose entries carry their sizes (no ``Path.relative_to`` per file)."""
    if not store.is_dir():
        return {rel: (p, p.stat().st_size) for rel, p in store_files(store).items()}
    out: dict[str, tuple[Path, int]] = {}
    stack = [(str(store), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                if e.is_dir():  # followed like os.walk's listing (symlinked folders not entered)
                    if not e.is_symlink():
                        stack.append((e.path, prefix + e.name + "/"))
                else:
                    out[prefix + e.name] = (Path(e.path), e.stat().st_size)
    return dict(sorted(out.items()))


def hash_store(store: Path, *, workers: int | None = None,
               progress: bool | None = None) -> list[dict[str, Any]]:
    sized = _store_sizes(store)
    files = {rel: p for rel, (p, _) in sized.items()}
    jobs = [HashJob(rel, p, ("sha256",), size) for rel, (p, size) in sized.items()]
    run = hash_many(jobs, workers=workers, progress=progress, desc=f"hash {store.name}")
    out = []
    for rel in files:
        r = run.results[rel]
        if r.error:
            raise HmrError(f"cannot read store file: {r.error}", path=files[rel])
        out.append({"path": rel, "size": r.size, "sha256": r.digests["sha256"]})
    return out


def _raw_records(raw_files: list[Path], raw_root: Path, max_bytes: int, workers: int | None,
                 progress: bool | None) -> list[dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    jobs = []
    for rel in raw_files:
        rel = Path(rel)
        full = rel if rel.is_absolute() else raw_root / rel
        key = full.relative_to(raw_root).as_posix() if full.is_relative_to(raw_root) else str(full)
        st = full.stat()
        records[key] = {"path": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if st.st_size <= max_bytes:
            jobs.append(HashJob(key, full, ("sha256",), st.st_size))
    run = hash_many(jobs, workers=workers, progress=progress, desc="hash raw files")
    for key, r in run.results.items():
        if r.error:
            raise HmrError(f"cannot read raw file: {r.error}", path=r.path)
        records[key]["sha256"] = r.digests["sha256"]
    return [records[k] for k in sorted(records)]


def _raw_digest(records: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r['path']}\0{r['size']}\0{r.get('sha256', 'mtime:' + str(r['mtime_ns']))}\n"
                 .encode("utf-8"))
    return h.hexdigest()


def write_output_manifest(store_path: str | os.PathLike, *, converter: str,
                          converter_version: str, schema_version: int,
                          source_manifest: str | None, raw_files: list[Path], raw_root: Path,
                          counts: dict[str, int], argv: list[str] | None = None,
                          workers: int | None = None, progress: bool | None = None,
                          raw_hash_max_bytes: int = RAW_HASH_MAX_BYTES) -> Path:
    """Hash a finished store and write ``<store>.manifest.json`` next to it, atomically.

    Call this after the store is complete. ``raw_files`` are relative to ``raw_root``
    (absolute paths are accepted too); ``counts`` maps split name to sample count.
    """
    store = Path(store_path)
    raw_root = Path(raw_root)
    files = hash_store(store, workers=workers, progress=progress)
    raw = _raw_records(list(raw_files), raw_root, raw_hash_max_bytes, workers, progress)
    source = None
    if source_manifest is not None:
        source = {"name": source_manifest, "sha256": manifest_digest(source_manifest),
                  "location": manifest_location(source_manifest)}
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "store": store.name, "store_kind": "file" if store.is_file() else "dir",
        "files": files,
        "store_sha256": tree_digest((f["path"], f["size"], f["sha256"]) for f in files),
        "converter": {"name": converter, "version": converter_version},
        "schema_version": int(schema_version),
        "source_manifest": source,
        "raw": {"root": str(raw_root.resolve()), "hash_max_bytes": raw_hash_max_bytes,
                "digest": _raw_digest(raw), "files": raw},
        "counts": {str(k): int(v) for k, v in counts.items()},
        "argv": list(sys.argv if argv is None else argv),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hmrkit_version": __version__,
    }
    out = output_manifest_path(store)
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    return out


def read_output_manifest(path: Path) -> dict[str, Any]:
    """Load and structurally check an output manifest; :class:`SchemaError` when malformed."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"output manifest is not valid JSON: {exc}", path=path) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SchemaError(f"not an hmrkit output manifest (format != {FORMAT!r})", path=path)
    if doc.get("format_version") != FORMAT_VERSION:
        raise SchemaError(f"unsupported format_version {doc.get('format_version')!r}", path=path)
    for i, f in enumerate(doc.get("files") or []):
        if not {"path", "size", "sha256"} <= set(f):
            raise SchemaError(f"files[{i}] lacks path/size/sha256", path=path)
    if not doc.get("files"):
        raise SchemaError("output manifest lists no files", path=path)
    return doc
