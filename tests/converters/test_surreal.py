"""SURREAL converter: mp4 + _info.mat clips, the det = -1 camera turned into a proper,
unmirrored camera-frame body whose joints project onto the 2D joints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from converters import surreal
from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.geometry import project_points
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS, SMPL_SOURCES
from tests.fixtures import surreal as fx
from tests.fixtures.converters_2d import convert, leftovers, slot

PUBLISHER = {name: i for i, name in enumerate(fx.SURREAL_JOINTS)}


def sslot(name: str) -> int:
    """Superset index of SMPL's joint ``name`` ('left_wrist' -> slot 'smpl_left_wrist')."""
    return slot(f"smpl_{name}")


@pytest.fixture(scope="module")
def models():
    return {g: load_body_model(gender=g) for g in ("male", "female")}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, models):
    """train/run0: a male clip (5 frames) and a female clip (3); train/run1: one clip (2)."""
    root = tmp_path_factory.mktemp("surreal") / "cmu"
    rng = np.random.default_rng(0)
    clips = {
        "a": fx.write_clip(root, "train", 0, "01_01", 1, 5, models["male"], rng, gender=1, facing_frame=2),
        "b": fx.write_clip(root, "train", 0, "ung_122_57", 3, 3, models["female"], rng, gender=0),
        "c": fx.write_clip(root, "train", 1, "01_01", 1, 2, models["male"], rng),
    }
    return root, clips


@pytest.fixture(scope="module")
def converted(dataset, tmp_path_factory):
    root, _ = dataset
    _, store = convert("surreal", root, tmp_path_factory.mktemp("out") / "s.zarr", "train")
    return store.columns()


def _forward(model, cols, rows):
    f32 = lambda a: torch.as_tensor(np.asarray(a)[rows], dtype=torch.float32)
    with torch.no_grad():
        out = model(f32(cols["smpl_global_orient"]), f32(cols["smpl_body_pose"]), f32(cols["smpl_betas"]),
                    transl=f32(cols["smpl_transl"]))
    return out.joints_smpl24.numpy().astype(np.float64), out.vertices.numpy()


def test_samples_frames_and_fields(converted, dataset):
    root, clips = dataset
    cols = converted
    assert list(cols["sequence"]) == ["run0/01_01_c0001"] * 5 + ["run0/ung_122_57_c0003"] * 3  # run0 only
    assert list(cols["frame_index"]) == [0, 1, 2, 3, 4, 0, 1, 2]
    assert cols["source_key"][6] == "train/run0/ung_122_57/ung_122_57_c0003_info.mat:1"
    assert [GENDERS[g] for g in cols["gender"]] == ["male"] * 5 + ["female"] * 3
    assert (cols["smpl_source"] == SMPL_SOURCES.index("ground-truth")).all() and cols["has_smpl"].all()
    assert not cols["has_extrinsics"].any() and cols["has_intrinsics"].all()
    np.testing.assert_allclose(cols["cam_intrinsics"][0], fx.K)
    np.testing.assert_allclose(cols["extra_cam_loc"][0], clips["a"].cam_loc)
    # frames decoded from the mp4 in order: frame i has grey level frame_level(i)
    import cv2
    for row, frame in ((0, 0), (3, 3), (7, 2)):
        path = root / cols["image_path"][row]
        assert path.name == f"{frame:06d}.jpg" and path.parent.name == cols["sequence"][row].split("/")[1]
        image = cv2.imread(str(path))
        assert image.shape == (240, 320, 3) and tuple(cols["image_hw"][row]) == (240, 320)
        assert abs(float(image.mean()) - fx.frame_level(frame)) < 4
    assert not [p for p in (root / "frames").rglob("*") if ".partial" in p.name or ".old" in p.name]


def test_keypoints_follow_the_documented_mirror_rule(converted, dataset):
    """The stored left wrist is the publisher's RIGHT wrist moved by R X + T (det R = -1)."""
    _, clips = dataset
    clip = clips["a"]
    rot, trans = fx.extrinsic(clip.cam_loc)
    assert np.linalg.det(rot) == pytest.approx(-1.0)
    cam = clip.joints3d_world @ rot.T + trans  # (T, 24, 3), the publisher's names
    for ours, theirs in (("left_wrist", "rightHand"), ("right_ankle", "leftFoot"), ("pelvis", "hips"),
                         ("left_shoulder", "rightArm")):
        np.testing.assert_allclose(converted["keypoints3d"][:5, sslot(ours), :3], cam[:, PUBLISHER[theirs]],
                                   atol=1e-5)
        np.testing.assert_allclose(converted["keypoints2d"][:5, sslot(ours), :2],
                                   clip.joints2d[:, PUBLISHER[theirs]])
    labelled = get_convention("smpl").superset_indices
    assert (converted["keypoints2d"][:, labelled, 2] == 1).all()
    assert (np.delete(converted["keypoints2d"][..., 2], labelled, axis=1) == 0).all()


def test_3d_projects_onto_2d_and_the_body_is_not_mirrored(converted):
    smpl = get_convention("smpl").superset_indices
    kp3, kp2 = converted["keypoints3d"][:, smpl, :3], converted["keypoints2d"][:, smpl, :2]
    proj = project_points(kp3.astype(np.float64), converted["cam_intrinsics"][0].astype(np.float64))
    assert np.abs(proj - kp2).max() <= 0.5 * np.sqrt(2) + 1e-3  # joints2D are rounded
    # chirality from label-free cues: up = pelvis -> neck, forward = ankles -> toes (both
    # feet); the person's left is up x forward, and the left hips / shoulders lie on it
    j = lambda name: converted["keypoints3d"][:, sslot(name), :3].astype(np.float64)
    up = j("neck") - j("pelvis")
    forward = (j("left_foot") - j("left_ankle")) + (j("right_foot") - j("right_ankle"))
    left = np.cross(up, forward)
    for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")):
        assert ((j(a) - j(b)) * left).sum(-1).min() > 0, a


