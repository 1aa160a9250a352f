"""COCO 2014 / 2017 person keypoints: filtering rules, joint slots, boxes, real sample, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, copy_real_coco, leftovers, slot, write_coco

COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def _ann_ids(store) -> list[int]:
    return [int(k.split("ann=")[1]) for k in store.read("source_key")]


# Images come in id order (7, 11, 23), annotations in id order inside an image.
@pytest.mark.parametrize("options, expected", [
    ({}, [201, 202, 101, 301]),  # crowd region and the 0-keypoint person dropped
    ({"min_limb_keypoints": 12}, [202, 101, 301]),  # SPIN's rule: all limbs labelled
    ({"preset": "spin"}, [202, 101, 301]),
    ({"min_keypoints": 7}, [202, 101, 301]),
    ({"keep_crowd": 1, "min_keypoints": 0}, [201, 202, 101, 102, 900100000001, 301]),
])
def test_filter_rules(tmp_path, options, expected):
    write_coco(tmp_path / "coco")
    _, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val", **options)
    assert _ann_ids(store) == expected


def test_keypoints_land_in_named_slots_with_binary_confidence(tmp_path):
    data = write_coco(tmp_path / "coco")
    _, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    keys = _ann_ids(store)
    for ann in data["annotations"]:
        if ann["id"] not in keys:
            continue
        kps = store.read("keypoints2d", keys.index(ann["id"]), keys.index(ann["id"]) + 1)[0]
        raw = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
        for j, name in enumerate(COCO_NAMES):
            assert kps[slot(name), 2] == (1.0 if raw[j, 2] > 0 else 0.0)
            if raw[j, 2] > 0:
                np.testing.assert_allclose(kps[slot(name), :2], raw[j, :2])
        # nothing outside the 17 COCO slots is filled
        others = np.setdiff1d(np.arange(len(kps)), [slot(n) for n in COCO_NAMES])
        assert not kps[others].any()


def test_box_is_the_annotation_box_or_the_keypoint_extent(tmp_path):
    data = write_coco(tmp_path / "coco")
    by_id = {a["id"]: a for a in data["annotations"]}
    _, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    for key, box in zip(_ann_ids(store), store.read("bbox_xywh")):
        np.testing.assert_allclose(box, by_id[key]["bbox"], rtol=1e-6)
    _, kp_store = convert("coco2017", tmp_path / "coco", tmp_path / "out2", "val", bbox="keypoints")
    for key, box in zip(_ann_ids(kp_store), kp_store.read("bbox_xywh")):
        raw = np.asarray(by_id[key]["keypoints"], dtype=float).reshape(17, 3)
        xy = raw[raw[:, 2] > 0, :2]
        lo, hi = xy.min(0), xy.max(0)
        np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, atol=1e-4)
        np.testing.assert_allclose(box[2:], (hi - lo) * 1.2, atol=1e-4)


def test_image_size_and_person_index_come_from_the_json(tmp_path):
    write_coco(tmp_path / "coco")
    _, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert list(store.read("image_path")) == ["val2017/000000000007.jpg"] * 2 + \
        ["val2017/000000000011.jpg", "val2017/000000000023.jpg"]
    np.testing.assert_array_equal(store.read("image_hw"), [[90, 70], [90, 70], [60, 80], [64, 64]])
    np.testing.assert_array_equal(store.read("person_id"), [0, 1, 0, 0])
    assert list(store.read("source_key"))[2] == "person_keypoints_val2017.json:ann=101"
    assert not store.read("has_smpl").any()


def test_coco2014_layout(tmp_path):
    write_coco(tmp_path / "coco", split="train", year=2014)
    result, store = convert("coco2014", tmp_path / "coco", tmp_path / "out", "train")
    assert result.store.name == "coco2014_train.zarr"
    assert store.read("image_path")[0] == "train2014/COCO_train2014_000000000007.jpg"
    assert store.attrs["dataset"] == "coco2014"


def test_real_mmpose_coco_sample(tmp_path):
    data = copy_real_coco(tmp_path / "coco")
    _, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    kept = [a for a in data["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert len(store) == len(kept) == 12
    keys = _ann_ids(store)
    first = keys.index(442619)  # image 785, all 17 joints labelled
    kps = store.read("keypoints2d", first, first + 1)[0]
    np.testing.assert_allclose(kps[slot("nose")], [367, 81, 1])
    np.testing.assert_allclose(kps[slot("right_ankle")], [396, 341, 1])
    np.testing.assert_allclose(store.read("bbox_xywh", first, first + 1)[0], [280.79, 44.73, 218.7, 346.68],
                               rtol=1e-6)
    np.testing.assert_array_equal(store.read("image_hw", first, first + 1)[0], [425, 640])


def test_truncated_json_names_the_file(tmp_path):
    write_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    path.write_text(path.read_text()[:500])
    with pytest.raises(DatasetFormatError, match="truncated JSON") as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert err.value.path == str(path)
    assert leftovers(tmp_path / "out") == []


def test_missing_annotation_file(tmp_path):
    write_coco(tmp_path / "coco")
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "train")
    assert err.value.path.endswith("person_keypoints_train2017.json")


def test_missing_image_fails_cleanly_or_is_skipped_with_a_report(tmp_path):
    write_coco(tmp_path / "coco", missing_image=True)
    with pytest.raises(DatasetFormatError, match="image file is missing") as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert err.value.path.endswith("val2017/000000000007.jpg") and err.value.record == "image_id=7"
    assert leftovers(tmp_path / "out") == []  # no store, no .partial-*

    result, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val", skip_bad=True)
    assert _ann_ids(store) == [101, 301]
    report = json.loads(result.skipped_report.read_text())
    assert [r["record"] for r in report] == ["image_id=7"]
    assert report[0]["path"].endswith("000000000007.jpg")


def test_cli_convert(tmp_path, capsys):
    from cli.main import main

    write_coco(tmp_path / "coco")
    code = main(["convert", "coco2017", "--root", str(tmp_path / "coco"), "--out", str(tmp_path / "out"),
                 "--split", "val", "--workers", "1", "-o", "min_limb_keypoints=12"])
    assert code == 0
    assert "coco2017/val: 3 samples" in capsys.readouterr().out
    assert (tmp_path / "out" / "coco2017_val.zarr.manifest.json").is_file()
