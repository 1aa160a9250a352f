"""The COCO-style reader is a table, not COCO-17: a CrowdPose-like format (14 joints, another
file layout, image-level extras) converts through a CocoFormat row alone."""

from __future__ import annotations

import numpy as np
import pytest

from converters.coco_format import CocoFormat, coco_keypoints, iter_coco
from converters.driver import BadRecord
from converters.options import ConvertOptions
from hmr.core.keypoints import get_convention
from hmr.core.schema import StoreWriter, open_store
from tests.fixtures.converters_2d import slot, write_crowdpose

CROWDPOSE = CocoFormat(annotations="json/crowdpose_{split}.json", images="images",
                       convention="crowdpose", image_extras=("crowdIndex",))


def _samples(root, **extra) -> list[dict]:
    options = ConvertOptions(workers=1, extra={k: str(v) for k, v in extra.items()})
    items = list(iter_coco(root, "val", options, CROWDPOSE))
    assert not [i for i in items if isinstance(i, BadRecord)]
    return items


def test_a_crowdpose_format_converts_from_its_table_row(tmp_path):
    data = write_crowdpose(tmp_path / "crowdpose")
    samples = _samples(tmp_path / "crowdpose")
    # images in id order, annotations in id order; the crowd region is dropped
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


def test_limb_rule_follows_the_formats_joint_names(tmp_path):
    write_crowdpose(tmp_path / "crowdpose")
    keys = [s["source_key"].rsplit("=", 1)[1] for s in _samples(tmp_path / "crowdpose", preset="spin")]
    assert keys == ["21", "11"]  # 12 limb joints each; ann 12 has 3
    keys = [s["source_key"].rsplit("=", 1)[1] for s in _samples(tmp_path / "crowdpose", keep_crowd=1,
                                                                   min_keypoints=0)]
    assert keys == ["21", "11", "12", "13"]


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
    aic_like = CocoFormat(annotations="", images="", convention="aic", unlabelled_v=(3,))
    flags = coco_keypoints({"keypoints": [5, 5, 1, 5, 5, 2, 0, 0, 3] + [0] * 33}, aic_like)[:3, 2]
    assert flags.tolist() == [1.0, 1.0, 0.0]
