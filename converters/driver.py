"""The conversion driver: the converter contract, :func:`run_conversion` (one split of one
dataset -> a schema store + its output manifest + a skip report) and :class:`BadRecord`.

The contract
------------
A converter is one module in :mod:`converters` that declares, at the top::

    SOURCE = SOURCES["coco2017"]         # its identity: name, splits, manifest (hmr.core.sources)
    VERSION = "1"                        # bump when the output changes
    OPTIONS = (Option("min_keypoints", 1, int, "drop persons with fewer labelled keypoints"),)

and one generator::

    def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]

that reads the raw dataset under ``root`` and yields schema-v1 samples (dicts keyed by
:data:`hmr.core.schema.FIELD_NAMES`; absent fields take their defaults; keypoints already in
the superset convention, ``image_path`` relative to ``root``). A record that cannot be
converted is yielded as a :class:`BadRecord` (file + record + reason): the driver stops
on it, or with ``--skip-bad`` skips it and lists it in a report. A file that cannot be read
at all raises :class:`~hmr.core.errors.DatasetFormatError`. ``OPTIONS`` (see
:mod:`converters.options`) declares the ``-o key=value`` options the converter reads with
``get_option``; the driver refuses any other key. Optionally
``raw_files(root, split) -> list[Path]`` lists the files read (for the output manifest).

Shared helpers: :mod:`converters.readers` (files that fail with their name),
:mod:`converters.labels` (intrinsics, rotations, keypoints into the superset),
:mod:`converters.images` (image sizes from headers), :mod:`converters.options`; boxes are
:mod:`hmr.core.boxes`, the pinhole projection :func:`hmr.core.geometry.project_points`.
Families that share a file format share a reader and declare one table row per dataset:
:mod:`converters.coco_format` (``CocoFormat``), :mod:`converters.eft` (``Subset``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from converters import get_converter
from converters.options import ConvertOptions, check_options
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema import FIELD_BY_NAME, SCHEMA_VERSION, StoreWriter, open_store
from hmr.core.schema.merge import DEFAULT_BLOCK_ITEMS, finish_part, part_blocks, part_of_block, part_path
from hmr.core.utils.atomic import atomic_write_text, output_lock, write_error


@dataclass(frozen=True)
class BadRecord:
    """A raw record that cannot be converted: where it is and why."""

    path: str
    record: object
    message: str

    def error(self) -> DatasetFormatError:
        return DatasetFormatError(self.message, path=self.path, record=self.record)


@dataclass
class ConversionResult:
    store: Path
    num_samples: int
    skipped: list[BadRecord]
    skipped_report: Path | None
    output_manifest: Path | None


def output_path(out: str | os.PathLike, name: str, split: str, fmt: str | None) -> Path:
    """``out`` is a store path (``*.zarr``/``*.npz``) or a folder to put ``NAME_SPLIT.zarr`` in."""
    out = Path(out)
    if out.suffix in (".zarr", ".npz"):
        return out
    return out / f"{name}_{split}.{fmt or 'zarr'}"


def _sample_problem(sample: Mapping[str, Any]) -> str | None:
    """Cheap per-sample check so a bad value is reported with its source record."""
    for name, value in sample.items():
        spec = FIELD_BY_NAME.get(name)
        if spec is None or spec.is_string:
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            return f"field '{name}' contains NaN or inf"
        if name in ("keypoints2d", "keypoints3d") and arr.size:
            conf = arr[..., -1]
            if (conf < 0).any() or (conf > 1).any():
                return f"field '{name}' has confidence outside [0, 1]"
    if "image_path" in sample and not sample["image_path"]:
        return "empty image path"
    return None


def run_conversion(name: str, root: str | os.PathLike, out: str | os.PathLike, *, split: str,
                   fmt: str | None = None, skip_bad: bool = False, overwrite: bool = False,
                   options: ConvertOptions | None = None, argv: list[str] | None = None,
                   progress: bool = True, part: tuple[int, int] | None = None,
                   part_block_items: int = DEFAULT_BLOCK_ITEMS) -> ConversionResult:
    """Convert one split of one dataset into a schema store (+ output manifest).

    ``part=(I, N)`` keeps only part I of N of the records (blocks of ``part_block_items``
    records, round-robin; :mod:`hmr.core.schema.merge`) in ``NAME_SPLIT.part-I-of-N.zarr``,
    for ``hmr store merge``."""
    module = get_converter(name)
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetFormatError("raw dataset folder does not exist", path=root)
    splits = module.SOURCE.splits
    if splits and split not in splits:
        raise HmrError(f"converter '{module.SOURCE.name}' has splits {', '.join(splits)}, not '{split}'")
    options = options or ConvertOptions()
    check_options(getattr(module, "OPTIONS", ()), options.extra, module.SOURCE.name)
    _check_manifest_exists(module)
    store_path = output_path(out, module.SOURCE.name, split, fmt)
    if part is not None:
        store_path = part_path(store_path, *part)
    report_path = store_path.with_name(store_path.name + ".skipped.json")
    # One writer per output: a second run to the same --out refuses (naming the lock) instead
    # of deleting this one's partial folder; the lock covers the manifest written after.
    with output_lock(store_path):
        overwrite = overwrite or _interrupted_store(store_path, module)
        skipped: list[BadRecord] = []
        with StoreWriter(store_path, dataset=module.SOURCE.name, split=split, converter=module.__name__,
                         converter_version=str(module.VERSION), image_root=str(root),
                         overwrite=overwrite, on_bad_row=_bad_row_handler(root, skip_bad, skipped)) as writer:
            items = _progress(module.iter_samples(root, split, options), progress, module.SOURCE.name, split)
            if part is not None:
                kept = _PartItems(items, writer, skipped, *part, part_block_items)
                items = kept
            _write_samples(writer, items, skip_bad, skipped, root)
            if part is not None:
                kept.record(options, skip_bad)
            writer.finish()  # the last rows are validated here: still under the partial name
            if writer.num_samples == 0 and not (part is not None and kept.num_items):
                if skipped:
                    _write_report(report_path, skipped)
                raise DatasetFormatError(f"no samples found for split '{split}'"
                                         + (f" ({len(skipped)} skipped, see {report_path})" if skipped else ""),
                                         path=root)
            # The old store's manifest would describe the wrong store: gone before the rename
            # (a run killed from here on leaves a store without a manifest, which a rerun redoes).
            _output_manifest_of(store_path).unlink(missing_ok=True)
        if skipped:
            _write_report(report_path, skipped)
        else:
            report_path.unlink(missing_ok=True)
        try:
            manifest_path = _write_output_manifest(module, root, store_path, split, writer.num_samples, argv)
        except OSError as exc:
            raise write_error(exc, _output_manifest_of(store_path), "cannot write the output manifest",
                              "the store is complete but has no manifest; rerun the same command "
                              "once there is space (it redoes the store)") from exc
    return ConversionResult(store_path, writer.num_samples, skipped, report_path if skipped else None,
                            manifest_path)


def _output_manifest_of(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".manifest.json")


def _interrupted_store(store_path: Path, module: ModuleType) -> bool:
    """A store of this converter without its output manifest: a run killed between the
    store's rename and the manifest's write. A rerun redoes it (no --overwrite needed)."""
    if not store_path.exists() or _output_manifest_of(store_path).exists():
        return False
    try:
        converter = open_store(store_path).attrs.get("converter")
    except (HmrError, OSError):
        return False
    if converter != module.__name__:
        return False
    print(f"{store_path}: has no output manifest (an earlier run was interrupted before writing it): "
          "converting again", file=sys.stderr)
    return True


def _bad_row_handler(root: Path, skip_bad: bool, skipped: list[BadRecord]):
    """What the store writer does with a row the schema refuses when its block is written:
    name its raw record (``source_key``), then skip it (``--skip-bad``) or stop."""
    def handle(row: Mapping[str, Any], exc: Exception) -> None:
        why = exc.message if isinstance(exc, HmrError) else f"{type(exc).__name__}: {exc}"
        bad = _bad_sample(row, root, f"sample does not fit schema v1: {why}")
        if not skip_bad:
            raise bad.error()
        skipped.append(bad)
    return handle


def _write_samples(writer: StoreWriter, items: Iterable[dict | BadRecord], skip_bad: bool,
                   skipped: list[BadRecord], root: Path) -> None:
    """Add the samples to ``writer``; bad records go to ``skipped`` (without ``skip_bad``
    the first one raises). Rows the schema refuses at a block flush reach ``skipped``
    through the writer's ``on_bad_row``."""
    for item in items:
        if not isinstance(item, BadRecord):
            problem = _sample_problem(item)
            if problem is not None:
                item = _bad_sample(item, root, problem)
        if isinstance(item, BadRecord):
            if not skip_bad:
                raise item.error()
            skipped.append(item)
            continue
        writer.add(item)


