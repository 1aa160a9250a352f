"""Conversion in parts: which records a part holds, and joining the parts into one store.

``hmr convert NAME --part I/N`` (N copies of a command, e.g. a Slurm array) each write one
part store; ``hmr store merge PARTS... --out STORE`` joins them into the store a single
process would have written (docs/scale-out.md).

The unit
--------
The records a converter yields (samples and bad records alike, in the converter's order)
are cut into consecutive *blocks* of ``block_items`` records; block ``b`` belongs to part
``b % N`` (:func:`part_of_block`). A part cannot know how many records the source has before
it has read them all, so contiguous ranges (part I = the I-th N-th) are not possible in one
pass; round-robin blocks need no count and keep the parts balanced. Each part store records,
in its ``part`` attribute, the number of rows it kept from each of its blocks (a record
refused with ``--skip-bad`` keeps no row), and the total number of records it saw. The
merge then takes, for b = 0, 1, ..., the next ``block_rows`` rows of part ``b % N``: the
single-process order, whatever was skipped.

What the merge refuses (each error names the part store): a store that is not a part, an
incomplete part, parts of different sources, splits, converter versions, options, part
counts or block sizes, a part given twice, a part missing, and parts that saw a different
number of records (a converter whose order is not stable across runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import SchemaError
from hmr.core.schema.store import DEFAULT_CHUNK_ROWS, SampleStore, StoreWriter, open_store

PART_ATTR = "part"
MERGED_ATTR = "merged_from"
DEFAULT_BLOCK_ITEMS = 256
#: store attributes every part must share (besides the part's own description)
SAME_ATTRS = ("schema_version", "dataset", "split", "converter", "converter_version", "image_root",
              "keypoint_convention", "num_keypoints", "superset_digest")
#: keys of the ``part`` attribute every part must share
SAME_PART_KEYS = ("count", "block_items", "options", "num_items")


def parse_part(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), with 0 <= I < N."""
    index, sep, count = str(text).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise SchemaError(f"--part {text!r}: expected I/N with 0 <= I < N (e.g. 3/8)")
    return i, n


def part_of_block(block: int, count: int) -> int:
    return block % count


