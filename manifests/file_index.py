"""Per-file listing of a locked manifest's folders, so ``hmr verify`` can name the file that changed.

A folder entry carries one tree digest over its files; when it no longer matches, the digest
alone cannot say which of 20,000 images was truncated, swapped or added. ``hmr manifest lock``
(and ``hmr synth``, which locks its own manifest) therefore also writes, next to the manifest,
``<manifest stem>.files.json.gz``: every folder entry's files with size and sha256.

``hmr verify`` reads the listing only to explain a folder whose digest differs; the verdict
comes from the manifest alone. A listing that does not reproduce the folder's tree digest
(stale, edited, damaged) is ignored, so it can never make a bad folder look good or name the
wrong file.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from hmr.core.utils.atomic import atomic_path
from manifests.hashing import tree_digest

SUFFIX = ".files.json.gz"
FORMAT = "hmrkit-folder-index"

#: (path inside the folder, size, sha256)
Row = tuple[str, int, str]


def index_path(manifest_path: str | os.PathLike) -> Path:
    """``toyset.toml`` -> ``toyset.files.json.gz`` (same folder)."""
    path = Path(manifest_path)
    return path.with_name(path.stem + SUFFIX)


def write_index(manifest_path: str | os.PathLike, folders: dict[str, list[Row]]) -> Path:
    """Write the listing of every folder entry (keyed by the entry's key), atomically."""
    out = index_path(manifest_path)
    doc = {"format": FORMAT, "version": 1,
           "folders": {key: [list(row) for row in sorted(rows)] for key, rows in folders.items()}}
    with atomic_path(out) as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
    return out


def read_index(manifest_path: str | os.PathLike | None) -> dict[str, dict[str, tuple[int, str]]]:
    """The listing next to a manifest: ``{entry key: {path inside: (size, sha256)}}``;
    empty when there is none or it cannot be read (it only ever explains failures)."""
    if manifest_path is None:
        return {}
    path = index_path(manifest_path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("format") != FORMAT:
            return {}
        return {key: {str(rel): (int(size), str(sha)) for rel, size, sha in rows}
                for key, rows in doc["folders"].items()}
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def explain_folder(actual: list[Row], reference: dict[str, tuple[int, str]] | None,
                   expected_tree: str, shown: int = 5) -> str | None:
    """Which files of a folder differ from the locked listing, or None when the listing is
    missing or is not the one the manifest's tree digest was made from."""
    if not reference or tree_digest((r, s, d) for r, (s, d) in reference.items()) != expected_tree:
        return None
    found = {rel: (size, sha) for rel, size, sha in actual}
    lines = ([f"{r} (changed)" for r in sorted(found) if r in reference and found[r] != reference[r]]
             + [f"{r} (not in the locked copy)" for r in sorted(set(found) - set(reference))]
             + [f"{r} (missing)" for r in sorted(set(reference) - set(found))])
    if not lines:
        return None
    more = f", and {len(lines) - shown} more" if len(lines) > shown else ""
    return f"{len(lines)} file(s) differ from the locked copy: {', '.join(lines[:shown])}{more}"
