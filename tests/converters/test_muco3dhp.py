"""MuCo-3DHP: 3DMPPE's COCO-style JSON + I2L-MeshNet's SMPL fits; joints by anatomy,
millimetres -> metres in the camera frame, SMPL that reproduces the joints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import project_points
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES
from tests.fixtures.converters_2d import convert, leftovers, slot
from tests.fixtures.muco3dhp import MUCO_FROM_SMPL, write_muco3dhp

# The publisher's joint names by index (3DMPPE data/MuCo/MuCo.py) and the superset joint
# each must land in (3DHP's neck = Thorax; head top / head / spine in SPIN's H36M slots).
PUBLISHER = {0: ("Head_top", "head_h36m"), 1: ("Thorax", "neck"), 2: ("R_Shoulder", "right_shoulder"),
             3: ("R_Elbow", "right_elbow"), 4: ("R_Wrist", "right_wrist"), 5: ("L_Shoulder", "left_shoulder"),
             6: ("L_Elbow", "left_elbow"), 7: ("L_Wrist", "left_wrist"), 8: ("R_Hip", "right_hip"),
             9: ("R_Knee", "right_knee"), 10: ("R_Ankle", "right_ankle"), 11: ("L_Hip", "left_hip"),
             12: ("L_Knee", "left_knee"), 13: ("L_Ankle", "left_ankle"), 14: ("Pelvis", "pelvis"),
             15: ("Spine", "spine_h36m"), 16: ("Head", "jaw_h36m"), 17: ("R_Hand", "mpi3dhp_right_hand"),
             18: ("L_Hand", "mpi3dhp_left_hand"), 19: ("R_Toe", "mpi3dhp_right_toe"),
             20: ("L_Toe", "mpi3dhp_left_toe")}


@pytest.fixture(scope="module")
def model():
    return load_body_model()


@pytest.fixture
def raw(tmp_path, model):
    root = tmp_path / "muco"
    return root, write_muco3dhp(root, model)


def _anns(written: dict) -> list[dict]:
    order = [im["id"] for im in written["json"]["images"]]
    return sorted(written["json"]["annotations"], key=lambda a: (order.index(a["image_id"]), a["id"]))


def test_row_is_a_converter_with_the_train_split():
    assert SOURCES["muco3dhp"].converter == "converters.muco3dhp"
    assert SOURCES["muco3dhp"].splits == ("train",)


def test_the_benchmark_mixes_resolve_to_this_source():
    from hmr.core.sources import parse_shard_set_name
    from loaders.mixes import MIXES

    for mix in ("mix4", "mix7", "mix10", "mix11"):
        sets = [c.set for c in MIXES[mix].components if "muco" in c.set]
        assert sets == ["muco3dhp-train"], mix
        assert parse_shard_set_name(sets[0]) == (SOURCES["muco3dhp"], "train")


def test_joints_by_publisher_name_in_metres_and_camera_frame(raw, tmp_path):
    root, written = raw
    _, store = convert("muco3dhp", root, tmp_path / "out", "train")
    anns = _anns(written)
    assert list(store.read("source_key")) == [f"MuCo-3DHP.json:ann={a['id']}" for a in anns]
    kp2d, kp3d = store.read("keypoints2d"), store.read("keypoints3d")
    for row, ann in enumerate(anns):
        j2d, j3d = np.array(ann["keypoints_img"]), np.array(ann["keypoints_cam"])
        for j, (name, superset) in PUBLISHER.items():
            np.testing.assert_allclose(kp2d[row, slot(superset)], [*j2d[j], 1.0], rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(kp3d[row, slot(superset)], [*j3d[j] / 1000.0, 1.0], atol=1e-6,
                                       err_msg=name)
        assert kp2d[row, :, 2].sum() == 21 and kp3d[row, :, 3].sum() == 21  # nothing else written
        np.testing.assert_array_equal(store.read("extra_keypoints_vis", row, row + 1)[0], ann["keypoints_vis"])
        np.testing.assert_allclose(store.read("bbox_xywh", row, row + 1)[0], ann["bbox"], rtol=1e-6)
    # the person's left wrist is on the image's right of the right wrist for a body facing
    # the camera: the fixture's bodies face the camera, so sides were not swapped
    assert (kp3d[:, slot("left_wrist"), 0] > kp3d[:, slot("right_wrist"), 0]).all()
    assert store.read("image_path")[0] == "augmented_set/img_000007.jpg"
    assert (store.read("image_hw") == [2048, 2048]).all()
    assert list(store.read("extra_image_id")) == [a["image_id"] for a in anns]
    assert list(store.read("person_id")) == [0, 1, 0, 0, 1]


def test_projection_with_the_stored_intrinsics_lands_on_the_2d_joints(raw, tmp_path):
    root, written = raw
    _, store = convert("muco3dhp", root, tmp_path / "out", "train")
    k = store.read("cam_intrinsics")
    assert store.read("has_intrinsics").all()
    np.testing.assert_allclose(k[0], [[1497.7, 0, 1021.5], [0, 1500.3, 1030.2], [0, 0, 1]], rtol=1e-6)
    kp2d, kp3d = store.read("keypoints2d"), store.read("keypoints3d")
    labelled = kp3d[0, :, 3] > 0
    for row in range(len(kp3d)):
        proj = project_points(kp3d[row, labelled, :3].astype(np.float64), k[row].astype(np.float64))
        assert np.abs(proj - kp2d[row, labelled, :2]).max() < 1.0
    # R / T are kept raw, not applied
    image = written["json"]["images"][0]
    np.testing.assert_allclose(store.read("extra_cam_R", 0, 1)[0], image["R"], rtol=1e-6)
    np.testing.assert_allclose(store.read("extra_cam_T", 0, 1)[0], image["T"], rtol=1e-6)
    assert not store.read("has_extrinsics").any()


def test_smpl_from_the_store_reproduces_the_3d_joints(raw, tmp_path, model):
    root, written = raw
    _, store = convert("muco3dhp", root, tmp_path / "out", "train")
    anns = _anns(written)
    has = store.read("has_smpl")
    # 31 has no entry in smpl_param.json, 41 a NaN shape: both kept, without SMPL
    assert [a["id"] for a, h in zip(anns, has) if not h] == [31, 41]
    assert (store.read("smpl_source")[has] == SMPL_SOURCES.index("smplify")).all()
    assert (store.read("gender") == GENDERS.index("neutral")).all() and store.read("has_smpl_transl")[has].all()
    with torch.no_grad():
        out = model(torch.as_tensor(store.read("smpl_global_orient")[has]),
                    torch.as_tensor(store.read("smpl_body_pose")[has]),
                    torch.as_tensor(store.read("smpl_betas")[has]),
                    torch.as_tensor(store.read("smpl_transl")[has]))
    joints = out.joints_smpl24.numpy()
    kp3d, kp2d, k = store.read("keypoints3d")[has], store.read("keypoints2d")[has], store.read("cam_intrinsics")[has]
    from hmr.core.body import SMPL24_JOINT_NAMES
    muco_to_superset = {name: sup for name, sup in PUBLISHER.values()}
    for muco, smpl in MUCO_FROM_SMPL.items():
        j = SMPL24_JOINT_NAMES.index(smpl)
        np.testing.assert_allclose(kp3d[:, slot(muco_to_superset[muco]), :3], joints[:, j], atol=2e-4,
                                   err_msg=muco)
    proj = project_points(joints.astype(np.float64), k.astype(np.float64))
    lw = SMPL24_JOINT_NAMES.index("left_wrist")
    assert np.abs(proj[:, lw] - kp2d[:, slot("left_wrist"), :2]).max() < 1.0


def test_options_image_sets_smpl_only_and_no_3d(raw, tmp_path):
    root, _ = raw
    _, store = convert("muco3dhp", root, tmp_path / "a", "train", image_sets="augmented")
    assert list(store.read("source_key")) == [f"MuCo-3DHP.json:ann={i}" for i in (21, 22, 31)]
    _, store = convert("muco3dhp", root, tmp_path / "b", "train", smpl_only=True, keypoints3d=False)
    assert [k.split("=")[1] for k in store.read("source_key")] == ["21", "22", "42"]
    assert (store.read("keypoints3d")[..., 3] == 0).all()
    _, store = convert("muco3dhp", root, tmp_path / "c", "train", vis_confidence=True)
    assert (store.read("keypoints2d")[:, slot("right_wrist"), 2] == 0).all()
    assert (store.read("keypoints2d")[:, slot("left_wrist"), 2] == 1).all()


def test_mmhuman3d_layout_is_found(tmp_path, model):
    root = tmp_path / "muco"
    write_muco3dhp(root / "data", model, images=True)
    (root / "extras").mkdir()
    (root / "data" / "MuCo-3DHP.json").rename(root / "extras" / "MuCo-3DHP.json")
    (root / "SMPLX").mkdir()
    (root / "data" / "smpl_param.json").rename(root / "SMPLX" / "smpl_param.json")
    _, store = convert("muco3dhp", root, tmp_path / "out", "train")
    assert store.read("image_path")[0] == "data/augmented_set/img_000007.jpg"
    assert store.read("has_smpl").sum() == 3


def test_bad_records_and_missing_files(raw, tmp_path):
    root, written = raw
    data = written["json"]
    data["annotations"][1]["keypoints_cam"][3][2] = float("nan")
    data["annotations"][2]["keypoints_img"] = data["annotations"][2]["keypoints_img"][:17]
    data["annotations"].append({**data["annotations"][0], "id": 99, "image_id": 1234})
    (root / "MuCo-3DHP.json").write_text(json.dumps(data))
    (root / "unaugmented_set" / "img_000009.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="ann=22"):
        convert("muco3dhp", root, tmp_path / "out", "train")
    assert leftovers(tmp_path / "out") == []
    result, store = convert("muco3dhp", root, tmp_path / "out", "train", skip_bad=True)
    reasons = {(b.record, b.message.split(" ")[0]) for b in result.skipped}
    assert reasons == {("MuCo-3DHP.json:ann=22", "NaN"), ("MuCo-3DHP.json:ann=31", "keypoints_img"),
                       ("MuCo-3DHP.json:ann=41", "image"), ("MuCo-3DHP.json:ann=42", "image"),
                       ("MuCo-3DHP.json:ann=99", "annotation")}
    assert result.num_samples == 1
    (root / "smpl_param.json").unlink()
    with pytest.raises(DatasetFormatError, match="smpl_param.json"):
        convert("muco3dhp", root, tmp_path / "o2", "train", skip_bad=True)
    _, store = convert("muco3dhp", root, tmp_path / "o3", "train", skip_bad=True, smpl=False)
    assert not store.read("has_smpl").any()
    (root / "MuCo-3DHP.json").write_text("{\"images\": [")
    with pytest.raises(DatasetFormatError, match="MuCo-3DHP.json"):
        convert("muco3dhp", root, tmp_path / "o4", "train")
