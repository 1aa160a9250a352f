"""LIP pose CSVs: joints by anatomy, nan = not labelled, both v codes labelled and kept,
keypoint boxes, image sizes from headers, both unzip layouts, bad rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.lip import csv_line, write_lip

# The order in LIP's pose README (R_Ankle, R_Knee, R_Hip, L_Hip, L_Knee, L_Ankle, B_Pelvis,
# B_Spine, B_Neck, B_Head, R_Wrist, R_Elbow, R_Shoulder, L_Shoulder, L_Elbow, L_Wrist), as
# anatomical names (MPII's definitions: B_Spine = thorax, B_Neck = upper neck, B_Head = head top).
LIP_NAMES = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
             "pelvis", "thorax", "neck", "head_top", "right_wrist", "right_elbow",
             "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"]


def test_joints_land_in_their_anatomical_slots(tmp_path):
    rows = write_lip(tmp_path / "lip")
    _, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train")
    assert len(store) == 2  # the one-joint row cannot make a box: dropped (min_keypoints=2)
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    for k, (name, raw, hw) in enumerate(rows[:2]):
        assert store.read("image_path")[k] == f"TrainVal_images/train_images/{name}"
        np.testing.assert_array_equal(store.read("image_hw")[k], hw)
        assert store.read("source_key")[k] == f"lip_train_set.csv:{k + 1}"
        np.testing.assert_array_equal(vis[k], np.where(np.isnan(raw[:, 2]), -1, raw[:, 2]))
        for j, joint in enumerate(LIP_NAMES):
            if np.isnan(raw[j, 0]):  # nan,nan,nan: not labelled
                np.testing.assert_array_equal(kps[k, slot(joint)], [0, 0, 0])
            else:  # v = 0 and v = 1 both placed by the annotators: labelled
                np.testing.assert_allclose(kps[k, slot(joint)], [*raw[j, :2], 1.0])
    assert set(np.unique(vis[0])) == {0, 1} and (vis[1] == -1).sum() == 4


def test_box_is_labelled_joint_extent_times_1_2(tmp_path):
    rows = write_lip(tmp_path / "lip")
    _, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train")
    for box, (_, raw, _) in zip(store.read("bbox_xywh"), rows):
        xy = raw[~np.isnan(raw[:, 0]), :2]
        lo, hi = xy.min(0), xy.max(0)
        np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, atol=1e-4)
        np.testing.assert_allclose(box[2:], 1.2 * (hi - lo), atol=1e-4)


def test_val_split_and_nested_image_folder(tmp_path):
    write_lip(tmp_path / "lip", "train")
    rows = write_lip(tmp_path / "lip", "val", nested=True)
    _, store = convert("lip", tmp_path / "lip", tmp_path / "out", "val")
    assert store.read("image_path")[0] == f"TrainVal_images/TrainVal_images/val_images/{rows[0][0]}"
    np.testing.assert_array_equal(store.read("image_hw")[1], rows[1][2])


def test_min_keypoints_option(tmp_path):
    write_lip(tmp_path / "lip")
    _, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train", min_keypoints=13)
    assert list(store.read("source_key")) == ["lip_train_set.csv:1"]
    with pytest.raises(DatasetFormatError, match="fewer than two labelled joints"):
        convert("lip", tmp_path / "lip", tmp_path / "out2", "train", min_keypoints=1)


@pytest.mark.parametrize("line,reason", [
    ("bad.jpg," + ",".join(["1"] * 47), "48 columns, expected 49"),
    ("bad.jpg," + ",".join(["3", "4", "2"] * 16), "visibility 2 at joint 0"),
    ("bad.jpg," + ",".join(["3", "x", "0"] * 16), "not a number"),
    ("../up.jpg," + ",".join(["3", "4", "0"] * 16), "not a file name"),
])
def test_bad_row_names_file_and_line(tmp_path, line, reason):
    write_lip(tmp_path / "lip", extra_lines=(line,))
    with pytest.raises(DatasetFormatError, match=reason) as err:
        convert("lip", tmp_path / "lip", tmp_path / "out", "train")
    assert err.value.path.endswith("lip_train_set.csv") and err.value.record == "lip_train_set.csv:4"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 2
    assert json.loads(result.skipped_report.read_text())[0]["record"] == "lip_train_set.csv:4"


def test_missing_image_and_missing_csv(tmp_path):
    rows = write_lip(tmp_path / "lip", skip_images=("77_471474.jpg",))
    result, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("source_key")) == ["lip_train_set.csv:2"]
    report = json.loads(result.skipped_report.read_text())
    assert report[0]["message"] == "image file is missing" and report[0]["path"].endswith(rows[0][0])
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("lip", tmp_path / "lip", tmp_path / "out", "val")
    assert err.value.path.endswith("lip_val_set.csv")


def test_empty_fields_read_as_nan(tmp_path):
    name, raw, hw = write_lip(tmp_path / "x")[0]
    raw = raw.copy()
    raw[3] = np.nan
    line = csv_line(name, raw).replace("nan", "")
    write_lip(tmp_path / "lip", rows=[(name, raw, hw)])
    (tmp_path / "lip" / "TrainVal_pose_annotations" / "lip_train_set.csv").write_text(line + "\n")
    _, store = convert("lip", tmp_path / "lip", tmp_path / "out", "train")
    np.testing.assert_array_equal(store.read("keypoints2d")[0, slot("left_hip")], [0, 0, 0])
    assert store.read("extra_visibility")[0, 3] == -1
