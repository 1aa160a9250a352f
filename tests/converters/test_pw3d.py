"""3DPW converter: python-2 sequence pickles, camera-frame SMPL through the body model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from converters import pw3d
from converters.driver import run_conversion
from converters.options import ConvertOptions
from hmr.core.geometry import project_points
from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS, SMPL_SOURCES, open_store
from tests.fixtures import converters_3d as fx

GENDER_NAMES = {"m": "male", "f": "female"}


@pytest.fixture(scope="module")
def models():
    return {g: load_body_model(gender=g) for g in ("male", "female")}


def _world_joints(models):
    """jointPositions as 3DPW ships them: the 24 SMPL joints in the world frame, (T, 72)."""
    def joints(person, poses, trans, betas, gender):
        out = _forward(models[GENDER_NAMES[gender]], poses[:, :3], poses[:, 3:], betas, trans)
        return out.joints_smpl24.numpy().reshape(len(poses), 72).astype(np.float64)
    return joints


def _forward(model, orient, body_pose, betas, transl):
    b = len(orient)
    with torch.no_grad():
        return model(global_orient=torch.as_tensor(orient, dtype=torch.float32),
                     body_pose=torch.as_tensor(body_pose, dtype=torch.float32),
                     betas=torch.as_tensor(np.tile(betas, (b, 1)), dtype=torch.float32),
                     transl=torch.as_tensor(transl, dtype=torch.float32))


def _convert(root, out, split="test", skip_bad=False, check_images=True):
    options = ConvertOptions(workers=1, check_images=check_images)
    return run_conversion("pw3d", root, out, split=split, skip_bad=skip_bad, options=options, progress=False)


def test_world_to_camera_moves_the_whole_mesh_rigidly(models):
    """SMPL rotates about the pelvis, not the origin: the translation must compensate."""
    rng = np.random.default_rng(0)
    model = models["female"]
    betas = rng.normal(0, 1, 10)
    poses, trans = rng.normal(0, 0.3, (3, 72)), rng.normal(0, 0.5, (3, 3))
    cams = fx.pw3d_camera_poses(3, rng)
    world = _forward(model, poses[:, :3], poses[:, 3:], betas, trans).vertices.numpy().astype(np.float64)
    orient, transl = pw3d.world_to_camera_smpl(poses[:, :3], trans, pw3d.rest_pelvis(model, betas), cams)
    cam = _forward(model, orient, poses[:, 3:], betas, transl).vertices.numpy()
    expected = np.einsum("bij,bvj->bvi", cams[:, :3, :3], world) + cams[:, None, :3, 3]
    np.testing.assert_allclose(cam, expected, atol=2e-5)
    # the naive translation (R trans + t) is wrong by (R - I) J0: the test can fail
    naive = _forward(model, orient, poses[:, 3:], betas,
                     np.einsum("bij,bj->bi", cams[:, :3, :3], trans) + cams[:, :3, 3]).vertices.numpy()
    assert np.abs(naive - expected).max() > 1e-2


def test_conversion_values(tmp_path, models):
    root = tmp_path / "3dpw"
    rng = np.random.default_rng(1)
    data = fx.write_pw3d_sequence(root, "test", "downtown_walk_00", 5, rng, invalid={1: [0, 3]},
                                  joint_positions=_world_joints(models))
    fx.write_pw3d_sequence(root, "train", "courtyard_box_00", 2, rng, genders=("f",))
    res = _convert(root, tmp_path / "o.zarr")
    cols = open_store(res.store).columns()
    # campose_valid: person 0 all 5 frames, person 1 frames 1, 2, 4
    assert [(int(p), int(f)) for p, f in zip(cols["person_id"], cols["frame_index"])] == \
        [(0, t) for t in range(5)] + [(1, 1), (1, 2), (1, 4)]
    smpl = get_convention("smpl").superset_indices
    h36m = get_convention("h36m").superset_indices
    op18 = get_convention("openpose_18").superset_indices
    for i in range(len(cols["image_path"])):
        p, f = int(cols["person_id"][i]), int(cols["frame_index"][i])
        gender = GENDER_NAMES[data["genders"][p]]
        assert cols["image_path"][i] == f"imageFiles/downtown_walk_00/image_{f:05d}.jpg"
        assert GENDERS[cols["gender"][i]] == gender
        assert cols["smpl_source"][i] == SMPL_SOURCES.index("ground-truth") and cols["has_smpl_transl"][i]
        np.testing.assert_allclose(cols["smpl_body_pose"][i], data["poses"][p][f, 3:], atol=1e-6)
        np.testing.assert_allclose(cols["smpl_betas"][i], data["betas"][p], atol=1e-6)
        np.testing.assert_allclose(cols["cam_extrinsics"][i], data["cam_poses"][f], atol=1e-6)
        # the stored SMPL, through the body model, reproduces the source's joints moved into the camera
        out = _forward(models[gender], cols["smpl_global_orient"][i][None], cols["smpl_body_pose"][i][None],
                       cols["smpl_betas"][i], cols["smpl_transl"][i][None])
        world = data["jointPositions"][p][f].reshape(24, 3)
        R, t = data["cam_poses"][f][:3, :3], data["cam_poses"][f][:3, 3]
        np.testing.assert_allclose(out.joints_smpl24[0].numpy(), world @ R.T + t, atol=1e-4)
        np.testing.assert_allclose(cols["keypoints3d"][i, smpl, :3], world @ R.T + t, atol=1e-4)
        if out.joints_h36m17 is not None:
            np.testing.assert_allclose(cols["keypoints3d"][i, h36m, :3], out.joints_h36m17[0].numpy(), atol=1e-4)
        # 3D joints projected with the sample's intrinsics land on its 2D keypoints
        kp3 = cols["keypoints3d"][i]
        has = kp3[:, 3] > 0
        proj = project_points(kp3[has, :3].astype(np.float64), cols["cam_intrinsics"][i].astype(np.float64))
        np.testing.assert_allclose(proj, cols["keypoints2d"][i, has, :2], atol=0.05)
        # poses2d (3, 18) -> OpenPose slots, with their confidences
        np.testing.assert_allclose(cols["keypoints2d"][i, op18], data["poses2d"][p][f].T, atol=1e-3)
        box = cols["extra_bbox_xywh_all_points"][i]  # the pre-v2 box: every labelled point
        xy = cols["keypoints2d"][i, cols["keypoints2d"][i, :, 2] > 0, :2]
        assert (xy >= box[:2] - 1e-3).all() and (xy <= box[:2] + box[2:] + 1e-3).all()
        assert tuple(cols["image_hw"][i]) == (1920, 1080)


def _spin_box(poses2d_3x18):
    """SPIN's datasets/preprocess/pw3d.py, restated: the confident OpenPose points' box, its
    centre and scale = 1.2 max(w, h) / 200 (a square of side scale * 200 px)."""
    part = poses2d_3x18.T
    part = part[part[:, 2] > 0]
    lo, hi = part[:, :2].min(0), part[:, :2].max(0)
    return (lo + hi) / 2, 1.2 * (hi - lo).max() / 200


def test_box_is_the_published_openpose_rule(tmp_path, models):
    root = tmp_path / "3dpw"
    rng = np.random.default_rng(4)
    data = fx.write_pw3d_sequence(root, "test", "downtown_walk_00", 3, rng, genders=("m",))
    # Detections disagree with the body: some points have confidence 0 and lie far away.
    poses2d = data["poses2d"][0]
    poses2d[:, 2, 5:9] = 0.0
    poses2d[:, :2, 5:9] = 1800.0
    poses2d[2, 2, 1:] = 0.0  # frame 2: one confident point only -> no box from detections
    fx.write_py2_pickle(root / "sequenceFiles" / "test" / "downtown_walk_00.pkl", data)
    cols = open_store(_convert(root, tmp_path / "o.zarr").store).columns()
    for i, frame in enumerate(cols["frame_index"]):
        box = cols["bbox_xywh"][i].astype(np.float64)
        centre, side = box[:2] + box[2:] / 2, box[2:].max()  # the square our crop (scale 1.0) cuts
        if frame == 2:
            np.testing.assert_allclose(box, cols["extra_bbox_xywh_all_points"][i], atol=1e-3)
            continue
        spin_centre, spin_scale = _spin_box(poses2d[frame])
        np.testing.assert_allclose(centre, spin_centre, atol=1e-2)
        np.testing.assert_allclose(side, spin_scale * 200, rtol=1e-5)
        # the old all-points box reaches the body's projected joints, which the detections miss here
        assert np.abs(cols["extra_bbox_xywh_all_points"][i] - box).max() > 1.0


def test_python2_pickles_are_read_and_hostile_ones_refused(tmp_path):
    root = tmp_path / "3dpw"
    fx.write_pw3d_sequence(root, "validation", "outdoors_a_00", 2, np.random.default_rng(2), genders=("f",))
    seq = pw3d.read_sequence(root / "sequenceFiles/validation/outdoors_a_00.pkl")
    assert seq.name == "outdoors_a_00" and seq.people[0].gender == "female"
    assert seq.people[0].poses2d.shape == (2, 18, 3)
    assert _convert(root, tmp_path / "v.zarr", split="validation").num_samples == 2
    evil = root / "sequenceFiles/validation/zzz.pkl"
    evil.write_bytes(fx.evil_pickle_bytes())
    with pytest.raises(UnsafePickleError) as err:
        _convert(root, tmp_path / "v2.zarr", split="validation")
    assert "os.system" in str(err.value) and str(evil) in str(err.value)
    assert not (tmp_path / "v2.zarr").exists()


def test_bad_input(tmp_path):
    root = tmp_path / "3dpw"
    rng = np.random.default_rng(3)
    data = fx.write_pw3d_sequence(root, "test", "seq_a", 4, rng, genders=("m",))
    data["poses"][0][2, 5] = np.nan
    fx.write_py2_pickle(root / "sequenceFiles/test/seq_a.pkl", data)
    (root / "imageFiles/seq_a/image_00001.jpg").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetFormatError) as err:
        _convert(root, out / "o.zarr")
    assert "sequenceFiles/test/seq_a.pkl" in str(err.value) and "person 0 frame 2" in str(err.value)
    assert list(out.iterdir()) == []
    res = _convert(root, out / "o.zarr", skip_bad=True)
    assert res.num_samples == 2
    report = json.loads(res.skipped_report.read_text())
    assert {r["record"] for r in report} == {"person 0 frame 2", "sequenceFiles/test/seq_a.pkl:person 0:frame 1"}
    assert any("image file is missing" in r["message"] for r in report)
    # without image checks the missing frame is converted with the nominal size
    assert _convert(root, out / "p.zarr", skip_bad=True, check_images=False).num_samples == 3
    # a truncated pickle is an error naming the file
    fx.truncate(root / "sequenceFiles/test/seq_a.pkl", 0.5)
    with pytest.raises(UnsafePickleError, match="seq_a.pkl"):
        _convert(root, out / "q.zarr")
    # a missing split folder too
    with pytest.raises(DatasetFormatError, match="sequenceFiles/train"):
        _convert(root, out / "r.zarr", split="train")
