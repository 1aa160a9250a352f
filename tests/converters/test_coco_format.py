"""The COCO-style reader is a table, not COCO-17: a CrowdPose-like format (14 joints, another
file layout, image-level extras) converts through a CocoFormat row alone. And what it
refuses: broken persons, orphan annotations, undocumented visibility codes, impossible image
sizes and unparsable files become bad records or errors naming the file and the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.coco_format import CocoFormat, coco_keypoints, iter_coco
from converters.driver import BadRecord
from converters.options import ConvertOptions
from hmr.core.errors import DatasetFormatError
from hmr.core.keypoints import get_convention
from hmr.core.schema import StoreWriter, open_store
from tests.fixtures.converters_2d import convert, leftovers, slot, write_coco
from tests.fixtures.crowdpose import write_crowdpose

CROWDPOSE = CocoFormat(annotations="json/crowdpose_{split}.json", images="images",
                       convention="crowdpose", image_extras=("crowdIndex",))


def _samples(root, fmt=CROWDPOSE, **extra) -> list[dict]:
    options = ConvertOptions(workers=1, extra={k: str(v) for k, v in extra.items()})
    items = list(iter_coco(root, "val", options, fmt))
    assert not [i for i in items if isinstance(i, BadRecord)]
    return items


def test_a_crowdpose_format_converts_from_its_table_row(tmp_path):
    data = write_crowdpose(tmp_path / "crowdpose")
    samples = _samples(tmp_path / "crowdpose")
    # images in id order, annotations in id order; the crowd region and the empty person dropped
    assert [s["source_key"] for s in samples] == ["crowdpose_val.json:ann=21", "crowdpose_val.json:ann=11",
                                                  "crowdpose_val.json:ann=12"]
    assert [s["image_path"] for s in samples] == ["images/100000.jpg", "images/100001.jpg", "images/100001.jpg"]
    assert [s["person_id"] for s in samples] == [0, 0, 1]
    assert samples[0]["image_hw"].tolist() == [80, 60] and samples[0]["extra_crowdIndex"] == 0.05
    names = get_convention("crowdpose").joint_names  # 'head' is stored as head_top
    anns = {a["id"]: np.reshape(a["keypoints"], (14, 3)) for a in data["annotations"]}
    for sample, ann_id in zip(samples, (21, 11, 12)):
        kps = sample["keypoints2d"]
        for j, name in enumerate(names):
            labelled = anns[ann_id][j, 2] > 0
            assert kps[slot(name), 2] == float(labelled)
            if labelled:
                np.testing.assert_allclose(kps[slot(name), :2], anns[ann_id][j, :2])
        assert kps[:, 2].sum() == (anns[ann_id][:, 2] > 0).sum()  # nothing else written
        assert "extra_visibility" not in sample  # only where the row asks for it


def test_limb_rule_follows_the_formats_joint_names(tmp_path):
    write_crowdpose(tmp_path / "crowdpose")
    keys = [s["source_key"].rsplit("=", 1)[1] for s in _samples(tmp_path / "crowdpose", preset="spin")]
    assert keys == ["21", "11"]  # 12 limb joints each; ann 12 has 3
    keys = [s["source_key"].rsplit("=", 1)[1] for s in _samples(tmp_path / "crowdpose", keep_crowd=1,
                                                                   min_keypoints=0)]
    assert keys == ["21", "11", "12", "13", "14"]


def test_crowdpose_samples_fit_the_schema(tmp_path):
    write_crowdpose(tmp_path / "crowdpose")
    with StoreWriter(tmp_path / "cp.zarr", dataset="crowdpose_like", split="val",
                     converter="tests", converter_version="0", image_root=str(tmp_path)) as writer:
        for sample in _samples(tmp_path / "crowdpose"):
            writer.add(sample)
    store = open_store(tmp_path / "cp.zarr")
    assert len(store) == 3
    np.testing.assert_allclose(store.read("extra_crowdIndex"), [0.05, 0.31, 0.31])


def test_keypoint_lists_concatenate_and_visibility_maps_per_format():
    wholebody = CocoFormat(annotations="", images="", convention="coco_wholebody",
                           keypoint_keys=("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts",
                                          "righthand_kpts"))
    ann = {"keypoints": [0] * 51, "foot_kpts": [0] * 18, "face_kpts": [0] * 204,
           "lefthand_kpts": [7, 8, 2] + [0] * 60, "righthand_kpts": [0] * 63}
    kps = coco_keypoints(ann, wholebody)
    assert kps.shape == (133, 3) and np.flatnonzero(kps[:, 2]).tolist() == [91]  # left hand root
    with pytest.raises(ValueError, match="'keypoints\\+foot_kpts.*expected 399"):
        coco_keypoints({**ann, "foot_kpts": [0] * 15}, wholebody)
    assert coco_keypoints({**ann, "face_kpts": [0.5, 0.5, 0.041] + [0] * 201}, wholebody)[23, 2] == 1
    aic_like = CocoFormat(annotations="", images="", convention="aic", unlabelled_v=(3,))
    flags = coco_keypoints({"keypoints": [5, 5, 1, 5, 5, 2, 0, 0, 3] + [0] * 33}, aic_like)[:3, 2]
    assert flags.tolist() == [1.0, 1.0, 0.0]


def test_declared_visibility_codes_are_checked_and_kept(tmp_path):
    write_crowdpose(tmp_path / "crowdpose")
    row = CocoFormat(annotations="json/crowdpose_{split}.json", images="images",
                     convention="crowdpose", visibility=(0, 1, 2), keep_visibility=True)
    samples = _samples(tmp_path / "crowdpose", row)
    assert samples[0]["extra_visibility"].dtype == np.int8
    floats = CocoFormat(annotations="json/crowdpose_{split}.json", images="images",
                        convention="crowdpose", keep_visibility=True)
    assert _samples(tmp_path / "crowdpose", floats)[0]["extra_visibility"].dtype == np.float32
    with pytest.raises(ValueError, match="visibility 7 at joint 0"):
        coco_keypoints({"keypoints": [5, 5, 7] + [0] * 39}, row)


def test_fallback_layouts_are_tried_in_order(tmp_path):
    write_crowdpose(tmp_path / "cp", layout="annotations")
    row = CocoFormat(annotations="json/crowdpose_{split}.json", images="images", convention="crowdpose",
                     fallbacks=("crowdpose_{split}.json", "annotations/crowdpose_{split}.json"))
    assert row.annotation_files(tmp_path / "cp", "val") == [tmp_path / "cp/annotations/crowdpose_val.json"]
    assert row.annotation_files(tmp_path / "cp", "test") == [tmp_path / "cp/json/crowdpose_test.json"]
    assert len(_samples(tmp_path / "cp", row)) == 3


# --------------------------------------------------------------------------- bad input (COCO)
def _edit_coco(tmp_path, edit) -> object:
    """Write the COCO fixture, apply ``edit(data)`` to its JSON, return the JSON's path."""
    write_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # NaN is written as the bare token NaN, as a broken file has it
    return path


