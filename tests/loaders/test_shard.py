"""Sharding real COCO fixture images and generated pinhole scenes."""

from __future__ import annotations

import io
import json
import tarfile

import cv2
import numpy as np
import pytest

from hmr.core.errors import HmrError
from hmr.core.schema import open_store
from hmr.core import crop as geo
from hmr.core.geometry import project_points
from loaders.shard import ShardConfig, load_shard_set, plan_shards, shard_store
from loaders.shard_check import verify_shard_set
from tests.fixtures.loaders import COCO_DIR, coco_store, pinhole_store


@pytest.fixture(scope="module")
def coco_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("coco")
    store = coco_store(out)
    return store, shard_store(store, out / "shards", ShardConfig(samples_per_shard=4), progress=False)


def _members(tar_path):
    samples = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            key, ext = m.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tf.extractfile(m).read()
    return samples


def test_index_lists_every_shard_with_counts_and_checksums(coco_shards):
    store_path, set_dir = coco_shards
    store = open_store(store_path)
    sset = load_shard_set(set_dir)
    assert sset.name == "coco-fixture-train" and sset.dataset == "coco-fixture"
    assert sset.num_samples == len(store) == 12
    assert [s["num_samples"] for s in sset.shards] == [4, 4, 4]
    assert [s["rows"] for s in sset.shards] == [[0, 4], [4, 8], [8, 12]]
    assert verify_shard_set(set_dir) == []
    assert sset.index["skipped"] == []


