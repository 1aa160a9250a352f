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
import shutil
import socket
import subprocess
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


def rates(set_ref: str | Path, epochs: int) -> tuple[float, float]:
    """(samples per CPU-second, samples per wall-second) over ``epochs`` epochs."""
    cfg = StreamConfig(out_size=64, batch_size=64, shuffle_buffer=500, resampled=False, train=False,
                       convention="spin_49", drop_last=False)
    loader = EpochLoader(ShardStream([(load_shard_set(set_ref), 1.0)], cfg), None)
    count, t0, w0 = 0, time.process_time(), time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        count += sum(len(batch["key"]) for batch in loader)
    return count / (time.process_time() - t0), count / (time.perf_counter() - w0)


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    """A static HTTP server on a free loopback port serving ``folder``; (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the HTTP server did not start") from None
            time.sleep(0.1)


def measure(set_dir: Path, epochs: int) -> None:
    proc, url = serve(set_dir)
    try:
        if epochs > 1:
            rates(url, 1)  # warm the page cache for both readers
        disk_cpu, disk_wall = rates(set_dir, epochs)
        http_cpu, http_wall = rates(url, epochs)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{set_dir}: {epochs} epoch(s), 64² output, no augmentation; {machine_line(1)}")
    print(f"  disk: {disk_cpu:8.0f} samples/CPU-s  {disk_wall:8.0f} samples/s wall")
    print(f"  http: {http_cpu:8.0f} samples/CPU-s  {http_wall:8.0f} samples/s wall")
    print(f"  http / disk: {http_cpu / disk_cpu:.2f} per CPU-second, {http_wall / disk_wall:.2f} per wall-second")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shard_set", type=Path, nargs="?")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: a 64-sample shard set made in a temporary folder, 1 epoch "
                         "(checks the script runs; figures meaningless)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.smoke:
        from tests.fixtures.spin import spin_shards

        scratch = Path(tempfile.mkdtemp(prefix="hmr-bench-remote-"))
        try:
            measure(spin_shards(scratch, n=64), 1)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    if args.shard_set is None:
        ap.error("SHARD_SET is required (or pass --smoke)")
    measure(args.shard_set, args.epochs)


if __name__ == "__main__":
    main()
