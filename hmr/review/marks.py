"""Curation marks: a small versioned JSON file next to a store, never the store itself.

``<store>.marks.json``::

    {"format": "hmrkit-review-marks", "schema": 1, "version": 7,
     "dataset": "3dpw", "split": "test", "num_samples": 35515,
     "marks": {"1204": {"reason": "flipped left/right", "source_key": "...", "time": "..."}}}

``version`` counts the writes. A writer takes an exclusive ``flock`` on
``<store>.marks.json.lock``, re-reads the file, refuses when the version it last saw is not
the current one (another tab wrote in between: :class:`MarksConflict`), applies its change and
replaces the file atomically (:func:`hmr.core.utils.atomic.atomic_write_text`). Readers never
see half a file. The reader and the file's format live in :mod:`hmr.core.schema.marks`, shared
with ``hmr shard`` and evaluation (which cannot import this package), and free of torch.
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
from hmr.core.utils.atomic import atomic_write_text
from hmr.review.index import rows_of
from hmr.core.schema.marks import MARKS_FORMAT, MARKS_SCHEMA, marks_path, read_marks

__all__ = ["MarksConflict", "marks_path", "read_marks", "update_marks", "format_marks"]


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
                 clear: list[int] | None = None, expected_version: int | None = None,
                 store=None) -> dict[str, Any]:
    """Add (``set_marks``: row -> reason) and remove (``clear``) marks in one atomic write.

    ``expected_version``: the version the caller last read; a different current version raises
    :class:`MarksConflict` (None: no check, for scripts). Returns the new marks document.
    """
    path = marks_path(store_path)
    n = len(store) if store is not None else None
    with _locked(path):
        data = read_marks(store_path, store)
        if expected_version is not None and int(data["version"]) != int(expected_version):
            raise MarksConflict(f"marks changed (version {data['version']}, you had {expected_version}): "
                                "reload and try again", path=path)
        marks = dict(data["marks"])
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        wanted = {int(r): str(reason) for r, reason in (set_marks or {}).items()}
        rows = list(wanted)
        bad = [r for r in rows if r < 0 or (n is not None and r >= n)]
        if bad:
            raise HmrError(f"row {bad[0]} is not a sample of the store ({n} samples)", path=store_path)
        # source keys read once per store chunk (a selection may mark 100,000 rows at once)
        keys = rows_of(store, "source_key", rows) if store is not None else [""] * len(rows)
        for row, key in zip(rows, keys):
            marks[str(row)] = {"reason": wanted[row], "excluded": True, "source_key": str(key), "time": now}
        for row in clear or []:
            marks.pop(str(int(row)), None)
        new = {"format": MARKS_FORMAT, "schema": MARKS_SCHEMA, "version": int(data["version"]) + 1,
               "dataset": store.dataset if store is not None else data.get("dataset"),
               "split": store.split if store is not None else data.get("split"),
               "num_samples": n if n is not None else data.get("num_samples"),
               "marks": dict(sorted(marks.items(), key=lambda kv: int(kv[0])))}
        atomic_write_text(path, json.dumps(new, indent=1) + "\n")
    return new


def format_marks(store_path: str | os.PathLike) -> str:
    """The marks of a store as text lines (``hmr review --list-marks``)."""
    data = read_marks(store_path)
    lines = [f"{marks_path(store_path)}: version {data['version']}, {len(data['marks'])} marked"]
    for row, m in data["marks"].items():
        lines.append(f"  {int(row):>9}  {m.get('source_key', '')!s:<30}  {m.get('reason', '')}")
    return "\n".join(lines)
