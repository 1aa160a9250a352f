"""MMHuman3D HumanData npz: import into schema v1 (values by name), export, round trip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from converters.driver import run_conversion
from converters.options import ConvertOptions
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.interop import export_humandata, read_humandata
from hmr.core.interop.common import HW_KNOWN_COLUMN, ROOT_RELATIVE_COLUMN
from hmr.core.interop.safe_npz import SafeNpz
from hmr.core.keypoints import get_convention
from hmr.core.schema import open_store
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from tests.fixtures.interop import (
    HD_MASKED_OUT, convert_npz, export_store, hd_point2d, hd_point3d, humandata_items, write_humandata,
    write_malicious_humandata,
)
from tests.fixtures.paths import MMPOSE_SAMPLES

SUP = get_convention("superset")


def convert(root, split, out, **kwargs):
    return convert_npz("humandata", root, split, out, **kwargs)


@pytest.fixture
def pw3d(tmp_path):
    items = humandata_items(6)
    write_humandata(tmp_path / "pw3d_test.npz", items)
    return tmp_path, items


def test_joints_land_in_named_superset_slots(pw3d, tmp_path):
    root, items = pw3d
    store = convert(root, "pw3d_test", tmp_path / "out.zarr")
    kps = store.read("keypoints2d")
    for hd_name, slot in [("left_hip_extra", "left_hip"), ("headtop", "head_top"),
                          ("neck_extra", "neck"), ("left_knee", "left_knee"), ("nose", "nose"),
                          ("pelvis_openpose", "mid_hip_openpose"), ("pelvis", "smpl_pelvis"),
                          ("head_extra", "head_h36m"), ("right_thumb", "right_thumb_4")]:
        for i in range(len(store)):
            np.testing.assert_allclose(kps[i, SUP.index(slot), :2], hd_point2d(i, hd_name), rtol=1e-6)
            assert kps[i, SUP.index(slot), 2] == 1.0
    assert kps[1, SUP.index("left_wrist"), 2] == 0  # unlabelled in the file stays unlabelled
    # the masked-out row held data: it must not appear anywhere
    assert kps[:, SUP.index(HD_MASKED_OUT), 2].max() == 0
    assert not np.isclose(kps[..., :2], 5.0).all(axis=-1).any()
    assert int((kps[0, :, 2] > 0).sum()) == len(
        [r for r in items["keypoints2d_mask"] if r])  # one slot per masked-in row


def test_3d_smpl_gender_cameras_and_boxes(pw3d, tmp_path):
    root, items = pw3d
    store = convert(root, "pw3d_test", tmp_path / "out.zarr")
    kp3 = store.read("keypoints3d")
    for hd_name, slot in [("pelvis_extra", "pelvis"), ("head_extra", "head_h36m"),
                          ("left_ankle", "left_ankle")]:
        np.testing.assert_allclose(kp3[3, SUP.index(slot), :3], hd_point3d(3, hd_name), atol=1e-7)
    # pelvis-centred 3D is flagged root-relative
    assert store.read(ROOT_RELATIVE_COLUMN).all()
    smpl = items["smpl"]
    has = store.read("has_smpl")
    assert has.tolist() == [True] * 5 + [False]
    np.testing.assert_allclose(store.read("smpl_global_orient")[:5], smpl["global_orient"][:5], rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_body_pose")[:5], smpl["body_pose"][:5].reshape(5, 69),
                               rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_betas")[:5], smpl["betas"][:5], rtol=1e-6)
    assert not store.read("smpl_body_pose")[5].any()  # has_smpl 0: parameters not copied
    assert (store.read("smpl_source")[:5] == SMPL_SOURCES.index("ground-truth")).all()
    assert [GENDERS[g] for g in store.read("gender")] == ["male", "female"] * 3
    K = store.read("cam_intrinsics")
    np.testing.assert_allclose(K[4], items["cam_param"][4]["in_mat"])
    np.testing.assert_allclose(store.read("cam_extrinsics")[4][:3, 3], items["cam_param"][4]["translation"])
    np.testing.assert_allclose(store.read("cam_distortion")[0], [0.01, -0.02, 0.001, 0.0, 0.0])
    assert store.read("image_hw")[0].tolist() == [1920, 1080] and store.read(HW_KNOWN_COLUMN).all()
    boxes = store.read("bbox_xywh")
    np.testing.assert_allclose(boxes[0], items["bbox_xywh"][0, :4])
    # row 2's box has confidence 0: replaced by the keypoints' box (x1.2 about their centre)
    labelled = store.read("keypoints2d")[2]
    kps_xy = labelled[labelled[:, 2] > 0, :2]
    lo, hi = kps_xy.min(0), kps_xy.max(0)
    np.testing.assert_allclose(boxes[2], [*((lo + hi) / 2 - (hi - lo) * 0.6), *((hi - lo) * 1.2)], rtol=1e-5)


@pytest.mark.parametrize("compressed, len_key, box_cols", [
    (False, "__data_len__", 5), (True, "__temporal_len__", 5), (True, "__data_len__", 4)])
def test_layout_variants_read_the_same(tmp_path, compressed, len_key, box_cols):
    items = humandata_items(4)
    items["bbox_xywh"] = items["bbox_xywh"][:, :box_cols] if box_cols == 4 else items["bbox_xywh"]
    ref = read_humandata(write_humandata(tmp_path / "a.npz", humandata_items(4)))
    other = read_humandata(write_humandata(tmp_path / "b.npz", items, compressed=compressed, len_key=len_key))
    np.testing.assert_array_equal(other.keypoints2d, ref.keypoints2d)
    np.testing.assert_array_equal(other.keypoints3d, ref.keypoints3d)
    assert other.bbox_xywh.shape == (4, 5)


def test_unsafe_pickle_is_refused_through_the_converter(tmp_path):
    write_malicious_humandata(tmp_path / "evil.npz", key="smpl")
    with pytest.raises(UnsafePickleError) as err:
        convert(tmp_path, "evil", tmp_path / "out.zarr")
    assert "evil.npz" in str(err.value) and "'smpl'" in str(err.value)
    assert not (tmp_path / "out.zarr").exists()


def _replace_member(src, dst, key, value):
    """Copy npz ``src`` to ``dst`` with member ``key`` replaced by ``value``."""
    buf = io.BytesIO()
    np.save(buf, value)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, buf.getvalue() if name == f"{key}.npy" else zin.read(name))
    return dst


def test_inconsistent_files_name_file_and_key(tmp_path):
    good = write_humandata(tmp_path / "good.npz", humandata_items(3))
    flipped = humandata_items(3)["keypoints2d_mask"].copy()
    flipped[0] = 1 - flipped[0]  # no longer matches the compressed keypoints' row count
    bad = _replace_member(good, tmp_path / "bad.npz", "keypoints2d_mask", flipped)
    with pytest.raises(DatasetFormatError, match="compressed") as err:
        read_humandata(bad)
    assert "bad.npz" in str(err.value) and "keypoints2d" in str(err.value)
    short = _replace_member(good, tmp_path / "short.npz", "__data_len__", np.array(7))
    with pytest.raises(DatasetFormatError, match="__data_len__"):
        read_humandata(short)
    items = humandata_items(3)
    items["smpl"] = {**items["smpl"], "betas": np.zeros((3, 4))}
    with pytest.raises(DatasetFormatError, match="betas"):
        read_humandata(write_humandata(tmp_path / "betas.npz", items))


def test_nan_pose_is_a_bad_record_and_skip_bad_converts_the_rest(tmp_path):
    items = humandata_items(4)
    items["smpl"]["body_pose"][1, 5, 0] = np.nan
    write_humandata(tmp_path / "nan.npz", items)
    with pytest.raises(DatasetFormatError, match=r"nan\.npz, record 1: SMPL"):
        convert(tmp_path, "nan", tmp_path / "a.zarr")
    options = ConvertOptions(workers=1, check_images=False)
    result = run_conversion("humandata", tmp_path, tmp_path / "b.zarr", split="nan", options=options,
                            skip_bad=True, progress=False)
    assert result.num_samples == 3 and len(result.skipped) == 1 and result.skipped_report.is_file()


def test_missing_images_are_bad_records_when_checked(pw3d, tmp_path):
    root, _ = pw3d
    items = humandata_items(2)
    items.pop("cam_param")  # no H, W: the image header must be read
    write_humandata(root / "nocam.npz", items)
    with pytest.raises(DatasetFormatError, match="image file is missing"):
        convert(root, "nocam", tmp_path / "x.zarr", check_images=True)
    assert not (tmp_path / "x.zarr").exists()
    store = convert(root, "nocam", tmp_path / "y.zarr", image_hw="1920,1080")
    assert store.read("image_hw").tolist() == [[1920, 1080]] * 2 and store.read(HW_KNOWN_COLUMN).all()
    placeholder = convert(root, "nocam", tmp_path / "z.zarr")
    assert not placeholder.read(HW_KNOWN_COLUMN).any()
    hw = placeholder.read("image_hw")
    box = placeholder.read("bbox_xywh")
    assert (hw[:, 1] >= box[:, 0] + box[:, 2]).all() and (hw[:, 0] >= box[:, 1] + box[:, 3]).all()


def test_export_matches_mmhuman3d_layout_and_round_trips(tmp_path):
    src = open_store(export_store(tmp_path / "src.zarr"))
    out = export_humandata(src, tmp_path / "h36m_test.npz")
    # the same key set and dtypes as the fixture writer (which mirrors HumanData.dump)
    ref = write_humandata(tmp_path / "ref.npz", humandata_items(3))
    with SafeNpz(out) as got, SafeNpz(ref) as want:
        assert set(got.keys()) == set(want.keys())
        for key in want.keys():
            g, w = got[key], want[key]
            assert type(g) is type(w), key
            if isinstance(w, np.ndarray):
                assert g.dtype.kind == w.dtype.kind and g.ndim == w.ndim, key
        assert bool(got["__keypoints_compressed__"]) and int(got["__data_len__"]) == len(src)
        assert got["keypoints2d"].shape[1] == int(got["keypoints2d_mask"].sum())
        assert set(got["smpl"]) == {*want["smpl"], "transl"}  # MMHuman3D's optional transl, too
        assert got["smpl"]["body_pose"].shape == (len(src), 23, 3)
        assert str(got["config"]) == "h36m"
        np.testing.assert_array_equal(got["bbox_xywh"][:, 4], 1.0)
    back = convert(tmp_path, "h36m_test", tmp_path / "back.zarr")
    _assert_same(src, back)


def _assert_same(src, back):
    kept = back.read("keypoints2d")[0, :, 2] > 0
    assert kept.sum() == (src.read("keypoints2d")[0, :, 2] > 0).sum()  # every exported joint maps back
    np.testing.assert_allclose(back.read("keypoints2d"), src.read("keypoints2d"), rtol=1e-6)
    np.testing.assert_allclose(back.read("keypoints3d"), src.read("keypoints3d"), rtol=1e-6)
    for name in ("bbox_xywh", "smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl",
                 "cam_intrinsics", "cam_extrinsics", "cam_distortion", "image_hw"):
        np.testing.assert_allclose(back.read(name), src.read(name), rtol=1e-6, err_msg=name)
    for name in ("image_path", "has_smpl", "gender", "has_intrinsics", "has_extrinsics", "smpl_source",
                 "has_smpl_transl"):
        np.testing.assert_array_equal(back.read(name), src.read(name), err_msg=name)
    assert not back.read(ROOT_RELATIVE_COLUMN).any()  # camera-frame 3D stays camera-frame
    # what HumanData cannot hold
    assert (back.read("subject_id") == "").all() and (src.read("subject_id") == "S9").all()


H36M_SAMPLES = MMPOSE_SAMPLES / "h36m"


def test_h36m_layout_camera_dict_and_real_frames(tmp_path):
    """H36M HumanData keeps one dict of cameras keyed (subject, camera id); real frames give
    the image sizes."""
    from PIL import Image

    from hmr.core.utils.safe_pickle import load

    cams = load(H36M_SAMPLES / "cameras.pkl")  # the real H36M calibration (mmpose's copy)
    frames = sorted(H36M_SAMPLES.glob("S*/*/*.jpg"))
    assert len(frames) >= 4
    items = humandata_items(len(frames))
    items["image_path"] = [str(p.relative_to(H36M_SAMPLES)) for p in frames]
    items["config"] = "h36m"
    items["cam_param"] = {key: {
        "in_mat": [[float(c["f"][0, 0]), 0.0, float(c["c"][0, 0])],
                   [0.0, float(c["f"][1, 0]), float(c["c"][1, 0])], [0.0, 0.0, 1.0]],
        "rotation_mat": c["R"].tolist(), "translation": (-c["R"] @ c["T"] / 1000).ravel().tolist(),
        "k1": float(c["k"][0, 0]), "k2": float(c["k"][1, 0]), "k3": float(c["k"][2, 0]),
        "p1": float(c["p"][0, 0]), "p2": float(c["p"][1, 0]), "name": key[1]} for key, c in cams.items()}
    write_humandata(tmp_path / "h36m_valid.npz", items)
    store = convert(tmp_path, "h36m_valid", tmp_path / "out.zarr", check_images=True,
                    images=str(H36M_SAMPLES))
    for i, frame in enumerate(frames):
        subject, camera = frame.parts[-3], frame.parent.name.split(".")[1]
        cam = cams[(subject, camera)]
        K = store.read("cam_intrinsics")[i]
        np.testing.assert_allclose(K[[0, 1], [0, 1]], cam["f"].ravel(), rtol=1e-6)
        np.testing.assert_allclose(store.read("cam_extrinsics")[i][:3, :3], cam["R"], atol=1e-6)
        with Image.open(frame) as im:
            assert store.read("image_hw")[i].tolist() == [im.height, im.width]
        assert Path(store.read("image_path")[i]).resolve() == frame.resolve()
    assert store.read("has_extrinsics").all() and store.read(HW_KNOWN_COLUMN).all()


def test_root_relative_flags_survive_a_humandata_round_trip(tmp_path):
    from tests.fixtures.interop import spin_arrays, write_spin_npz

    # camera-frame S declared root-relative: only misc can carry that back (auto would say camera)
    write_spin_npz(tmp_path / "dhp.npz", spin_arrays(4, root_centred=False))
    first = convert_npz("spin_npz", tmp_path, "dhp", tmp_path / "a.zarr", keypoints3d="root_relative")
    export_humandata(first, tmp_path / "dhp_hd.npz")
    back = convert(tmp_path, "dhp_hd", tmp_path / "b.zarr")
    assert back.read(ROOT_RELATIVE_COLUMN).all()
    np.testing.assert_allclose(back.read("keypoints3d"), first.read("keypoints3d"), rtol=1e-6)
    np.testing.assert_array_equal(back.read("smpl_source"), first.read("smpl_source"))
