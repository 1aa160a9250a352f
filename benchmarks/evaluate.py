"""Evaluation throughput on a 3DPW-sized store (35,515 samples) on CPU: scoring must never be
the bottleneck of ``hmr evaluate``.

Writes a temporary schema-v1 store of N samples labelled by the body model (3DPW protocol:
SMPL ground truth, genders mixed), perturbs the ground truth into "predictions", and times:

1. ``score_predictions`` — SMPL forward of predictions and gendered GT, 14-joint MPJPE,
   PA-MPJPE (per-sample Procrustes), PVE and rarity — in samples/s;
2. the metric functions alone on precomputed joints/vertices (what scoring adds over SMPL);
3. ``summarise`` + ``write_report`` (balanced metrics, CSV, JSON, plots);
4. for scale, the network forward (HMR-ResNet-50, batch 64, fp32) on this device, in images/s.

Scoring is not the bottleneck when (1) is well above (4) (and above a GPU's forward rate,
thousands of images/s, when evaluating on a GPU).

Run:  python benchmarks/evaluate.py [--quick] [--samples 35515]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hmr.evaluation.benchmarks import get_benchmark, score_predictions  # noqa: E402
from hmr.evaluation.metrics import mpjpe, pa_mpjpe, pve  # noqa: E402
from hmr.evaluation.report import summarise, write_report  # noqa: E402
from hmr.evaluation.run import BodyModels  # noqa: E402
from hmr.core.geometry import axis_angle_to_matrix  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.core.schema.store import StoreWriter, open_store  # noqa: E402


def write_store(path: Path, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    root = np.tile([math.pi, 0, 0], (n, 1)) + 0.2 * rng.normal(size=(n, 3))
    body = 0.3 * rng.normal(size=(n, 69))
    betas = 0.5 * rng.normal(size=(n, 10))
    cols = {"image_path": np.array([f"img_{i}.jpg" for i in range(n)], dtype=object),
            "image_hw": np.tile(np.array([1920, 1080], np.int32), (n, 1)),
            "bbox_xywh": np.tile(np.array([100, 100, 400, 800], np.float32), (n, 1)),
            "has_smpl": np.ones(n, bool), "smpl_source": np.ones(n, np.uint8),
            "smpl_global_orient": root.astype(np.float32), "smpl_body_pose": body.astype(np.float32),
            "smpl_betas": betas.astype(np.float32), "gender": rng.integers(1, 3, n).astype(np.uint8)}
    with StoreWriter(path, dataset="3dpw", split="test", converter="benchmarks.evaluate", converter_version="1") as w:
        w.add_columns(cols)
    return cols


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=35515)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--quick", action="store_true", help="5,000 samples")
    p.add_argument("--device", default="cpu", help="scoring and network device (cuda on a GPU machine)")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: 64 samples, batch 32, network batch 2 (checks the script runs; figures meaningless)")
    args = p.parse_args()
    if args.smoke:
        args.quick, args.samples, args.batch = False, 64, 32
    n = 5000 if args.quick else args.samples
    device = torch.device(args.device)
    print(f"machine: {machine_line()}; device {device}")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cols = write_store(Path(tmp) / "pw3d.zarr", n, rng)
        store = open_store(Path(tmp) / "pw3d.zarr")
        print(f"{n} samples, store written in {time.perf_counter() - t0:.1f} s; {torch.get_num_threads()} threads")
        aa = np.concatenate([cols["smpl_global_orient"], cols["smpl_body_pose"]], 1).reshape(n, 24, 3)
        pred_rot = axis_angle_to_matrix(torch.from_numpy(aa + 0.1 * rng.normal(size=aa.shape)).float())
        pred_betas = torch.from_numpy(cols["smpl_betas"]) + 0.2 * torch.randn(n, 10)
        models = BodyModels(None, device)
        mean_verts = models("neutral")(global_orient=torch.zeros(1, 3, device=device),
                                       body_pose=torch.zeros(1, 69, device=device),
                                       betas=torch.zeros(1, 10, device=device)).vertices[0]
        t0 = time.perf_counter()
        errors = score_predictions(get_benchmark("3dpw"), store, np.arange(n), pred_rot, pred_betas, models,
                                   mean_vertices=mean_verts, batch_size=args.batch, device=device)
        _sync(device)
        score_s = time.perf_counter() - t0
        print(f"  score_predictions (SMPL x2 + metrics)  {n / score_s:10.0f} samples/s  ({score_s:.1f} s)")
        j_pred = torch.randn(n, 14, 3, dtype=torch.float64, device=device)
        j_gt = torch.randn(n, 14, 3, dtype=torch.float64, device=device)
        v_pred, v_gt = torch.randn(args.batch, 6890, 3, device=device), torch.randn(args.batch, 6890, 3, device=device)
        t0 = time.perf_counter()
        mpjpe(j_pred, j_gt), pa_mpjpe(j_pred, j_gt)
        for _ in range(math.ceil(n / args.batch)):
            pve(v_pred, v_gt)
        _sync(device)
        metric_s = time.perf_counter() - t0
        print(f"  metric functions alone                 {n / metric_s:10.0f} samples/s  ({metric_s:.2f} s)")
        t0 = time.perf_counter()
        result = summarise(get_benchmark("3dpw"), errors)
        write_report(Path(tmp) / "report", result, errors, store.read("source_key"))
        print(f"  summarise + write report (plots, CSV)  {time.perf_counter() - t0:10.2f} s")
        print(f"  -> PA-MPJPE {result['PA-MPJPE']:.1f} mm, bMPJPE All {result['balanced']['bMPJPE']['All']:.1f} mm")
    import timm

    net = timm.create_model("resnet50", num_classes=0).eval().to(device)
    x = torch.randn(2 if args.smoke else 8 if args.quick else 64, 3, 224, 224, device=device)
    with torch.no_grad():
        net(x)
        _sync(device)
        t0 = time.perf_counter()
        net(x)
        _sync(device)
    fwd = len(x) / (time.perf_counter() - t0)
    print(f"  ResNet-50 forward (fp32, batch {len(x)}, {device})  {fwd:6.1f} images/s  -> scoring is "
          f"{n / score_s / fwd:.0f}x faster than the network on this machine")


if __name__ == "__main__":
    main()
