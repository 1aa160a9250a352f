"""Streaming, parallel file hashing in bounded memory.

A file is read through one fixed buffer (8 MiB) with ``readinto``, so hashing a 50 GB
archive costs the same memory as hashing a 5 kB JSON file. Several files are hashed at
once on a thread pool: :mod:`hashlib` releases the GIL on buffers larger than 2 kB, so
threads scale with cores and disks rather than with the interpreter. One shared tqdm bar
counts bytes (``unit='B'``) so the user sees bytes/s across all workers.

Digests are lowercase hex strings, exactly as ``sha256sum`` / ``md5sum`` print them.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from tqdm import tqdm

BUFFER_BYTES = 8 * 1024 * 1024
SUPPORTED_ALGORITHMS = ("sha256", "md5")


@dataclass(frozen=True)
class HashJob:
    """One file to hash; ``key`` lets the caller find the result again."""

    key: str
    path: Path
    algorithms: tuple[str, ...] = ("sha256",)
    size_hint: int = 0


@dataclass
class HashResult:
    key: str
    path: Path
    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # an OSError message when the file could not be read


def default_workers() -> int:
    """Threads for hashing: enough to keep an SSD busy, few enough for a spinning disk."""
    return max(1, min(8, os.cpu_count() or 1))


def hash_file(path: str | os.PathLike, algorithms: Sequence[str] = ("sha256",), *,
              progress: tqdm | None = None, lock: threading.Lock | None = None,
              buffer_bytes: int = BUFFER_BYTES) -> tuple[int, dict[str, str]]:
    """Return ``(bytes read, {algorithm: hex digest})`` of one file, streamed.

    Every algorithm is fed from the same read, so ``("sha256", "md5")`` reads the file once.
    """
    unknown = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
    if unknown:
        raise ValueError(f"unsupported hash algorithm(s) {unknown}; use {SUPPORTED_ALGORITHMS}")
    hashers = [hashlib.new(a) for a in algorithms]
    total = 0
    with open(path, "rb", buffering=0) as fh:
        # A small file gets a buffer of its own size (+1, so one read reaches the end): an
        # 8 MiB buffer per file made hashing 12,000 5 kB images cost seconds of allocation.
        buf = bytearray(max(1, min(buffer_bytes, os.fstat(fh.fileno()).st_size + 1)))
        view = memoryview(buf)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            for h in hashers:
                h.update(chunk)
            total += n
            if progress is not None:
                if lock is not None:
                    with lock:
                        progress.update(n)
                else:
                    progress.update(n)
    return total, {a: h.hexdigest() for a, h in zip(algorithms, hashers)}


def make_progress(total_bytes: int, desc: str, enabled: bool | None = None) -> tqdm:
    """A byte-counting bar; disabled automatically when stderr is not a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not enabled, leave=False, dynamic_ncols=True)


@dataclass
class HashRun:
    """Results of :func:`hash_many` plus what the run cost."""

    results: dict[str, HashResult]
    bytes_hashed: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes_hashed / 1e6 / self.seconds if self.seconds > 0 else 0.0


_NEW = {"sha256": hashlib.sha256, "md5": hashlib.md5}
#: files up to this size are read whole and hashed in batches, one pool task per batch
SMALL_FILE_BYTES = 1024 * 1024
BATCH_FILES = 256
BATCH_BYTES = 16 * 1024 * 1024


