"""EFT fits: rotation matrices -> axis-angle reproduce the fit through the body model, box,
keypoints, the test-set converters, bad input (NaN pose, non-rotation, missing image)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr.core.errors import DatasetFormatError
from hmr.core.schema.fields import SMPL_SOURCES
from tests.fixtures.converters_2d import convert, leftovers, slot, write_eft

COCO_VAL = ("coco_2014_train_fit/COCO2014-Val-ver10.json", "../coco/val2014")


@pytest.fixture
def eft_val(tmp_path):
    root = tmp_path / "datasets" / "eft"
    written = write_eft(root, *COCO_VAL, n=4)
    return root, written


def test_smpl_is_the_fit_in_axis_angle(eft_val, tmp_path):
    root, written = eft_val
    _, store = convert("eft-coco", root, tmp_path / "out", "val")
    assert len(store) == 4
    assert (store.read("has_smpl")).all()
    assert set(store.read("smpl_source")) == {SMPL_SOURCES.index("eft")}
    pose = np.concatenate([store.read("smpl_global_orient")[:, None],
                           store.read("smpl_body_pose").reshape(-1, 23, 3)], axis=1)  # (4, 24, 3)
    for i, entry in enumerate(written["data"]):
        rotmats = Rotation.from_rotvec(pose[i]).as_matrix()
        np.testing.assert_allclose(rotmats, entry["parm_pose"], atol=2e-6)
        np.testing.assert_allclose(store.read("smpl_betas", i, i + 1)[0], entry["parm_shape"], rtol=1e-6)
        np.testing.assert_allclose(store.read("extra_weak_cam", i, i + 1)[0], entry["parm_cam"], rtol=1e-6)
    # the near-pi root rotation of sample 0 keeps its angle
    assert abs(np.linalg.norm(pose[0, 0]) - (np.pi - 1e-4)) < 1e-4


def test_stored_smpl_reproduces_the_fit_joints_through_the_body_model(eft_val, tmp_path):
    from hmr.core.body.smpl import load_body_model

    root, written = eft_val
    _, store = convert("eft-coco", root, tmp_path / "out", "val")
    model = load_body_model()
    rotmats = torch.tensor([e["parm_pose"] for e in written["data"]], dtype=torch.float32)  # (4, 24, 3, 3)
    betas = torch.tensor(store.read("smpl_betas"))
    with torch.no_grad():
        source = model(rotmats[:, :1], rotmats[:, 1:], betas, pose2rot=False)
        stored = model(torch.tensor(store.read("smpl_global_orient")),
                       torch.tensor(store.read("smpl_body_pose")), betas)
    np.testing.assert_allclose(stored.joints_smpl24.numpy(), source.joints_smpl24.numpy(), atol=1e-4)
    np.testing.assert_allclose(stored.vertices.numpy(), source.vertices.numpy(), atol=1e-4)


def test_box_keypoints_and_image(eft_val, tmp_path):
    root, written = eft_val
    _, store = convert("eft-coco", root, tmp_path / "out", "val")
    for i, entry in enumerate(written["data"]):
        side = entry["bbox_scale"] * 200
        cx, cy = entry["bbox_center"]
        np.testing.assert_allclose(store.read("bbox_xywh", i, i + 1)[0],
                                   [cx - side / 2, cy - side / 2, side, side], rtol=1e-5)
        kps = store.read("keypoints2d", i, i + 1)[0]
        gt = np.asarray(entry["gt_keypoint_2d"])  # (49, 3) SPIN order
        np.testing.assert_allclose(kps[slot("right_ankle")], gt[25], rtol=1e-6)  # GT joint 0
        np.testing.assert_allclose(kps[slot("nose_openpose")], gt[0], rtol=1e-6)
        np.testing.assert_allclose(kps[slot("head_top")], gt[25 + 13], rtol=1e-6)
    assert store.read("image_path")[0] == "../coco/val2014/COCO_train2014_000000000000.jpg"
    np.testing.assert_array_equal(store.read("image_hw")[:, 0], [48, 49, 50, 51])
    assert store.read("source_key")[2] == "COCO2014-Val-ver10.json[2]:ann=1002"


def test_nan_pose_names_file_and_record_and_skip_bad_reports_it(tmp_path):
    root = tmp_path / "eft"
    write_eft(root, *COCO_VAL, n=4, nan_entry=2)
    with pytest.raises(DatasetFormatError, match="NaN") as err:
        convert("eft-coco", root, tmp_path / "out", "val")
    assert err.value.path == str(root / COCO_VAL[0]) and err.value.record == 2
    assert leftovers(tmp_path / "out") == []
    result, store = convert("eft-coco", root, tmp_path / "out", "val", skip_bad=True)
    assert len(store) == 3
    report = json.loads(result.skipped_report.read_text())
    assert report == [{"path": str(root / COCO_VAL[0]), "record": 2,
                       "message": "parm_pose contains NaN or inf"}]


def test_a_matrix_that_is_not_a_rotation_is_refused(tmp_path):
    root = tmp_path / "eft"
    written = write_eft(root, *COCO_VAL, n=3)
    written["data"][1]["parm_pose"][3] = (2 * np.eye(3)).tolist()
    (root / COCO_VAL[0]).write_text(json.dumps({"ver": "1.0", "data": written["data"]}))
    with pytest.raises(DatasetFormatError, match="not rotations") as err:
        convert("eft-coco", root, tmp_path / "out", "val")
    assert err.value.record == 1


def test_missing_image(tmp_path):
    root = tmp_path / "eft"
    write_eft(root, *COCO_VAL, n=3, missing_image=1)
    with pytest.raises(DatasetFormatError, match="missing") as err:
        convert("eft-coco", root, tmp_path / "out", "val")
    assert err.value.path.endswith("val2014/COCO_train2014_000000000001.jpg")
    assert err.value.record == "COCO2014-Val-ver10.json[1]"
    assert leftovers(tmp_path / "out") == []


def test_truncated_fit_file(tmp_path):
    root = tmp_path / "eft"
    write_eft(root, *COCO_VAL, n=2)
    path = root / COCO_VAL[0]
    path.write_text(path.read_text()[:-40])
    with pytest.raises(DatasetFormatError, match="truncated JSON") as err:
        convert("eft-coco", root, tmp_path / "out", "val")
    assert err.value.path == str(path)


def test_image_name_with_a_folder_falls_back_to_the_basename(tmp_path):
    root = tmp_path / "eft"
    written = write_eft(root, "LSPet_fit/LSPet_test_ver10.json", "../lspet", n=2)
    for entry in written["data"]:
        entry["imageName"] = "/some/where/else/" + entry["imageName"]
    (root / "LSPet_fit/LSPet_test_ver10.json").write_text(json.dumps({"ver": "1.0", "data": written["data"]}))
    result, store = convert("eft-lspet", root, tmp_path / "out", "test")
    assert result.store.name == "eft_lspet_test.zarr"
    assert store.read("image_path")[1] == "../lspet/COCO_train2014_000000000001.jpg"


def test_fits_and_images_options(tmp_path):
    root = tmp_path / "eft"
    write_eft(root, "mine/fits.json", "imgs", n=2)
    _, store = convert("eft-ochuman", root, tmp_path / "out", "test", fits="mine/fits.json", images="imgs")
    assert len(store) == 2 and store.read("image_path")[0].startswith("imgs/")


def test_converters_match_their_manifests_and_benchmarks():
    from converters import get_converter
    from converters.eft import BENCHMARKS
    from manifests.model import load_manifest

    for name in ("eft_coco", "eft_coco_part", "eft_lspet", "eft_mpii", "eft_ochuman", "eft_posetrack"):
        module = get_converter(name)
        manifest_paths = {f.path for f in load_manifest(module.SOURCE.manifest).files}
        for split, subset in module.SUBSETS.items():
            assert subset.fits in manifest_paths, (name, split)
    for benchmark, (name, split) in BENCHMARKS.items():
        assert split in get_converter(name).SOURCE.splits, benchmark


def test_stored_smpl_and_crop_camera_land_on_the_2d_keypoints(tmp_path):
    """A consistent source (keypoints = the fit's projection): the stored SMPL through the
    body model, projected with ``extra_weak_cam`` and the stored box, lands on the stored
    2D keypoints within a pixel."""
    from converters.eft import weak_perspective_to_pixels
    from hmr.core.body.smpl import load_body_model
    from hmr.core.keypoints import get_convention

    model = load_body_model()
    root = tmp_path / "eft"
    write_eft(root, *COCO_VAL, n=3, model=model)
    _, store = convert("eft-coco", root, tmp_path / "out", "val")
    with torch.no_grad():
        out = model(torch.tensor(store.read("smpl_global_orient")),
                    torch.tensor(store.read("smpl_body_pose")), torch.tensor(store.read("smpl_betas")))
    joints = out.joints_spin49.numpy()  # (3, 49, 3)
    px = weak_perspective_to_pixels(joints, store.read("extra_weak_cam"), store.read("bbox_xywh"))
    spin49 = [slot(n) for n in get_convention("spin_49").joint_names]
    kps = store.read("keypoints2d")[:, spin49]  # (3, 49, 3)
    assert (kps[..., 2] == 1).all()
    assert np.abs(px - kps[..., :2]).max() < 0.01  # float32 round-off; "within a pixel" is loose
