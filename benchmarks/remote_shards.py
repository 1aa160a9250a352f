"""What streaming shards over HTTP costs next to reading them from disk.

Reads the same shard set one epoch (finite mode, batch 64, 64² output, no augmentation so
the reading weighs most) from its folder and from a static HTTP server on 127.0.0.1 (the
standard library's ``http.server`` in its own process, so its CPU time is not counted), and
prints samples per CPU-second of the reading process (one OpenCV / torch thread,
``time.process_time``) and per wall-second for both, and their ratio.

Run:  hmr demo --out /tmp/d --steps 2     # any shard set works; this makes one
      python benchmarks/remote_shards.py /tmp/d/shards/synth-train [--epochs 2]
      python benchmarks/remote_shards.py --smoke   # seconds: a 64-sample set in a temp folder
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.timing import (  # noqa: E402
    EpochTime,
    bench_stream,
    run_on_shard_set,
    summed,
    time_epochs,
)
from hmr.core.utils.machine import machine_line  # noqa: E402
from tests.fixtures.servers import http_server_command, server_process  # noqa: E402


def rates(set_ref: str | Path, epochs: int) -> EpochTime:
    """Samples and seconds over ``epochs`` epochs, no augmentation."""
    return summed(time_epochs(bench_stream(set_ref, train=False, drop_last=False), epochs))


def measure(set_dir: Path, epochs: int) -> None:
    with server_process(functools.partial(http_server_command, set_dir), "the HTTP server") as url:
        if epochs > 1:
            rates(url, 1)  # warm the page cache for both readers
        disk, http = rates(set_dir, epochs), rates(url, epochs)
    print(f"{set_dir}: {epochs} epoch(s), 64² output, no augmentation; {machine_line(1)}")
    print(f"  disk: {disk.per_cpu_s:8.0f} samples/CPU-s  {disk.per_wall_s:8.0f} samples/s wall")
    print(f"  http: {http.per_cpu_s:8.0f} samples/CPU-s  {http.per_wall_s:8.0f} samples/s wall")
    print(f"  http / disk: {http.per_cpu_s / disk.per_cpu_s:.2f} per CPU-second, "
          f"{http.per_wall_s / disk.per_wall_s:.2f} per wall-second")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_on_shard_set(ap, lambda args: measure(args.shard_set, args.epochs), epochs=2, smoke_epochs=1,
                     prefix="hmr-bench-remote-")


if __name__ == "__main__":
    main()
