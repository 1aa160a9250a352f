"""Training throughput of HMR (ResNet-50, batch 64): bf16 + channels-last vs plain fp32.

Times ``Trainer.train_step`` (network forward, SMPL forward, objective, backward, Adam) on an
in-memory synthetic batch, so the figure is the compute ceiling: the run is input-bound when
the loader delivers fewer images/s than this (compare ``benchmarks/loader.py``; a real run logs
``data_wait_fraction``, the share of wall time spent waiting for the next batch).

On a GPU the target is bf16 + channels-last ≥ 2× fp32. On a CPU, bf16 autocast helps only
where the cores have bf16 matrix units (AVX-512 BF16 / AMX; slower elsewhere), while
channels-last alone helps on any x86 CPU (oneDNN's NHWC convolutions): fp32 + channels-last is
timed too. Measured on the 2-core development machine (``--full --steps 2 --warmup 1``):
fp32 1.4, fp32 + channels-last 1.9 (1.33×), bf16 + channels-last 2.9 images/s (2.05×).

With ``--shards SET_DIR`` the loader (:func:`hmr.training.data.build_batches`, augmentation on,
``--workers`` processes) is timed on the same batch size too, and the step is called
input-bound when the loader is slower than the fastest step.

Run:  python benchmarks/train_step.py [--quick] [--backbone resnet50] [--batch 64] [--size 224]
                                      [--shards shards/h36m-train --workers 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hmr.core.body.smpl import load_body_model  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.training.config import load_config  # noqa: E402
from hmr.training.random_batches import random_body_batch  # noqa: E402
from hmr.training.trainer import Trainer  # noqa: E402


def measure(args, precision: str, channels_last: bool, body) -> float:
    """Images/s of ``Trainer.train_step``; ``body`` (CPU) only makes the batch."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = load_config("tiny_cpu", [f'model.backbone="{args.backbone}"', f"model.img_size={args.size}",
                                   "model.hidden=1024", "model.dropout=0.5", f"train.batch_size={args.batch}",
                                   f'train.device="{device}"', f'train.precision="{precision}"',
                                   f"train.channels_last={'true' if channels_last else 'false'}"])
    batch = random_body_batch(body, args.batch, crop_px=args.size, render=False)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir)  # its own body model, on the training device
        for _ in range(args.warmup):
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        return args.steps * args.batch / (time.perf_counter() - t0)


def measure_loader(args) -> float:
    """Images/s the shard loader delivers at this batch size (first batch not timed)."""
    from hmr.training.data import build_batches

    shards = "[" + ", ".join(f'"{p}"' for p in args.shards) + "]"
    cfg = load_config("tiny_cpu", ['data.source="shards"', f"data.shards={shards}", f"data.num_workers={args.workers}",
                                   f"model.img_size={args.size}", f"train.batch_size={args.batch}"])
    stream = build_batches(cfg)(0)
    next(stream)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        next(stream)
    return args.steps * args.batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="")
    p.add_argument("--quick", action="store_true", help="CPU smoke figures: batch 8, 128 px, 3 steps")
    p.add_argument("--full", action="store_true", help="on a CPU, run the full batch-64 224 px measurement")
    p.add_argument("--shards", nargs="*", default=[], help="shard-set folders: also time the loader")
    p.add_argument("--workers", type=int, default=8, help="loader worker processes (with --shards)")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: resnet18, batch 2, 64 px, 1 timed step (checks the script runs; figures meaningless)")
    args = p.parse_args()
    if args.smoke:
        args.quick, args.backbone, args.batch, args.size, args.steps, args.warmup = False, "resnet18", 2, 64, 1, 1
        args.full = True  # keep the sizes above
    on_cpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cpu"
    if on_cpu and not args.full and not args.quick:
        print("no GPU: quick settings (pass --full for batch 64 at 224 px, minutes per mode on a CPU)")
        args.quick = True
    if args.quick:
        args.batch, args.size, args.steps, args.warmup = 8, 128, 3, 1
    body = load_body_model()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print(f"HMR-{args.backbone}, batch {args.batch}, {args.size}px, {args.steps} timed steps on {name}; {machine_line()}")
    fp32 = measure(args, "fp32", False, body)
    print(f"  fp32                    {fp32:9.1f} images/s")
    fp32_cl = measure(args, "fp32", True, body)
    print(f"  fp32 + channels-last    {fp32_cl:9.1f} images/s   ({fp32_cl / fp32:.2f}x fp32)")
    fast = measure(args, "bf16", True, body)
    print(f"  bf16 + channels-last    {fast:9.1f} images/s")
    print(f"  ratio bf16+CL / fp32    {fast / fp32:9.2f}x" + ("   (target >= 2x on GPU)" if device.startswith("cuda") else
                                                           "   (CPU: helps only with bf16 matrix units, e.g. AMX)"))
    if args.shards:
        loader = measure_loader(args)
        bound = "INPUT-BOUND" if loader < max(fp32, fp32_cl, fast) else "compute-bound"
        print(f"  loader ({args.workers} workers)       {loader:9.1f} images/s   -> {bound}")


if __name__ == "__main__":
    main()