def _ann(data: dict, ann_id: int) -> dict:
    return next(a for a in data["annotations"] if a["id"] == ann_id)


def _image(data: dict, image_id: int) -> dict:
    return next(im for im in data["images"] if im["id"] == image_id)


def _fails_then_skips(tmp_path, path, record, match, kept):
    with pytest.raises(DatasetFormatError, match=match) as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert err.value.path == str(path) and err.value.record == record
    assert leftovers(tmp_path / "out") == []  # no store, no .partial-*
    result, store = convert("coco2017", tmp_path / "coco", tmp_path / "out", "val", skip_bad=True)
    report = json.loads(result.skipped_report.read_text())
    assert [(r["path"], r["record"]) for r in report] == [(str(path), record)]
    assert [int(k.split("ann=")[1]) for k in store.read("source_key")] == kept


def test_an_all_nan_person_is_a_bad_record(tmp_path):
    def edit(data):
        _ann(data, 301)["keypoints"] = [float("nan")] * 51
    path = _edit_coco(tmp_path, edit)
    _fails_then_skips(tmp_path, path, 301, "NaN", [201, 202, 101])


def test_a_nan_box_is_a_bad_record(tmp_path):
    path = _edit_coco(tmp_path, lambda data: _ann(data, 101)["bbox"].__setitem__(2, float("nan")))
    _fails_then_skips(tmp_path, path, 101, "invalid 'bbox'", [201, 202, 301])


def test_an_annotation_whose_image_is_missing_is_a_bad_record(tmp_path):
    path = _edit_coco(tmp_path, lambda data: _ann(data, 202).__setitem__("image_id", 99))
    _fails_then_skips(tmp_path, path, 202, "image_id 99 is not in", [201, 101, 301])


def test_an_undocumented_visibility_code_is_a_bad_record(tmp_path):
    path = _edit_coco(tmp_path, lambda data: _ann(data, 101)["keypoints"].__setitem__(5, 7))
    _fails_then_skips(tmp_path, path, 101, "visibility 7", [201, 202, 301])


@pytest.mark.parametrize("height", [-60, 1e12, 0, 90.5, "90", True])
def test_an_impossible_image_size_is_a_bad_record_naming_the_image(tmp_path, height):
    path = _edit_coco(tmp_path, lambda data: _image(data, 7).__setitem__("height", height))
    _fails_then_skips(tmp_path, path, "image_id=7", "image height", [101, 301])


def test_a_json_nesting_bomb_names_the_file(tmp_path):
    write_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    path.write_text('{"images": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(DatasetFormatError) as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert err.value.path == str(path)
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("data", [
    {"images": [{"file_name": "a.jpg"}], "annotations": []},  # an image without id
    {"images": [], "annotations": [{"id": 1}]},  # an annotation without image_id
    {"images": {}, "annotations": []},
])
def test_a_file_pycocotools_cannot_index_names_the_file(tmp_path, data):
    write_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json"
    path.write_text(json.dumps({**data, "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(DatasetFormatError, match="COCO") as err:
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val")
    assert err.value.path == str(path)


@pytest.mark.parametrize("file_name", ["", None, "../../../etc/passwd", "/etc/passwd"])
def test_an_image_file_name_outside_the_image_folder_is_a_bad_record(tmp_path, file_name):
    path = _edit_coco(tmp_path, lambda data: _image(data, 7).__setitem__("file_name", file_name))
    _fails_then_skips(tmp_path, path, "image_id=7", "file_name", [101, 301])
