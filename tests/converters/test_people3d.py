"""3DPeople converter: skeleton text files, a camera fitted per folder, sides by anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import project_points
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.people3d import ROW, write_people3d

# the publisher's 1-based ids (skeleton_joints_ids_order.txt) of a few joints
PUBLISHED = {"Hips": 1, "Neck": 5, "LeftArm": 11, "LeftHand": 13, "RightHand": 37, "RightUpLeg": 58,
             "LeftFoot": 65}


def test_published_order_and_slots():
    conv = get_convention("people3d")
    for name, one_based in PUBLISHED.items():
        assert ROW[name] == one_based - 1
    assert conv.joint_names[conv.native_names.index("LeftHand")] == "left_wrist"
    assert conv.joint_names[conv.native_names.index("Hips")] == "pelvis"
    assert "LeftHandThumb1" not in conv.native_names and "HeadTop_End" not in conv.native_names


def test_left_wrist_and_legs_by_anatomy_in_camera_metres(tmp_path):
    truth = write_people3d(tmp_path / "raw", "woman17", cameras=(1, 2), frames=3)
    result, store = convert("people3d", tmp_path / "raw", tmp_path / "out", "train")
    assert len(store) == 6 and not result.skipped  # 0000.txt (rest frame) is not a sample
    for i in range(len(store)):
        s = store[i]
        cam = int(s["sequence"][-2:])
        t = truth[cam][s["frame_index"] - 1]
        assert s["image_path"] == f"rgb/woman17/02_04_jump/camera{cam:02d}/render_a/{s['frame_index']:04d}.jpg"
        # the row the publisher calls LeftHand is the person's left wrist, camera frame, metres
        np.testing.assert_allclose(s["keypoints3d"][slot("left_wrist"), :3], t["true_cam_m"][ROW["LeftHand"]],
                                   atol=1e-4)
        # the rows named RightUpLeg hold the person's left hip here: sides follow the anatomy
        np.testing.assert_allclose(s["keypoints3d"][slot("left_hip"), :3], t["true_cam_m"][ROW["LeftUpLeg"]],
                                   atol=1e-4)
        np.testing.assert_allclose(s["keypoints2d"][slot("left_ankle"), :2], t["true_px"][ROW["LeftFoot"]],
                                   atol=1e-3)
        assert s["extra_people3d_legs_swapped"] == 1 and s["extra_people3d_arms_swapped"] == 0
        # a person facing the camera: their left on the image's right
        assert s["keypoints2d"][slot("left_wrist"), 0] > s["keypoints2d"][slot("right_wrist"), 0]
        both = s["keypoints3d"][:, 3] > 0
        proj = project_points(s["keypoints3d"][both, :3].astype(np.float64), s["cam_intrinsics"].astype(np.float64))
        assert np.abs(proj - s["keypoints2d"][both, :2]).max() < 0.01
        assert s["keypoints2d"][slot("left_thumb_1"), 2] == 0  # fingers keep no slot
        assert s["extra_people3d_keypoints3d_67"].shape == (67, 3)
        assert GENDERS[s["gender"]] == "female" and s["subject_id"] == "woman17"
        assert s["has_extrinsics"] and s["extra_people3d_world_mirrored"] == 0


def test_a_mirrored_world_gives_the_same_camera_frame(tmp_path):
    plain = write_people3d(tmp_path / "a", "man02", cameras=(1,), frames=3)
    write_people3d(tmp_path / "b", "man02", cameras=(1,), frames=3, mirror_world=True, header=True)
    _, a = convert("people3d", tmp_path / "a", tmp_path / "out_a", "train")
    _, b = convert("people3d", tmp_path / "b", tmp_path / "out_b", "train")
    for i in range(3):
        np.testing.assert_allclose(a[i]["keypoints3d"], b[i]["keypoints3d"], atol=1e-4)
        np.testing.assert_allclose(b[i]["keypoints3d"][slot("left_wrist"), :3],
                                   plain[1][i]["true_cam_m"][ROW["LeftHand"]], atol=1e-4)
    assert b[0]["extra_people3d_world_mirrored"] == 1 and not b[0]["has_extrinsics"]


def test_splits_follow_the_subject_numbers(tmp_path):
    write_people3d(tmp_path / "raw", "woman33", cameras=(1,), frames=2)
    write_people3d(tmp_path / "raw", "man34", cameras=(1,), frames=2, renders=("r1", "r2"))
    _, train = convert("people3d", tmp_path / "raw", tmp_path / "out", "train")
    _, test = convert("people3d", tmp_path / "raw", tmp_path / "out2", "test")
    assert {train[i]["subject_id"] for i in range(len(train))} == {"woman33"}
    assert len(test) == 4 and GENDERS[test[0]["gender"]] == "male"  # one sample per render folder


def test_bad_files_and_disagreeing_folders(tmp_path):
    raw = tmp_path / "raw"
    write_people3d(raw, "woman05", cameras=(1, 2), frames=3)
    bad = raw / "skeleton/woman05/02_04_jump/camera01/0002.txt"
    bad.write_text("\n".join(bad.read_text().splitlines()[:60]) + "\n")
    cam2 = raw / "skeleton/woman05/02_04_jump/camera02"
    for f in sorted(cam2.glob("000[1-3].txt")):  # 2-D no longer the projection of the 3-D
        rows = np.loadtxt(f)
        rows[:, :2] = np.random.default_rng(0).uniform(0, 600, (67, 2))
        np.savetxt(f, rows, fmt="%.6f")
    with pytest.raises(DatasetFormatError, match="0002.txt"):
        convert("people3d", raw, tmp_path / "out", "train")
    result, store = convert("people3d", raw, tmp_path / "out2", "train", skip_bad=True)
    assert len(store) == 2 and len(result.skipped) == 2
    messages = " | ".join(f"{b.path}: {b.message}" for b in result.skipped)
    assert "expected 67 rows" in messages and "camera02: 2-D and 3-D disagree" in messages


def test_missing_skeleton_folder_names_it(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(DatasetFormatError, match="skeleton"):
        convert("people3d", tmp_path / "raw", tmp_path / "out", "train")


def test_a_degenerate_folder_is_a_bad_record_not_a_crash(tmp_path):
    raw = tmp_path / "raw"
    write_people3d(raw, "man07", cameras=(1, 2), frames=2)
    for f in (raw / "skeleton/man07/02_04_jump/camera02").glob("000[12].txt"):
        np.savetxt(f, np.zeros((67, 5)), fmt="%.1f")
    result, store = convert("people3d", raw, tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 2 and "camera02" in result.skipped[0].path
