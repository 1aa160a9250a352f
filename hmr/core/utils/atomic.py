"""Outputs are written under a temporary name and renamed when complete.

A crash therefore never leaves a file or folder that looks finished: either the final
name does not exist, or it holds the whole result. Temporary names start with the final
name and end in ``.partial-<pid>`` so a rerun can find and remove stale ones; a folder
being replaced is first renamed aside to ``.old-<pid>`` (a rerun restores it if the new
one never arrived, else removes it). Only leftovers whose process is gone are removed: a
second writer running at the same time keeps its files (see :func:`output_lock`, which
makes such a second writer refuse in the first place).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from hmr.core.errors import HmrError

PARTIAL = ".partial"
ASIDE = ".old"
_OWNED = re.compile(r"\.(?:partial|old)-(\d+)$")


def partial_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL}-{os.getpid()}")


def aside_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{ASIDE}-{os.getpid()}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a PID is only meaningful locally)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def owner_pid(path: Path) -> int | None:
    """The PID in a ``.partial-<pid>`` / ``.old-<pid>`` / scratch name, or None."""
    m = _OWNED.search(path.name)
    return int(m.group(1)) if m else None


def _stale(path: Path) -> bool:
    pid = owner_pid(path)
    return pid is None or (pid != os.getpid() and not pid_alive(pid))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_partials(path: Path) -> None:
    """Remove leftovers of earlier killed runs that targeted ``path``: temporary outputs
    and folders moved aside whose process is gone. A folder moved aside by a run killed
    before its replacement arrived is renamed back to ``path`` (nothing is lost)."""
    path = Path(path)
    for aside in sorted(path.parent.glob(f"{path.name}{ASIDE}-*")):
        if owner_pid(aside) is None or not _stale(aside):
            continue
        if not path.exists() and not path.is_symlink():
            os.replace(aside, path)
        else:
            _remove(aside)
    for stale in path.parent.glob(f"{path.name}{PARTIAL}-*"):
        if owner_pid(stale) is not None and _stale(stale):
            _remove(stale)


def remove_partials_in(folder: Path) -> int:
    """Remove every stale temporary file or folder directly inside ``folder`` (one listing),
    those of dead processes only; for writers of many files into one folder, which then skip
    the per-file search."""
    removed = 0
    for stale in Path(folder).glob(f"*{PARTIAL}-*"):
        if owner_pid(stale) is not None and _stale(stale):
            _remove(stale)
            removed += 1
    return removed


def scratch_dir(parent: Path, prefix: str) -> Path:
    """A new scratch folder ``<prefix><pid>-<random>`` in ``parent``, after removing the
    scratch folders of dead processes with the same prefix (killed earlier runs)."""
    parent = Path(parent)
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[^/]+$")
    for old in parent.glob(f"{prefix}*"):
        m = pattern.match(old.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            _remove(old)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


LOCK_SUFFIX = ".lock"
_held: dict[str, tuple[int, int]] = {}  # lock file -> (fd, depth): re-entrant in one process


class OutputLocked(HmrError):
    """Another live process holds the lock of an output."""


def lock_name(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + LOCK_SUFFIX)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on the output ``path`` (``<path>.lock``, flock-based) while
    writing it; a second writer of the same output refuses at once with
    :class:`OutputLocked` naming the lock file and its holder. Re-entrant within a process.
    The kernel drops the lock when its holder dies, so a killed run never blocks a rerun.
    """
    import fcntl

    lock = lock_name(Path(path)).absolute()
    key = str(lock)
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield lock
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a full disk, a read-only folder
            raise write_error(exc, lock, "cannot create the output's lock file") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise OutputLocked(f"another hmr process (pid {holder}) is writing this output and "
                               f"holds its lock {lock}; wait for it to finish or stop it",
                               path=path) from None
        try:  # the holder before us may have removed the file after we opened it: retry
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = (fd, 1)
    try:
        yield lock
    finally:
        fd, depth = _held[key]
        if depth <= 1:
            del _held[key]
            with contextlib.suppress(OSError):
                os.unlink(lock)  # while still holding it: the next holder re-checks the inode
            os.close(fd)
        else:
            _held[key] = (fd, depth - 1)


def write_error(exc: OSError, path: Path, what: str = "cannot write",
                after: str = "nothing was left behind") -> HmrError:
    """An OSError while writing ``path`` as one clear line (a full disk says so); ``after``
    tells what state the output is in."""
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return HmrError(f"{what}: {why} ({type(exc).__name__} [Errno {exc.errno}]); {after}", path=path)


def _replace(tmp: Path, final: Path, overwrite: bool) -> None:
    if final.exists():
        if not overwrite:
            raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
        if final.is_dir() and not final.is_symlink():
            # Move the old folder aside first so the final name is never half-deleted.
            old = aside_name(final)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True, is_dir: bool = False,
                many: bool = False, fsync: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file or folder is removed and ``path`` is untouched.
    ``many=True`` is for one of many files written into one folder (rendered images): the
    folder must exist and its stale partials must have been removed once beforehand
    (:func:`remove_partials_in`), since searching the folder for each file costs O(files) per
    file; and the file is not fsynced (its writer records checksums for all of them at the end,
    which ``hmr verify`` checks) unless ``fsync=True``; ``fsync`` defaults to ``not many``.
    """
    final = Path(path)
    if final.exists() and not overwrite:  # before any work: nothing to clean up afterwards
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
    if not many:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(final)
    tmp = partial_name(final)
    if tmp.exists():  # ours, left by an earlier failed attempt in this process
        _remove(tmp)
    if is_dir:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not is_dir and (not many if fsync is None else fsync) and tmp.exists():
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    _replace(tmp, final, overwrite)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, many: bool = False,
                       fsync: bool | None = None) -> None:
    """``data`` to ``path`` through :func:`atomic_path` (``many``, ``fsync``: as there)."""
    with atomic_path(path, many=many, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, many: bool = False,
                      fsync: bool | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), many=many, fsync=fsync)
