"""``hmr verify NAME --root DIR``: check a raw dataset tree against its source manifest.

Order of work, cheapest first: one directory walk (sizes from ``stat``), then presence
and size of every entry, then checksums only of the files whose size already matches
(a truncated file is reported without reading it). Hashing streams each file through a
fixed buffer on a thread pool (:mod:`manifests.hashing`). ``quick=True`` stops after sizes.

Files inside the root that no entry accounts for are reported as ``extra`` (a stray
partial download, a renamed file). The folder ``.hmr/`` at the root is ours and ignored.

The walk stays inside the root: a symbolic link whose target lies outside it (a link to
``/`` would walk the whole machine) is not followed but reported as ``outside_root``, and
so is anything that is not a regular file or folder (a FIFO or device would block or never
end when hashed). Links inside the root are followed; a loop is walked once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from pathlib import Path

from manifests.file_index import explain_folder, read_index
from manifests.hashing import HashJob, hash_many, tree_digest
from manifests.model import ManifestFile, load_manifest, manifest_digest, manifest_location
from manifests.report import FileCheck, VerifyReport

IGNORED_TOP_LEVEL = {".hmr"}


def inventory(root: Path, refused: dict[str, str] | None = None) -> tuple[dict[str, int], set[str]]:
    """``({relative file path: size}, {relative folder paths})`` under ``root``.

    Symlinks are followed while their target stays inside ``root``; a folder reached twice
    through links (a loop) is walked once. Links leading outside and entries that are not
    regular files or folders are left out and, when ``refused`` is given, listed there
    (relative path -> why).
    """
    files: dict[str, int] = {}
    dirs: set[str] = set()
    root = Path(root)
    real_root = os.path.realpath(root)
    refused = {} if refused is None else refused
    seen: set[tuple[int, int]] = set()

    def leaves(path: str) -> str | None:
        target = os.path.realpath(path)
        if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
            return f"symbolic link to {target}, outside the root: not followed"
        return None

    for current, subdirs, names in os.walk(root, followlinks=True):
        st = os.stat(current)
        if (st.st_dev, st.st_ino) in seen:
            subdirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel_dir = Path(current).relative_to(root).as_posix()
        if rel_dir == ".":
            subdirs[:] = [d for d in subdirs if d not in IGNORED_TOP_LEVEL]
            rel_dir = ""
        kept = []
        for d in subdirs:
            rel = f"{rel_dir}/{d}" if rel_dir else d
            why = leaves(os.path.join(current, d)) if os.path.islink(os.path.join(current, d)) else None
            if why:
                refused[rel] = why
            else:
                kept.append(d)
                dirs.add(rel)
        subdirs[:] = kept
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = os.path.join(current, name)
            why = leaves(full) if os.path.islink(full) else None
            if why and os.path.exists(full):
                refused[rel] = why
                continue
            try:
                fst = os.stat(full)
            except OSError:
                files[rel] = -1  # dangling link or vanished file: reported as unreadable
                continue
            if not stat.S_ISREG(fst.st_mode):
                refused[rel] = "not a regular file (a FIFO, socket or device): not read"
                continue
            files[rel] = fst.st_size
    return files, dirs


def glob_match(inner: str, pattern: str) -> bool:
    """Whole-path glob match: ``*`` stays inside one folder, a ``**`` segment spans any
    number of folders (``"**/*.jpg"`` matches ``a.jpg`` and ``seq/a.jpg``)."""
    return _match_parts(inner.split("/"), pattern.split("/"))


def _match_parts(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match_parts(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return (bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0])
            and _match_parts(parts[1:], pats[1:]))


def dir_members(entry: ManifestFile, files: dict[str, int]) -> list[str]:
    """Files of the inventory that belong to a ``dir`` entry (its ``glob``, relative)."""
    prefix = "" if entry.path in (".", "") else entry.path.rstrip("/") + "/"
    return sorted(rel for rel in files
                  if rel.startswith(prefix) and glob_match(rel[len(prefix):], entry.glob))


def _expected_digests(entry: ManifestFile) -> dict[str, str]:
    out = {}
    if entry.sha256:
        out["sha256"] = entry.sha256
    if entry.md5:
        out["md5"] = entry.md5
    return out


def _check_presence(entry: ManifestFile, files: dict[str, int], dirs: set[str]) -> FileCheck | None:
    """A finished check when presence/type already decides the entry, else ``None``."""
    check = FileCheck(entry.path, entry.kind, "ok", required=entry.required,
                      expected_size=entry.size, expected=_expected_digests(entry),
                      glob=entry.glob if entry.kind == "dir" else None)
    is_dir = entry.path in dirs or entry.path in (".", "")
    is_file = entry.path in files
    want_dir = entry.kind == "dir"
    if not is_dir and not is_file:
        check.status = "missing" if entry.required else "absent_optional"
        if entry.archive:
            check.detail = f"extracted from {entry.archive}"
        return check
    if want_dir != is_dir:
        check.status = "wrong_type"
        check.detail = ("expected a folder, found a file" if want_dir
                        else "expected a file, found a folder")
        return check
    return None


def _plan_file(entry: ManifestFile, files: dict[str, int], root: Path, quick: bool,
               jobs: list[HashJob]) -> FileCheck:
    check = FileCheck(entry.path, entry.kind, "ok", required=entry.required,
                      expected_size=entry.size, expected=_expected_digests(entry))
    size = files[entry.path]
    check.actual_size = size
    if size < 0:
        check.status, check.detail = "unreadable", "cannot stat (dangling link?)"
    elif entry.size is not None and size != entry.size:
        check.status = "wrong_size"
    elif not check.expected and entry.size is None:
        check.status, check.detail = "unverified", "manifest lists no size or checksum"
    elif quick or not check.expected:
        check.status = "size_ok" if entry.size is not None else "unverified"
        if check.status == "unverified":
            check.detail = "size unknown; checksum skipped (--quick)"
    else:
        jobs.append(HashJob(entry.path, root / entry.path, tuple(check.expected), size))
    return check


def _plan_dir(entry: ManifestFile, files: dict[str, int], root: Path, quick: bool,
              jobs: list[HashJob]) -> tuple[FileCheck, list[str]]:
    check = FileCheck(entry.path, "dir", "ok", required=entry.required,
                      expected_size=entry.size, glob=entry.glob)
    if entry.tree_sha256:
        check.expected["tree_sha256"] = entry.tree_sha256
    members = dir_members(entry, files)
    check.actual_size = sum(max(files[m], 0) for m in members)
    check.detail = f"{len(members)} file(s) matching {entry.glob!r}"
    if entry.count is not None and len(members) != entry.count:
        check.status = "wrong_count"
        check.detail = (f"expected {entry.count} file(s) matching {entry.glob!r}, "
                        f"found {len(members)}")
    elif not members:
        check.status = "missing" if entry.required else "absent_optional"
        check.detail = f"no file matching {entry.glob!r}"
    elif entry.size is not None and check.actual_size != entry.size:
        check.status = "wrong_size"
    elif entry.tree_sha256 and not quick:
        jobs.extend(HashJob(m, root / m, ("sha256",), files[m]) for m in members)
    elif entry.count is None and entry.size is None and not entry.tree_sha256:
        check.status = "unverified"
    elif quick or not entry.tree_sha256:
        check.status = "size_ok"
    return check, members


def _finish_file(check: FileCheck, result) -> None:
    if result.error:
        check.status, check.detail = "unreadable", result.error
        return
    check.actual = dict(result.digests)
    check.actual_size = result.size
    if any(check.actual.get(a) != d for a, d in check.expected.items()):
        check.status = "wrong_checksum"


def _finish_dir(check: FileCheck, members: list[str], results,
                reference: dict[str, tuple[int, str]] | None = None) -> None:
    bad = [m for m in members if results[m].error]
    if bad:
        check.status, check.detail = "unreadable", f"{bad[0]}: {results[bad[0]].error}"
        return
    rows = [(m[len(check.path) + 1:] if check.path not in (".", "") else m,
             results[m].size, results[m].digests["sha256"]) for m in members]
    digest = tree_digest(rows)
    check.actual["tree_sha256"] = digest
    if digest != check.expected["tree_sha256"]:
        check.status = "wrong_checksum"
        check.detail = (explain_folder(rows, reference, check.expected["tree_sha256"])
                        or "a file inside changed, was renamed or replaced; re-lock or re-download")


def covered_paths(entries: list[ManifestFile], files: dict[str, int]) -> set[str]:
    covered = {e.path for e in entries if e.kind != "dir"}
    for e in entries:
        if e.kind == "dir":
            covered.update(dir_members(e, files))
    return covered


def verify_source(name: str | os.PathLike, root: str | os.PathLike, *, quick: bool = False,
                  workers: int | None = None, extra_ok: bool = False, strict: bool = False,
                  extract: bool = False, progress: bool | None = None) -> VerifyReport:
    """Check the raw tree at ``root`` against the source manifest ``name``.

    ``extract=True`` first unpacks every present, intact archive whose members are
    missing (safely: see :func:`hmr.core.utils.archive.safe_extract`). ``strict=True`` also
    fails entries the manifest cannot check (no size and no checksum known).
    """
    manifest = load_manifest(name)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root is not a folder")
    report = VerifyReport(target=manifest.name, root=str(root),
                          manifest=manifest_location(name), manifest_sha256=manifest_digest(name),
                          quick=quick, extra_ok=extra_ok, strict=strict)
    if extract:
        from manifests.extract import extract_missing

        report.notes.extend(extract_missing(manifest, root, workers=workers, progress=progress))
    refused: dict[str, str] = {}
    files, dirs = inventory(root, refused)
    jobs: list[HashJob] = []
    pending_dirs: list[tuple[FileCheck, list[str]]] = []
    for entry in manifest.files:
        early = _check_presence(entry, files, dirs)
        if early is not None:
            report.checks.append(early)
        elif entry.kind == "dir":
            check, members = _plan_dir(entry, files, root, quick, jobs)
            report.checks.append(check)
            if check.status == "ok" and entry.tree_sha256 and not quick:
                pending_dirs.append((check, members))
        else:
            report.checks.append(_plan_file(entry, files, root, quick, jobs))
    if jobs:
        run = hash_many(jobs, workers=workers, progress=progress, desc=f"verify {manifest.name}")
        report.bytes_hashed, report.hash_seconds = run.bytes_hashed, run.seconds
        by_path = {c.path: c for c in report.checks}
        for key, result in run.results.items():
            if key in by_path and by_path[key].kind != "dir":
                _finish_file(by_path[key], result)
        listing = read_index(manifest.manifest_path) if pending_dirs else {}
        for check, members in pending_dirs:
            _finish_dir(check, members, run.results, listing.get(f"{check.path} [{check.glob}]"))
    covered = covered_paths(manifest.files, files)
    for rel in sorted(set(files) - covered):
        report.checks.append(FileCheck(rel, "file", "extra", required=False,
                                       actual_size=files[rel], detail="not in the manifest"))
    for rel, why in sorted(refused.items()):
        report.checks.append(FileCheck(rel, "file", "outside_root", required=False, detail=why))
    return report


def _output_paths(store_or_manifest: str | os.PathLike) -> tuple[Path, Path]:
    from manifests.output import SUFFIX, output_manifest_path

    p = Path(store_or_manifest)
    if p.name.endswith(SUFFIX):
        return p.with_name(p.name[: -len(SUFFIX)]), p
    return p, output_manifest_path(p)


def verify_output(store_path: str | os.PathLike, *, quick: bool = False,
                  workers: int | None = None, progress: bool | None = None) -> VerifyReport:
    """Re-check a converter output against its ``<store>.manifest.json``.

    Any store file that was added, removed, truncated or rewritten since the converter
    wrote the manifest fails the report. ``store_path`` may also be the manifest itself.
    """
    from manifests.output import read_output_manifest, store_files

    store, mpath = _output_paths(store_path)
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: no output manifest next to the store (not written by "
                                f"'hmr convert', or its run was interrupted before writing it: "
                                f"rerun the same 'hmr convert' command, which redoes the store)")
    doc = read_output_manifest(mpath)
    report = VerifyReport(target=str(store), root=str(store.parent), manifest=str(mpath),
                          manifest_sha256=hashlib.sha256(mpath.read_bytes()).hexdigest(),
                          quick=quick)
    current = store_files(store) if store.exists() else {}
    jobs = []
    for rec in doc["files"]:
        check = FileCheck(rec["path"], "file", "ok", expected_size=rec["size"],
                          expected={"sha256": rec["sha256"]})
        report.checks.append(check)
        if rec["path"] not in current:
            check.status = "missing"
            continue
        check.actual_size = current[rec["path"]].stat().st_size
        if check.actual_size != rec["size"]:
            check.status = "wrong_size"
        elif quick:
            check.status = "size_ok"
        else:
            jobs.append(HashJob(rec["path"], current[rec["path"]], ("sha256",), check.actual_size))
    if jobs:
        run = hash_many(jobs, workers=workers, progress=progress, desc=f"verify {store.name}")
        report.bytes_hashed, report.hash_seconds = run.bytes_hashed, run.seconds
        by_path = {c.path: c for c in report.checks}
        for key, result in run.results.items():
            _finish_file(by_path[key], result)
    recorded = {rec["path"] for rec in doc["files"]}
    for rel in sorted(set(current) - recorded):
        report.checks.append(FileCheck(rel, "file", "extra", required=False,
                                       actual_size=current[rel].stat().st_size,
                                       detail="added to the store after conversion"))
    report.notes.extend(_output_notes(doc))
    return report


def check_store_files(store_path: str | os.PathLike, *, workers: int | None = None) -> bool:
    """Before reading a store: when it has an output manifest, every store file must still
    match it (a chunk whose bytes changed may still decode, and only its digest shows it).
    Raises :class:`~hmr.core.errors.ChecksumMismatch` naming the first file that differs;
    returns False when the store has no manifest to check against."""
    from hmr.core.errors import ChecksumMismatch

    store, mpath = _output_paths(store_path)
    if not mpath.is_file():
        return False
    report = verify_output(store, workers=workers, progress=False)
    bad = report.failures()
    if bad:
        c = bad[0]
        why = c.status.replace("_", " ") + (f": {c.detail}" if c.detail else "")
        where = store / c.path if store.is_dir() else store
        raise ChecksumMismatch(f"store file differs from the output manifest {mpath.name} ({why}; "
                               f"{len(bad)} file(s) in all): the store is corrupt, convert again "
                               f"('hmr verify {store}' lists them)", path=where)
    return True


def _output_notes(doc: dict) -> list[str]:
    conv = doc.get("converter", {})
    notes = [f"written by {conv.get('name')} {conv.get('version')} at {doc.get('created_at')}, "
             f"schema v{doc.get('schema_version')}, counts {doc.get('counts')}"]
    src = doc.get("source_manifest")
    if src:
        try:
            now = manifest_digest(src["name"])
        except FileNotFoundError:
            now = None
        if now is not None and now != src["sha256"]:
            notes.append(f"source manifest {src['name']} changed since this store was written")
    return notes
