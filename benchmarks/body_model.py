"""Body-model throughput and mannequin generation time.

Figures: bodies per second of the SMPL forward pass (vertices + SMPL-24, H36M-17 and SPIN-49
joints, no gradient) at batch 1 and at batch 64 on CPU with one thread (``--threads``), against
smplx's own ``SMPL.forward`` on the same model (the baseline: vertices and 45 joints only),
measured in the same run in alternating rounds, and the time to generate the
mannequin's arrays and write its folder. Then the training pass (forward + backward of the
SPIN-49 joints, batch 64, rotation matrices as the network predicts them): the full body model
(the baseline) against :class:`hmr.core.body.JointsOnlyBody`, which poses only the vertices the
joint regressors read. docs/pitfalls.md (SMPL files) quotes the one-thread figures (~400
bodies/s at batch 1, ~2,000/s at batch 64, ours 1.1-1.2x smplx direct).

Run:  python benchmarks/body_model.py [--seconds 3] [--body-model DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def smplx_direct(model):
    """smplx's own ``SMPL.forward`` on the same buffers (vertices + 45 joints, no extras)."""
    def forward(orient, pose, betas):
        return model.smpl(global_orient=orient, body_pose=pose, betas=betas, return_verts=True)
    return forward


def bodies_per_second(model, batch: int, seconds: float, device: str) -> float:
    g = torch.Generator().manual_seed(0)
    orient = (0.3 * torch.randn(batch, 3, generator=g)).to(device)
    pose = (0.3 * torch.randn(batch, 69, generator=g)).to(device)
    betas = torch.randn(batch, 10, generator=g).to(device)
    with torch.no_grad():
        for _ in range(3):  # warm-up
            model(orient, pose, betas)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(orient, pose, betas)
            n += batch
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)


def training_passes_per_second(model, batch: int, seconds: float, device: str) -> float:
    """Bodies per second through forward + backward of the SPIN-49 joints (a loss's use)."""
    from hmr.core.geometry import axis_angle_to_matrix

    g = torch.Generator().manual_seed(1)
    rot = axis_angle_to_matrix(0.3 * torch.randn(batch, 24, 3, generator=g)).to(device).requires_grad_()
    betas = torch.randn(batch, 10, generator=g).to(device).requires_grad_()

    def one_pass() -> None:
        out = model(global_orient=rot[:, :1], body_pose=rot[:, 1:], betas=betas, pose2rot=False)
        out.joints_spin49.square().sum().backward()

    for _ in range(3):  # warm-up
        one_pass()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        one_pass()
        n += batch
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def mannequin_timings() -> tuple[float, float]:
    """(seconds to build the arrays in a fresh cache, seconds to build and write the folder)."""
    from hmr.core.body import mannequin

    mannequin._neutral_parts.cache_clear()
    start = time.perf_counter()
    mannequin.mannequin_files()
    build = time.perf_counter() - start
    mannequin._neutral_parts.cache_clear()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        mannequin.write_mannequin(Path(tmp) / "m")
        write = time.perf_counter() - start
    return build, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: figures that hold on a shared machine)")
    parser.add_argument("--body-model", default=None, help="SMPL folder (default: the mannequin)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: 0.1 s per measurement (checks the script runs; figures meaningless)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds = 0.1
    torch.set_num_threads(args.threads)
    from hmr.core.body import load_body_model
    from hmr.core.utils.machine import machine_line

    print(f"machine: {machine_line(args.threads)}")

    build, write = mannequin_timings()
    print(f"mannequin: arrays {build:.2f} s, arrays + write folder {write:.2f} s")
    model = load_body_model(args.body_model, device=args.device)
    # smplx direct and our wrapper alternate, best of `rounds` each: load from other processes
    # hits both alike instead of whichever ran during a burst.
    rounds = 1 if args.smoke else 3
    rates = {}
    for b in (1, 64):
        rates["smplx", b] = rates["ours", b] = 0.0
        for _ in range(rounds):
            for name, forward in (("smplx", smplx_direct(model)), ("ours", model)):
                rates[name, b] = max(rates[name, b],
                                     bodies_per_second(forward, b, args.seconds / rounds, args.device))
    print(f"forward on {args.device}, {args.threads} threads, best of {rounds} alternating rounds "
          f"({model.source}):")
    print("  smplx direct: smplx.SMPL (vertices + 45 joints)")
    print("  ours: load_body_model (vertices + 45 joints + H36M-17 + extra-9 + SPIN-49)")
    for b in (1, 64):
        print(f"  batch {b:3d}: smplx direct {rates['smplx', b]:8.0f} bodies/s, ours "
              f"{rates['ours', b]:8.0f} bodies/s  (ours / smplx {rates['ours', b] / rates['smplx', b]:.2f}x)")
    print(f"  ours batch 64 / batch 1: {rates['ours', 64] / rates['ours', 1]:.1f}x")
    from hmr.core.body import JointsOnlyBody

    sparse = JointsOnlyBody(model, h36m=False)
    full_rate = training_passes_per_second(model, 64, args.seconds, args.device)
    sparse_rate = training_passes_per_second(sparse, 64, args.seconds, args.device)
    print(f"training pass (SPIN-49 joints, forward + backward, batch 64) on {args.device}:")
    print(f"  full body model:          {full_rate:8.0f} bodies/s")
    print(f"  JointsOnlyBody ({sparse.num_vertices} of {model.v_template.shape[0]} vertices): {sparse_rate:8.0f} bodies/s"
          f"  ({sparse_rate / full_rate:.1f}x)")


if __name__ == "__main__":
    main()
