"""COCO-WholeBody v1.0: all 133 joints in their anatomical superset slots, float hand/face
confidences kept, part boxes and validity flags, both image layouts, the real example_gt.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.coco_wholebody import (
    REAL_EXAMPLE,
    copy_real_coco_wholebody,
    write_coco_wholebody,
)
from tests.fixtures.converters_2d import convert, leftovers, slot

# The publisher's joints by anatomy: (annotation key, index in that key's list) -> superset
# joint name. Body: COCO's order (categories.keypoints); feet: data_format.md / mmpose's
# coco_wholebody.py (left big toe, left small toe, left heel, right ...); hands: root, then
# thumb, forefinger, middle, ring, pinky, 4 joints each from the palm out; face: the
# iBUG-300W 68 landmarks (0 = jaw end at the person's right, 36 = right eye's outer corner,
# 45 = left eye's outer corner, 30 = nose tip, 48 / 54 = right / left mouth corner).
PUBLISHER_JOINTS = {
    ("keypoints", 0): "nose",
    ("keypoints", 5): "left_shoulder", ("keypoints", 6): "right_shoulder",
    ("keypoints", 7): "left_elbow", ("keypoints", 8): "right_elbow",
    ("keypoints", 9): "left_wrist", ("keypoints", 10): "right_wrist",
    ("keypoints", 11): "left_hip", ("keypoints", 12): "right_hip",
    ("keypoints", 13): "left_knee", ("keypoints", 14): "right_knee",
    ("keypoints", 15): "left_ankle", ("keypoints", 16): "right_ankle",
    ("foot_kpts", 0): "left_big_toe", ("foot_kpts", 2): "left_heel",
    ("foot_kpts", 3): "right_big_toe", ("foot_kpts", 5): "right_heel",
    ("lefthand_kpts", 0): "left_hand_root", ("lefthand_kpts", 1): "left_thumb_1",
    ("lefthand_kpts", 8): "left_index_4", ("lefthand_kpts", 20): "left_pinky_4",
    ("righthand_kpts", 0): "right_hand_root", ("righthand_kpts", 4): "right_thumb_4",
    ("righthand_kpts", 9): "right_middle_1", ("righthand_kpts", 20): "right_pinky_4",
    ("face_kpts", 0): "right_contour_1", ("face_kpts", 16): "left_contour_1",
    ("face_kpts", 36): "right_eye_1", ("face_kpts", 45): "left_eye_1",
    ("face_kpts", 30): "nose_bridge_4",
    ("face_kpts", 48): "right_mouth_1", ("face_kpts", 54): "left_mouth_1",
}
PARTS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")


def _ann_ids(store) -> list[int]:
    return [int(k.split("ann=")[1]) for k in store.read("source_key")]


def _raw(ann: dict, key: str) -> np.ndarray:
    return np.asarray(ann[key], dtype=float).reshape(-1, 3)


def _converted(tmp_path, **options):
    data = write_coco_wholebody(tmp_path / "raw")
    _, store = convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "val", **options)
    return {a["id"]: a for a in data["annotations"]}, store


def test_each_publisher_joint_lands_in_its_anatomical_slot_at_the_raw_position(tmp_path):
    anns, store = _converted(tmp_path)
    kps = store.read("keypoints2d")
    person = kps[_ann_ids(store).index(11)]  # every part valid
    for (key, j), name in PUBLISHER_JOINTS.items():
        raw = _raw(anns[11], key)[j]
        if raw[2] > 0:
            np.testing.assert_allclose(person[slot(name), :2], raw[:2], atol=1e-4, err_msg=name)
            assert person[slot(name), 2] > 0, name
    # the hand roots are not the body's wrists
    assert not np.allclose(person[slot("left_hand_root"), :2], person[slot("left_wrist"), :2])
    # 133 joints, 133 distinct slots: nothing else is filled
    assert (person[:, 2] > 0).sum() == sum((_raw(anns[11], k)[:, 2] > 0).sum() for k in PARTS)


def test_confidences_float_hands_kept_codes_labelled_unlabelled_zero(tmp_path):
    anns, store = _converted(tmp_path)
    keys = _ann_ids(store)
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    person, raw_v = kps[keys.index(11)], vis[keys.index(11)]
    left = _raw(anns[11], "lefthand_kpts")
    assert ((left[:, 2] > 0) & (left[:, 2] < 1)).all()  # the fixture's float confidences
    hand = ["left_hand_root"] + [f"left_{finger}_{i}" for finger in ("thumb", "index", "middle", "ring", "pinky")
                                 for i in range(1, 5)]
    np.testing.assert_allclose(person[[slot(n) for n in hand]], left, rtol=1e-6)
    right = _raw(anns[11], "righthand_kpts")
    assert set(right[:, 2]) == {1, 2} and person[slot("right_pinky_4"), 2] == 1.0
    assert person[slot("left_ear"), 2] == 0  # v = 0: not labelled
    assert person[slot("right_knee"), 2] == 1.0 and raw_v[14] == 1  # occluded: kept, code 1
    assert person[slot("left_knee"), 2] == 1.0 and raw_v[13] == 2
    np.testing.assert_allclose(raw_v, np.concatenate([_raw(anns[11], k)[:, 2] for k in PARTS]), rtol=1e-6)
    # never a joint at (0, 0) with a confidence
    at_origin = (kps[..., 0] == 0) & (kps[..., 1] == 0)
    assert not (kps[..., 2][at_origin] > 0).any()
    assert ((kps[..., 2] >= 0) & (kps[..., 2] <= 1)).all()


def test_part_boxes_and_validity_flags_are_kept(tmp_path):
    anns, store = _converted(tmp_path)
    keys = _ann_ids(store)
    assert keys == [11, 12, 23]  # 21 (no keypoint) and the crowd region 22 dropped
    for key in ("face_box", "lefthand_box", "righthand_box"):
        np.testing.assert_allclose(store.read(f"extra_{key}"), [anns[k][key] for k in keys], rtol=1e-6)
    for flag in ("face_valid", "lefthand_valid", "righthand_valid", "foot_valid"):
        col = store.read(f"extra_{flag}")
        assert col.dtype == bool and list(col) == [anns[k][flag] for k in keys]
    # person 23: face and left hand invalid -> confidence 0 there; right hand valid
    p23 = store.read("keypoints2d")[2]
    assert p23[slot("right_contour_1"), 2] == 0 and p23[slot("left_hand_root"), 2] == 0
    assert p23[slot("right_hand_root"), 2] == 1


def test_box_image_size_and_filters(tmp_path):
    anns, store = _converted(tmp_path)
    keys = _ann_ids(store)
    np.testing.assert_allclose(store.read("bbox_xywh"), [anns[k]["bbox"] for k in keys], rtol=1e-6)
    np.testing.assert_array_equal(store.read("image_hw"), [[120, 160], [120, 160], [100, 90]])
    assert list(store.read("image_path")) == ["train_2017/val2017/000000000139.jpg"] * 2 + \
        ["train_2017/val2017/000000000632.jpg"]
    _, kp_store = convert("coco_wholebody", tmp_path / "raw", tmp_path / "kp", "val", bbox="keypoints")
    xy = np.concatenate([_raw(anns[11], k) for k in PARTS])
    xy = xy[xy[:, 2] > 0, :2]
    lo, hi = xy.min(0), xy.max(0)
    np.testing.assert_allclose(kp_store.read("bbox_xywh")[0, 2:], (hi - lo) * 1.2, rtol=1e-5)
    _, few = convert("coco_wholebody", tmp_path / "raw", tmp_path / "few", "val", min_keypoints=14)
    assert _ann_ids(few) == [11, 23]  # person 12 has 13 labelled joints


def test_coco_layout_without_mmhuman3d_nesting(tmp_path):
    write_coco_wholebody(tmp_path / "raw", "train", layout="coco")
    _, store = convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "train")
    assert store.read("image_path")[0] == "train2017/000000000139.jpg"
    assert store.attrs["dataset"] == "coco_wholebody" and len(store) == 3


def test_wrong_part_length_names_the_file_and_annotation(tmp_path):
    data = write_coco_wholebody(tmp_path / "raw")
    data["annotations"][0]["face_kpts"] = data["annotations"][0]["face_kpts"][:-3]
    path = tmp_path / "raw" / "annotations" / "coco_wholebody_val_v1.0.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="expected 399") as err:
        convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path == str(path) and err.value.record == 11
    assert leftovers(tmp_path / "out") == []
    result, store = convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "val", skip_bad=True)
    assert _ann_ids(store) == [12, 23] and [b.record for b in result.skipped] == [11]


def test_missing_image_fails_with_its_name(tmp_path):
    write_coco_wholebody(tmp_path / "raw", missing_image=True)
    with pytest.raises(DatasetFormatError, match="image file is missing") as err:
        convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path.endswith("train_2017/val2017/000000000632.jpg")


@pytest.mark.skipif(not REAL_EXAMPLE.is_file(), reason="shared real fixtures absent")
def test_real_example_gt(tmp_path):
    data = copy_real_coco_wholebody(tmp_path / "raw")
    _, store = convert("coco_wholebody", tmp_path / "raw", tmp_path / "out", "val")
    by_id = {a["id"]: a for a in data["annotations"]}
    kept = [a["id"] for a in data["annotations"]
            if sum((_raw(a, k)[:, 2] > 0).sum() for k in PARTS) > 0]
    keys = _ann_ids(store)
    assert sorted(keys) == sorted(kept) and len(keys) == 24
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    for i, key in enumerate(keys):
        ann = by_id[key]
        for (part, j), name in PUBLISHER_JOINTS.items():
            raw = _raw(ann, part)[j]
            expected = 0.0 if raw[2] <= 0 else min(raw[2], 1.0)
            assert kps[i, slot(name), 2] == pytest.approx(expected, rel=1e-6), (key, name)
            if raw[2] > 0:
                np.testing.assert_allclose(kps[i, slot(name), :2], raw[:2], atol=1e-3)
        np.testing.assert_allclose(vis[i], np.concatenate([_raw(ann, k)[:, 2] for k in PARTS]), rtol=1e-6)
    # anatomy on real people: each labelled hand root is nearer its own wrist than the other
    checked = 0
    for person in kps:
        for side, other in (("left", "right"), ("right", "left")):
            root, own, far = (person[slot(n)] for n in (f"{side}_hand_root", f"{side}_wrist", f"{other}_wrist"))
            if root[2] > 0 and own[2] > 0 and far[2] > 0:
                assert np.linalg.norm(root[:2] - own[:2]) < np.linalg.norm(root[:2] - far[:2])
                checked += 1
    assert checked == 21
    floats = kps[..., 2][(kps[..., 2] > 0) & (kps[..., 2] < 1)]
    raw_floats = [v for a in data["annotations"] for k in PARTS for v in _raw(a, k)[:, 2] if 0 < v < 1]
    assert len(floats) == len(raw_floats) == 336  # the real hands' confidences, not binarised
    first = keys.index(442619)
    np.testing.assert_array_equal(store.read("image_hw")[first], [425, 640])
    np.testing.assert_allclose(store.read("extra_righthand_box")[first], by_id[442619]["righthand_box"], rtol=1e-6)
    assert not store.read("extra_lefthand_valid")[first]
