"""``hmr manifest lock NAME --root DIR``: fill unknown sizes and checksums from a trusted copy.

Many publishers give no checksum. Once a user holds a copy they trust (freshly downloaded,
spot-checked, converted without errors), locking records every file's size and sha256 and
every folder's file count, total size and tree digest. Later ``hmr verify NAME`` on any
machine that sees the locked manifest catches a renamed, truncated or swapped file; the
folders' file listing written beside it (:mod:`manifests.file_index`) lets it name the file.

Locking never overrides what a publisher states: a file whose size or checksum differs
from a known value makes the lock fail (that copy is not trustworthy). The locked
manifest is written, with ``tomli_w`` and atomically, to the user manifest folder
(``$HMR_MANIFEST_DIR`` or ``~/.config/hmrkit/manifests``), which :func:`load_manifest`
searches before the packaged manifests; the packaged file is never modified.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import replace
from pathlib import Path

from hmr.core import __version__
from hmr.core.errors import ChecksumMismatch, DatasetFormatError
from hmr.core.utils.atomic import atomic_write_text
from manifests.file_index import write_index
from manifests.hashing import HashJob, hash_many, tree_digest
from manifests.model import (ManifestFile, dump_manifest, load_manifest, manifest_digest,
                             user_manifest_dir)
from manifests.verify import dir_members, inventory


def _lock_file(entry: ManifestFile, result, root: Path) -> ManifestFile:
    path = root / entry.path
    if result.error:
        raise DatasetFormatError(f"cannot read: {result.error}", path=path)
    if entry.size is not None and result.size != entry.size:
        raise ChecksumMismatch(f"size {result.size:,} differs from the published "
                               f"{entry.size:,}; refusing to lock an untrusted copy", path=path)
    for algo in ("sha256", "md5"):
        known = getattr(entry, algo)
        if known is not None and result.digests.get(algo) != known:
            raise ChecksumMismatch(f"{algo} {result.digests.get(algo)} differs from the "
                                   f"published {known}; refusing to lock", path=path)
    return replace(entry, size=result.size, sha256=result.digests["sha256"])


def _dir_rows(entry: ManifestFile, members: list[str], results, root: Path) -> list[tuple[str, int, str]]:
    """(path inside the folder, size, sha256) of each member; unreadable members fail."""
    prefix = "" if entry.path in (".", "") else entry.path + "/"
    rows = []
    for m in members:
        r = results[m]
        if r.error:
            raise DatasetFormatError(f"cannot read: {r.error}", path=root / m)
        rows.append((m[len(prefix):], r.size, r.digests["sha256"]))
    return rows


def _lock_dir(entry: ManifestFile, rows: list[tuple[str, int, str]], root: Path) -> ManifestFile:
    if entry.count is not None and len(rows) != entry.count:
        raise ChecksumMismatch(f"{len(rows)} file(s) match {entry.glob!r}, the manifest "
                               f"says {entry.count}; refusing to lock", path=root / entry.path)
    return replace(entry, count=len(rows), size=sum(r[1] for r in rows),
                   tree_sha256=tree_digest(rows))


def lock_manifest(name: str | os.PathLike, root: str | os.PathLike, *,
                  output: str | os.PathLike | None = None, workers: int | None = None,
                  progress: bool | None = None) -> Path:
    """Hash the trusted copy at ``root`` and write the completed manifest; return its path."""
    manifest = load_manifest(name)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root is not a folder")
    files, _dirs = inventory(root)
    missing = [e.path for e in manifest.files if e.required and e.kind != "dir"
               and e.path not in files]
    members = {e.key: dir_members(e, files) for e in manifest.files if e.kind == "dir"}
    missing += [k for k, m in members.items() if not m and manifest.entry(k).required]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DatasetFormatError(f"cannot lock an incomplete copy; missing: {shown}", path=root)
    jobs = []
    for e in manifest.files:
        if e.kind != "dir" and e.path in files:
            algos = ("sha256", "md5") if e.md5 else ("sha256",)
            jobs.append(HashJob(e.path, root / e.path, algos, files[e.path]))
    for rels in members.values():
        jobs.extend(HashJob(m, root / m, ("sha256",), files[m]) for m in rels)
    run = hash_many(jobs, workers=workers, progress=progress, desc=f"lock {manifest.name}")
    locked_files, listings = [], {}
    for e in manifest.files:
        if e.kind == "dir":
            if members[e.key]:
                listings[e.key] = _dir_rows(e, members[e.key], run.results, root)
                locked_files.append(_lock_dir(e, listings[e.key], root))
            else:
                locked_files.append(e)
        elif e.path in files:
            locked_files.append(_lock_file(e, run.results[e.path], root))
        else:
            locked_files.append(e)  # optional and absent (e.g. a deleted archive)
    manifest.files = locked_files
    manifest.locked = {"root": str(root.resolve()),
                       "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "from_manifest_sha256": manifest_digest(name),
                       "hmrkit_version": __version__}
    out = Path(output) if output is not None else user_manifest_dir() / f"{manifest.name}.toml"
    # the folders' file listing first: a manifest on disk always has its own beside it
    write_index(out, listings)
    atomic_write_text(out, dump_manifest(manifest))
    return out
