"""What the in-memory sample cache (``StreamConfig.cache_mb``) saves per epoch.

Streams a shard set for a few epochs (finite mode, batch 64, 64² output like the demo) without
the cache (the baseline, measured in the same run) and with it, with and without
augmentation, and prints samples per CPU-second (one process, one OpenCV / torch thread,
``time.process_time``) for every epoch, and the cache's memory. Epoch 1 with the cache reads
from disk and fills it; later epochs come from memory.

Run:  hmr demo --out /tmp/d --steps 2     # any shard set works; this makes one
      python benchmarks/loader_cache.py /tmp/d/shards/synth-train [--epochs 3]
      python benchmarks/loader_cache.py --smoke   # seconds: a 64-sample shard set in a temp folder
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.timing import bench_stream, run_on_shard_set, time_epochs  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402


def epoch_rates(set_dir: Path, epochs: int, train: bool, cache_mb: int) -> tuple[list[float], int]:
    """Samples per CPU-second of each epoch, and the cache's bytes at the end."""
    stream = bench_stream(set_dir, train=train, cache_mb=cache_mb)
    rates = [t.per_cpu_s for t in time_epochs(stream, epochs)]
    return rates, stream.cache.nbytes if stream.cache is not None else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-mb", type=int, default=2048)
    run_on_shard_set(ap, measure, epochs=3, smoke_epochs=2, prefix="hmr-bench-cache-")


def measure(args: argparse.Namespace) -> None:
    print(f"{args.shard_set}: samples per CPU-second per epoch (64² output, batch 64); {machine_line(1)}")
    for train in (False, True):
        base, _ = epoch_rates(args.shard_set, args.epochs, train, 0)
        cached, nbytes = epoch_rates(args.shard_set, args.epochs, train, args.cache_mb)
        label = "augmented" if train else "no augmentation"
        print(f"  {label:16s} without cache: " + " ".join(f"{r:7.0f}" for r in base))
        print(f"  {label:16s} with cache:    " + " ".join(f"{r:7.0f}" for r in cached)
              + f"   ({nbytes / 2**20:.0f} MiB; last epoch {cached[-1] / base[-1]:.1f}x the uncached one)")


if __name__ == "__main__":
    main()
