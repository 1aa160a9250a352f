"""AI Challenger keypoints: official JSON layout, joints by anatomy, v = 1 / 2 / 3, xyxy boxes,
image sizes from headers, the publisher's real sample, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.aic import REAL_AIC, aic_paths, real_aic_records, write_aic
from tests.fixtures.converters_2d import convert, leftovers, slot

# The publisher's order (challenger.ai keypoint task, "Table 1"): 1/right shoulder ...
# 13/top of the head, 14/neck; written here, not read from the project's tables.
AIC_NAMES = ["right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
             "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
             "left_ankle", "head_top", "neck"]


def _people(records):
    """(record, humanN key, (14, 3) raw keypoints, box) in the converter's order."""
    for rec in records:
        for key in sorted(rec["keypoint_annotations"], key=lambda k: int(k[5:])):
            yield rec, key, np.array(rec["keypoint_annotations"][key], float).reshape(14, 3), \
                rec["human_annotations"][key]


def test_joints_land_in_their_anatomical_slots(tmp_path):
    records = write_aic(tmp_path / "aic")
    _, store = convert("aic", tmp_path / "aic", tmp_path / "out", "train")
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    people = list(_people(records))
    assert len(kps) == len(people) == 3
    for k, (_, _, raw, _) in enumerate(people):
        np.testing.assert_array_equal(vis[k], raw[:, 2])
        for j, name in enumerate(AIC_NAMES):
            if raw[j, 2] in (1, 2):  # visible or occluded: labelled, at the raw pixel
                np.testing.assert_allclose(kps[k, slot(name)], [*raw[j, :2], 1.0])
            else:  # 3: not labelled, never a joint at (0, 0) with confidence
                np.testing.assert_array_equal(kps[k, slot(name)], [0, 0, 0])
    assert (vis[1] == 3).sum() == 3 and (vis == 2).any()
    # slots the format has no joint for stay empty
    assert kps[:, [slot(n) for n in ("pelvis", "thorax", "nose")], 2].max() == 0


def test_boxes_are_corners_and_sizes_come_from_the_headers(tmp_path):
    records = write_aic(tmp_path / "aic")
    _, store = convert("aic", tmp_path / "aic", tmp_path / "out", "train")
    people = list(_people(records))
    for k, (rec, key, _, (x1, y1, x2, y2)) in enumerate(people):
        np.testing.assert_allclose(store.read("bbox_xywh")[k], [x1, y1, x2 - x1, y2 - y1])
        np.testing.assert_array_equal(store.read("image_hw")[k], rec["_hw"])
        assert store.read("image_path")[k] == (
            f"ai_challenger_keypoint_train_20170909/keypoint_train_images_20170902/{rec['image_id']}.jpg")
        assert store.read("source_key")[k] == f"keypoint_train_annotations_20170909.json:{rec['image_id']}:{key}"
        assert store.read("person_id")[k] == int(key[5:])


def test_val_reads_the_validation_release(tmp_path):
    write_aic(tmp_path / "aic", "train")
    val = write_aic(tmp_path / "aic", "val", [r for r in write_aic(tmp_path / "x")[1:]])
    _, store = convert("aic", tmp_path / "aic", tmp_path / "out", "val")
    assert len(store) == 1
    assert store.read("image_path")[0].startswith(
        "ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911/")
    assert store.read("image_path")[0].endswith(val[0]["image_id"] + ".jpg")


def test_min_keypoints_drops_sparse_persons(tmp_path):
    write_aic(tmp_path / "aic")
    _, store = convert("aic", tmp_path / "aic", tmp_path / "out", "train", min_keypoints=12)
    assert list(store.read("person_id")) == [1, 1]  # human2 of image 1 has 11 labelled joints


