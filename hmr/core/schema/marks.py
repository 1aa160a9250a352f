"""Reading the curation marks ``hmr review`` keeps beside a store (``<store>.marks.json``).

The reader lives in the core so that every layer that honours the marks can use it without
importing the others: ``hmr shard`` (:mod:`loaders.shard`), evaluation's ``--exclude-marked``
and the review page itself (:mod:`hmr.review.marks`, which also writes them). Importing this
module costs no torch, which keeps ``hmr review``'s start fast. The file (schema 2)::

    {"format": "hmrkit-review-marks", "schema": 2, "version": 7, "identity": "source_key",
     "dataset": "3dpw", "split": "test", "num_samples": 35515, "source_keys_sha256": "...",
     "marks": {"courtyard_arguing_00:frame=120:person=1":
               {"row": 1204, "source_key": "courtyard_arguing_00:frame=120:person=1",
                "reason": "flipped left/right", "excluded": true, "time": "..."}}}

Marks are keyed by the sample's **identity**, not its row: the ``source_key`` of its raw
record (:func:`sample_identities`), which a converter writes the same way every time it
converts the same source. A store converted again, in another order or with samples added or
dropped, keeps its marks: :func:`resolve_marks` finds each marked sample's current row, and a
mark whose sample is no longer in the store is reported (``missing``), not dropped. ``row`` is
where the sample was when it was marked (a hint, and the fast path: when the store's
``source_key`` column is the one the marks were written against, ``source_keys_sha256``, the
rows are used as they are).

Schema 1 files (keyed by row, the source key inside each mark) are still read: a mark whose
row still holds its source key stays there, the others are looked up by source key. The next
write saves schema 2. Nothing in the store is modified by marks.
"""

from __future__ import annotations

import json
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hmr.core.errors import HmrError

__all__ = ["MARKS_SUFFIX", "MARKS_FORMAT", "MARKS_SCHEMA", "ResolvedMarks", "marks_path", "read_marks",
           "resolve_marks", "marked_excluded", "sample_identities", "store_identities", "store_source_keys",
           "source_keys_digest", "read_rows"]

MARKS_SUFFIX = ".marks.json"
MARKS_FORMAT = "hmrkit-review-marks"
MARKS_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
ROW_IDENTITY = "row:"  # samples without a source key are named by their row (valid for one conversion)

# per open store (a store is not rewritten under an open reader): its keys and identities, its digest
_identities: "weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray]]" = weakref.WeakKeyDictionary()
_digests: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def marks_path(store_path: str | os.PathLike) -> Path:
    """Where ``hmr review`` keeps a store's curation marks: ``<store>.marks.json`` beside it."""
    p = Path(store_path)
    return p.with_name(p.name.rstrip("/") + MARKS_SUFFIX)


def sample_identities(source_keys: Sequence[str]) -> np.ndarray:
    """(N,) identity of each row from the store's ``source_key`` column: the key itself; for the
    k-th repeat of a key (k >= 1, in row order) ``key#k``; ``row:<n>`` for an empty key."""
    keys = np.asarray(source_keys, dtype=object).tolist()
    distinct = set(keys)
    if len(distinct) == len(keys) and "" not in distinct:  # the usual store: every key once
        out = np.empty(len(keys), dtype=object)
        out[:] = keys
        return out
    keys = [str(k) for k in keys]
    seen: dict[str, int] = {}
    ids = []
    for r, key in enumerate(keys):
        if not key:
            ids.append(f"{ROW_IDENTITY}{r}")
            continue
        k = seen.get(key, 0)
        seen[key] = k + 1
        ids.append(f"{key}#{k}" if k else key)
    out = np.empty(len(ids), dtype=object)
    out[:] = ids
    return out


def store_identities(store) -> np.ndarray:
    """:func:`sample_identities` of a store, read once per open store (cached with it)."""
    return _keys_and_identities(store)[1]


def store_source_keys(store) -> np.ndarray:
    """The store's ``source_key`` column, read once per open store (cached with it)."""
    return _keys_and_identities(store)[0]


def _keys_and_identities(store) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _identities[store]
    except (KeyError, TypeError):
        pass
    keys = store.read("source_key")
    both = (keys, sample_identities(keys))
    try:
        _identities[store] = both
    except TypeError:  # not weak-referenceable: computed again next time
        pass
    return both


def source_keys_digest(store) -> str:
    """SHA-256 of the files of the store's ``source_key`` column (of the whole file for a
    single-file store): equal digests mean every row holds the same sample. About 10 MB for a
    million samples, so hashing it is cheap next to reading and comparing the keys."""
    import hashlib

    try:
        return _digests[store]
    except (KeyError, TypeError):
        pass
    root = Path(store.path)
    folder = root / "source_key"
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [root]
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() if p != root else b"store")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    try:
        _digests[store] = h.hexdigest()
    except TypeError:
        pass
    return h.hexdigest()


