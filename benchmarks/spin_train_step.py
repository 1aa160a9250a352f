"""SPIN training on synthetic shards: time per step with SMPLify in the loop against without it,
and the fraction of fits improved per epoch.

Builds ``--samples`` ``hmr.synth`` people (exact SMPL, 2D keypoints, intrinsics), shards them,
starts their fits table from SPIN's mean pose (as for a dataset without SMPL) and trains the
same config twice in one process on the same device: once with ``spin.enabled = false`` and
once with SPIN (SPIN's SMPLify settings unless ``--iters`` says otherwise). Prints seconds per
step of both (steps after the first, which warms up), their ratio, the SMPLify share of the
SPIN step, and per epoch how many fits SMPLify proposed and how many beat the stored one.

Run:  python benchmarks/spin_train_step.py [--samples 64] [--batch 16] [--epochs 3] [--iters 100]
      [--backbone resnet18] [--img-size 224] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def overrides(args, set_dir: Path, prior: Path, spin: bool, steps: int) -> list[str]:
    return [f'model.backbone="{args.backbone}"', f"model.img_size={args.img_size}", "model.hidden=256",
            "model.dropout=0.0", f"train.total_steps={steps}", f"train.checkpoint_every={10 ** 6}",
            "train.log_every=1", f"train.batch_size={args.batch}", f'train.device="{args.device}"',
            'data.source="shards"', f'data.shards=["{set_dir}"]', "data.num_workers=0", "data.shuffle_buffer=16",
            f"spin.enabled={'true' if spin else 'false'}", f"spin.camera_iters={args.iters}",
            f"spin.body_iters={args.iters}", f'spin.pose_prior="{prior}"']


def run(args, set_dir: Path, prior: Path, out: Path, spin: bool, steps: int) -> tuple[list[float], list[dict]]:
    from hmr.training.config import load_config
    from hmr.training.data import build_batches
    from hmr.training.trainer import Trainer

    cfg = load_config("tiny_cpu", overrides(args, set_dir, prior, spin, steps))
    trainer = Trainer(cfg, out)
    stream = build_batches(cfg, body_model=trainer.body_model)
    batches = iter(stream(0))
    times, rows = [], []
    for _ in range(steps):  # the trainer's own step, timed without data loading
        batch = next(batches)
        t0 = time.perf_counter()
        trainer.train_step(batch)
        times.append(time.perf_counter() - t0)
        if trainer.spin is not None and trainer.step % stream.batches_per_epoch == 0:
            rows.append(trainer.spin.end_epoch())  # what the trainer logs at each epoch end
    return times[1:], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--iters", type=int, default=100, help="SMPLify camera and body iterations each")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: 16 samples, batch 8, 1 epoch, 3 + 3 iterations, 64 px (checks the script runs; figures meaningless)")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.batch, args.epochs, args.iters, args.img_size = 16, 8, 1, 3, 64
    torch.set_num_threads(args.threads)
    from tests.fixtures.fitting import small_prior
    from tests.fixtures.spin import mean_pose_table, spin_shards

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        set_dir = spin_shards(tmp, n=args.samples)
        prior = small_prior(tmp / "prior")
        mean_pose_table(set_dir)
        steps = args.epochs * (args.samples // args.batch)
        plain, _ = run(args, set_dir, prior, tmp / "plain", False, min(steps, 4))
        with_spin, epochs = run(args, set_dir, prior, tmp / "spin", True, steps)
    a, b = statistics.median(plain), statistics.median(with_spin)
    from hmr.core.utils.machine import machine_line

    print(f"device {args.device}, {machine_line(args.threads)}, {args.backbone} at {args.img_size} px, batch {args.batch}, "
          f"SMPLify {args.iters} + {args.iters} iterations")
    print(f"step without SMPLify: {a:.3f} s   with SMPLify: {b:.3f} s   ratio {b / a:.1f}x   "
          f"(SMPLify ~{100 * (b - a) / b:.0f}% of the SPIN step)")
    for i, r in enumerate(epochs):
        print(f"epoch {i + 1}: {int(r['spin/epoch_improved'])} of {int(r['spin/epoch_fits'])} fits improved "
              f"({100 * r['spin/epoch_improved_fraction']:.1f}%)")


if __name__ == "__main__":
    main()