def part_path(path: str | os.PathLike, index: int, count: int) -> Path:
    """``out/coco2017_val.zarr`` -> ``out/coco2017_val.part-3-of-8.zarr``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.part-{index}-of-{count}{p.suffix}")


def part_blocks(index: int, count: int, num_items: int, block_items: int) -> range:
    """The blocks of part ``index`` among the ``num_items`` records of a source."""
    num_blocks = -(-num_items // block_items)
    return range(index, num_blocks, count)


def finish_part(writer: StoreWriter, info: Mapping[str, Any]) -> None:
    """Write a part's description into its store (before ``writer.finish()``). A part that
    kept no rows (fewer blocks than parts, or every record refused) still gets every field,
    with zero rows, so it opens like any store."""
    if writer.num_samples == 0:
        writer.flush()
    if writer.num_samples == 0 and not writer._arrays:
        writer._guarded(writer._write_block, writer._fill_defaults({}, 0))
    writer._group.attrs[PART_ATTR] = dict(info)  # written before the store is marked complete


class _Rows:
    """Reads one store front to back, ``take(k)`` rows at a time, one chunk-sized read per field."""

    def __init__(self, store: SampleStore):
        self.store = store
        self.blocks = store.blocks() if len(store) else iter(())
        self.buffer: dict[str, np.ndarray] | None = None
        self.pos = 0

    def take(self, k: int) -> Iterator[dict[str, np.ndarray]]:
        while k > 0:
            if self.buffer is None or self.pos >= len(self.buffer["image_path"]):
                try:
                    self.buffer = next(self.blocks)[1]
                except StopIteration:
                    raise SchemaError("has fewer rows than its part attribute lists",
                                      path=self.store.path) from None
                self.pos = 0
            n = min(k, len(self.buffer["image_path"]) - self.pos)
            yield {name: values[self.pos:self.pos + n] for name, values in self.buffer.items()}
            self.pos += n
            k -= n


def _describe(store: SampleStore) -> dict[str, Any]:
    info = store.attrs.get(PART_ATTR)
    if not isinstance(info, Mapping) or not {"index", "count", "block_items", "num_items",
                                             "block_rows"} <= set(info):
        raise SchemaError("is not a part store (no 'part' attribute: written by "
                          "'hmr convert --part I/N')", path=store.path)
    expected = len(part_blocks(int(info["index"]), int(info["count"]), int(info["num_items"]),
                               int(info["block_items"])))
    rows = [int(r) for r in info["block_rows"]]
    if len(rows) != expected or sum(rows) != len(store):
        raise SchemaError(f"part attribute lists {len(rows)} blocks / {sum(rows)} rows, expected "
                          f"{expected} blocks / {len(store)} rows: the part is damaged", path=store.path)
    return dict(info)


def check_parts(paths: Sequence[str | os.PathLike]) -> list[SampleStore]:
    """Open the part stores and check they make one whole; returns them ordered by index."""
    if not paths:
        raise SchemaError("no part stores given")
    stores = [open_store(p) for p in paths]  # an incomplete part is refused here, by name
    infos = [_describe(s) for s in stores]
    first, info0 = stores[0], infos[0]
    for store, info in zip(stores[1:], infos[1:]):
        for key in SAME_ATTRS:
            if store.attrs.get(key) != first.attrs.get(key):
                raise SchemaError(f"{key} is {store.attrs.get(key)!r} but {first.path.name} has "
                                  f"{first.attrs.get(key)!r}: parts of different conversions",
                                  path=store.path)
        for key in SAME_PART_KEYS:
            if info.get(key) != info0.get(key):
                what = "saw a different number of records than" if key == "num_items" else f"has part {key} unlike"
                raise SchemaError(f"{what} {first.path.name} ({info.get(key)!r} vs {info0.get(key)!r})",
                                  path=store.path)
    count = int(info0["count"])
    by_index: dict[int, SampleStore] = {}
    for store, info in zip(stores, infos):
        index = int(info["index"])
        if index in by_index:
            raise SchemaError(f"part {index}/{count} is given twice (also {by_index[index].path})",
                              path=store.path)
        by_index[index] = store
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise SchemaError(f"parts {', '.join(f'{i}/{count}' for i in missing)} are missing "
                          f"(have {len(by_index)} of {count})")
    filled = [s for s in by_index.values() if len(s)]
    for store in filled[1:]:
        if set(store.fields) != set(filled[0].fields):
            raise SchemaError(f"has fields {sorted(set(store.fields) ^ set(filled[0].fields))} "
                              f"unlike {filled[0].path.name}", path=store.path)
    if not filled:
        raise SchemaError("the parts hold no samples at all")
    return [by_index[i] for i in range(count)]


def merge_stores(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 overwrite: bool = False, chunk_rows: int | None = None,
                 before_rename: Callable[[], None] | None = None) -> Path:
    """Join part stores into ``out`` (zarr or npz, by suffix) in single-process order.

    The merged store has the parts' attributes without ``part`` (and with a new
    ``created``), plus ``merged_from``: the part store names. ``before_rename`` is called
    once the merged store is complete under its temporary name, before it replaces ``out``."""
    stores = check_parts(paths)
    count = len(stores)
    info = stores[0].attrs[PART_ATTR]
    attrs = {k: v for k, v in stores[0].attrs.items()
             if k not in ("complete", "num_samples", "created", PART_ATTR, "num_keypoints", "schema_version")}
    core = {k: attrs.pop(k) for k in ("dataset", "split", "converter", "converter_version",
                                      "image_root", "keypoint_convention")}
    attrs[MERGED_ATTR] = [s.path.name for s in stores]
    fields = next(s.fields for s in stores if len(s))
    chunk = chunk_rows or next(s.block_rows() if s.format == "zarr" else DEFAULT_CHUNK_ROWS
                               for s in stores if len(s))
    readers = [_Rows(s) for s in stores]
    rows_left = [list(map(int, s.attrs[PART_ATTR]["block_rows"])) for s in stores]
    num_blocks = -(-int(info["num_items"]) // int(info["block_items"]))
    with StoreWriter(out, overwrite=overwrite, chunk_rows=chunk, attrs=attrs, **core) as writer:
        pending: list[dict[str, np.ndarray]] = []
        held = 0
        for block in range(num_blocks):
            p = part_of_block(block, count)
            for piece in readers[p].take(rows_left[p].pop(0)):
                pending.append(piece)
                held += len(piece["image_path"])
            if held >= chunk:  # whole chunks only, so the output chunks are written once each
                cols = {f: np.concatenate([x[f] for x in pending]) for f in fields}
                whole = held - held % chunk
                writer.add_columns({f: v[:whole] for f, v in cols.items()})
                pending = [{f: v[whole:] for f, v in cols.items()}]
                held -= whole
        if held:
            writer.add_columns({f: np.concatenate([x[f] for x in pending]) for f in fields})
        writer.finish()
        if before_rename is not None:
            before_rename()
    return Path(out)