def read_rows(store, name: str, rows: Sequence[int]) -> np.ndarray:
    """``store.read(name)[rows]`` reading each chunk the rows fall in once (not the whole column)."""
    rows_arr = np.asarray(rows, dtype=np.int64)
    if not len(rows_arr):
        return store.read(name, 0, 0)
    step = store.block_rows()
    out = None
    for c in np.unique(rows_arr // step):
        block = store.read(name, int(c) * step, (int(c) + 1) * step)
        sel = np.flatnonzero(rows_arr // step == c)
        if out is None:
            out = np.empty((len(rows_arr), *block.shape[1:]), dtype=block.dtype)
        out[sel] = block[rows_arr[sel] - int(c) * step]
    return out


def read_marks(store_path: str | os.PathLike, store=None) -> dict[str, Any]:
    """The marks file of a store as a schema-2 document (an empty one when there is none),
    checked: its format and schema, each mark's fields, and that it was made for this dataset
    and split. A schema-1 file is converted in memory (its marks keyed by source key)."""
    path = marks_path(store_path)
    if not path.exists():
        return {"format": MARKS_FORMAT, "schema": MARKS_SCHEMA, "version": 0, "identity": "source_key", "marks": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise HmrError(f"marks file is not JSON ({type(exc).__name__})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != MARKS_FORMAT or not isinstance(data.get("marks"), dict):
        raise HmrError(f"not a {MARKS_FORMAT} file", path=path)
    if data.get("schema") not in READABLE_SCHEMAS:
        raise HmrError(f"marks schema {data.get('schema')!r}, this version reads {list(READABLE_SCHEMAS)}", path=path)
    if store is not None:
        for what, have in (("dataset", store.dataset), ("split", store.split)):
            if data.get(what) not in (None, have):
                raise HmrError(f"marks were made for {what} {data.get(what)!r}, this store is {have!r}", path=path)
    if data["schema"] == 1:
        data = _from_schema_1(data, path)
    for key, mark in data["marks"].items():
        if not isinstance(mark, dict) or not isinstance(mark.get("row", 0), int):
            raise HmrError("a mark is not 'identity': {row, source_key, reason, ...}", path=path, record=key)
    return data


def _from_schema_1(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Schema 1 keyed marks by row; the same marks keyed by identity (their source key)."""
    marks = {}
    for row, mark in data["marks"].items():
        if not row.isdigit() or not isinstance(mark, dict):
            raise HmrError("a mark is not 'row': {reason, ...}", path=path, record=row)
        key = str(mark.get("source_key", "") or "")
        ident, k = key or f"{ROW_IDENTITY}{row}", 1
        while ident in marks:  # two marked rows of one source key: its repeats, in row order
            ident, k = f"{key}#{k}", k + 1
        marks[ident] = {**mark, "row": int(row), "source_key": key}
    return {**data, "schema": MARKS_SCHEMA, "identity": "source_key", "from_schema": 1, "marks": marks}


@dataclass
class ResolvedMarks:
    """The marks of a store placed on its current rows."""

    file: Path
    version: int
    rows: dict[int, dict[str, Any]]  # current store row -> its mark (with "identity")
    missing: list[dict[str, Any]] = field(default_factory=list)  # marks whose sample is not in the store
    document: dict[str, Any] = field(default_factory=dict)


def resolve_marks(store_path: str | os.PathLike, store=None) -> ResolvedMarks:
    """Each mark's current row in the store (opened from ``store_path`` when not given).

    Fast paths: the store's ``source_key`` column is byte for byte the one the marks were
    written against (:func:`source_keys_digest`): the recorded rows stand; or, for a schema-1
    file (no digest), every recorded row still holds its mark's source key (only the chunks
    holding them are read). Otherwise every row's identity is computed (the ``source_key``
    column, read once per open store) and each mark is looked up; the ones not found are
    returned in ``missing``."""
    from hmr.core.schema.store import open_store

    store = store if store is not None else open_store(store_path)
    doc = read_marks(store_path, store)
    marks = doc["marks"]
    out = ResolvedMarks(marks_path(store_path), int(doc.get("version", 0)), {}, [], doc)
    if not marks:
        return out
    n = len(store)
    ident = list(marks)
    rows = np.array([int(marks[i].get("row", -1)) for i in ident], dtype=np.int64)
    found = np.array([bool(marks[i].get("found", True)) for i in ident])
    in_store = (rows >= 0) & (rows < n)
    if doc.get("num_samples") == n and (in_store | ~found).all():
        if doc.get("source_keys_sha256") == source_keys_digest(store):  # the rows' keys are unchanged
            # marks written as not found were looked for in this very column: still missing
            out.rows = {int(r): {**marks[i], "identity": i} for i, r, f in zip(ident, rows.tolist(), found) if f}
            out.missing = [{"identity": i, **marks[i]} for i, f in zip(ident, found) if not f]
            return out
        if doc.get("from_schema") == 1:  # no digest: rows stand where they still hold their keys
            keys = read_rows(store, "source_key", rows)
            if all(str(k) == str(marks[i].get("source_key", "")) for k, i in zip(keys, ident)):
                out.rows = {int(r): {**marks[i], "identity": i} for i, r in zip(ident, rows.tolist())}
                return out
    wanted, position = set(ident), {}
    for r, k in enumerate(store_identities(store).tolist()):  # one pass; no map of every row
        if k in wanted:
            position[k] = r
    for i in ident:
        row = position.get(i)
        if row is None:
            out.missing.append({"identity": i, **marks[i], "found": False})
        else:
            out.rows[row] = {**{k: v for k, v in marks[i].items() if k != "found"}, "identity": i}
    return out


def marked_excluded(store_path: str | os.PathLike, store=None) -> dict[int, str]:
    """Current store rows marked as excluded -> their reason (``{}`` without a marks file).
    Marks whose sample is not in the store are left out here; :func:`resolve_marks` lists them."""
    resolved = resolve_marks(store_path, store)
    return {row: str(m.get("reason", "")) for row, m in sorted(resolved.rows.items()) if m.get("excluded", True)}
