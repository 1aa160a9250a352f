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


def hash_many(jobs: Iterable[HashJob], *, workers: int | None = None,
              progress: bool | None = None, desc: str = "hashing") -> HashRun:
    """Hash many files on a thread pool, largest first (so one huge file starts early).

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
    workers = workers or default_workers()
    lock = threading.Lock()
    bar = make_progress(sum(j.size_hint for j in job_list), desc, progress)
    start = time.perf_counter()

    def run(job: HashJob) -> HashResult:
        try:
            size, digests = hash_file(job.path, job.algorithms, progress=bar, lock=lock)
            return HashResult(job.key, job.path, size, digests)
        except OSError as exc:
            why = f"{type(exc).__name__}: {exc.strerror or exc}"
            return HashResult(job.key, job.path, error=why)

    try:
        if workers == 1 or len(job_list) <= 1:
            results = [run(j) for j in job_list]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hmr-hash") as pool:
                results = list(pool.map(run, job_list))
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