def _bad_sample(sample: Mapping[str, Any], root: Path, message: str) -> BadRecord:
    """A converted sample that cannot be stored, named by its raw record (``source_key``:
    file and record, e.g. ``person_keypoints_val2017.json:ann=7``), not by its output row."""
    key = str(sample.get("source_key", "") or "")
    return BadRecord(key or str(root), None if key else "sample without source_key", message)


def _write_report(path: Path, skipped: list[BadRecord]) -> None:
    atomic_write_text(path, json.dumps([asdict(b) for b in skipped], indent=1, default=str))


def _check_manifest_exists(module: ModuleType) -> None:
    """Fail before converting when the converter names a source manifest we do not have
    (the output manifest records its digest, so it must exist)."""
    name = module.SOURCE.manifest
    if not name:
        return
    try:
        from manifests import manifest_location
    except ImportError:
        return
    try:
        manifest_location(name)
    except FileNotFoundError as exc:
        raise HmrError(f"converter '{module.SOURCE.name}' reads manifest '{name}', which is missing: {exc}") from None


def _progress(items: Iterable[Any], enabled: bool, name: str, split: str) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"convert {name}/{split}", unit=" samples", disable=not enabled,
                file=sys.stderr, mininterval=0.5)


def _write_output_manifest(module: ModuleType, root: Path, store: Path, split: str, count: int,
                           argv: list[str] | None) -> Path | None:
    try:
        from manifests import write_output_manifest
    except ImportError:  # manifests package not installed: the store is still complete
        return None
    raw = list(module.raw_files(root, split)) if hasattr(module, "raw_files") else []
    return write_output_manifest(
        store, converter=module.__name__, converter_version=str(module.VERSION),
        schema_version=SCHEMA_VERSION, source_manifest=module.SOURCE.manifest,
        raw_files=[_relative_to_root(Path(p), root) for p in raw],
        raw_root=root, counts={split: count}, argv=argv if argv is not None else sys.argv)


