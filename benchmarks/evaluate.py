"""Evaluation throughput: samples/s of the whole metric path for N = 1,000 and 10,000 samples.

Writes a temporary schema-v1 store of N samples labelled by the body model (3DPW protocol:
SMPL ground truth, genders mixed), perturbs the ground truth into "predictions", and times,
per N (excluding the network):

1. ``cold``: the first ``score_predictions`` on the store — the ground truth is posed (one
   full body-model pass per sample, gendered) and cached, then scored;
2. ``metric path``: a second evaluation of the same store with other predictions (the
   cache hit every later checkpoint or training validation gets): predicted joints regressed
   without meshes (:mod:`hmr.evaluation.regressed_joints`), MPJPE, PA-MPJPE (per-sample
   Procrustes), 3DPCK/AUC with and without Procrustes, rarity — everything but PVE;
3. ``+ PVE``: the same with PVE / bMPVPE, which poses every predicted mesh (gendered, the
   3DPW default convention) with :class:`hmr.evaluation.fast_mesh.FastMesh` (one intra-op
   thread), and for N <= 1,000 also with the body model's generic forward pass;
4. ``summarise`` (balanced metrics) and, once, ``write_report`` (CSV, JSON, plots);
5. for scale, the network forward (HMR-ResNet-50, fp32) on this device, in images/s.

Run:  python benchmarks/evaluate.py [--samples 1000,10000] [--device cpu|cuda] [--smoke]
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

from hmr.core.geometry import axis_angle_to_matrix  # noqa: E402
from hmr.core.schema.store import StoreWriter, open_store  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.evaluation.benchmarks import clear_ground_truth_cache, get_benchmark, score_predictions  # noqa: E402
from hmr.evaluation.report import summarise, write_report  # noqa: E402
from hmr.evaluation.run import BodyModels, reference_mesh  # noqa: E402


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


def predictions(cols: dict[str, np.ndarray], rng: np.random.Generator, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(cols["smpl_betas"])
    aa = np.concatenate([cols["smpl_global_orient"], cols["smpl_body_pose"]], 1).reshape(n, 24, 3)
    rot = axis_angle_to_matrix(torch.from_numpy(aa + noise * rng.normal(size=aa.shape)).float())
    return rot, torch.from_numpy(cols["smpl_betas"]) + 2 * noise * torch.from_numpy(rng.normal(size=(n, 10))).float()


def measure(n: int, args, device: torch.device, models: BodyModels, reference: torch.Tensor,
            rng: np.random.Generator, tmp: Path, report: bool) -> None:
    bench = get_benchmark("3dpw")
    cols = write_store(tmp / f"pw3d_{n}.zarr", n, rng)
    store = open_store(tmp / f"pw3d_{n}.zarr")
    rows = np.arange(n)
    clear_ground_truth_cache()

    def timed(label: str, rot, betas, **kw):
        _sync(device)
        t0 = time.perf_counter()
        errors = score_predictions(bench, store, rows, rot, betas, models, mean_vertices=reference,
                                   batch_size=args.batch, device=device, **kw)
        _sync(device)
        dt = time.perf_counter() - t0
        print(f"  N={n:6d}  {label:44s} {n / dt:10.0f} samples/s  ({dt:.2f} s)", flush=True)
        return errors

    timed("cold: pose + cache GT, joint metrics", *predictions(cols, rng, 0.1), with_pve=False)
    errors = timed("metric path (cached GT, no PVE)", *predictions(cols, rng, 0.1), with_pve=False)
    if n <= 1000:  # the body model's forward pass, for comparison (slow: skipped for larger N)
        timed("metric path + PVE, generic forward pass", *predictions(cols, rng, 0.1))
    errors = timed("metric path + PVE (FastMesh, gendered)", *predictions(cols, rng, 0.1), fast_pve=True)
    t0 = time.perf_counter()
    result = summarise(bench, errors)
    print(f"  N={n:6d}  {'summarise (balanced metrics)':44s} {n / (time.perf_counter() - t0):10.0f} samples/s")
    if report:
        t0 = time.perf_counter()
        write_report(tmp / "report", result, errors, store.read("source_key"))
        print(f"  N={n:6d}  write_report (CSV, JSON, plots)             {time.perf_counter() - t0:10.2f} s")
    print(f"  N={n:6d}  -> PA-MPJPE {result['PA-MPJPE']:.1f} mm, PVE {result['PVE']:.1f} mm, "
          f"bMPJPE All {result['balanced']['bMPJPE']['All']:.1f} mm, 3DPCK {result['3DPCK']:.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", default="1000,10000", help="comma-separated sample counts N")
    p.add_argument("--batch", type=int, default=1024, help="body-model batch (GT meshes, PVE)")
    p.add_argument("--device", default="cpu", help="scoring and network device (cuda on a GPU machine)")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: N = 64 and 256, batch 32, network batch 2 (checks the script runs; figures meaningless)")
    args = p.parse_args()
    sizes = [int(s) for s in args.samples.split(",") if s.strip()]
    if args.smoke:
        sizes, args.batch = [64, 256], 32
    device = torch.device(args.device)
    print(f"machine: {machine_line()}; device {device}; {torch.get_num_threads()} threads")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    models = BodyModels(None, device)
    reference, _ = reference_mesh(models)
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(sizes):
            measure(n, args, device, models, reference, rng, Path(tmp), report=i == 0)
    clear_ground_truth_cache()
    import timm

    net = timm.create_model("resnet50", num_classes=0).eval().to(device)
    x = torch.randn(2 if args.smoke else 64, 3, 224, 224, device=device)
    with torch.no_grad():
        net(x)
        _sync(device)
        t0 = time.perf_counter()
        net(x)
        _sync(device)
    print(f"  ResNet-50 forward (fp32, batch {len(x)}, {device})  {len(x) / (time.perf_counter() - t0):6.1f} images/s")


if __name__ == "__main__":
    main()
