"""Reading the curation marks ``hmr review`` keeps beside a store (``<store>.marks.json``).

The reader lives in the core so that every layer that honours the marks can use it without
importing the others: ``hmr shard`` (:mod:`loaders.shard`), evaluation's ``--exclude-marked``
and the review page itself (:mod:`hmr.review.marks`, which also writes them). Importing this
module costs no torch, which keeps ``hmr review``'s start fast. The file::

    {"format": "hmrkit-review-marks", "schema": 1, "version": 7, "num_samples": 35515,
     "marks": {"1204": {"reason": "flipped left/right", "excluded": true, ...}}}

Nothing in the store is modified by marks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hmr.core.errors import HmrError

__all__ = ["MARKS_SUFFIX", "MARKS_FORMAT", "MARKS_SCHEMA", "marks_path", "read_marks", "marked_excluded"]

MARKS_SUFFIX = ".marks.json"
MARKS_FORMAT = "hmrkit-review-marks"
MARKS_SCHEMA = 1


def marks_path(store_path: str | os.PathLike) -> Path:
    """Where ``hmr review`` keeps a store's curation marks: ``<store>.marks.json`` beside it."""
    p = Path(store_path)
    return p.with_name(p.name.rstrip("/") + MARKS_SUFFIX)


def read_marks(store_path: str | os.PathLike, store=None) -> dict[str, Any]:
    """The marks file of a store as a dict (an empty one when there is none), checked: its
    format, schema and that it was made for a store of this many samples (a reconverted
    store renumbers its rows, and marks would then exclude the wrong people)."""
    path = marks_path(store_path)
    if not path.exists():
        return {"format": MARKS_FORMAT, "schema": MARKS_SCHEMA, "version": 0, "marks": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise HmrError(f"marks file is not JSON ({type(exc).__name__})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != MARKS_FORMAT or not isinstance(data.get("marks"), dict):
        raise HmrError(f"not a {MARKS_FORMAT} file", path=path)
    if data.get("schema") != MARKS_SCHEMA:
        raise HmrError(f"marks schema {data.get('schema')!r}, this version reads {MARKS_SCHEMA}", path=path)
    if store is not None and data.get("num_samples") not in (None, len(store)):
        raise HmrError(f"marks were made for a store of {data.get('num_samples')} samples, this one has "
                       f"{len(store)}: remove or redo them", path=path)
    for key, mark in data["marks"].items():
        if not key.isdigit() or not isinstance(mark, dict):
            raise HmrError("a mark is not 'row': {reason, ...}", path=path, record=key)
    return data


def marked_excluded(store_path: str | os.PathLike, store=None) -> dict[int, str]:
    """Store rows marked as excluded -> their reason (``{}`` without a marks file)."""
    marks = read_marks(store_path, store)["marks"]
    return {int(k): str(m.get("reason", "")) for k, m in marks.items() if m.get("excluded", True)}