def _relative_to_root(path: Path, root: Path) -> Path:
    """``path`` relative to the (resolved) ``root``; resolving only paths that are not plainly
    under it (resolve() stats every component: seconds for 12,000 image paths)."""
    if not path.is_absolute():
        return path
    if ".." not in path.parts and path.is_relative_to(root):
        return path.relative_to(root)
    return path.resolve().relative_to(root)


class _PartItems:
    """The records of one part (``hmr convert --part I/N``): every record is read, those of
    the part's blocks are passed on. At each block's end the writer is flushed, so the rows
    it kept from the block (after the schema's refusals) are counted exactly."""

    def __init__(self, items: Iterable[Any], writer: StoreWriter, skipped: list[BadRecord], index: int,
                 count: int, block_items: int):
        self.items, self.writer, self.skipped = items, writer, skipped
        self.index, self.count, self.block_items = index, count, int(block_items)
        self.num_items = 0
        self.block_rows: dict[int, int] = {}
        self.block_skipped: dict[int, int] = {}

    def __iter__(self):
        current, start = None, (0, 0)
        for i, item in enumerate(self.items):
            self.num_items = i + 1
            block = i // self.block_items
            if block != current and current is not None:
                self._close(current, start)
            if block != current and part_of_block(block, self.count) == self.index:
                current, start = block, (self.writer.num_samples, len(self.skipped))
            elif block != current:
                current = None
            if current is not None:
                yield item
        if current is not None:
            self._close(current, start)

    def _close(self, block: int, start: tuple[int, int]) -> None:
        self.writer.flush()
        self.block_rows[block] = self.writer.num_samples - start[0]
        self.block_skipped[block] = len(self.skipped) - start[1]

    def record(self, options: ConvertOptions, skip_bad: bool) -> None:
        """Describe the part in the store's attributes (before ``finish`` marks it complete)."""
        blocks = part_blocks(self.index, self.count, self.num_items, self.block_items)
        info = {"index": self.index, "count": self.count, "block_items": self.block_items,
                "num_items": self.num_items, "block_rows": [self.block_rows.get(b, 0) for b in blocks],
                "block_skipped": [self.block_skipped.get(b, 0) for b in blocks],
                "options": {"extra": {str(k): str(v) for k, v in sorted(options.extra.items())},
                            "check_images": bool(options.check_images),
                            "body_model": options.body_model, "skip_bad": bool(skip_bad)}}
        finish_part(self.writer, info)