def test_left_hand_on_the_persons_left_in_the_image(converted):
    """Frame 2 of clip a faces the camera (toes nearer than the ankles): the person's left
    hand is then on the image's right."""
    row = 2
    kp3, kp2 = converted["keypoints3d"][row], converted["keypoints2d"][row]
    toes_z = kp3[[sslot("left_foot"), sslot("right_foot")], 2].mean()
    ankles_z = kp3[[sslot("left_ankle"), sslot("right_ankle")], 2].mean()
    assert toes_z < ankles_z  # facing the camera (label-free: both feet)
    assert kp2[sslot("left_wrist"), 0] > kp2[sslot("right_wrist"), 0] + 10
    assert kp2[sslot("left_shoulder"), 0] > kp2[sslot("right_shoulder"), 0]


def test_smpl_from_the_store_reproduces_the_3d_joints(converted, models):
    smpl = get_convention("smpl").superset_indices
    for gender, rows in (("male", slice(0, 5)), ("female", slice(5, 8))):
        joints, verts = _forward(models[gender], converted, rows)
        np.testing.assert_allclose(joints, converted["keypoints3d"][rows][:, smpl, :3], atol=1e-4)
        # and onto the 2D joints through the stored intrinsics
        proj = project_points(joints, converted["cam_intrinsics"][0].astype(np.float64))
        assert np.abs(proj - converted["keypoints2d"][rows][:, smpl, :2]).max() < 0.75
        # a proper body: outward normals (mirrored meshes turn their faces inside out)
        v = torch.as_tensor(verts[0], dtype=torch.float64)
        f = torch.as_tensor(models[gender].faces)
        volume = torch.einsum("fi,fi->f", v[f[:, 0]], torch.cross(v[f[:, 1]], v[f[:, 2]], dim=1)).sum() / 6
        assert volume > 0


def test_world_smpl_without_the_mirror_does_not_fit(dataset, models):
    """The rule can fail: the publisher's world SMPL moved by R (det -1) is no SMPL body at
    the keypoints, and ignoring zrot misplaces the joints."""
    _, clips = dataset
    clip = surreal.read_info(clips["a"].info)
    bad = surreal.world_root_rotation(clip.pose[:, :3], np.zeros(5))
    good = surreal.world_root_rotation(clip.pose[:, :3], clip.zrot)
    assert np.abs(bad - good).max() > 0.1
    assert np.linalg.det(surreal.R_WORLD_TO_CV @ good).min() < 0  # must be completed by a mirror


def test_options_runs_stride_decode(dataset, tmp_path):
    root, _ = dataset
    _, store = convert("surreal", root, tmp_path / "a.zarr", "train", runs="0,1", stride=2, decode="false")
    cols = store.columns()
    assert list(cols["sequence"]) == ["run0/01_01_c0001"] * 3 + ["run0/ung_122_57_c0003"] * 2 + ["run1/01_01_c0001"]
    assert list(cols["frame_index"]) == [0, 2, 4, 0, 2, 0]
    assert cols["image_path"][5] == "frames/train/run1/01_01/01_01_c0001/000000.jpg"
    assert not (root / "frames" / "train" / "run1").exists()  # decode=false wrote nothing
    with pytest.raises(HmrError, match="runs"):
        convert("surreal", root, tmp_path / "b.zarr", "train", runs="3")


def test_bad_records(tmp_path, models):
    root = tmp_path / "cmu"
    rng = np.random.default_rng(3)
    fx.write_clip(root, "test", 0, "02_03", 1, 4, models["male"], rng, video_frames=2)
    shifted = fx.write_clip(root, "test", 0, "02_04", 1, 3, models["male"], rng)
    j2 = shifted.joints2d.copy()
    j2[1, 5, 0] += 3.0
    fx.rewrite_info(shifted.info, joints2D=j2.transpose(2, 1, 0).astype(np.float32))
    with pytest.raises(HmrError, match="02_03_c0001.mp4"):
        convert("surreal", root, tmp_path / "a.zarr", "test")
    assert leftovers(tmp_path / "a.zarr") == []
    res, store = convert("surreal", root, tmp_path / "b.zarr", "test", skip_bad=True)
    bad = {(b.path.split("/")[-1], b.record): b.message for b in res.skipped}
    assert set(bad) == {("02_03_c0001.mp4", "test/run0/02_03/02_03_c0001_info.mat:2"),
                        ("02_03_c0001.mp4", "test/run0/02_03/02_03_c0001_info.mat:3"),
                        ("02_04_c0001_info.mat", "test/run0/02_04/02_04_c0001_info.mat:1")}
    assert "joints2D lie 3." in bad[("02_04_c0001_info.mat", "test/run0/02_04/02_04_c0001_info.mat:1")]
    assert list(store.columns()["frame_index"]) == [0, 1, 0, 2]


def test_unreadable_info_names_the_file(tmp_path, models):
    root = tmp_path / "cmu"
    clip = fx.write_clip(root, "val", 0, "05_01", 2, 2, models["male"], np.random.default_rng(4))
    fx.rewrite_info(clip.info, joints3D=None)
    with pytest.raises(DatasetFormatError, match="joints3D") as err:
        convert("surreal", root, tmp_path / "a.zarr", "val")
    assert "05_01_c0002_info.mat" in str(err.value)
    with pytest.raises(DatasetFormatError, match="pass --root"):
        convert("surreal", tmp_path, tmp_path / "b.zarr", "val")
