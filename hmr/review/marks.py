"""Curation marks: a small versioned JSON file next to a store, never the store itself.

``<store>.marks.json`` (schema 2, see :mod:`hmr.core.schema.marks`): marks keyed by the
sample's identity (its raw record's ``source_key``), each with the row it had when marked, so
they survive a re-conversion of the same source in another order::

    {"format": "hmrkit-review-marks", "schema": 2, "version": 7, "identity": "source_key",
     "dataset": "3dpw", "split": "test", "num_samples": 35515, "source_keys_sha256": "...",
     "marks": {"ann:1204": {"row": 1204, "source_key": "ann:1204", "reason": "flipped left/right",
                            "excluded": true, "time": "..."}}}

``version`` counts the writes. A writer takes an exclusive ``flock`` on
``<store>.marks.json.lock``, re-reads the file, refuses when the version it last saw is not
the current one (another tab wrote in between: :class:`MarksConflict`), applies its change and
replaces the file atomically (:func:`hmr.core.utils.atomic.atomic_write_text`). Readers never
see half a file. Marks whose sample is not in the store (it was dropped by a re-conversion)
are kept in the file and reported until they are forgotten explicitly. The reader and the
file's format live in :mod:`hmr.core.schema.marks`, shared with ``hmr shard`` and evaluation
(which cannot import this package), and free of torch.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from hmr.core.errors import HmrError
from hmr.core.schema.marks import (MARKS_FORMAT, MARKS_SCHEMA, ResolvedMarks, marks_path, read_marks,
                                   resolve_marks, source_keys_digest, store_identities,
                                   store_source_keys)
from hmr.core.schema.store import open_store
from hmr.core.utils.atomic import atomic_write_text

__all__ = ["MarksConflict", "marks_path", "read_marks", "resolve_marks", "update_marks", "format_marks",
           "marks_view"]


class MarksConflict(HmrError):
    """The marks changed since the caller read them (another tab or process wrote)."""


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def update_marks(store_path: str | os.PathLike, *, set_marks: Mapping[int, str] | None = None,
                 clear: list[int] | None = None, forget: list[str] | None = None,
                 expected_version: int | None = None, store=None) -> ResolvedMarks:
    """Add (``set_marks``: current row -> reason) and remove (``clear``: rows) marks, and drop
    marks whose sample is not in the store (``forget``: their identities), in one atomic write.

    ``expected_version``: the version the caller last read; a different current version raises
    :class:`MarksConflict` (None: no check, for scripts). Returns the marks as now resolved.
    """
    store = store if store is not None else open_store(store_path)
    path = marks_path(store_path)
    n = len(store)
    with _locked(path):
        current = resolve_marks(store_path, store)
        if expected_version is not None and current.version != int(expected_version):
            raise MarksConflict(f"marks changed (version {current.version}, you had {expected_version}): "
                                "reload and try again", path=path)
        wanted = {int(r): str(reason) for r, reason in (set_marks or {}).items()}
        bad = [r for r in list(wanted) + [int(r) for r in clear or []] if not 0 <= r < n]
        if bad:
            raise HmrError(f"row {bad[0]} is not a sample of the store ({n} samples)", path=store_path)
        rows = dict(current.rows)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for row, reason in wanted.items():
            rows[row] = {"reason": reason, "excluded": True, "time": now}
        for row in clear or []:
            rows.pop(int(row), None)
        gone = set(forget or [])
        ids, keys = store_identities(store), store_source_keys(store)  # read once per open store
        missing = [m for m in current.missing if m["identity"] not in gone]
        marks = {str(m["identity"]): {k: v for k, v in m.items() if k != "identity"} for m in missing}
        placed = {}
        for row in sorted(rows):
            mark = {k: v for k, v in rows[row].items() if k not in ("identity", "row", "source_key")}
            marks[str(ids[row])] = {"row": row, "source_key": str(keys[row]), **mark}
            placed[row] = {**marks[str(ids[row])], "identity": str(ids[row])}
        new = {"format": MARKS_FORMAT, "schema": MARKS_SCHEMA, "version": current.version + 1,
               "identity": "source_key", "dataset": store.dataset, "split": store.split, "num_samples": n,
               "source_keys_sha256": source_keys_digest(store), "marks": marks}
        atomic_write_text(path, json.dumps(new, indent=1) + "\n")
    return ResolvedMarks(path, new["version"], placed, missing, new)


def marks_view(resolved: ResolvedMarks) -> dict[str, Any]:
    """The marks as the page and the API show them: keyed by the store's current rows, with
    the marks whose sample is not in the store listed apart."""
    return {"format": MARKS_FORMAT, "schema": MARKS_SCHEMA, "file": str(resolved.file), "version": resolved.version,
            "marks": {str(r): m for r, m in sorted(resolved.rows.items())}, "missing": resolved.missing}


def format_marks(store_path: str | os.PathLike) -> str:
    """The marks of a store as text lines (``hmr review --list-marks``), those whose sample is
    not in the store (any more) last."""
    resolved = resolve_marks(store_path)
    lines = [f"{resolved.file}: version {resolved.version}, {len(resolved.rows)} marked"
             + (f", {len(resolved.missing)} not found in the store" if resolved.missing else "")]
    for row, m in sorted(resolved.rows.items()):
        lines.append(f"  {row:>9}  {m.get('source_key', '')!s:<30}  {m.get('reason', '')}")
    for m in resolved.missing:
        lines.append(f"  {'missing':>9}  {m.get('source_key', '')!s:<30}  {m.get('reason', '')}"
                     f"  (was row {m.get('row')}: not in the store any more)")
    return "\n".join(lines)
