"""VLOG-people: HMMR tfrecords in InstaVariety's format, read by the same reader."""

from __future__ import annotations

import numpy as np
import pytest

from converters import get_converter
from hmr.core.errors import HmrError
from hmr.core.sources import SOURCES
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.tfrecord import write_hmmr

# HMMR joint index -> superset slot, by anatomy (human_dynamics joint_names_coco)
ANATOMY = {24: "right_ankle_openpose", 23: "left_ankle_openpose", 8: "right_shoulder_openpose",
           9: "left_shoulder_openpose", 6: "right_wrist_openpose", 11: "left_wrist_openpose",
           2: "right_hip_openpose", 3: "left_hip_openpose"}


def test_vlog_row_uses_hmmr_joints():
    assert SOURCES["vlog"].convention == "instavariety"
    assert get_converter("vlog").SOURCE is SOURCES["vlog"]


def test_vlog_train_converts_by_anatomy(tmp_path):
    written = write_hmmr(tmp_path / "vlog", "train", files=((2, 3),), name="vlog", hidden={0: [8]})
    result, store = convert("vlog", tmp_path / "vlog", tmp_path / "out", "train")
    assert result.store.name == "vlog_train.zarr" and store.attrs["dataset"] == "vlog"
    raw = np.concatenate([t.keypoints for tracks in written.values() for t in tracks])
    kps = store.read("keypoints2d")
    for hmmr, name in ANATOMY.items():
        visible = raw[:, hmmr, 2] > 0
        np.testing.assert_allclose(kps[visible, slot(name), :2], raw[visible, hmmr, :2], atol=2e-3)
        assert (kps[visible, slot(name), 2] == 1).all() and (kps[~visible, slot(name)] == 0).all()
    assert kps[0, slot("right_shoulder_openpose"), 2] == 0
    stem = next(iter(written))[: -len(".tfrecord")]
    assert list(store.read("sequence")) == [f"{stem}/00000"] * 2 + [f"{stem}/00001"] * 3
    assert (tmp_path / "vlog" / store.read("image_path")[4]).read_bytes() == written[stem + ".tfrecord"][1].jpegs[2]


def test_vlog_has_only_a_train_split(tmp_path):
    write_hmmr(tmp_path / "vlog", "test", files=((2,),), name="vlog")
    with pytest.raises(HmrError, match="splits train"):
        convert("vlog", tmp_path / "vlog", tmp_path / "out", "test")
