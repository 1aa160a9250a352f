"""A small store with real JPEG images on disk, and a review server on a free loopback port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from hmr.core.keypoints import get_convention
from hmr.core.schema import StoreWriter
from hmr.core.schema.fields import SMPL_SOURCES

N = 24
H, W = 120, 160
KNOWN = 5  # a sample whose left shoulder sits at a known pixel
KNOWN_PX = (70, 40)  # x, y


def make_store(tmp: Path, n: int = N, name: str = "demo", order=None) -> Path:
    """A store of ``n`` samples (source keys ``ann:1000`` ...); ``order``: the samples (by
    number) in the order to write them, e.g. another conversion of the same source that
    reorders or drops samples (each sample's values depend on its number only)."""
    images = tmp / f"{name}-images"
    images.mkdir(parents=True, exist_ok=True)
    conv = get_convention("coco")
    path = tmp / f"{name}_val.zarr"
    with StoreWriter(path, dataset=name, split="val", converter="test", converter_version="1",
                     image_root=images, keypoint_convention="coco") as w:
        for i in (range(n) if order is None else order):
            rng = np.random.default_rng(i)
            rel = f"sub/img_{i:03d}.jpg"
            (images / "sub").mkdir(exist_ok=True)
            cv2.imwrite(str(images / rel), np.full((H, W, 3), 90, np.uint8))
            kp = np.zeros((conv.num_joints, 3), np.float32)
            labelled = 3 + i % 10
            kp[:labelled, 0] = rng.uniform(20, 140, labelled)
            kp[:labelled, 1] = rng.uniform(20, 100, labelled)
            kp[:labelled, 2] = 1
            if i == KNOWN:
                kp[conv.joint_names.index("left_shoulder")] = (*KNOWN_PX, 1)
            kp3 = np.zeros((conv.num_joints, 4), np.float32)
            if i % 3 == 0:
                kp3[:, 2], kp3[:, 3] = 3.0, 1
            has_smpl = i % 2 == 0
            k = np.array([[200, 0, W / 2], [0, 200, H / 2], [0, 0, 1]], np.float32)
            w.add({"image_path": rel, "image_hw": np.array([H, W], np.int32),
                   "bbox_xywh": np.array([30, 10, 80, 100], np.float32), "keypoints2d": kp, "keypoints3d": kp3,
                   "has_smpl": has_smpl, "smpl_source": SMPL_SOURCES.index("eft") if has_smpl else 0,
                   "smpl_body_pose": (rng.normal(0, 0.2 * (i % 4), 69) if has_smpl else np.zeros(69)).astype(np.float32),
                   "has_smpl_transl": has_smpl, "smpl_transl": np.array([0, 0.2, 4.0], np.float32),
                   "smpl_global_orient": np.array([np.pi, 0, 0], np.float32),
                   "has_intrinsics": True, "cam_intrinsics": k,
                   "source_key": f"ann:{1000 + i}", "extra_fit_error": np.float32(i * 1.5)})
    return path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def eval_dir(store_path, tmp_path_factory) -> Path:
    """An 'hmr evaluate' output folder written by the evaluation's own report writer."""
    from hmr.evaluation.benchmarks import SampleErrors
    from hmr.evaluation.report import per_sample_csv

    d = tmp_path_factory.mktemp("eval")
    rows = np.arange(0, N, 2)
    errors = SampleErrors(index=rows, mpjpe_mm=rows * 10.0, pa_mpjpe_mm=rows * 7.0 + 1,
                          valid_joints=np.full(len(rows), 14))
    (d / "per_sample.csv").write_text(per_sample_csv(errors, np.array([f"ann:{1000 + r}" for r in rows])))
    (d / "results.json").write_text(json.dumps({"benchmark": "3dpw", "store": str(store_path)}))
    return d


@pytest.fixture(scope="module")
def server(store_path, eval_dir):
    from hmr.review.index import ReviewIndex
    from hmr.review.server import serve_in_thread

    srv, thread = serve_in_thread(ReviewIndex([store_path], [eval_dir]), 0)
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str):
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def post_json(url: str, obj) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
