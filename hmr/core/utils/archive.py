"""Safe extraction of dataset archives (tar, tar.gz/.bz2/.xz, zip).

An archive is data from the internet. A member named ``../../.bashrc`` or ``/etc/cron.d/x``,
or a symlink ``imgs -> /home/you`` followed by a member ``imgs/.ssh/authorized_keys``, would
write outside the target folder ("zip slip", CVE-2007-4559). :func:`safe_extract` reads the
whole member list first and refuses the archive, before writing a single byte, when any
member

- has an absolute name, a drive letter, or a ``..`` component (``\\`` counts as ``/``),
- is a symlink or hard link whose target lands outside the target folder,
- is a device, FIFO or other special file,
- would land outside the target folder once existing symlinks inside it are resolved.

Reading the list first costs a second decompression pass for ``.tar.gz`` archives; we pay
it so that a refused archive leaves nothing behind. Tar members are then extracted with
Python's own ``filter="data"`` as a second line of defence (it also drops setuid bits).
Zip symlinks are extracted as ordinary files holding the link text, as :mod:`zipfile` does.

Members are written into a temporary folder inside the target and moved into place (renames
on one file system) only when every member is complete; a CRC error, a link the data filter
stops, a full disk or Ctrl-C part-way removes the temporary folder, so a failed extraction
leaves the target as it was; the folder of a killed extraction
(``.ARCHIVE.extracting-<pid>-…``) is removed by the next extraction of that archive there.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from hmr.core.errors import DatasetFormatError, HmrError, UnsafeArchiveError
from hmr.core.utils.atomic import scratch_dir


@dataclass(frozen=True)
class Member:
    """What we need to judge one archive member, whatever the archive format."""

    name: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "special"
    size: int = 0
    link: str = ""


def _normalise(name: str) -> str:
    return name.replace("\\", "/")


def _unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe, or ``None``."""
    n = _normalise(name)
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return "absolute path"
    if ".." in n.split("/"):
        return "'..' component"
    if "\x00" in n:
        return "NUL byte in name"
    return None


def _inside(dest_real: str, candidate: str) -> bool:
    return candidate == dest_real or candidate.startswith(dest_real.rstrip(os.sep) + os.sep)


def check_members(members: list[Member], dest: Path, archive: Path) -> None:
    """Raise :class:`UnsafeArchiveError` naming the first member that would escape ``dest``."""
    dest_real = os.path.realpath(dest)
    for m in members:
        why = _unsafe_name(m.name)
        if why is None and m.kind == "special":
            why = "device, FIFO or other special file"
        if why is None:
            target = os.path.realpath(os.path.join(dest_real, _normalise(m.name)))
            if not _inside(dest_real, target):
                why = "lands outside the target folder through an existing symlink"
        if why is None and m.kind in ("symlink", "hardlink"):
            link = _normalise(m.link)
            if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
                why = f"{m.kind} to absolute path {m.link!r}"
            else:
                # symlinks resolve from the member's folder, hard links from the archive root
                base = posixpath.dirname(_normalise(m.name)) if m.kind == "symlink" else ""
                rel = posixpath.normpath(posixpath.join(base, link))
                if rel == ".." or rel.startswith("../"):
                    why = f"{m.kind} to {m.link!r} points outside the target folder"
        if why is not None:
            raise UnsafeArchiveError(f"refusing member {m.name!r}: {why}; nothing was extracted",
                                     path=archive, record=m.name)


def _tar_members(tf: tarfile.TarFile) -> list[Member]:
    out = []
    for ti in tf.getmembers():
        if ti.isreg():
            kind = "file"
        elif ti.isdir():
            kind = "dir"
        elif ti.issym():
            kind = "symlink"
        elif ti.islnk():
            kind = "hardlink"
        else:
            kind = "special"
        out.append(Member(ti.name, kind, ti.size, ti.linkname))
    return out