def merge_parts(parts: list[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False,
                argv: list[str] | None = None) -> tuple[Path, Path | None]:
    """``hmr store merge``: join the part stores of one conversion into ``out`` (the store a
    single process would have written) and give it one output manifest, made from the parts'
    (same converter, source manifest and raw files; counts summed). A part without its output
    manifest is refused: its run was interrupted before finishing."""
    from hmr.core.schema.merge import check_parts, merge_stores

    stores = check_parts(parts)
    try:
        from manifests import check_store_files
        from manifests.output import hash_store, output_manifest_path, read_output_manifest
        from manifests.hashing import tree_digest
    except ImportError:  # manifests package not installed: the merged store is still complete
        return merge_stores(parts, out, overwrite=overwrite), None
    docs = []
    for store in stores:
        path = output_manifest_path(store.path)
        if not path.exists():
            raise HmrError(f"{store.path}: part has no output manifest (its conversion was interrupted "
                           "before finishing): convert this part again")
        docs.append(read_output_manifest(path))
        check_store_files(store.path)  # a chunk changed since the part was written

    def origin(doc: dict) -> dict:
        return {"converter": doc.get("converter"), "schema version": doc.get("schema_version"),
                "source manifest": (doc.get("source_manifest") or {}).get("sha256"),
                "raw files": (doc.get("raw") or {}).get("digest")}

    for store, doc in zip(stores[1:], docs[1:]):
        differ = [k for k, v in origin(doc).items() if v != origin(docs[0])[k]]
        if differ:
            raise HmrError(f"{store.path}: its output manifest records other {', '.join(differ)} than "
                           f"{stores[0].path.name}'s: parts of different conversions")
    skipped = _merged_report(stores)
    out = Path(out)
    with output_lock(out):
        # the old store's manifest goes once the new store is complete, before the rename
        merge_stores(parts, out, overwrite=overwrite,
                     before_rename=lambda: _output_manifest_of(out).unlink(missing_ok=True))
        files = hash_store(out)
        split = stores[0].split
        doc = {**docs[0], "store": out.name, "store_kind": "file" if out.is_file() else "dir",
               "files": files, "store_sha256": tree_digest((f["path"], f["size"], f["sha256"]) for f in files),
               "counts": {split: sum(int(d.get("counts", {}).get(split, 0)) for d in docs)},
               "argv": list(sys.argv if argv is None else argv),
               "parts": [{"store": s.path.name, "store_sha256": d.get("store_sha256"), "argv": d.get("argv")}
                         for s, d in zip(stores, docs)]}
        manifest = _output_manifest_of(out)
        atomic_write_text(manifest, json.dumps(doc, indent=1) + "\n")
        report = out.with_name(out.name + ".skipped.json")
        if skipped:
            atomic_write_text(report, json.dumps(skipped, indent=1, default=str))
        else:
            report.unlink(missing_ok=True)
    return out, manifest


def _merged_report(stores: list) -> list[dict]:
    """The parts' ``.skipped.json`` entries in record order: block by block, as the merge
    takes the rows (each part recorded how many records of each of its blocks it skipped)."""
    from hmr.core.schema.merge import PART_ATTR, part_of_block

    lists = []
    for store in stores:
        info = store.attrs[PART_ATTR]
        counts = [int(c) for c in info.get("block_skipped", [0] * len(info["block_rows"]))]
        path = store.path.with_name(store.path.name + ".skipped.json")
        try:
            entries = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        except (OSError, ValueError) as exc:
            raise HmrError(f"cannot read the part's skip report ({type(exc).__name__}: {exc})", path=path) from None
        if not isinstance(entries, list) or len(entries) != sum(counts):
            raise HmrError(f"skip report lists {len(entries) if isinstance(entries, list) else 'no'} records, "
                           f"the part skipped {sum(counts)}: convert this part again", path=path)
        lists.append((entries, counts))
    count = len(stores)
    info = stores[0].attrs[PART_ATTR]
    taken = [[0, 0] for _ in stores]  # per part: blocks done, entries done
    merged: list[dict] = []
    for block in range(-(-int(info["num_items"]) // int(info["block_items"]))):
        p = part_of_block(block, count)
        entries, counts = lists[p]
        n = counts[taken[p][0]]
        merged += entries[taken[p][1]:taken[p][1] + n]
        taken[p][0] += 1
        taken[p][1] += n
    return merged
