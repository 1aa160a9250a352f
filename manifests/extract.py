"""Unpack the archives of a source whose extracted files are missing (``verify --extract``).

An archive is unpacked only when it is present, its size and known checksums match the
manifest (a half-downloaded archive is never unpacked), and at least one file that the
manifest says comes from it is missing. Extraction goes through
:func:`hmr.core.utils.archive.safe_extract`, which refuses members escaping the target folder.
"""

from __future__ import annotations

from pathlib import Path

from hmr.core.errors import ChecksumMismatch
from hmr.core.utils.archive import safe_extract
from manifests.hashing import hash_file
from manifests.model import ManifestFile, SourceManifest


def _check_archive(entry: ManifestFile, path: Path) -> None:
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumMismatch(f"archive is {size:,} bytes, manifest says {entry.size:,} "
                               f"(incomplete download?); not extracting", path=path)
    wanted = {a: d for a, d in (("sha256", entry.sha256), ("md5", entry.md5)) if d}
    if wanted:
        _, got = hash_file(path, tuple(wanted))
        for algo, digest in wanted.items():
            if got[algo] != digest:
                raise ChecksumMismatch(f"archive {algo} {got[algo]} != manifest {digest}; "
                                       f"not extracting", path=path)


def extract_missing(manifest: SourceManifest, root: Path, *, workers: int | None = None,
                    progress: bool | None = None) -> list[str]:
    """Extract each intact archive that still has missing members; return one note each."""
    del workers  # archives are extracted one at a time: the disk, not the CPU, is the limit
    notes = []
    for entry in manifest.files:
        if entry.kind != "archive":
            continue
        archive_path = root / entry.path
        members = [f for f in manifest.files if f.archive == entry.path]
        missing = [f.path for f in members if not (root / f.path).exists()]
        if not archive_path.is_file() or (members and not missing):
            continue
        _check_archive(entry, archive_path)
        target = root / (entry.extract_to or ".")
        names = safe_extract(archive_path, target, progress=progress)
        notes.append(f"extracted {len(names)} member(s) of {entry.path} into "
                     f"{entry.extract_to or '.'}")
    return notes