def _zip_members(zf: zipfile.ZipFile) -> list[Member]:
    out = []
    for zi in zf.infolist():
        mode = zi.external_attr >> 16
        if zi.is_dir():
            out.append(Member(zi.filename, "dir"))
        elif stat.S_ISLNK(mode):
            link = zf.read(zi).decode("utf-8", errors="replace")
            out.append(Member(zi.filename, "symlink", zi.file_size, link))
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # zip writers that store only permission bits leave the type field zero
            out.append(Member(zi.filename, "special"))
        else:
            out.append(Member(zi.filename, "file", zi.file_size))
    return out


def archive_format(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DatasetFormatError("not a zip or tar archive (or truncated)", path=path)


def list_members(archive_path: str | os.PathLike) -> list[Member]:
    path = Path(archive_path)
    try:
        if archive_format(path) == "zip":
            with zipfile.ZipFile(path) as zf:
                return _zip_members(zf)
        with tarfile.open(path, "r:*") as tf:
            return _tar_members(tf)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetFormatError(f"cannot read archive: {exc}", path=path) from exc


def safe_extract(archive_path: str | os.PathLike, dest: str | os.PathLike, *,
                 progress: bool | None = None) -> list[str]:
    """Extract ``archive_path`` into ``dest`` (created if needed); return member names.

    Raises :class:`UnsafeArchiveError` (naming the member) before writing anything when a
    member would land outside ``dest``; :class:`DatasetFormatError` for a corrupt archive;
    :class:`HmrError` when writing fails (full disk). The members are written into a
    temporary folder inside ``dest`` and moved into place (renames, same file system) only
    once all of them are complete: a failure at any point (CRC error, a link the data filter
    stops, a full disk, Ctrl-C) removes that folder and leaves ``dest`` as it was.
    """
    path, dest = Path(archive_path), Path(dest)
    members = list_members(path)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = None
    try:
        check_members(members, dest, path)
        staging = scratch_dir(dest, f".{path.name}.extracting-")  # also removes a killed run's
        _extract_all(path, staging, sum(m.size for m in members if m.kind == "file"), progress)
        _move_into(staging, dest)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created and not any(dest.iterdir()):
            dest.rmdir()
    return [m.name for m in members]


def _extract_all(path: Path, staging: Path, total: int, progress: bool | None) -> None:
    """Every member of the archive at ``path`` into the empty folder ``staging``."""
    enabled = progress if progress is not None else os.isatty(2)
    bar = tqdm(total=total, desc=f"extract {path.name}", unit="B", unit_scale=True,
               unit_divisor=1024, disable=not enabled, leave=False)
    try:
        if archive_format(path) == "zip":
            with zipfile.ZipFile(path) as zf:
                for zi in zf.infolist():
                    zf.extract(zi, staging)
                    bar.update(zi.file_size)
        else:
            with tarfile.open(path, "r:*") as tf:
                for ti in tf:
                    try:
                        tf.extract(ti, staging, filter="data")
                    except tarfile.FilterError as exc:
                        raise UnsafeArchiveError(f"refusing member {ti.name!r}: {exc}; nothing was kept",
                                                 path=path, record=ti.name) from exc
                    bar.update(ti.size if ti.isreg() else 0)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DatasetFormatError(f"archive corrupt while extracting: {exc}; nothing was kept",
                                 path=path) from exc
    except OSError as exc:  # full disk, quota, permissions
        raise HmrError(f"cannot write while extracting ({exc.strerror or exc}); nothing was kept",
                       path=path) from exc
    finally:
        bar.close()


def _move_into(source: Path, target: Path) -> None:
    """Move the extracted tree ``source`` into ``target`` by renames: folders that exist on
    both sides are merged, files replace files of the same name."""
    for entry in sorted(source.iterdir()):
        there = target / entry.name
        if entry.is_dir() and not entry.is_symlink() and there.is_dir():
            _move_into(entry, there)
        else:
            os.replace(entry, there)
