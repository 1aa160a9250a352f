"""CrowdPose: layouts, joints by anatomy, visibility codes, crowd regions, boxes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.crowdpose import raw_files
from converters.status import dataset_status
from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.crowdpose import write_crowdpose

# CrowdPose's joints by index, from the publisher's files (categories[0].keypoints of
# Jeff-sjtu/CrowdPose crowdpose_val.json) and paper: 'head' is the top of the head.
PUBLISHER = {0: "left_shoulder", 1: "right_shoulder", 2: "left_elbow", 3: "right_elbow",
             4: "left_wrist", 5: "right_wrist", 6: "left_hip", 7: "right_hip", 8: "left_knee",
             9: "right_knee", 10: "left_ankle", 11: "right_ankle", 12: "head_top", 13: "neck"}


def _ids(store) -> list[int]:
    return [int(k.rsplit("ann=", 1)[1]) for k in store.read("source_key")]


def test_layout_order_image_fields_and_crowd_index(tmp_path):
    write_crowdpose(tmp_path / "cp")
    result, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val")
    assert result.store.name == "crowdpose_val.zarr"
    # images in id order (100000 first), annotations in id order; the crowd region (13) and
    # the person with no labelled joint (14) are dropped
    assert _ids(store) == [21, 11, 12]
    assert store.read("source_key")[0] == "crowdpose_val.json:ann=21"
    assert list(store.read("image_path")) == ["images/100000.jpg", "images/100001.jpg", "images/100001.jpg"]
    np.testing.assert_array_equal(store.read("image_hw"), [[80, 60], [70, 90], [70, 90]])
    np.testing.assert_array_equal(store.read("person_id"), [0, 0, 1])
    np.testing.assert_allclose(store.read("extra_crowdIndex"), [0.05, 0.31, 0.31])
    assert store.attrs["dataset"] == "crowdpose"


def test_joints_land_in_their_anatomical_slots_with_raw_visibility_kept(tmp_path):
    data = write_crowdpose(tmp_path / "cp")
    _, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val")
    raw = {a["id"]: np.reshape(a["keypoints"], (14, 3)) for a in data["annotations"]}
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    assert vis.dtype == np.int8 and vis.shape == (3, 14)
    for row, ann_id in enumerate(_ids(store)):
        for j, name in PUBLISHER.items():
            x, y, v = raw[ann_id][j]
            assert kps[row, slot(name), 2] == (1.0 if v > 0 else 0.0), (ann_id, name)
            if v > 0:  # occluded (1) or visible (2): the position is kept
                np.testing.assert_allclose(kps[row, slot(name), :2], (x, y))
        assert kps[row, :, 2].sum() == (raw[ann_id][:, 2] > 0).sum()  # nothing else written
        np.testing.assert_array_equal(vis[row], raw[ann_id][:, 2])
    # num_keypoints counts only the 12 limb joints: annotation 12 says 3, it has 5 (head, neck)
    ann12 = next(a for a in data["annotations"] if a["id"] == 12)
    assert ann12["num_keypoints"] == 3 and kps[_ids(store).index(12), :, 2].sum() == 5


def test_crowd_regions_and_empty_persons_only_on_request(tmp_path):
    write_crowdpose(tmp_path / "cp")
    _, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val", keep_crowd=1,
                       min_keypoints=0)
    assert _ids(store) == [21, 11, 12, 13, 14]
    _, limbs = convert("crowdpose", tmp_path / "cp", tmp_path / "out2", "val", preset="spin")
    assert _ids(limbs) == [21, 11]  # all 12 limb joints labelled


def test_box_is_the_annotation_box_or_the_keypoint_extent(tmp_path):
    data = write_crowdpose(tmp_path / "cp")
    by_id = {a["id"]: a for a in data["annotations"]}
    _, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val")
    for ann_id, box in zip(_ids(store), store.read("bbox_xywh")):
        np.testing.assert_allclose(box, by_id[ann_id]["bbox"], rtol=1e-6)  # x, y, w, h as written
    _, kp_store = convert("crowdpose", tmp_path / "cp", tmp_path / "out2", "val", bbox="keypoints")
    for ann_id, box in zip(_ids(kp_store), kp_store.read("bbox_xywh")):
        raw = np.reshape(by_id[ann_id]["keypoints"], (14, 3)).astype(float)
        xy = raw[raw[:, 2] > 0, :2]
        np.testing.assert_allclose(box[2:], (xy.max(0) - xy.min(0)) * 1.2, atol=1e-4)


@pytest.mark.parametrize("layout", ["", "annotations"])
def test_other_common_layouts_are_read(tmp_path, layout):
    write_crowdpose(tmp_path / "cp", split="train", layout=layout)
    _, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "train")
    assert _ids(store) == [21, 11, 12]
    expected = tmp_path / "cp" / layout / "crowdpose_train.json"
    assert raw_files(tmp_path / "cp", "train") == [expected]
    assert raw_files(tmp_path / "cp", "val") == []


def test_missing_split_file_names_the_expected_path(tmp_path):
    write_crowdpose(tmp_path / "cp", split="val")
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("crowdpose", tmp_path / "cp", tmp_path / "out", "test")
    assert err.value.path == str(tmp_path / "cp" / "json" / "crowdpose_test.json")
    assert leftovers(tmp_path / "out") == []


def test_undocumented_visibility_code_is_a_bad_record(tmp_path):
    write_crowdpose(tmp_path / "cp")
    path = tmp_path / "cp" / "json" / "crowdpose_val.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["keypoints"][2] = 3  # ann 11, left shoulder: v = 3 is not CrowdPose's
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="visibility 3") as err:
        convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val")
    assert err.value.path == str(path) and err.value.record == 11
    result, store = convert("crowdpose", tmp_path / "cp", tmp_path / "out", "val", skip_bad=True)
    assert _ids(store) == [21, 12]
    assert [r["record"] for r in json.loads(result.skipped_report.read_text())] == [11]


def test_hmr_datasets_lists_crowdpose_with_its_converter(tmp_path):
    write_crowdpose(tmp_path / "crowdpose", split="val", images=False)
    row = next(r for r in dataset_status(tmp_path) if r.name == "crowdpose")
    assert row.has_converter and row.manifest_present and row.raw_splits == ["val"]