@pytest.mark.parametrize("damage,reason", [
    (lambda kp, box: kp.__setitem__(5, 4), "visibility 4 at joint 1"),
    (lambda kp, box: kp.pop(), "41 numbers"),
    (lambda kp, box: box.__setitem__(2, box[0]), "x2 <= x1"),
])
def test_bad_person_names_file_and_record(tmp_path, damage, reason):
    records = write_aic(tmp_path / "aic")
    rec = records[0]
    damage(rec["keypoint_annotations"]["human2"], rec["human_annotations"]["human2"])
    write_aic(tmp_path / "aic", "train", records)
    with pytest.raises(DatasetFormatError, match=reason) as err:
        convert("aic", tmp_path / "aic", tmp_path / "out", "train")
    assert err.value.path.endswith("keypoint_train_annotations_20170909.json")
    assert err.value.record == f"keypoint_train_annotations_20170909.json:{rec['image_id']}:human2"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("aic", tmp_path / "aic", tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 2
    assert json.loads(result.skipped_report.read_text())[0]["record"].endswith(":human2")


def test_missing_image_and_missing_box_are_bad_records(tmp_path):
    records = write_aic(tmp_path / "aic", skip_images=(f"{2:040x}",))
    del records[0]["human_annotations"]["human1"]
    write_aic(tmp_path / "aic", "train", records, skip_images=(f"{2:040x}",))
    result, store = convert("aic", tmp_path / "aic", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("person_id")) == [2]
    reasons = sorted(r["message"] for r in json.loads(result.skipped_report.read_text()))
    assert reasons == ["image file is missing", "no box in 'human_annotations'"]


def test_missing_or_truncated_annotations_name_the_file(tmp_path):
    with pytest.raises(DatasetFormatError, match="keypoint_train_annotations_<date>"):
        convert("aic", tmp_path, tmp_path / "out", "train")
    write_aic(tmp_path / "aic")
    path, _ = aic_paths(tmp_path / "aic", "train")
    path.write_text(path.read_text()[:300])
    with pytest.raises(DatasetFormatError, match="truncated") as err:
        convert("aic", tmp_path / "aic", tmp_path / "out", "train")
    assert err.value.path == str(path)


def _check_real(tmp_path, n):
    records = write_aic(tmp_path / "aic", "val", real_aic_records(n))
    _, store = convert("aic", tmp_path / "aic", tmp_path / "out", "val")
    people = list(_people(records))
    assert len(store) == len(people)  # every real person has labelled joints
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    for k, (_, _, raw, (x1, y1, x2, y2)) in enumerate(people):
        np.testing.assert_array_equal(vis[k], raw[:, 2])
        for j, name in enumerate(AIC_NAMES):
            expected = [*raw[j, :2], 1.0] if raw[j, 2] != 3 else [0, 0, 0]
            np.testing.assert_allclose(kps[k, slot(name)], expected)
        np.testing.assert_allclose(store.read("bbox_xywh")[k], [x1, y1, x2 - x1, y2 - y1])
    # anatomy on real people (most face the camera): the right shoulder is left of the left one
    both = (kps[:, slot("right_shoulder"), 2] > 0) & (kps[:, slot("left_shoulder"), 2] > 0)
    right_of = kps[both, slot("right_shoulder"), 0] < kps[both, slot("left_shoulder"), 0]
    assert both.sum() > 0.8 * len(kps) and right_of.mean() > 0.7
    head_above = kps[:, slot("head_top"), 1] < kps[:, slot("neck"), 1]
    labelled = (kps[:, slot("head_top"), 2] > 0) & (kps[:, slot("neck"), 2] > 0)
    assert head_above[labelled].mean() > 0.9


@pytest.mark.skipif(not REAL_AIC.is_file(), reason="shared real fixtures not present")
def test_publisher_sample_first_records(tmp_path):
    _check_real(tmp_path, 40)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_AIC.is_file(), reason="shared real fixtures not present")
def test_publisher_sample_all_records(tmp_path):
    _check_real(tmp_path, None)
