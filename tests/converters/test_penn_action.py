"""Penn Action: label .mat files + frames, train/test from the 'train' flag, joints by anatomy
(the README's side names are mirrored w.r.t. the data), occluded joints, boxes, the real
label files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.driver import run_conversion
from converters.options import ConvertOptions
from hmr.core.errors import DatasetFormatError
from hmr.core.schema import open_store
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.penn_action import (
    REAL_PENN,
    copy_real_penn_action,
    write_label,
    write_penn_action,
)

# What each label column IS, anatomically. The README calls index 1 "left_shoulder", 2
# "right_shoulder", ...; the data show the opposite sides (in front views index 1 is on the
# image's left, i.e. the person's right, in 96.8% of 31,812 frames over all 2,326 files):
# the converter's docstring has the evidence; test_real_files_by_anatomy re-checks it here.
PENN_DATA_NAMES = ["head_top", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow",
                   "right_wrist", "left_wrist", "right_hip", "left_hip", "right_knee",
                   "left_knee", "right_ankle", "left_ankle"]


def _rows(videos, split):
    flag = 1 if split == "train" else -1
    for name, v in sorted(videos.items()):
        if v["train"] != flag:
            continue
        for t in range(len(v["x"])):
            if v["x"][t].any():
                yield name, t, v


def test_split_comes_from_the_train_flag(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    _, train = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    _, test = convert("penn_action", tmp_path / "penn", tmp_path / "out", "test")
    assert list(train.read("sequence")) == ["0001"] * 4 + ["0003"] * 2
    assert list(train.read("frame_index")) == [0, 1, 2, 3, 0, 1]
    assert list(train.read("image_path"))[:2] == ["frames/0001/000001.jpg", "frames/0001/000002.jpg"]
    # 0002's last frame is all zeros (as 0449.mat's): dropped
    assert list(test.read("source_key")) == ["0002.mat[0]", "0002.mat[1]"]
    np.testing.assert_array_equal(test.read("image_hw"), [videos["0002"]["hw"]] * 2)
    assert set(train.read("extra_action")) == {"tennis_serve"} and train.read("extra_view")[0] == "front"


def test_joints_land_in_their_anatomical_slots(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    _, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    for k, (_, t, v) in enumerate(_rows(videos, "train")):
        np.testing.assert_array_equal(vis[k], v["visibility"][t])
        for j, name in enumerate(PENN_DATA_NAMES):  # occluded joints too: labelled
            np.testing.assert_allclose(kps[k, slot(name)], [v["x"][t, j], v["y"][t, j], 1.0], rtol=1e-6)
    assert (vis[0, [2, 5]] == 0).all()


def test_visible_only_option_drops_occluded_joints(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    _, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train", visibility="visible")
    first = store.read("keypoints2d")[0]
    for j in (2, 5):  # flag 0 in frame 0 of 0001: confidence 0, no position
        np.testing.assert_array_equal(first[slot(PENN_DATA_NAMES[j])], [0, 0, 0])
    np.testing.assert_allclose(first[slot("right_shoulder"), :2],
                               [videos["0001"]["x"][0, 1], videos["0001"]["y"][0, 1]], rtol=1e-6)


def test_boxes_from_corners_and_the_missing_last_row(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    _, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    boxes = store.read("bbox_xywh")
    v = videos["0001"]
    for t in range(3):
        x1, y1, x2, y2 = v["bbox"][t]
        np.testing.assert_allclose(boxes[t], [x1, y1, x2 - x1, y2 - y1], rtol=1e-6)
    # frame 4 of 0001 has no bbox row (as 1154.mat): the joints' extent x1.2
    xy = np.stack([v["x"][3], v["y"][3]], 1)
    lo, hi = xy.min(0), xy.max(0)
    np.testing.assert_allclose(boxes[3, :2] + boxes[3, 2:] / 2, (lo + hi) / 2, rtol=1e-5)
    np.testing.assert_allclose(boxes[3, 2:], 1.2 * (hi - lo), rtol=1e-5)
    assert list(store.read("extra_bbox_from_joints")) == [0, 0, 0, 1, 0, 0]


def test_zero_size_box_falls_back_to_the_joints(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    v = videos["0003"]
    v["bbox"][0] = [30.5, 40.25, 30.5, 40.25]  # as 0623.mat's 153 frames with one visible joint
    write_penn_action(tmp_path / "penn", {"0003": v})
    _, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    box = store.read("bbox_xywh")[4]
    np.testing.assert_allclose(box[2:], 1.2 * np.ptp(np.stack([v["x"][0], v["y"][0]], 1), axis=0), rtol=1e-5)
    assert list(store.read("extra_bbox_from_joints")[4:]) == [1, 0]


@pytest.mark.skipif(not REAL_PENN.is_dir(), reason="shared real fixtures not present")
def test_real_files_by_anatomy(tmp_path):
    mats = copy_real_penn_action(tmp_path / "penn")
    _, train = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    _, test = convert("penn_action", tmp_path / "penn", tmp_path / "out", "test")
    assert sorted(set(train.read("sequence"))) == ["0002", "0015"] and set(test.read("sequence")) == {"0001"}
    assert len(train) == 80 + 82 and len(test) == 151
    for store in (train, test):
        seq, frame, kps = store.read("sequence"), store.read("frame_index"), store.read("keypoints2d")
        for name in ("0001", "0002", "0015"):
            rows = np.flatnonzero(seq == name)
            if not len(rows):
                continue
            m = mats[name]
            np.testing.assert_array_equal(store.read("image_hw")[rows[0]], m["dimensions"][0, :2])
            np.testing.assert_allclose(kps[rows][:, slot("right_shoulder"), 0], m["x"][frame[rows], 1], rtol=1e-6)
            np.testing.assert_allclose(kps[rows][:, slot("left_ankle"), 1], m["y"][frame[rows], 12], rtol=1e-6)
            x1, y1, x2, y2 = m["bbox"][frame[rows][0]]
            np.testing.assert_allclose(store.read("bbox_xywh")[rows[0]], [x1, y1, x2 - x1, y2 - y1], rtol=1e-6)

    def side_order(store, name, frames, left_joint, right_joint):
        rows = [i for i, (s, f) in enumerate(zip(store.read("sequence"), store.read("frame_index")))
                if s == name and f in frames]
        kps = store.read("keypoints2d")[rows]
        return kps[:, slot(right_joint), 0] < kps[:, slot(left_joint), 0]

    # 0015 ('front'), frames 61-82: the pitcher faces the camera, so his right side is on the
    # image's left; 0001 ('back'), frames 1-25: seen from behind, his right side is on the right
    for part in ("shoulder", "elbow", "hip", "knee"):
        assert side_order(train, "0015", range(60, 82), f"left_{part}", f"right_{part}").all(), part
    for part in ("shoulder", "elbow", "knee"):
        assert not side_order(test, "0001", range(25), f"left_{part}", f"right_{part}").any(), part


def test_missing_frame_and_wrong_dimensions_are_bad_records(tmp_path):
    videos = write_penn_action(tmp_path / "penn", skip_frames={"0003": (1,)})
    v = videos["0001"]
    write_label(tmp_path / "penn" / "labels" / "0001.mat", v["x"], v["y"], v["visibility"], v["bbox"],
                (v["hw"][0] + 1, v["hw"][1]), v["train"])
    with pytest.raises(DatasetFormatError, match="'dimensions' says 61 x 80") as err:
        convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    assert err.value.path.endswith("frames/0001/000001.jpg") and err.value.record == "0001.mat"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("source_key")) == ["0003.mat[0]"]
    report = json.loads(result.skipped_report.read_text())
    assert [r["record"] for r in report] == ["0001.mat", "0003.mat[1]"]
    # without image checks, neither is looked at
    result = run_conversion("penn_action", tmp_path / "penn", tmp_path / "nocheck", split="train",
                            options=ConvertOptions(check_images=False), progress=False, argv=["pytest"])
    assert len(open_store(result.store)) == 6


def test_infinite_box_and_nan_are_bad_records(tmp_path):
    videos = write_penn_action(tmp_path / "penn")
    v = videos["0003"]
    v["bbox"][0] = [30, np.inf, 10, 40]
    v["x"][1, 4] = np.nan
    write_penn_action(tmp_path / "penn", {"0003": v})
    result, store = convert("penn_action", tmp_path / "penn", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("sequence")) == ["0001"] * 4
    report = {r["record"]: r["message"] for r in json.loads(result.skipped_report.read_text())}
    assert "not finite" in report["0003.mat[0]"] and "NaN" in report["0003.mat[1]"]


@pytest.mark.parametrize("change,message", [
    (lambda v: v.update(visibility=v["visibility"] * 2), "other than 0 and 1"),
    (lambda v: v.update(train=0), "expected 1 \\(train\\) or -1"),
    (lambda v: v.update(bbox=np.zeros((2, 3))), "'bbox' has shape"),
])
def test_malformed_label_file_names_the_file(tmp_path, change, message):
    videos = write_penn_action(tmp_path / "penn")
    change(videos["0003"])
    write_penn_action(tmp_path / "penn", {"0003": videos["0003"]})
    with pytest.raises(DatasetFormatError, match=message) as err:
        convert("penn_action", tmp_path / "penn", tmp_path / "out", "train")
    assert err.value.path.endswith("labels/0003.mat")
    assert leftovers(tmp_path / "out") == []
