"""SPIN-style npz: import into schema v1, export loadable by SPIN (plain np.load), round trip."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from hmr.core.interop import export_spin_npz, read_spin_npz
from hmr.core.interop.common import HW_KNOWN_COLUMN, ROOT_RELATIVE_COLUMN, root_of
from hmr.core.keypoints import convert_keypoints, get_convention
from hmr.core.schema import open_store
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from tests.fixtures.interop import convert_npz, export_store, spin_arrays, write_spin_npz

SUP = get_convention("superset")


def convert(root, split, out, **kwargs):
    return convert_npz("spin_npz", root, split, out, **kwargs)


def test_part_and_openpose_combine_into_the_superset(tmp_path):
    arrays = spin_arrays(5)
    write_spin_npz(tmp_path / "h36m_train.npz", arrays)
    store = convert(tmp_path, "h36m_train", tmp_path / "out.zarr")
    kps = store.read("keypoints2d")
    np.testing.assert_allclose(kps[:, SUP.index("right_ankle")], arrays["part"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(kps[:, SUP.index("pelvis")], arrays["part"][:, 14], rtol=1e-6)
    np.testing.assert_allclose(kps[:, SUP.index("head_h36m")], arrays["part"][:, 18], rtol=1e-6)
    np.testing.assert_allclose(kps[:, SUP.index("nose_openpose")], arrays["openpose"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(kps[:, SUP.index("mid_hip_openpose")], arrays["openpose"][:, 8], rtol=1e-6)
    # 19 labelled J24 joints + 15 detected OpenPose joints, nothing else
    assert ((kps[..., 2] > 0).sum(axis=1) == 19 + 15).all()


def test_center_scale_smpl_and_3d(tmp_path):
    arrays = spin_arrays(5)
    write_spin_npz(tmp_path / "h36m_train.npz", arrays)
    store = convert(tmp_path, "h36m_train", tmp_path / "out.zarr")
    side = arrays["scale"] * 200
    np.testing.assert_allclose(store.read("bbox_xywh"),
                               np.column_stack([arrays["center"] - side[:, None] / 2, side, side]), rtol=1e-6)
    assert store.read("has_smpl").tolist() == [True] * 4 + [False]
    np.testing.assert_allclose(store.read("smpl_global_orient")[:4], arrays["pose"][:4, :3], rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_body_pose")[:4], arrays["pose"][:4, 3:], rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_betas")[:4], arrays["shape"][:4], rtol=1e-6)
    assert (store.read("smpl_source")[:4] == SMPL_SOURCES.index("mosh")).all()  # h36m file: MoSh
    kp3 = store.read("keypoints3d")
    np.testing.assert_allclose(kp3[:, SUP.index("left_wrist")], arrays["S"][:, 11], atol=1e-7)
    assert store.read(ROOT_RELATIVE_COLUMN).all()  # H36M's S is pelvis-centred
    assert not store.read("has_intrinsics").any()
    assert not store.read(HW_KNOWN_COLUMN).any()  # no images, no image_hw option: placeholder


def test_camera_frame_s_is_not_flagged_and_options_override(tmp_path):
    write_spin_npz(tmp_path / "mpi_inf_3dhp_train.npz", spin_arrays(4, root_centred=False, gender=True))
    store = convert(tmp_path, "mpi_inf_3dhp_train", tmp_path / "a.zarr", image_hw="2048,2048",
                    smpl_source="eft")
    assert not store.read(ROOT_RELATIVE_COLUMN).any()
    assert store.read("image_hw").tolist() == [[2048, 2048]] * 4 and store.read(HW_KNOWN_COLUMN).all()
    assert (store.read("smpl_source")[:3] == SMPL_SOURCES.index("eft")).all()
    assert [GENDERS[g] for g in store.read("gender")] == ["male", "female", "male", "female"]
    forced = convert(tmp_path, "mpi_inf_3dhp_train", tmp_path / "b.zarr", keypoints3d="root_relative")
    assert forced.read(ROOT_RELATIVE_COLUMN).all()


def test_image_sizes_from_headers_and_paths_relative_to_root(tmp_path):
    import cv2

    arrays = spin_arrays(2, smpl=False, openpose=False)
    images = tmp_path / "h36m_images"
    for name in arrays["imgname"]:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / name), np.zeros((30, 40, 3), np.uint8))
    root = tmp_path / "extras"
    root.mkdir()
    write_spin_npz(root / "h36m_valid.npz", arrays)
    store = convert(root, "h36m_valid", tmp_path / "out.zarr", check_images=True, images=str(images))
    assert store.read("image_hw").tolist() == [[30, 40]] * 2
    resolved = [(root / p).resolve() for p in store.read("image_path")]
    assert resolved == [(images / n).resolve() for n in arrays["imgname"]]
    assert not store.read("has_smpl").any()
    (images / arrays["imgname"][1]).unlink()
    with pytest.raises(DatasetFormatError, match="image file is missing"):
        convert(root, "h36m_valid", tmp_path / "gone.zarr", check_images=True, images=str(images))


def test_malformed_npz_names_file_and_key(tmp_path):
    arrays = spin_arrays(3)
    arrays["part"] = arrays["part"][:, :14]  # LSP-14 is not SPIN's J24
    with pytest.raises(DatasetFormatError, match="'part'") as err:
        read_spin_npz(write_spin_npz(tmp_path / "bad.npz", arrays))
    assert "bad.npz" in str(err.value)
    arrays = spin_arrays(3)
    del arrays["center"]
    with pytest.raises(DatasetFormatError, match="center"):
        read_spin_npz(write_spin_npz(tmp_path / "nocenter.npz", arrays))
    arrays = spin_arrays(3)
    arrays["pose"][1, 0] = np.nan
    write_spin_npz(tmp_path / "nan.npz", arrays)
    with pytest.raises(DatasetFormatError, match=r"nan\.npz, record 1: SMPL"):
        convert(tmp_path, "nan", tmp_path / "nan.zarr")


def test_export_loads_with_plain_np_load_and_round_trips(tmp_path):
    src = open_store(export_store(tmp_path / "src.zarr"))
    out = export_spin_npz(src, tmp_path / "h36m_test.npz")
    data = np.load(out)  # as SPIN loads it: no pickles allowed or needed
    n = len(src)
    assert set(data.files) == {"imgname", "center", "scale", "part", "openpose", "S", "pose", "shape",
                               "has_smpl", "gender"}
    assert data["part"].shape == (n, 24, 3) and data["openpose"].shape == (n, 25, 3)
    assert data["S"].shape == (n, 24, 4) and data["pose"].shape == (n, 72)
    assert data["imgname"].dtype.kind == "U" and data["center"].dtype == np.float64
    assert data["gender"].tolist() == ["m", "f"] * (n // 2)
    # S is root-centred: the pelvis (J24 14) at the origin
    np.testing.assert_allclose(data["S"][:, 14, :3], 0, atol=1e-6)
    back = convert(tmp_path, "h36m_test", tmp_path / "back.zarr", smpl_source="ground-truth")
    _assert_survivors(src, back)


def _assert_survivors(src, back):
    """Everything SPIN's format can hold comes back; the rest is documented as lost."""
    j24_op = np.zeros(SUP.num_joints, bool)
    j24_op[SUP.indices(get_convention("spin_24").joint_names)] = True
    j24_op[SUP.indices(get_convention("openpose_25").joint_names)] = True
    np.testing.assert_allclose(back.read("keypoints2d")[:, j24_op], src.read("keypoints2d")[:, j24_op],
                               rtol=1e-6)
    assert not back.read("keypoints2d")[:, ~j24_op].any()  # e.g. left_big_toe is lost
    np.testing.assert_allclose(back.read("bbox_xywh"), src.read("bbox_xywh"), rtol=1e-5)  # square boxes
    kp3 = src.read("keypoints3d")
    centred = kp3.copy()
    centred[..., :3] = np.where(kp3[..., 3:] > 0, kp3[..., :3] - root_of(kp3)[:, None], 0)
    np.testing.assert_allclose(back.read("keypoints3d"), centred, atol=1e-6)
    assert back.read(ROOT_RELATIVE_COLUMN).all()
    for name in ("image_path", "has_smpl", "gender"):
        np.testing.assert_array_equal(back.read(name), src.read(name), err_msg=name)
    for name in ("smpl_global_orient", "smpl_body_pose", "smpl_betas"):
        np.testing.assert_allclose(back.read(name), src.read(name), rtol=1e-6, err_msg=name)
    # lost: cameras, SMPL translation and source, image size, subject ids
    assert src.read("has_smpl_transl").any() and not back.read("has_smpl_transl").any()
    assert (back.read("smpl_source")[back.read("has_smpl")] == SMPL_SOURCES.index("ground-truth")).all()
    assert src.read("has_intrinsics").all() and not back.read("has_intrinsics").any()
    assert not back.read("has_extrinsics").any() and (back.read("subject_id") == "").all()


