"""MTP converter: TUCH's person choice, OpenPose body/hands/face in their slots, SMPLify-XMC's
camera rotation folded into the SMPL and SMPL-X roots, metadata and split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from converters import mtp
from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS, SMPL_SOURCES
from tests.fixtures import mtp as fx
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.converters_3d import evil_pickle_bytes


@pytest.fixture(scope="module")
def model():
    return load_body_model()


@pytest.fixture(scope="module")
def release(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("mtp")
    return root, fx.write_mtp(root, model=model)


def _rows(cols):
    return {k.split("/")[-1].split(".")[0]: i for i, k in enumerate(cols["image_path"])}


def test_split_membership_and_metadata(tmp_path, release):
    root, _ = release
    _, train = convert("mtp", root, tmp_path / "t", "train")
    _, val = convert("mtp", root, tmp_path / "v", "val")
    assert sorted(_rows(train.columns())) == ["00001_pp1_7_s01", "00002_pp1_8_s02"]
    cols = val.columns()
    assert list(_rows(cols)) == ["00003_pp2_3_s01"]
    assert cols["image_path"][0] == "images/pp2/00003_pp2_3_s01.png" and tuple(cols["image_hw"][0]) == fx.HW
    assert cols["subject_id"][0] == "s01" and cols["extra_mtp_presented_pose"][0] == "pp2/3"
    assert GENDERS[cols["gender"][0]] == "female" and cols["extra_mtp_height_m"][0] == pytest.approx(1.8)
    assert cols["extra_mtp_weight_kg"][0] == pytest.approx(70)


def test_openpose_points_land_in_their_named_slots(tmp_path, release):
    root, written = release
    _, store = convert("mtp", root, tmp_path / "t", "train")
    cols = store.columns()
    i = _rows(cols)["00001_pp1_7_s01"]
    chosen = written["00001_pp1_7_s01"]["people"][1]  # TUCH's choice skips the bystander listed first
    assert cols["person_id"][i] == 1 and cols["source_key"][i].endswith("person 1")
    body = np.asarray(chosen["pose_keypoints_2d"]).reshape(25, 3)
    # OpenPose BODY_25 index 7 is 'LWrist'
    np.testing.assert_allclose(cols["keypoints2d"][i, slot("left_wrist_openpose")], body[7], atol=1e-3)
    np.testing.assert_allclose(cols["keypoints2d"][i, slot("right_ankle_openpose")], body[11], atol=1e-3)
    lhand = np.asarray(chosen["hand_left_keypoints_2d"]).reshape(21, 3)
    np.testing.assert_allclose(cols["keypoints2d"][i, slot("left_hand_root")], lhand[0], atol=1e-3)
    np.testing.assert_allclose(cols["keypoints2d"][i, slot("left_index_4")], lhand[8], atol=1e-3)
    face = np.asarray(chosen["face_keypoints_2d"]).reshape(70, 3)
    face_slots = get_convention("mtp").superset_indices[67:]
    np.testing.assert_allclose(cols["keypoints2d"][i, face_slots], face[:68], atol=1e-3)
    np.testing.assert_allclose(cols["extra_mtp_pupils"][i], face[68:], atol=1e-3)
    # the box holds the body detections
    box = cols["bbox_xywh"][i]
    assert (body[:, :2] >= box[:2] - 1e-3).all() and (body[:, :2] <= box[:2] + box[2:] + 1e-3).all()
    # the anatomy: the fit's left wrist projects onto OpenPose's LWrist (the fixture made it so)
    w = written["00001_pp1_7_s01"]
    lw_px = fx.project(w["joints_fit"][20:21], w["cam_rot"], w["cam_t"], fx.FOCAL)[0]
    np.testing.assert_allclose(cols["keypoints2d"][i, slot("left_wrist_openpose"), :2], lw_px, atol=2e-3)


def test_camera_rotation_is_folded_into_the_roots(tmp_path, release, model):
    root, written = release
    _, store = convert("mtp", root, tmp_path / "t", "train")
    cols = store.columns()
    for stem, i in _rows(cols).items():
        w = written[stem]
        assert cols["has_smpl"][i] and cols["smpl_source"][i] == SMPL_SOURCES.index("smplify")
        assert not cols["has_smpl_transl"][i]
        want = Rotation.from_matrix(w["cam_rot"]) * Rotation.from_rotvec(w["pose"][:3])
        got = Rotation.from_rotvec(cols["smpl_global_orient"][i].astype(np.float64))
        assert (want.inv() * got).magnitude() < 1e-5
        np.testing.assert_allclose(cols["smpl_body_pose"][i], w["pose"][3:], atol=1e-6)
        # SMPL from the store, through the body model, is the fit seen from the camera: the same
        # body rotated by R_c about its pelvis, projecting where the fit projects
        t = lambda a: torch.as_tensor(np.asarray(a)[None], dtype=torch.float32)
        with torch.no_grad():
            cam = model(global_orient=t(cols["smpl_global_orient"][i]), body_pose=t(cols["smpl_body_pose"][i]),
                        betas=t(cols["smpl_betas"][i])).joints_smpl45[0].numpy()
        fit = w["joints_fit"]
        np.testing.assert_allclose(cam - cam[0], (fit - fit[0]) @ w["cam_rot"].T, atol=2e-4)
        ext = cols["cam_extrinsics"][i]
        np.testing.assert_allclose(ext[:3, :3], w["cam_rot"], atol=1e-6)
        np.testing.assert_allclose(ext[:3, 3], w["cam_t"], atol=1e-6)
        k = cols["cam_intrinsics"][i]
        assert cols["has_intrinsics"][i] and k[0, 0] == pytest.approx(fx.FOCAL) and k[1, 2] == fx.HW[0] / 2
        # the SMPL-X root too; its parameters kept
        sx = w["smplx"]
        want = Rotation.from_matrix(w["cam_rot"]) * Rotation.from_rotvec(sx["global_orient"][0].astype(np.float64))
        got = Rotation.from_rotvec(cols["extra_smplx_global_orient"][i].astype(np.float64))
        assert (want.inv() * got).magnitude() < 1e-5
        np.testing.assert_allclose(cols["extra_smplx_left_hand_pose"][i], sx["left_hand_pose"][0], atol=1e-6)
        assert cols["extra_smplx_use_pca"][i] and cols["extra_smplx_num_pca_comps"][i] == 12
        assert not cols["extra_smplx_has_transl"][i]


def test_tuch_root_option(tmp_path, release):
    root, _ = release
    _, store = convert("mtp", root, tmp_path / "t", "val", smpl_root="smplx")
    cols = store.columns()
    np.testing.assert_allclose(cols["smpl_global_orient"][0], cols["extra_smplx_global_orient"][0], atol=1e-6)


def test_person_choice_prefers_a_confident_central_person():
    hw = (100, 200)
    near = np.zeros((137, 3))
    near[:, :2], near[:, 2] = (110, 50), 0.9
    far = near.copy()
    far[:, :2] = (5, 5)
    assert mtp.choose_person([far, near], hw) == 1
    far[:, 2] = 1.0  # fully confident: distance no longer counts
    assert mtp.choose_person([near, far], hw) == 1


def test_bad_input(tmp_path, model):
    root = tmp_path / "mtp"
    written = fx.write_mtp(root, model=model, seed=3)
    (root / "keypoints/openpose/pp1/00002_pp1_8_s02.json").write_text('{"version": 1.3, "people": []}')
    with pytest.raises(DatasetFormatError) as err:
        convert("mtp", root, tmp_path / "o", "train")
    assert "00002_pp1_8_s02.json" in str(err.value) and "found nobody" in str(err.value)
    _, store = convert("mtp", root, tmp_path / "o2", "train", skip_bad=True)
    assert len(store.columns()["image_path"]) == 1
    (root / "smplify-xmc/smpl/params/pp1/00001_pp1_7_s01.pkl").unlink()
    with pytest.raises(DatasetFormatError, match="00001_pp1_7_s01.pkl"):
        convert("mtp", root, tmp_path / "o3", "train")
    (root / "smplify-xmc/smplx/params/pp2/00003_pp2_3_s01.pkl").write_bytes(evil_pickle_bytes())
    with pytest.raises(DatasetFormatError, match="os.system"):
        convert("mtp", root, tmp_path / "o4", "val")
    with pytest.raises(UnsafePickleError):
        mtp.read_smplx_fit(root / "smplify-xmc/smplx/params/pp2/00003_pp2_3_s01.pkl")
    (root / "images/pp2/00003_pp2_3_s01.png").unlink()
    with pytest.raises(DatasetFormatError, match="no image 00003_pp2_3_s01"):
        convert("mtp", root, tmp_path / "o5", "val")
    assert written
