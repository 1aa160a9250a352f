"""Where every dataset stands on this machine: what ``hmr datasets`` prints.

One row per source of :data:`hmr.core.sources.SOURCES`, those without a converter yet
included (marked so):

- **manifest**: its source manifest (``Source.manifest``) is known to :mod:`manifests`;
- **raw**: the raw folder ``DATA_ROOT/<default_root>`` (the source's ``default_root``,
  else its manifest name, else its name) exists and holds the annotation files the
  converter reads (``raw_files``) for at least one split (without a converter: exists);
- **verified**: the last ``hmr datasets --verify`` (or :func:`verify_and_record`) result,
  kept in ``<raw folder>/.hmr/verify-<manifest>.json`` (the ``.hmr`` folder is ignored by
  ``hmr verify``); a record made against another version of the manifest reads "stale";
- **converted**: splits with a complete store ``STORES/<name>_<split>.zarr|.npz`` (stores
  written under an older spelling of the name, ``eft-coco_val.zarr``, count too)
  (``STORES`` = ``--stores``, ``$HMR_STORES``, or ``DATA_ROOT/stores``); a store that
  exists but does not open as complete is listed as incomplete.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from hmr.core.errors import HmrError
from hmr.core.sources import SOURCES, Source
from hmr.core.utils.atomic import atomic_write_text

DATA_ENV = "HMR_DATA"
STORES_ENV = "HMR_STORES"
RECORD_DIR = ".hmr"


@dataclass
class DatasetStatus:
    name: str
    description: str
    splits: list[str]
    manifest: str | None
    manifest_present: bool
    raw_root: str | None
    raw_found: bool
    raw_splits: list[str] = field(default_factory=list)
    verified: str = "-"  # ok | failed | stale | not run | - (no raw folder / no manifest)
    converted: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    has_converter: bool = True


def data_root(value: str | os.PathLike | None = None) -> Path | None:
    value = value or os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def stores_dir(value: str | os.PathLike | None, root: Path | None) -> Path | None:
    value = value or os.environ.get(STORES_ENV)
    if value:
        return Path(value).expanduser()
    return root / "stores" if root else None


def raw_folder(source: Source, root: Path) -> Path:
    """``root/<default_root>`` (or manifest name, or source name): the first that exists."""
    names = [source.default_root, source.manifest, source.name]
    names = [n for n in names if n]
    return next((root / n for n in names if (root / n).is_dir()), root / names[0])


def _known_manifests() -> set[str]:
    try:
        from manifests.model import list_manifests
    except ImportError:
        return set()
    return set(list_manifests())


def _raw_splits(module: ModuleType | None, splits: list[str], folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    if module is None or not hasattr(module, "raw_files"):
        return splits
    found = []
    for split in splits:
        try:
            files = list(module.raw_files(folder, split))
        except Exception:  # a converter's raw_files must not break the listing
            continue
        if files and all(Path(p).is_file() for p in files):
            found.append(split)
    return found


def record_path(folder: Path, manifest: str) -> Path:
    return folder / RECORD_DIR / f"verify-{manifest}.json"


def read_verification(folder: Path, manifest: str | None) -> str:
    if not manifest:
        return "-"
    path = record_path(folder, manifest)
    if not path.is_file():
        return "not run"
    try:
        record = json.loads(path.read_text())
        from manifests.model import manifest_digest

        if record.get("manifest_sha256") != manifest_digest(manifest):
            return "stale"
    except (ValueError, OSError, FileNotFoundError):
        return "not run"
    return "ok" if record.get("ok") else "failed"


def verify_and_record(manifest: str, folder: Path, *, quick: bool = True) -> str:
    """Run ``hmr verify`` logic (sizes only when ``quick``) and keep the verdict."""
    from manifests.verify import verify_source

    report = verify_source(manifest, folder, quick=quick, extra_ok=True, progress=False)
    record = {"ok": report.ok, "quick": quick, "manifest_sha256": report.manifest_sha256,
              "summary": report.counts(), "checked_at": datetime.now(timezone.utc).isoformat()}
    path = record_path(folder, manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))
    return "ok" if report.ok else "failed"


def _stores(source: Source, splits: list[str], stores: Path | None) -> tuple[list[str], list[str]]:
    from hmr.core.schema import open_store

    done, broken = [], []
    if stores is None or not stores.is_dir():
        return done, broken
    for split in splits:
        paths = [stores / f"{name}_{split}{suffix}" for name in source.spellings()
                 for suffix in (".zarr", ".npz")]
        for path in paths:
            if not path.exists():
                continue
            try:
                open_store(path)
                done.append(split)
            except (HmrError, OSError, ValueError):
                broken.append(split)
            break
    return done, broken


def dataset_status(root: str | os.PathLike | None = None, stores: str | os.PathLike | None = None, *,
                   verify: bool = False, quick: bool = True) -> list[DatasetStatus]:
    """One :class:`DatasetStatus` per source (with a converter or not), sorted by name."""
    from converters import get_converter

    root_path = data_root(root)
    stores_path = stores_dir(stores, root_path)
    known = _known_manifests()
    rows = []
    for source in SOURCES.values():
        module = get_converter(source.name) if source.has_converter() else None
        manifest = source.manifest
        splits = list(source.splits or ["train"])
        row = DatasetStatus(source.name, source.description or source.title, splits, manifest,
                            bool(manifest) and manifest in known, None, False,
                            has_converter=module is not None)
        if root_path is not None:
            folder = raw_folder(source, root_path)
            row.raw_root = str(folder)
            row.raw_splits = _raw_splits(module, splits, folder)
            row.raw_found = bool(row.raw_splits)
            if row.raw_found and row.manifest_present and verify:
                row.verified = verify_and_record(manifest, folder, quick=quick)
            elif row.raw_found:
                row.verified = read_verification(folder, manifest if row.manifest_present else None)
        row.converted, row.incomplete = _stores(source, splits, stores_path)
        rows.append(row)
    return sorted(rows, key=lambda r: r.name)


def format_table(rows: list[DatasetStatus], root: Path | None, stores: Path | None) -> str:
    lines = [f"data root: {root or '(none: pass --data-root or set $HMR_DATA)'}",
             f"stores:    {stores or '(none)'}", ""]
    header = ("dataset", "manifest", "raw data", "verified", "converted", "splits")
    table = [header]
    for r in rows:
        raw = "-" if r.raw_root is None else (
            f"found ({','.join(r.raw_splits)})" if r.raw_found else "missing")
        conv = ",".join(r.converted) or ("-" if r.has_converter else "no converter yet")
        if r.incomplete:
            conv += f" (incomplete: {','.join(r.incomplete)})"
        manifest = (r.manifest if r.manifest_present else f"MISSING {r.manifest}") if r.manifest else \
            "(its own)"  # synthetic data: each dataset carries its manifest
        table.append((r.name, manifest, raw, r.verified, conv, ",".join(r.splits)))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def to_json(rows: list[DatasetStatus]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)
