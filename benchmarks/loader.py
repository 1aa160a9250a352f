"""Input-pipeline throughput per CPU core: our crop shards vs reading full images per sample.

Both pipelines produce the same training batch (224² crops, flip / rotation / scale /
channel-noise augmentation, ImageNet normalisation, keypoints moved with the image) from the
same real fixture images (COCO, MPII, Human3.6M 1000², MPI-INF-3DHP 2048²):

- baseline (the MMHuman3D / SPIN way): open the full original image for every sample,
  decode it, compute the crop affine from the box, warp to 224², augment, collate;
- ours: ``hmr shard`` once (256² JPEG crops), then :class:`loaders.stream.ShardStream`
  (decode crop, one warp for all geometric augmentations, colour noise, collate).

One process, one OpenCV / torch thread, timed in process CPU seconds (``time.process_time``):
figures are samples per CPU-second, i.e. per core, and stay meaningful on a busy machine.
Also prints shard-writing throughput (CPU-seconds of the writing process, workers=1). Run: ``.venv/bin/python benchmarks/loader.py [--samples 96]``.

Feeding target: one H100 trains ResNet-50 at ≈ 2 × 2,470 img/s (NVIDIA's published A100-80GB
mixed-precision ResNet-50 training figure, DeepLearningExamples; H100 taken as 2× A100, an upper
bound for HMR-ResNet-50 at batch 64). With 16 cores that needs ≈ 310 samples/s per core.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmr.core.keypoints import convert_keypoints, flip_permutation  # noqa: E402
from hmr.core.schema import StoreWriter  # noqa: E402
from hmr.core import crop as geo  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402
from loaders.augment import AugmentConfig, channel_gains, draw_geometry  # noqa: E402
from loaders.shard import ShardConfig, load_shard_set, shard_store  # noqa: E402
from loaders.batch import collate  # noqa: E402
from loaders.stream import EpochLoader, ShardStream, StreamConfig  # noqa: E402

from tests.fixtures.paths import MMPOSE_SAMPLES as FIX  # noqa: E402  (the tests' real sample images)
H100_IMG_PER_S = 2 * 2470
CORES = 16
OUT = 224


def fixture_rows() -> dict[str, list[dict]]:
    """Real images with a person box each, grouped by source (keypoints where published)."""
    coco = json.loads((FIX / "coco" / "test_coco.json").read_text())
    images = {im["id"]: im for im in coco["images"]}
    rows: dict[str, list[dict]] = {"coco": [], "mpii": [], "h36m": [], "mpi_inf_3dhp": []}
    for ann in coco["annotations"]:
        if ann["num_keypoints"]:
            im = images[ann["image_id"]]
            kp = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
            kp[:, 2] = kp[:, 2] > 0
            rows["coco"].append({"image_path": f"coco/{im['file_name']}", "bbox_xywh": ann["bbox"],
                                 "keypoints2d": convert_keypoints(kp, "coco", "superset")[0]})
    for rec in json.loads((FIX / "mpii" / "test_mpii.json").read_text()):
        side = rec["scale"] * 200 / 1.25
        c = rec["center"]
        rows["mpii"].append({"image_path": f"mpii/{rec['image']}",
                             "bbox_xywh": [c[0] - side / 2, c[1] - side / 2, side, side]})
    for group, pattern in (("h36m", "h36m/*/*/*.jpg"), ("mpi_inf_3dhp", "mpi_inf_3dhp/*.jpg")):
        for p in sorted(FIX.glob(pattern)):
            h, w = cv2.imread(str(p)).shape[:2]
            side = 0.45 * min(h, w)  # a standing person fills about half the frame
            rows[group].append({"image_path": str(p.relative_to(FIX)),
                                "bbox_xywh": [w / 2 - side / 2, h / 2 - side / 2, side, side]})
    for group in rows:
        for r in rows[group]:
            r["image_hw"] = cv2.imread(str(FIX / r["image_path"])).shape[:2]
    return rows


def write_store(path: Path, rows: list[dict], n: int) -> Path:
    with StoreWriter(path, dataset=path.stem, split="train", converter="benchmarks.loader",
                     converter_version="1", image_root=str(FIX)) as w:
        for i in range(n):
            w.add({**rows[i % len(rows)], "source_key": str(i)})
    return path


def baseline_batches(rows: list[dict], n: int, batch: int, perm: np.ndarray, faithful: bool) -> int:
    """Per sample: read + decode the full image, augment, crop/warp to 224², collate.

    ``faithful``: MMHuman3D's train pipeline order (hmr-benchmarks configs): LoadImageFromFile →
    RandomChannelNoise (cv2.multiply on the full image) → RandomHorizontalFlip (full image) →
    GetRandomScaleRotation → MeshAffine (warp) → Normalize. Otherwise a lean variant that only
    decodes the full image and does all other work on the 224² crop, as we do.
    """
    cfg, rng = AugmentConfig(), np.random.default_rng(0)
    items = []
    done = 0
    for i in range(n):
        r = rows[i % len(rows)]
        image = cv2.cvtColor(cv2.imread(str(FIX / r["image_path"])), cv2.COLOR_BGR2RGB)
        gains = channel_gains(cfg.channel_noise, rng)
        d = draw_geometry(cfg, rng)
        center, side = geo.box_to_square(np.asarray(r["bbox_xywh"]), 1.2)
        kp = r.get("keypoints2d", np.zeros((len(perm), 3), np.float32)).copy()
        if faithful:
            image = cv2.multiply(image, np.append(gains, 0.0))  # full-image channel noise
            if d.flip:
                image = np.ascontiguousarray(image[:, ::-1])  # full-image flip
                center = np.array([image.shape[1] - 1 - center[0], center[1]])
                kp[:, 0] = image.shape[1] - 1 - kp[:, 0]
                kp = kp[perm]
            gains = np.ones(3)
        affine = geo.square_affine(center, side * d.scale, OUT, d.rotation_deg)
        crop = geo.warp(image, affine, OUT)
        kp[:, :2] = geo.apply_points(affine, kp[:, :2])
        if d.flip and not faithful:
            crop = np.ascontiguousarray(crop[:, ::-1])
            kp[:, 0] = OUT - 1 - kp[:, 0]
            kp = kp[perm]
        item = _baseline_item(crop, kp)
        item["gains"] = gains  # (remaining) colour noise + normalisation: the same collate as ours
        items.append(item)
        if len(items) == batch:
            collate(items)
            done += len(items)
            items = []
    return done


def _baseline_item(crop: np.ndarray, kp: np.ndarray) -> dict:
    k = len(kp)
    z = np.zeros
    return {"img": crop, "keypoints2d": kp, "keypoints3d": z((k, 4), np.float32),
            "smpl_global_orient": z(3, np.float32), "smpl_body_pose": z(69, np.float32),
            "smpl_betas": z(10, np.float32), "has_smpl": False, "smpl_transl": z(3, np.float32),
            "has_smpl_transl": False, "cam_intrinsics": z((3, 3), np.float32), "has_intrinsics": False,
            "crop_to_image": z((2, 3), np.float32), "image_hw": z(2, np.int32), "gender": 0, "key": "",
            "dataset": "", "aug_rotation": np.float32(0.0), "aug_flip": False}


def ours(set_dir: Path, n_batches: int, batch: int, device_norm: bool = True) -> tuple[int, float]:
    sset = load_shard_set(set_dir)
    cfg = StreamConfig(out_size=OUT, batch_size=batch, shuffle_buffer=64, seed=0, normalise_on_device=device_norm)
    loader = EpochLoader(ShardStream([(sset, 1.0)], cfg), n_batches + 1)
    it = iter(loader)
    next(it)  # fill the shuffle buffer outside the timing
    t0 = time.process_time()
    count = sum(len(b["key"]) for b in it)
    return count, time.process_time() - t0


def best_rate(fn, repeats: int) -> tuple[float, float]:
    """(samples, CPU seconds) of the fastest of ``repeats`` runs (the least disturbed one)."""
    runs = [fn() for _ in range(repeats)]
    return min(runs, key=lambda r: r[1] / r[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=96, help="samples per source for each measurement")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs per measurement")
    ap.add_argument("--normalise", choices=("device", "loader"), default="device",
                    help="where ours normalises the image: on the training device from a uint8 batch, as "
                         "training does (default; not timed here), or in the loader process (float32 batch)")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 8 samples per source, batch 4, one run (checks the script runs; figures meaningless)")
    args = ap.parse_args()
    if args.smoke:
        args.samples, args.batch, args.repeats = 8, 4, 1
    if not FIX.is_dir():
        raise SystemExit(f"the loader benchmark reads the test suite's real sample images: {FIX} is missing "
                         "(set HMR_SHARED_FIXTURES to the folder holding mmpose-samples/)")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    perm = flip_permutation("superset")
    rows = fixture_rows()
    n, b = args.samples, args.batch
    print(f"loader benchmark: samples per CPU-second (one core), {OUT}² output, batch {b}, "
          f"{n} samples per source, best of {args.repeats}, ours normalised on the {args.normalise}; "
          f"{machine_line(1)}")
    print(f"{'source':14s} {'image':>11s} {'shard write':>12s} {'MMHuman3D':>10s} {'lean base':>10s} "
          f"{'ours':>7s} {'vs MMH3D':>9s} {'vs lean':>8s}")
    tot = {k: [0.0, 0] for k in ("write", "mmh", "lean", "ours")}
    with tempfile.TemporaryDirectory() as tmp:
        for group, group_rows in rows.items():
            store = write_store(Path(tmp) / f"{group}.zarr", group_rows, n * 3)
            t0 = time.process_time()
            set_dir = shard_store(store, Path(tmp) / "shards", ShardConfig(samples_per_shard=n), progress=False)
            res = {"write": (3 * n, time.process_time() - t0)}
            for name, faithful in (("mmh", True), ("lean", False)):
                def base_run(faithful=faithful):
                    t = time.process_time()
                    return baseline_batches(group_rows, n, b, perm, faithful), time.process_time() - t

                res[name] = best_rate(base_run, args.repeats)
            res["ours"] = best_rate(lambda: ours(set_dir, max(1, n // b), b, args.normalise == "device"),
                                    args.repeats)
            rate = {k: c / t for k, (c, t) in res.items()}
            for k, (c, t) in res.items():
                tot[k][0] += t
                tot[k][1] += c
            hw = group_rows[0]["image_hw"]
            print(f"{group:14s} {hw[1]:>5d}x{hw[0]:<5d} {rate['write']:12.0f} {rate['mmh']:10.0f} "
                  f"{rate['lean']:10.0f} {rate['ours']:7.0f} {rate['ours'] / rate['mmh']:8.1f}x "
                  f"{rate['ours'] / rate['lean']:7.1f}x")
    rate = {k: c / t for k, (t, c) in tot.items()}
    print(f"{'all (equal mix)':26s} {rate['write']:12.0f} {rate['mmh']:10.0f} {rate['lean']:10.0f} "
          f"{rate['ours']:7.0f} {rate['ours'] / rate['mmh']:8.1f}x {rate['ours'] / rate['lean']:7.1f}x")
    ratio = rate["ours"] / rate["mmh"]
    print(f"target >= 4x the MMHuman3D way per core: {'met' if ratio >= 4 else 'NOT met'} ({ratio:.1f}x; "
          f"{rate['ours'] / rate['lean']:.1f}x the lean baseline)")
    need = H100_IMG_PER_S / CORES
    print(f"one H100 (~{H100_IMG_PER_S} img/s, HMR-ResNet-50 upper bound) from {CORES} cores needs {need:.0f} "
          f"samples/s/core; ours gives {rate['ours']:.0f} -> {CORES * rate['ours']:.0f} samples/s "
          f"({'enough' if rate['ours'] >= need else 'NOT enough'})")

if __name__ == "__main__":
    main()