def test_export_of_root_relative_store_keeps_values_and_drops_optional_keys(tmp_path):
    # camera-frame values declared root-relative: export must not re-centre them
    arrays = spin_arrays(3, smpl=False, openpose=False, root_centred=False)
    write_spin_npz(tmp_path / "a.npz", arrays)
    first = convert(tmp_path, "a", tmp_path / "a.zarr", keypoints3d="root_relative")
    out = export_spin_npz(first, tmp_path / "b.npz")
    data = np.load(out)
    assert set(data.files) == {"imgname", "center", "scale", "part", "S"}  # no SMPL, OP, gender
    np.testing.assert_allclose(data["S"], arrays["S"], atol=1e-6)  # flagged root-relative: untouched
    np.testing.assert_allclose(data["part"], arrays["part"], rtol=1e-6)
    np.testing.assert_allclose(data["center"], arrays["center"], rtol=1e-6)
    np.testing.assert_allclose(data["scale"], arrays["scale"], rtol=1e-6)


def test_converted_keypoints_match_convention_conversion(tmp_path):
    # the importer's J24 mapping is the registry's spin_24 mapping, not a private copy
    arrays = spin_arrays(2, openpose=False)
    write_spin_npz(tmp_path / "x.npz", arrays)
    store = convert(tmp_path, "x", tmp_path / "x.zarr")
    expected, _ = convert_keypoints(arrays["part"].astype(np.float32), "spin_24", "superset")
    np.testing.assert_allclose(store.read("keypoints2d"), expected, rtol=1e-6)


def test_file_option_reads_an_npz_outside_root(tmp_path):
    arrays = spin_arrays(3)
    elsewhere = tmp_path / "downloads"
    elsewhere.mkdir()
    write_spin_npz(elsewhere / "coco_2014_train.npz", arrays)
    root = tmp_path / "coco"
    root.mkdir()
    store = convert(root, "train", tmp_path / "out.zarr", file=str(elsewhere / "coco_2014_train.npz"))
    assert list(store.read("image_path")) == list(arrays["imgname"])  # relative to ROOT (= images)
    assert store.read("source_key")[2] == "coco_2014_train.npz:2"
    assert (store.read("smpl_source")[:2] == SMPL_SOURCES.index("ground-truth")).all()
