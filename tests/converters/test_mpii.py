"""MPII: official .mat, hourglass h5 and MMPose JSON flavours; 1-based shift, boxes, PCKh
head size, filtering, the real MMPose sample, bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError, HmrError
from tests.fixtures.converters_2d import (
    REAL, convert, leftovers, slot, write_mpii_h5, write_mpii_mat,
)

MPII_NAMES = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
              "pelvis", "thorax", "neck", "head_top", "right_wrist", "right_elbow",
              "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"]
IDX = [slot(n) for n in MPII_NAMES]


def test_official_mat(tmp_path):
    expected = write_mpii_mat(tmp_path / "mpii")
    _, store = convert("mpii", tmp_path / "mpii", tmp_path / "out", "train")
    # the rect without joints and the test image are not samples
    assert list(store.read("source_key")) == [e["record"] for e in expected]
    kps = store.read("keypoints2d")[:, IDX]  # (2, 16, 3)
    for k, e in enumerate(expected):
        labelled = e["joints"][:, 2] == 1
        np.testing.assert_allclose(kps[k, labelled, :2], e["joints"][labelled, :2] - 1, rtol=1e-6)
        np.testing.assert_array_equal(kps[k, :, 2], labelled.astype(np.float32))
        assert not kps[k, ~labelled, :2].any()
        side = e["scale"] * 200
        np.testing.assert_allclose(store.read("bbox_xywh", k, k + 1)[0],
                                   [*(e["center"] - 1 - side / 2), side, side], rtol=1e-5)
    assert list(store.read("image_path")) == ["images/000000001.jpg"] * 2
    np.testing.assert_array_equal(store.read("image_hw"), [[90, 120], [90, 120]])
    np.testing.assert_array_equal(store.read("person_id"), [0, 1])
    np.testing.assert_allclose(store.read("extra_head_size_px"), 0.6 * np.hypot(20, 28), rtol=1e-6)
    # is_visible came as 1, '0' and empty in turn
    np.testing.assert_array_equal(store.read("extra_visible")[0][:6], [1, 0, 0, 1, 0, 0])


def test_mat_has_no_validation_split(tmp_path):
    write_mpii_mat(tmp_path / "mpii")
    with pytest.raises(HmrError):
        convert("mpii", tmp_path / "mpii", tmp_path / "out", "valid", flavour="mat")


@pytest.mark.parametrize("at_root, char_codes", [(False, False), (True, False), (False, True)])
def test_hourglass_h5(tmp_path, at_root, char_codes):
    arrays = write_mpii_h5(tmp_path / "mpii", "valid", at_root=at_root, char_codes=char_codes)
    _, store = convert("mpii", tmp_path / "mpii", tmp_path / "out", "valid")
    assert len(store) == 4
    kps = store.read("keypoints2d")[:, IDX]
    np.testing.assert_allclose(kps[0, :, :2], arrays["part"][0] - 1, rtol=1e-6)
    # person 2 has two unlabelled joints stored at (0, 0)
    assert kps[2, 4, 2] == 0 and kps[2, 9, 2] == 0 and not kps[2, 4, :2].any()
    assert kps[2, :, 2].sum() == 14
    np.testing.assert_allclose(store.read("extra_head_size_px"), arrays["normalize"], rtol=1e-6)
    assert list(store.read("image_path"))[:2] == ["images/000000001.jpg", "images/000000002.jpg"]
    np.testing.assert_array_equal(store.read("person_id"), arrays["person"])
    side = arrays["scale"][3] * 200
    np.testing.assert_allclose(store.read("bbox_xywh", 3, 4)[0][2:], [side, side], rtol=1e-5)


def test_preset_spin_keeps_fully_labelled_persons_and_one_based_can_be_kept(tmp_path):
    arrays = write_mpii_h5(tmp_path / "mpii", "train")
    _, store = convert("mpii", tmp_path / "mpii", tmp_path / "out", "train", preset="spin",
                       one_based=0, bbox="keypoints")
    assert list(store.read("source_key")) == ["train.h5[0]", "train.h5[1]", "train.h5[3]"]
    kps = store.read("keypoints2d")[:, IDX]
    np.testing.assert_allclose(kps[0, :, :2], arrays["part"][0], rtol=1e-6)
    box = store.read("bbox_xywh", 0, 1)[0]
    lo, hi = arrays["part"][0].min(0), arrays["part"][0].max(0)
    np.testing.assert_allclose(box[2:], 1.2 * (hi - lo), rtol=1e-5)


def test_real_mmpose_json_sample(tmp_path):
    records = json.loads((REAL / "mpii" / "test_mpii.json").read_text())
    _, store = convert("mpii", REAL / "mpii", tmp_path / "out", "valid", json="test_mpii.json", images=".")
    assert len(store) == len(records) == 5
    first = records[0]
    kps = store.read("keypoints2d", 0, 1)[0]
    np.testing.assert_allclose(kps[slot("right_ankle")], [first["joints"][0][0] - 1,
                                                          first["joints"][0][1] - 1, 1])
    np.testing.assert_allclose(kps[slot("head_top")][:2], np.asarray(first["joints"][9]) - 1, rtol=1e-6)
    h, w = cv2.imread(str(REAL / "mpii" / first["image"])).shape[:2]
    np.testing.assert_array_equal(store.read("image_hw", 0, 1)[0], [h, w])
    assert store.read("image_path")[0] == first["image"]
    assert "extra_head_size_px" not in store.fields


def test_truncated_h5_names_the_file(tmp_path):
    write_mpii_h5(tmp_path / "mpii", "train")
    path = tmp_path / "mpii" / "annot" / "train.h5"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetFormatError, match="HDF5") as err:
        convert("mpii", tmp_path / "mpii", tmp_path / "out", "train")
    assert err.value.path == str(path)
    assert leftovers(tmp_path / "out") == []


def test_missing_image_and_skip_report(tmp_path):
    write_mpii_h5(tmp_path / "mpii", "train")
    (tmp_path / "mpii" / "images" / "000000002.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("mpii", tmp_path / "mpii", tmp_path / "out", "train")
    assert err.value.path.endswith("000000002.jpg") and err.value.record == "train.h5[1]"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("mpii", tmp_path / "mpii", tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 3 and len(result.skipped) == 1


def test_no_annotation_found(tmp_path):
    (tmp_path / "mpii").mkdir()
    with pytest.raises(DatasetFormatError, match="annot/train.h5"):
        convert("mpii", tmp_path / "mpii", tmp_path / "out", "train")
