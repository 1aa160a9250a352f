"""LSP (joints.mat (3, 14, N)) and LSP-Extended (joints.mat (14, 3, N)): layouts, splits,
joint slots, flags, boxes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, leftovers, slot, write_lsp, write_lspet

LSP_NAMES = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
             "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
             "left_wrist", "neck", "head_top"]


def test_lsp_splits_are_the_two_halves(tmp_path):
    write_lsp(tmp_path / "lsp", n=6)
    _, train = convert("lsp", tmp_path / "lsp", tmp_path / "out", "train")
    _, test = convert("lsp", tmp_path / "lsp", tmp_path / "out", "test")
    assert list(train.read("image_path")) == [f"images/im{i:04d}.jpg" for i in (1, 2, 3)]
    assert list(test.read("image_path")) == [f"images/im{i:04d}.jpg" for i in (4, 5, 6)]
    np.testing.assert_array_equal(test.read("image_hw"), [[83, 60], [84, 60], [85, 60]])


def test_lsp_joints_slots_confidence_and_occlusion(tmp_path):
    joints = write_lsp(tmp_path / "lsp", n=6)  # (6, 14, 3), flag = occluded
    _, store = convert("lsp", tmp_path / "lsp", tmp_path / "out", "test")
    kps = store.read("keypoints2d")
    for k, i in enumerate((3, 4, 5)):
        for j, name in enumerate(LSP_NAMES):
            np.testing.assert_allclose(kps[k, slot(name), :2], joints[i, j, :2], rtol=1e-6)
        # every LSP joint is labelled: the flag means "occluded", not "missing"
        assert (kps[k, [slot(n) for n in LSP_NAMES], 2] == 1).all()
    np.testing.assert_array_equal(store.read("extra_occluded"), joints[3:, :, 2].astype(np.uint8))


def test_lsp_box_is_keypoint_extent_times_1_2(tmp_path):
    joints = write_lsp(tmp_path / "lsp", n=4)
    _, store = convert("lsp", tmp_path / "lsp", tmp_path / "out", "train")
    for box, kp in zip(store.read("bbox_xywh"), joints[:2]):
        lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
        np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, atol=1e-4)
        np.testing.assert_allclose(box[2:], 1.2 * (hi - lo), atol=1e-4)


@pytest.mark.parametrize("hr", [True, False])
def test_lspet_layouts_and_visibility(tmp_path, hr):
    joints = write_lspet(tmp_path / "lspet", n=5, hr=hr)  # (5, 14, 3), flag = visible
    _, store = convert("lspet", tmp_path / "lspet", tmp_path / "out", "train")
    names = store.read("image_path")
    assert names[0] == ("im00001.png" if hr else "images/im00001.jpg")
    np.testing.assert_array_equal(store.read("image_hw")[:, 1], 60 + np.arange(5))
    kps = store.read("keypoints2d")
    for i in range(5):
        for j, name in enumerate(LSP_NAMES):
            visible = joints[i, j, 2] == 1
            assert kps[i, slot(name), 2] == float(visible)
            expected = joints[i, j, :2] if visible else [0, 0]
            np.testing.assert_allclose(kps[i, slot(name), :2], expected, rtol=1e-6)
        xy = joints[i, joints[i, :, 2] == 1, :2]
        box = store.read("bbox_xywh", i, i + 1)[0]
        np.testing.assert_allclose(box[2:], 1.2 * (xy.max(0) - xy.min(0)), atol=1e-4)


def test_lspet_visibility_ignore_reproduces_spin(tmp_path):
    joints = write_lspet(tmp_path / "lspet", n=3)
    _, store = convert("lspet", tmp_path / "lspet", tmp_path / "out", "train", visibility="ignore")
    kps = store.read("keypoints2d")[:, [slot(n) for n in LSP_NAMES]]
    assert (kps[..., 2] == 1).all()
    np.testing.assert_allclose(kps[..., :2], joints[..., :2], rtol=1e-6)


def test_the_two_orientations_are_not_confused(tmp_path):
    write_lsp(tmp_path / "lsp", n=4)
    with pytest.raises(DatasetFormatError, match=r"\(14, 3, N\)") as err:
        convert("lspet", tmp_path / "lsp", tmp_path / "out", "train")
    assert err.value.path.endswith("joints.mat")
    write_lspet(tmp_path / "lspet", n=3)
    with pytest.raises(DatasetFormatError, match=r"\(3, 14, N\)"):
        convert("lsp", tmp_path / "lspet", tmp_path / "out", "train")
    assert leftovers(tmp_path / "out") == []


def test_truncated_mat_names_the_file(tmp_path):
    write_lsp(tmp_path / "lsp", n=4)
    mat = tmp_path / "lsp" / "joints.mat"
    mat.write_bytes(mat.read_bytes()[:200])
    with pytest.raises(DatasetFormatError, match="truncated") as err:
        convert("lsp", tmp_path / "lsp", tmp_path / "out", "train")
    assert err.value.path == str(mat)
    assert leftovers(tmp_path / "out") == []


def test_missing_image_is_reported_with_its_record(tmp_path):
    write_lsp(tmp_path / "lsp", n=6, skip_image=1)
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("lsp", tmp_path / "lsp", tmp_path / "out", "train")
    assert err.value.path.endswith("images/im0002.jpg") and err.value.record == "joints.mat[1]"
    assert leftovers(tmp_path / "out") == []
    result, store = convert("lsp", tmp_path / "lsp", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("source_key")) == ["joints.mat[0]", "joints.mat[2]"]
    assert json.loads(result.skipped_report.read_text())[0]["record"] == "joints.mat[1]"


def test_parallel_header_reads_match_serial(tmp_path, monkeypatch):
    monkeypatch.setattr("converters.images.POOL_MIN_SECONDS_PER_IMAGE", -1.0)  # always pool
    monkeypatch.setattr("converters.images.attach_image_sizes.__kwdefaults__", {"workers": None, "chunk": 2})
    write_lsp(tmp_path / "lsp", n=6)
    _, serial = convert("lsp", tmp_path / "lsp", tmp_path / "a", "train", workers=1)
    _, parallel = convert("lsp", tmp_path / "lsp", tmp_path / "b", "train", workers=2)
    np.testing.assert_array_equal(serial.read("image_hw"), parallel.read("image_hw"))
    np.testing.assert_array_equal(serial.read("keypoints2d"), parallel.read("keypoints2d"))
