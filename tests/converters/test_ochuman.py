"""OCHuman: the COCO-format files (default) and the original ochuman.json: the publisher's
split, joints by anatomy, four visibility levels, xyxy boxes, both readings agreeing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters import ochuman
from converters.options import ConvertOptions
from hmr.core.errors import DatasetFormatError, HmrError
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.ochuman import write_ochuman

# The original file's joints by index (its 'keypoint_names', OCHumanApi; 'head' is the top
# of the head as ROMP's OCHuman_19 table and EFT read it).
ORIGINAL = {0: "right_shoulder", 1: "right_elbow", 2: "right_wrist", 3: "left_shoulder",
            4: "left_elbow", 5: "left_wrist", 6: "right_hip", 7: "right_knee", 8: "right_ankle",
            9: "left_hip", 10: "left_knee", 11: "left_ankle", 12: "head_top", 13: "neck",
            14: "right_ear", 15: "left_ear", 16: "nose", 17: "right_eye", 18: "left_eye"}
# The COCO-format files' joints (COCO's person keypoints order).
COCO = {0: "nose", 1: "left_eye", 2: "right_eye", 3: "left_ear", 4: "right_ear", 5: "left_shoulder",
        6: "right_shoulder", 7: "left_elbow", 8: "right_elbow", 9: "left_wrist", 10: "right_wrist",
        11: "left_hip", 12: "right_hip", 13: "left_knee", 14: "right_knee", 15: "left_ankle",
        16: "right_ankle"}


@pytest.fixture
def root(tmp_path, monkeypatch):
    """The fixture splits after 3 listed images; the converter is told the same."""
    monkeypatch.setattr(ochuman, "VAL_IMAGES", 3)
    write_ochuman(tmp_path / "ochuman", val_images=3)
    return tmp_path / "ochuman"


def _original(root) -> dict:
    return {e["image_id"]: e for e in json.loads((root / "annotations" / "ochuman.json").read_text())["images"]}


def _check_slots(kps: np.ndarray, raw: np.ndarray, names: dict[int, str]) -> None:
    for j, name in names.items():
        x, y, v = raw[j]
        assert kps[slot(name), 2] == (1.0 if v > 0 else 0.0), name
        if v > 0:  # visible or occluded: the labelled position is kept
            np.testing.assert_allclose(kps[slot(name), :2], (x, y), rtol=1e-6)
    assert kps[:, 2].sum() == (raw[:, 2] > 0).sum()  # nothing else is written


def test_coco_files_by_default(root):
    written = json.loads((root / "annotations" / "ochuman_coco_format_val_range_0.00_1.00.json").read_text())
    result, store = convert("ochuman", root, root.parent / "out", "val")
    assert result.store.name == "ochuman_val.zarr"
    anns = written["annotations"]
    assert list(store.read("source_key")) == [
        f"ochuman_coco_format_val_range_0.00_1.00.json:ann={a['id']}" for a in anns]
    files = {im["id"]: im["file_name"] for im in written["images"]}
    assert list(store.read("image_path")) == [f"images/{files[a['image_id']]}" for a in anns]
    kps, vis = store.read("keypoints2d"), store.read("extra_visibility")
    for row, ann in enumerate(anns):
        raw = np.reshape(ann["keypoints"], (17, 3)).astype(float)
        _check_slots(kps[row], raw, COCO)
        np.testing.assert_array_equal(vis[row], raw[:, 2])
        np.testing.assert_allclose(store.read("bbox_xywh", row, row + 1)[0], ann["bbox"])


def test_original_file_joints_visibility_boxes_and_max_iou(root):
    images = _original(root)
    _, store = convert("ochuman", root, root.parent / "out", "val", annotations="original")
    keys = list(store.read("source_key"))
    assert keys == ["ochuman.json:image_id=000001:ann=0", "ochuman.json:image_id=000003:ann=0",
                    "ochuman.json:image_id=000003:ann=1", "ochuman.json:image_id=000004:ann=0",
                    "ochuman.json:image_id=000004:ann=1"]
    kps, vis, boxes = store.read("keypoints2d"), store.read("extra_visibility"), store.read("bbox_xywh")
    assert vis.dtype == np.int8 and vis.shape == (5, 19)
    assert set(np.unique(vis).tolist()) == {0, 1, 2, 3}  # missing, visible, self-, other-occluded
    for row, key in enumerate(keys):
        image_id, index = key.split("image_id=")[1].split(":ann=")
        ann = images[image_id]["annotations"][int(index)]
        raw = np.reshape(ann["keypoints"], (19, 3)).astype(float)
        _check_slots(kps[row], raw, ORIGINAL)
        np.testing.assert_array_equal(vis[row], raw[:, 2])
        x1, y1, x2, y2 = ann["bbox"]  # corners in the file, x, y, w, h in the store
        np.testing.assert_allclose(boxes[row], [x1, y1, x2 - x1, y2 - y1])
        assert store.read("extra_max_iou", row, row + 1)[0] == pytest.approx(ann["max_iou"])
    np.testing.assert_array_equal(store.read("person_id"), [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(store.read("image_hw")[0], [60, 80])
    # a person with only two labelled joints is kept: occluded people are the point
    assert kps[2, :, 2].sum() == 2


def test_both_readings_give_the_same_people(root):
    _, coco = convert("ochuman", root, root.parent / "a", "test")
    _, orig = convert("ochuman", root, root.parent / "b", "test", annotations="original")
    assert list(coco.read("image_path")) == list(orig.read("image_path")) == ["images/000006.jpg"]
    _, coco = convert("ochuman", root, root.parent / "c", "val")
    _, orig = convert("ochuman", root, root.parent / "d", "val", annotations="original")
    assert list(coco.read("image_path")) == list(orig.read("image_path"))
    shared = [slot(n) for n in COCO.values()]
    np.testing.assert_allclose(coco.read("keypoints2d")[:, shared], orig.read("keypoints2d")[:, shared],
                               rtol=1e-6)
    np.testing.assert_allclose(coco.read("bbox_xywh"), orig.read("bbox_xywh"))
    # the export's visibility: visible and self-occluded -> COCO 2, occluded by others -> COCO 1
    native = [list(ORIGINAL.values()).index(n) for n in COCO.values()]
    expected = np.choose(orig.read("extra_visibility")[:, native], [0, 2, 2, 1])
    np.testing.assert_array_equal(coco.read("extra_visibility"), expected)


def test_split_and_person_rules_of_the_original_file(root):
    _, test = convert("ochuman", root, root.parent / "out", "test", annotations="original")
    # 000005 is listed (a person with keypoints and a mask) but its only person has max_iou
    # 1.0, outside the export's [0, 1); 000002 has no mask at all and is in neither split
    assert list(test.read("source_key")) == ["ochuman.json:image_id=000006:ann=0"]
    _, test_all = convert("ochuman", root, root.parent / "out2", "test", annotations="original",
                          persons="keypoints")
    assert list(test_all.read("source_key")) == ["ochuman.json:image_id=000005:ann=0",
                                                 "ochuman.json:image_id=000006:ann=0"]
    _, val_all = convert("ochuman", root, root.parent / "out3", "val", annotations="original",
                         persons="keypoints")
    keys = list(val_all.read("source_key"))
    assert "ochuman.json:image_id=000001:ann=1" in keys  # keypoints, no mask
    assert not any("000001:ann=2" in k for k in keys)  # a box only: not labelled
    with pytest.raises(HmrError, match="annotations=original"):  # the COCO files cannot do it
        convert("ochuman", root, root.parent / "out4", "val", persons="keypoints")


def test_the_publishers_split_sizes():
    images = [{"image_id": f"{i:06d}", "annotations": [{"keypoints": [1], "segms": {"outer": [1]}}]}
              for i in range(4731, 0, -1)]
    images.append({"image_id": "009999", "annotations": [{"keypoints": [1], "segms": None}]})
    val = ochuman.split_images(images, "val", None)
    test = ochuman.split_images(images, "test", None)
    assert len(val) == 2500 and len(test) == 2231  # OCHumanApi README: 4,731 images
    assert val[0]["image_id"] == "000001" and test[0]["image_id"] == "002501"


def test_raw_files_follow_the_option(root):
    coco_val = root / "annotations" / "ochuman_coco_format_val_range_0.00_1.00.json"
    original = root / "annotations" / "ochuman.json"
    assert ochuman.raw_files(root, "val") == [coco_val, original]
    assert ochuman.raw_files(root, "val", ConvertOptions(extra={"annotations": "original"})) == [original]
    assert ochuman.raw_files(root, "val", ConvertOptions()) == [coco_val]


def test_files_at_the_root_are_read(tmp_path, monkeypatch):
    monkeypatch.setattr(ochuman, "VAL_IMAGES", 3)
    write_ochuman(tmp_path / "oc", layout="")
    _, coco = convert("ochuman", tmp_path / "oc", tmp_path / "a", "val")
    _, orig = convert("ochuman", tmp_path / "oc", tmp_path / "b", "val", annotations="original")
    assert len(coco) == len(orig) == 5


@pytest.mark.parametrize("edit, reason", [
    (lambda data: data["keypoint_names"].__setitem__(12, "head_bottom"), "19 joints"),
    (lambda data: data["keypoint_visible"].__setitem__("vis", 2), "keypoint_visible"),
    (lambda data: data["images"][1].pop("annotations"), "annotations"),
    (lambda data: data.pop("images"), "images"),
])
def test_a_file_of_another_shape_is_refused_with_its_name(root, edit, reason):
    path = root / "annotations" / "ochuman.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=reason) as err:
        convert("ochuman", root, root.parent / "out", "val", annotations="original")
    assert err.value.path == str(path)
    assert leftovers(root.parent / "out") == []


def test_joints_are_mapped_by_the_files_own_names(root):
    """A file listing the same 19 names in another order still puts each joint in its slot."""
    path = root / "annotations" / "ochuman.json"
    data = json.loads(path.read_text())
    perm = list(range(19))[::-1]
    data["keypoint_names"] = [data["keypoint_names"][i] for i in perm]
    for entry in data["images"]:
        for ann in entry["annotations"]:
            if ann["keypoints"]:
                k = np.reshape(ann["keypoints"], (19, 3))
                ann["keypoints"] = k[perm].ravel().tolist()
    path.write_text(json.dumps(data))
    _, store = convert("ochuman", root, root.parent / "out", "val", annotations="original")
    images = _original(root)
    ann = images["000001"]["annotations"][0]
    raw = np.reshape(ann["keypoints"], (19, 3))[np.argsort(perm)]  # back to the documented order
    _check_slots(store.read("keypoints2d")[0], raw, ORIGINAL)


@pytest.mark.parametrize("edit, reason", [
    (lambda ann: ann["keypoints"].__setitem__(2, 4), "visibility 4"),
    (lambda ann: ann["keypoints"].__setitem__(0, float("nan")), "NaN"),
    (lambda ann: ann.__setitem__("bbox", [50, 40, 10, 60]), "invalid 'bbox'"),
])
def test_bad_persons_are_reported_with_file_and_record(root, edit, reason):
    path = root / "annotations" / "ochuman.json"
    data = json.loads(path.read_text())
    edit(next(e for e in data["images"] if e["image_id"] == "000003")["annotations"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=reason) as err:
        convert("ochuman", root, root.parent / "out", "val", annotations="original")
    assert err.value.path == str(path) and err.value.record == "image_id=000003:ann=0"
    result, store = convert("ochuman", root, root.parent / "out", "val", annotations="original",
                            skip_bad=True)
    assert len(store) == 4
    assert [r["record"] for r in json.loads(result.skipped_report.read_text())] == ["image_id=000003:ann=0"]


def test_bad_image_size_in_the_original_file(root):
    path = root / "annotations" / "ochuman.json"
    data = json.loads(path.read_text())
    next(e for e in data["images"] if e["image_id"] == "000004")["height"] = -60
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="height -60") as err:
        convert("ochuman", root, root.parent / "out", "val", annotations="original")
    assert err.value.path == str(path) and err.value.record == "image_id=000004"
