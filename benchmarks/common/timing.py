"""Timing a shard set's loader, for the benchmarks that stream one (loader_cache.py,
remote_shards.py): the same stream settings, the same epoch loop, the same command line.

The loader streams in finite mode (each sample once per epoch) at 64² output, batch 64, in
one process with one OpenCV / torch thread; each epoch is timed in CPU seconds of this
process (``time.process_time``, meaningful on a busy machine) and in wall seconds.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch

from loaders.shard import load_shard_set
from loaders.stream import EpochLoader, ShardStream, StreamConfig

SMOKE_SAMPLES = 64


@dataclass(frozen=True)
class EpochTime:
    """Samples read in one epoch (or several, summed) and the seconds they took."""

    samples: int
    cpu_s: float
    wall_s: float

    @property
    def per_cpu_s(self) -> float:
        return self.samples / self.cpu_s

    @property
    def per_wall_s(self) -> float:
        return self.samples / self.wall_s


def bench_stream(set_ref: str | Path, **overrides) -> ShardStream:
    """A finite stream over one set (a folder or a URL): 64² output, batch 64, 500-sample shuffle
    buffer; ``overrides`` are other ``StreamConfig`` fields (``train``, ``cache_mb``, ...)."""
    cfg = StreamConfig(**{"out_size": 64, "batch_size": 64, "shuffle_buffer": 500, "resampled": False,
                          "convention": "spin_49", **overrides})
    return ShardStream([(load_shard_set(set_ref), 1.0)], cfg)


def time_epochs(stream: ShardStream, epochs: int) -> list[EpochTime]:
    """Read ``epochs`` epochs of ``stream``; the samples and seconds of each."""
    loader = EpochLoader(stream, None)
    times = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        samples = sum(len(batch["key"]) for batch in loader)
        times.append(EpochTime(samples, time.process_time() - cpu0, time.perf_counter() - wall0))
    return times


def summed(times: list[EpochTime]) -> EpochTime:
    return EpochTime(sum(t.samples for t in times), sum(t.cpu_s for t in times), sum(t.wall_s for t in times))


@contextmanager
def smoke_shard_set(prefix: str) -> Iterator[Path]:
    """A 64-sample shard set (the tests' synthetic one) in a temporary folder, removed after."""
    from tests.fixtures.spin import spin_shards

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield spin_shards(scratch, n=SMOKE_SAMPLES)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_on_shard_set(ap: argparse.ArgumentParser, measure: Callable[[argparse.Namespace], None], *,
                     epochs: int, smoke_epochs: int, prefix: str) -> None:
    """Add SHARD_SET, ``--epochs`` and ``--smoke`` to ``ap``, parse, and call ``measure(args)``
    with one thread, on SHARD_SET or (``--smoke``) on a temporary set for ``smoke_epochs``."""
    ap.add_argument("shard_set", type=Path, nargs="?")
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--smoke", action="store_true",
                    help=f"seconds: a {SMOKE_SAMPLES}-sample shard set made in a temporary folder, "
                         f"{smoke_epochs} epoch(s) (checks the script runs; figures meaningless)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.smoke:
        with smoke_shard_set(prefix) as set_dir:
            args.shard_set, args.epochs = set_dir, smoke_epochs
            measure(args)
    elif args.shard_set is None:
        ap.error("SHARD_SET is required (or pass --smoke)")
    else:
        measure(args)
