"""PoseTrack18 v0.45: labelled frames only, joints by anatomy, track ids / sequence / frame
index, optional person boxes, ignore regions, image sizes from headers, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.posetrack18 import write_posetrack18

# The publisher's 17 joints (poseval py/convert.py, categories[0].keypoints) -> the superset
# joint at the same place on the body. head_bottom is the top of the neck (MPII's upper
# neck, superset "neck"); the ears are placeholders, never labelled.
PUBLISHER_JOINTS = {
    0: "nose", 1: "neck", 2: "head_top",
    5: "left_shoulder", 6: "right_shoulder", 7: "left_elbow", 8: "right_elbow",
    9: "left_wrist", 10: "right_wrist", 11: "left_hip", 12: "right_hip",
    13: "left_knee", 14: "right_knee", 15: "left_ankle", 16: "right_ankle",
}
EARS = {3: "left_ear", 4: "right_ear"}


def _ann_ids(store) -> list[int]:
    return [int(k.split("ann=")[1]) for k in store.read("source_key")]


def _anns(videos: dict) -> dict[int, dict]:
    return {a["id"]: a for data in videos.values() for a in data["annotations"]}


def _converted(tmp_path, **options):
    videos = write_posetrack18(tmp_path / "raw")
    _, store = convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val", **options)
    return videos, store


def test_labelled_frames_tracks_sequences_and_frame_indices(tmp_path):
    _, store = _converted(tmp_path)
    # frame 2 (unlabelled, stray person) and track 2 (no joint) are dropped
    assert _ann_ids(store) == [1009473000100, 1009473000101, 1009473000300, 1012834000000]
    assert list(store.read("sequence")) == ["009473_mpii_test"] * 3 + ["012834_mpii_test"]
    np.testing.assert_array_equal(store.read("frame_index"), [1, 1, 3, 0])
    np.testing.assert_array_equal(store.read("person_id"), [0, 1, 0, 3])
    assert list(store.read("image_path")) == [
        "images/val/009473_mpii_test/000001.jpg", "images/val/009473_mpii_test/000001.jpg",
        "images/val/009473_mpii_test/000003.jpg", "images/val/012834_mpii_test/000000.jpg"]
    # the raw JSON has no image sizes: they come from the image headers
    np.testing.assert_array_equal(store.read("image_hw"), [[64, 96]] * 3 + [[48, 40]])
    assert store.read("source_key")[0] == "009473_mpii_test.json:ann=1009473000100"


def test_each_publisher_joint_lands_in_its_anatomical_slot(tmp_path):
    videos, store = _converted(tmp_path)
    anns = _anns(videos)
    kps = store.read("keypoints2d")
    for i, key in enumerate(_ann_ids(store)):
        raw = np.asarray(anns[key]["keypoints"], dtype=float).reshape(17, 3)
        for j, name in PUBLISHER_JOINTS.items():
            assert kps[i, slot(name), 2] == (1.0 if raw[j, 2] > 0 else 0.0), (key, name)
            if raw[j, 2] > 0:
                np.testing.assert_allclose(kps[i, slot(name), :2], raw[j, :2], atol=1e-4)
        for name in EARS.values():
            assert kps[i, slot(name), 2] == 0
        others = np.setdiff1d(np.arange(kps.shape[1]), [slot(n) for n in PUBLISHER_JOINTS.values()])
        assert not kps[i, others, 2].any()
        np.testing.assert_array_equal(store.read("extra_visibility")[i], raw[:, 2])
    at_origin = (kps[..., 0] == 0) & (kps[..., 1] == 0)
    assert not (kps[..., 2][at_origin] > 0).any()
    assert kps[1, slot("right_wrist"), 2] == 0  # track 1 has its left side and head only


def test_boxes_own_or_joint_extent(tmp_path):
    videos, store = _converted(tmp_path)
    anns = _anns(videos)
    keys = _ann_ids(store)
    boxes = store.read("bbox_xywh")
    for i, key in enumerate(keys):
        raw = np.asarray(anns[key]["keypoints"], dtype=float).reshape(17, 3)
        xy = raw[raw[:, 2] > 0, :2]
        lo, hi = xy.min(0), xy.max(0)
        if "bbox" in anns[key]:
            np.testing.assert_allclose(boxes[i], anns[key]["bbox"], rtol=1e-5)
        else:  # track 1: no bbox in the file -> the joints' extent x1.3, as poseval made them
            assert key == 1009473000101
            np.testing.assert_allclose(boxes[i, :2] + boxes[i, 2:] / 2, (lo + hi) / 2, atol=1e-3)
            np.testing.assert_allclose(boxes[i, 2:], (hi - lo) * 1.3, atol=1e-3)
    _, kp_store = convert("posetrack18", tmp_path / "raw", tmp_path / "kp", "val", bbox="keypoints")
    raw = np.asarray(anns[keys[0]]["keypoints"], dtype=float).reshape(17, 3)
    xy = raw[raw[:, 2] > 0, :2]
    np.testing.assert_allclose(kp_store.read("bbox_xywh")[0, 2:], (xy.max(0) - xy.min(0)) * 1.2, atol=1e-3)


def test_ignore_regions_and_head_boxes_are_kept(tmp_path):
    videos, store = _converted(tmp_path)
    anns = _anns(videos)
    regions = [json.loads(s) for s in store.read("extra_ignore_regions")]
    assert regions[0] == regions[1] == [[[1, 2], [30, 2], [30, 20], [1, 20]]]  # frame 1's polygon
    assert regions[2] == regions[3] == []
    np.testing.assert_allclose(store.read("extra_bbox_head"), [anns[k]["bbox_head"] for k in _ann_ids(store)],
                               rtol=1e-6)


def test_filters(tmp_path):
    write_posetrack18(tmp_path / "raw")
    _, spin = convert("posetrack18", tmp_path / "raw", tmp_path / "spin", "val", preset="spin")
    assert list(spin.read("person_id")) == [0, 0, 3]  # track 1 lacks its right limbs
    # min_keypoints=0 brings back the joint-less person (no bbox, no joint: a bad record),
    # never the unlabelled frame's person
    result, every = convert("posetrack18", tmp_path / "raw", tmp_path / "all", "val", min_keypoints=0,
                            skip_bad=True)
    assert [(b.record, b.message) for b in result.skipped] == [
        (1009473000301, "fewer than two labelled keypoints: no box")]
    assert 1009473000200 not in _ann_ids(every) and len(every) == 4


def test_mmpose_copies_with_extra_fields_convert_the_same(tmp_path):
    write_posetrack18(tmp_path / "raw", mmpose_fields=True)
    _, store = convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val")
    _, plain = _converted(tmp_path / "plain")
    assert _ann_ids(store) == _ann_ids(plain)
    np.testing.assert_array_equal(store.read("image_hw"), plain.read("image_hw"))
    np.testing.assert_array_equal(store.read("keypoints2d"), plain.read("keypoints2d"))


def test_missing_image_fails_with_its_name_or_is_skipped(tmp_path):
    write_posetrack18(tmp_path / "raw", missing_image=True)
    with pytest.raises(DatasetFormatError, match="image file is missing") as err:
        convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path.endswith("images/val/009473_mpii_test/000003.jpg")
    assert err.value.record == "image_id=10094730003"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val", skip_bad=True)
    assert 1009473000300 not in _ann_ids(store) and len(store) == 3
    assert [b.record for b in result.skipped] == ["image_id=10094730003"]


def test_bad_annotations_name_file_and_record(tmp_path):
    videos = write_posetrack18(tmp_path / "raw")
    path = tmp_path / "raw" / "posetrack_data" / "annotations" / "val" / "012834_mpii_test.json"
    data = videos["012834_mpii_test"]
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="expected 51") as err:
        convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path == str(path) and err.value.record == 1012834000000
    first = tmp_path / "raw" / "posetrack_data" / "annotations" / "val" / "009473_mpii_test.json"
    broken = videos["009473_mpii_test"]
    broken["images"][1]["ignore_regions_y"] = [[2, 2, 20]]
    first.write_text(json.dumps(broken))
    result, _ = convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val", skip_bad=True)
    assert [(b.path, b.record) for b in result.skipped] == [
        (str(first), "image_id=10094730001"), (str(path), 1012834000000)]


def test_image_sizes_written_in_the_json_must_be_positive_integers(tmp_path):
    videos = write_posetrack18(tmp_path / "raw", mmpose_fields=True)
    path = tmp_path / "raw" / "posetrack_data" / "annotations" / "val" / "012834_mpii_test.json"
    videos["012834_mpii_test"]["images"][0]["height"] = "48"
    path.write_text(json.dumps(videos["012834_mpii_test"]))
    with pytest.raises(DatasetFormatError, match="not positive integers") as err:
        convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path == str(path) and err.value.record == "image_id=10128340000"


def test_truncated_json_and_missing_folder(tmp_path):
    write_posetrack18(tmp_path / "raw")
    path = tmp_path / "raw" / "posetrack_data" / "annotations" / "val" / "012834_mpii_test.json"
    path.write_text(path.read_text()[:300])
    with pytest.raises(DatasetFormatError, match="truncated JSON") as err:
        convert("posetrack18", tmp_path / "raw", tmp_path / "out", "val")
    assert err.value.path == str(path)
    with pytest.raises(DatasetFormatError, match="no per-video annotation") as err:
        convert("posetrack18", tmp_path / "raw", tmp_path / "out", "train")
    assert err.value.path.endswith("posetrack_data/annotations/train")
