"""Outputs are written under a temporary name and renamed when complete.

A crash therefore never leaves a file or folder that looks finished: either the final
name does not exist, or it holds the whole result. Temporary names start with the final
name and end in ``.partial-<pid>`` so a rerun can find and remove stale ones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial"


def partial_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL}-{os.getpid()}")


def remove_stale_partials(path: Path) -> None:
    """Remove leftovers of earlier killed runs that targeted ``path``."""
    for stale in path.parent.glob(f"{path.name}{PARTIAL}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def remove_partials_in(folder: Path) -> int:
    """Remove every stale temporary file or folder directly inside ``folder`` (one listing);
    for writers of many files into one folder, which then skip the per-file search."""
    removed = 0
    for stale in Path(folder).glob(f"*{PARTIAL}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed += 1
    return removed


def _replace(tmp: Path, final: Path, overwrite: bool) -> None:
    if final.exists():
        if not overwrite:
            raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
        if final.is_dir() and not final.is_symlink():
            # Move the old folder aside first so the final name is never half-deleted.
            old = final.with_name(f"{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True, is_dir: bool = False,
                many: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file or folder is removed and ``path`` is untouched.
    ``many=True`` is for one of many files written into one folder (rendered images): the
    folder must exist and its stale partials must have been removed once beforehand
    (:func:`remove_partials_in`), since searching the folder for each file costs O(files) per
    file; and the file is not fsynced (its writer records checksums for all of them at the end,
    which ``hmr verify`` checks).
    """
    final = Path(path)
    if final.exists() and not overwrite:  # before any work: nothing to clean up afterwards
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
    if not many:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(final)
    tmp = partial_name(final)
    if is_dir:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if not is_dir and not many and tmp.exists():
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    _replace(tmp, final, overwrite)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
