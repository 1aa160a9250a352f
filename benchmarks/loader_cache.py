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
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hmr.core.utils.machine import machine_line  # noqa: E402
from loaders.shard import load_shard_set  # noqa: E402
from loaders.stream import EpochLoader, ShardStream, StreamConfig  # noqa: E402


def epoch_rates(set_dir: Path, epochs: int, train: bool, cache_mb: int) -> tuple[list[float], int]:
    """Samples per CPU-second of each epoch, and the cache's bytes at the end."""
    cfg = StreamConfig(out_size=64, batch_size=64, shuffle_buffer=500, resampled=False, train=train,
                       convention="spin_49", cache_mb=cache_mb)
    stream = ShardStream([(load_shard_set(set_dir), 1.0)], cfg)
    loader = EpochLoader(stream, None)
    rates = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        t0 = time.process_time()
        count = sum(len(batch["key"]) for batch in loader)
        rates.append(count / (time.process_time() - t0))
    return rates, stream.cache.nbytes if stream.cache is not None else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shard_set", type=Path, nargs="?")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cache-mb", type=int, default=2048)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: a 64-sample shard set made in a temporary folder, 2 epochs "
                         "(checks the script runs; figures meaningless)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.smoke:
        from tests.fixtures.spin import spin_shards

        scratch = Path(tempfile.mkdtemp(prefix="hmr-bench-cache-"))
        try:
            args.shard_set, args.epochs = spin_shards(scratch, n=64), 2
            measure(args)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    if args.shard_set is None:
        ap.error("SHARD_SET is required (or pass --smoke)")
    measure(args)


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