def test_crops_hold_the_person_and_labels_map_back_to_the_image(coco_shards):
    store_path, set_dir = coco_shards
    store = open_store(store_path)
    sset = load_shard_set(set_dir)
    samples = {}
    for url in sset.urls:
        samples.update(_members(url))
    assert len(samples) == len(store)
    for key, m in samples.items():
        meta = json.loads(m["json"])
        row = store[meta["index"]]
        assert key == f"coco-fixture-train_{meta['index']:09d}"
        assert meta["source_key"] == row["source_key"] and meta["dataset"] == "coco-fixture"
        assert not any(ext.endswith(("pyd", "pickle", "pth")) for ext in m)
        kp2 = np.load(io.BytesIO(m["kp.npy"]), allow_pickle=False)[:, :3]
        lab = row["keypoints2d"][:, 2] > 0
        back = geo.apply_points(np.asarray(meta["crop_to_image"]), kp2[lab, :2])
        np.testing.assert_allclose(back, row["keypoints2d"][lab, :2], atol=1e-2)
        crop = cv2.imdecode(np.frombuffer(m["jpg"], np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape == (256, 256, 3)
        # The crop's pixels are the image's pixels at the mapped places (JPEG tolerance).
        image = cv2.imread(str(COCO_DIR / row["image_path"]))
        grid = np.stack(np.meshgrid(np.arange(64, 192, 16), np.arange(64, 192, 16)), -1).reshape(-1, 2)
        src = np.round(geo.apply_points(np.asarray(meta["crop_to_image"]), grid)).astype(int)
        ok = (src[:, 0] >= 0) & (src[:, 1] >= 0) & (src[:, 0] < image.shape[1]) & (src[:, 1] < image.shape[0])
        diff = np.abs(crop[grid[ok, 1], grid[ok, 0]].astype(int) - image[src[ok, 1], src[ok, 0]].astype(int))
        assert np.median(diff) < 25
        assert meta["box_side_px"] == pytest.approx(256 / 1.25)


def test_intrinsics_follow_the_crop(tmp_path):
    store_path = pinhole_store(tmp_path, n=6)
    set_dir = shard_store(store_path, tmp_path / "shards", ShardConfig(samples_per_shard=6), progress=False)
    store = open_store(store_path)
    for key, m in _members(load_shard_set(set_dir).urls[0]).items():
        meta = json.loads(m["json"])
        kp = np.load(io.BytesIO(m["kp.npy"]), allow_pickle=False)
        kp2, kp3 = kp[:, :3], kp[:, 3:]
        lab = kp2[:, 2] > 0
        np.testing.assert_allclose(project_points(kp3[lab, :3], np.asarray(meta["cam_intrinsics"])), kp2[lab, :2],
                                   atol=1e-2)
        row = store[meta["index"]]
        for name in ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl"):
            np.testing.assert_array_equal(np.asarray(meta[name], np.float32), row[name])  # exact round trip
        np.testing.assert_array_equal(kp3, row["keypoints3d"])


def test_rerun_skips_finished_shards_and_redoes_missing_ones(tmp_path):
    store_path = coco_store(tmp_path)
    cfg = ShardConfig(samples_per_shard=5)
    set_dir = shard_store(store_path, tmp_path / "s", cfg, progress=False)
    first = {p.name: p.stat().st_mtime_ns for p in set_dir.glob("*.tar")}
    (set_dir / "shard-000001.tar").unlink()
    shard_store(store_path, tmp_path / "s", cfg, progress=False)
    second = {p.name: p.stat().st_mtime_ns for p in set_dir.glob("*.tar")}
    assert second["shard-000000.tar"] == first["shard-000000.tar"]
    assert second["shard-000002.tar"] == first["shard-000002.tar"]
    assert "shard-000001.tar" in second
    assert json.loads((set_dir / "index.json").read_text())["last_run"]["shards_written"] == 1
    assert verify_shard_set(set_dir) == []
    # A different crop setting is a different plan: everything is rewritten.
    shard_store(store_path, tmp_path / "s", ShardConfig(samples_per_shard=5, crop_size=128), progress=False)
    assert json.loads((set_dir / "index.json").read_text())["last_run"]["shards_written"] == 3


def test_unreadable_image_is_skipped_and_listed_or_fails_in_strict_mode(tmp_path):
    store_path = pinhole_store(tmp_path, n=5)
    img_dir = tmp_path / "images-pinhole"
    (img_dir / "00002.png").write_bytes(b"not an image")
    set_dir = shard_store(store_path, tmp_path / "s", ShardConfig(samples_per_shard=10), progress=False)
    sset = load_shard_set(set_dir)
    assert sset.num_samples == 4
    assert [s["index"] for s in sset.index["skipped"]] == [2]
    assert "00002.png" in sset.index["skipped"][0]["reason"]
    with pytest.raises(HmrError, match="record 2"):
        shard_store(store_path, tmp_path / "strict", ShardConfig(samples_per_shard=10, strict=True),
                    progress=False)


def test_verify_reports_truncated_and_altered_shards(tmp_path):
    store_path = coco_store(tmp_path)
    set_dir = shard_store(store_path, tmp_path / "s", ShardConfig(samples_per_shard=6), progress=False)
    tar0 = set_dir / "shard-000000.tar"
    tar0.write_bytes(tar0.read_bytes()[:-5000])
    tar1 = set_dir / "shard-000001.tar"
    data = bytearray(tar1.read_bytes())
    data[2000] ^= 0xFF
    tar1.write_bytes(bytes(data))
    problems = verify_shard_set(set_dir)
    assert any("shard-000000.tar" in p and "truncated" in p for p in problems)
    assert any("shard-000001.tar" in p and "sha256" in p for p in problems)


def test_shard_size_from_byte_budget(tmp_path):
    store_path = coco_store(tmp_path)
    set_dir = shard_store(store_path, tmp_path / "s", ShardConfig(max_shard_bytes=100_000), progress=False)
    sset = load_shard_set(set_dir)
    assert len(sset.shards) > 1
    assert all(s["bytes"] < 200_000 for s in sset.shards)
    assert plan_shards(10, 4) == [(0, 4), (4, 8), (8, 10)]


@pytest.mark.slow
def test_parallel_sharding_matches_serial(tmp_path):
    store_path = pinhole_store(tmp_path, n=12)
    serial = load_shard_set(shard_store(store_path, tmp_path / "a", ShardConfig(samples_per_shard=3),
                                        progress=False))
    parallel = load_shard_set(shard_store(store_path, tmp_path / "b", ShardConfig(samples_per_shard=3, workers=2),
                                          progress=False))
    assert [s["sha256"] for s in serial.shards] == [s["sha256"] for s in parallel.shards]


def test_a_shorter_plan_removes_the_old_extra_shards(tmp_path):
    store_path = coco_store(tmp_path)
    set_dir = shard_store(store_path, tmp_path / "s", ShardConfig(samples_per_shard=2), progress=False)
    assert len(list(set_dir.glob("*.tar"))) == 6
    shard_store(store_path, tmp_path / "s", ShardConfig(samples_per_shard=6), progress=False)
    assert sorted(p.name for p in set_dir.glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar"]
    assert verify_shard_set(set_dir) == []