def hash_small_file(path: str | os.PathLike, algorithms: Sequence[str]) -> tuple[int, dict[str, str]]:
    """:func:`hash_file` for a small file: one read of the whole file (a file that turns out
    larger than :data:`SMALL_FILE_BYTES` is streamed on through a bounded buffer)."""
    if any(a not in _NEW for a in algorithms):
        raise ValueError(f"unsupported hash algorithm(s) {list(algorithms)}; use {SUPPORTED_ALGORITHMS}")
    fd = os.open(path, os.O_RDONLY)  # the bare descriptor: a file object costs more than the hash
    try:
        data = os.read(fd, SMALL_FILE_BYTES + 1)
        while 0 < len(data) <= SMALL_FILE_BYTES and (more := os.read(fd, SMALL_FILE_BYTES + 1 - len(data))):
            data += more  # a short read (a pipe, a network file system)
        hashers = [_NEW[a](data) for a in algorithms]
        total = len(data)
        if total > SMALL_FILE_BYTES:
            while more := os.read(fd, BUFFER_BYTES):
                for h in hashers:
                    h.update(more)
                total += len(more)
    finally:
        os.close(fd)
    return total, {a: h.hexdigest() for a, h in zip(algorithms, hashers)}


def _batches(jobs: list[HashJob]) -> list[list[HashJob]]:
    """Large files one per task (largest first, so one huge file starts early); small files
    in batches of up to :data:`BATCH_FILES` files / :data:`BATCH_BYTES` bytes, since a task
    per 5 kB file costs the pool more than hashing it does."""
    large = [[j] for j in jobs if j.size_hint > SMALL_FILE_BYTES]
    small: list[list[HashJob]] = []
    count = size = 0
    for j in jobs:
        if j.size_hint > SMALL_FILE_BYTES:
            continue
        if not small or count >= BATCH_FILES or size + j.size_hint > BATCH_BYTES:
            small.append([])
            count = size = 0
        small[-1].append(j)
        count += 1
        size += j.size_hint
    return large + small


def hash_many(jobs: Iterable[HashJob], *, workers: int | None = None,
              progress: bool | None = None, desc: str = "hashing") -> HashRun:
    """Hash many files on a thread pool: large files one task each, largest first; small
    files in batches (:func:`_batches`).

    Jobs sharing a key (a file listed on its own and inside a folder entry) are hashed
    once with the union of their algorithms. Unreadable files do not abort the run: their
    :class:`HashResult` carries ``error``.
    """
    merged: dict[str, HashJob] = {}
    for j in jobs:
        if j.key in merged:
            algos = tuple(dict.fromkeys(merged[j.key].algorithms + j.algorithms))
            j = HashJob(j.key, j.path, algos, j.size_hint)
        merged[j.key] = j
    job_list = sorted(merged.values(), key=lambda j: j.size_hint, reverse=True)
    batches = _batches(job_list)
    workers = workers or default_workers()
    lock = threading.Lock()
    bar = make_progress(sum(j.size_hint for j in job_list), desc, progress)
    start = time.perf_counter()

    def run(batch: list[HashJob]) -> list[HashResult]:
        out = []
        for job in batch:
            try:
                if job.size_hint > SMALL_FILE_BYTES:
                    size, digests = hash_file(job.path, job.algorithms, progress=bar, lock=lock)
                else:
                    size, digests = hash_small_file(job.path, job.algorithms)
                out.append(HashResult(job.key, job.path, size, digests))
            except OSError as exc:
                why = f"{type(exc).__name__}: {exc.strerror or exc}"
                out.append(HashResult(job.key, job.path, error=why))
        if len(batch) > 1 or batch[0].size_hint <= SMALL_FILE_BYTES:
            with lock:  # one bar update per batch of small files
                bar.update(sum(r.size for r in out))
        return out

    try:
        if workers == 1 or len(batches) <= 1:
            results = [r for b in batches for r in run(b)]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hmr-hash") as pool:
                results = [r for rs in pool.map(run, batches) for r in rs]
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return HashRun({r.key: r for r in results}, sum(r.size for r in results), seconds)


def tree_digest(entries: Iterable[tuple[str, int, str]]) -> str:
    """sha256 over sorted ``(relative path, size, sha256)`` lines: one digest for a folder.

    Sorting makes it independent of directory-listing order; the path is part of the
    digest, so a renamed file changes it even when its bytes do not.
    """
    h = hashlib.sha256()
    for rel, size, digest in sorted(entries):
        h.update(f"{rel}\0{size}\0{digest}\n".encode("utf-8"))
    return h.hexdigest()
