"""3DOH50K converter: annots.json with world-frame root rotation and scaled camera joints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import project_points
from hmr.core.schema import SMPL_SOURCES
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.oh50k3d import UNIT_SCALE, write_oh50k3d

# The publisher's joint orders (LSP 14 as posepile names them; SMPL 24 kinematic joints).
LSP = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "rwri", "relb", "rsho", "lsho", "lelb",
       "lwri", "neck", "head")
SMPL_LEFT_WRIST = 20


@pytest.fixture(scope="module")
def model():
    return load_body_model(gender="neutral")


def test_joints_land_in_their_slots_in_metres(tmp_path, model):
    truth = write_oh50k3d(tmp_path / "raw", model, "train", n=3)
    result, store = convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "train")
    assert len(store) == 3 and not result.skipped
    for i, key in enumerate(sorted(truth)):
        s, t = store[i], truth[key]
        assert s["image_path"] == f"trainset/images/{key}.jpg"  # backslashes turned into folders
        assert tuple(s["image_hw"]) == (240, 320)
        # the LSP 'lwri' (index 11) is the superset's left wrist; SMPL joint 20 its smpl slot
        np.testing.assert_allclose(s["keypoints3d"][slot("left_wrist"), :3], t["lsp3d"][LSP.index("lwri")],
                                   atol=1e-4)
        np.testing.assert_allclose(s["keypoints3d"][slot("smpl_left_wrist"), :3], t["smpl3d"][SMPL_LEFT_WRIST],
                                   atol=1e-4)
        np.testing.assert_allclose(s["keypoints3d"][slot("head_top"), :3], t["lsp3d"][13], atol=1e-4)
        assert s["keypoints3d"][slot("left_wrist"), 3] == 1 and s["keypoints2d"][slot("nose"), 2] == 0
        assert s["extra_oh50k3d_unit_scale"] == pytest.approx(UNIT_SCALE, rel=1e-4)
        assert s["source_key"] == f"trainset/annots.json:{key}"


def test_projection_lands_on_2d_and_smpl_reproduces_the_joints(tmp_path, model):
    truth = write_oh50k3d(tmp_path / "raw", model, "test", n=2, seed=3)
    _, store = convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "test")
    for i, key in enumerate(sorted(truth)):
        s = store[i]
        both = (s["keypoints3d"][:, 3] > 0) & (s["keypoints2d"][:, 2] > 0)
        proj = project_points(s["keypoints3d"][both, :3].astype(np.float64), s["cam_intrinsics"].astype(np.float64))
        assert np.abs(proj - s["keypoints2d"][both, :2]).max() < 0.05
        assert s["has_smpl"] and SMPL_SOURCES[s["smpl_source"]] == "ground-truth"
        # the root rotation was rotated into the camera: the stored SMPL gives the file's joints
        np.testing.assert_allclose(s["smpl_global_orient"], truth[key]["orient"], atol=1e-5)
        with torch.no_grad():
            out = model(global_orient=torch.as_tensor(s["smpl_global_orient"][None]),
                        body_pose=torch.as_tensor(s["smpl_body_pose"][None]),
                        betas=torch.as_tensor(s["smpl_betas"][None]),
                        transl=torch.as_tensor(s["smpl_transl"][None]))
        rows = [slot(f"smpl_{n}") for n in ("pelvis", "left_knee", "right_wrist", "head")]
        smpl_rows = [0, 4, 21, 15]
        np.testing.assert_allclose(out.joints_smpl24[0].numpy()[smpl_rows], s["keypoints3d"][rows, :3], atol=1e-3)


def test_bad_records_name_the_file_and_frame(tmp_path, model):
    def spoil(records):
        records["00000"]["pose"][5] = float("nan")
        records["00001"]["smpl_joints_3d"][3] = [9.0, 9.0, 9.0]   # joints and fit disagree
        del records["00002"]["intri"]
    write_oh50k3d(tmp_path / "raw", model, "train", n=4, edit=spoil)
    with pytest.raises(DatasetFormatError, match="annots.json") as info:
        convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "train")
    assert "frame 00000" in str(info.value)
    result, store = convert("oh50k3d", tmp_path / "raw", tmp_path / "out2", "train", skip_bad=True)
    assert len(store) == 1 and len(result.skipped) == 3
    reasons = " ".join(b.message for b in result.skipped)
    assert "NaN" in reasons and "disagree" in reasons and "'intri'" in reasons


def test_windows_path_climbing_out_is_refused(tmp_path, model):
    def spoil(records):
        records["00001"]["img_path"] = "..\\..\\etc\\passwd"
    write_oh50k3d(tmp_path / "raw", model, "train", n=2, edit=spoil)
    result, store = convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 1 and "leaves the split folder" in result.skipped[0].message


def test_missing_annotation_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "raw" / "trainset").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="annots.json"):
        convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "train")


def test_2d_rows_with_a_visibility_column_keep_it(tmp_path, model):
    def with_visibility(records):
        rec = records["00000"]
        rec["lsp_joints_2d"] = [[*xy, 0.0 if i == LSP.index("lwri") else 1.0]
                                for i, xy in enumerate(rec["lsp_joints_2d"])]
    write_oh50k3d(tmp_path / "raw", model, "train", n=1, edit=with_visibility)
    _, store = convert("oh50k3d", tmp_path / "raw", tmp_path / "out", "train")
    kp = store[0]["keypoints2d"]
    assert kp[slot("left_wrist"), 2] == 0 and kp[slot("right_wrist"), 2] == 1
