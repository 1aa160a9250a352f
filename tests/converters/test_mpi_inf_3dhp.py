"""MPI-INF-3DHP converter: generated annot.mat / annot_data.mat fixtures, real cameras and frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from converters import mpi_inf_3dhp as m3
from converters.driver import run_conversion
from converters.options import ConvertOptions
from hmr.core.geometry import project_points
from hmr.core.errors import DatasetFormatError
from hmr.core.keypoints import get_convention
from hmr.core.schema import open_store
from tests.fixtures import converters_3d as fx


def _convert(root, out, split, skip_bad=False, **extra):
    options = ConvertOptions(workers=1, extra={k: str(v) for k, v in extra.items()})
    return run_conversion("mpi_inf_3dhp", root, out, split=split, skip_bad=skip_bad, options=options,
                          progress=False)


def test_calibration_file_and_mmpose_cameras_agree(tmp_path):
    real = fx.mpi3dhp_real_train_cameras()
    cams = {i: real[f"S1_Seq1_Cam{i}"] if f"S1_Seq1_Cam{i}" in real else real["S1_Seq1_Cam0"] for i in range(14)}
    parsed = m3.parse_calibration(fx.write_3dhp_calibration(tmp_path / "camera.calibration", cams))
    from_pkl = m3.read_mmpose_cameras(fx.MPI3DHP_REAL / "cameras_train.pkl", "S1", "Seq1")
    assert sorted(from_pkl) == [0, 1, 2, 4, 5, 6, 7, 8]
    for i, cam in from_pkl.items():
        np.testing.assert_allclose(parsed[i].intrinsics, cam.intrinsics, atol=1e-4)
        np.testing.assert_allclose(parsed[i].extrinsics, cam.extrinsics, atol=1e-6)
        assert parsed[i].size_hw == (2048, 2048)
    # the real camera 0 of S1/Seq1: fx 1497.693 px, translation -562.8666 mm
    assert parsed[0].intrinsics[0, 0] == pytest.approx(1497.693)
    assert parsed[0].extrinsics[0, 3] == pytest.approx(-0.5628666)


def test_train_conversion_values(tmp_path):
    root = tmp_path / "3dhp"
    rng = np.random.default_rng(0)
    gen = fx.write_3dhp_train_sequence(root, "S1", "Seq1", 25, rng, outside_frames=(10,))
    res = _convert(root, tmp_path / "o.zarr", "train", sequences="S1/Seq1")
    cols = open_store(res.store).columns()
    # 8 cameras x frames 0, 10, 20, minus frame 10 (a joint outside the image) everywhere
    assert len(cols["image_path"]) == 8 * 2
    assert set(cols["frame_index"].tolist()) == {0, 20}
    assert "S1_Seq1_Cam3" not in set(cols["sequence"])
    pelvis = get_convention("superset").index("pelvis")
    conv28 = get_convention("mpi_inf_3dhp")
    for i in range(len(cols["image_path"])):
        cam = int(str(cols["sequence"][i]).rsplit("Cam", 1)[1])
        f = int(cols["frame_index"][i])
        j2d, j3d = gen[cam]
        assert cols["image_path"][i] == f"S1/Seq1/imageFrames/video_{cam}/frame_{f + 1:06d}.jpg"
        np.testing.assert_allclose(cols["keypoints3d"][i, pelvis, :3], j3d[f, 4], atol=1e-6)  # raw 4 = pelvis
        np.testing.assert_allclose(cols["keypoints3d"][i, conv28.superset_indices, :3], j3d[f], atol=1e-6)
        kp3 = cols["keypoints3d"][i]
        has = kp3[:, 3] > 0
        proj = project_points(kp3[has, :3].astype(np.float64), cols["cam_intrinsics"][i].astype(np.float64))
        assert np.abs(proj - cols["keypoints2d"][i, has, :2]).max() < 0.01
        assert cols["has_extrinsics"][i] and tuple(cols["image_hw"][i]) == (2048, 2048)
        box = cols["bbox_xywh"][i]
        xy = cols["keypoints2d"][i, has, :2]
        assert (xy >= box[:2]).all() and (xy <= box[:2] + box[2:]).all()


def test_rows_past_the_video_are_ignored(tmp_path, monkeypatch):
    root = tmp_path / "3dhp"
    fx.write_3dhp_train_sequence(root, "S3", "Seq2", 25, np.random.default_rng(6))
    monkeypatch.setitem(m3.VIDEO_FRAMES, ("S3", "Seq2"), 15)  # the video ends before annot.mat does
    store = open_store(_convert(root, tmp_path / "o.zarr", "train", sequences="S3/Seq2", cameras="0").store)
    assert store.read("frame_index").tolist() == [0, 10]


def test_train_other_layouts_and_camera_source(tmp_path):
    root = tmp_path / "3dhp"
    fx.write_3dhp_train_sequence(root, "S2", "Seq2", 11, np.random.default_rng(1), images="mmhuman3d",
                                 calibration=False)
    (root / "cameras_train.pkl").symlink_to(fx.MPI3DHP_REAL / "cameras_train.pkl")
    cols = open_store(_convert(root, tmp_path / "o.zarr", "train", sequences="S2/Seq2", cameras="0,8").store).columns()
    assert sorted(cols["image_path"]) == [f"S2/Seq2/video_{c}/{f:06d}.jpg" for c in (0, 8) for f in (1, 11)]
    real = fx.mpi3dhp_real_train_cameras()["S2_Seq2_Cam8"]
    i = list(cols["sequence"]).index("S2_Seq2_Cam8")
    np.testing.assert_allclose(cols["cam_extrinsics"][i][:3, :3], real["R"], atol=1e-6)


def test_test_set_validity_and_intrinsics(tmp_path):
    root = tmp_path / "3dhp"
    rng = np.random.default_rng(2)
    valid1 = np.array([1, 1, 0, 1, 0, 0, 1])
    g1 = fx.write_3dhp_test_sequence(root, "TS1", valid1, rng)
    g5 = fx.write_3dhp_test_sequence(root, "TS5", np.array([0, 1, 1]), rng)
    cols = open_store(_convert(root, tmp_path / "o.zarr", "test", subjects="TS1,TS5").store).columns()
    assert [(s, f) for s, f in zip(cols["sequence"], cols["frame_index"])] == \
        [("TS1", 0), ("TS1", 1), ("TS1", 3), ("TS1", 6), ("TS5", 1), ("TS5", 2)]
    assert (cols["extra_valid_frame"] == 1).all()
    conv17 = get_convention("mpi_inf_3dhp_test")
    for i, (seq, f) in enumerate(zip(cols["sequence"], cols["frame_index"])):
        g = g1 if seq == "TS1" else g5
        fx_, fy_, cx_, cy_, h, w = fx.TEST_CAMERAS[seq]
        np.testing.assert_allclose(cols["cam_intrinsics"][i], [[fx_, 0, cx_], [0, fy_, cy_], [0, 0, 1]], rtol=1e-5)
        assert tuple(cols["image_hw"][i]) == (h, w)
        np.testing.assert_allclose(cols["keypoints3d"][i, conv17.superset_indices, :3], g["j3d"][f], atol=1e-6)
        np.testing.assert_allclose(cols["keypoints2d"][i, conv17.superset_indices, :2], g["j2d"][f], atol=1e-3)
        np.testing.assert_allclose(cols["extra_univ_keypoints3d"][i], g["j3d"][f] * 0.95, atol=1e-6)
        assert cols["image_path"][i] == f"mpi_inf_3dhp_test_set/{seq}/imageSequence/img_{f + 1:06d}.jpg"
    # the root joint of the 17-joint test set is the pelvis (index 14)
    assert conv17.joint_names[14] == "pelvis"
    # every frame, with the flags, when asked (images of invalid frames do not exist: skip them)
    res = _convert(root, tmp_path / "all.zarr", "test", skip_bad=True, subjects="TS1", valid_only="false")
    assert res.num_samples == 4 and len(res.skipped) == 3
    assert all("image file is missing" in b.message for b in res.skipped)


def test_real_frames_and_cameras_are_picked_up(tmp_path):
    """MMPose's flat image layout with the four real frames and the real camera files."""
    root = tmp_path / "3dhp"
    (root / "images").mkdir(parents=True)
    for img in fx.MPI3DHP_REAL.glob("*.jpg"):
        (root / "images" / img.name).symlink_to(img)
    (root / "cameras_train.pkl").symlink_to(fx.MPI3DHP_REAL / "cameras_train.pkl")
    rng = np.random.default_rng(3)
    fx.write_3dhp_train_sequence(root, "S4", "Seq2", 1033, rng, images=None, calibration=False)
    fx.write_3dhp_train_sequence(root, "S8", "Seq1", 2165, rng, images=None, calibration=False)
    res = _convert(root, tmp_path / "tr.zarr", "train", skip_bad=True, sequences="S4/Seq2,S8/Seq1",
                   cameras="0,8", stride=4)
    store = open_store(res.store)
    assert sorted(store.read("image_path")) == ["images/S4_Seq2_Cam0_001033.jpg", "images/S8_Seq1_Cam8_002165.jpg"]
    assert (store.read("image_hw") == 2048).all()
    for valid_at, name in ((2000, "TS1"), (1849, "TS2")):
        valid = np.zeros(valid_at + 1)
        valid[valid_at] = 1
        fx.write_3dhp_test_sequence(root, name, valid, rng, images=None)
    test = open_store(_convert(root, tmp_path / "te.zarr", "test", subjects="TS1,TS2").store)
    assert sorted(test.read("image_path")) == ["images/TS1_002001.jpg", "images/TS2_001850.jpg"]
    h, w = cv2.imread(str(fx.MPI3DHP_REAL / "TS1_002001.jpg")).shape[:2]
    assert (test.read("image_hw") == [h, w]).all()
    # our TS1/TS2 intrinsics table is MMPose's real cameras_test.pkl
    from hmr.core.utils.safe_pickle import load

    for name, p in load(fx.MPI3DHP_REAL / "cameras_test.pkl").items():
        fx_, fy_, cx_, cy_, hh, ww = m3.TEST_INTRINSICS[name]
        np.testing.assert_allclose([fx_, fy_, cx_, cy_], [*p["f"].ravel(), *p["c"].ravel()], atol=1e-3)
        assert (hh, ww) == (p["h"], p["w"])


def test_bad_input(tmp_path):
    root = tmp_path / "3dhp"
    rng = np.random.default_rng(4)
    fx.write_3dhp_train_sequence(root, "S1", "Seq1", 11, rng)
    fx.write_3dhp_test_sequence(root, "TS1", np.array([1, 1, 1]), rng)
    out = tmp_path / "out"
    out.mkdir()
    missing = root / "S1/Seq1/imageFrames/video_4/frame_000011.jpg"
    missing.unlink()
    with pytest.raises(DatasetFormatError) as err:
        _convert(root, out / "o.zarr", "train", sequences="S1/Seq1")
    assert str(missing) in str(err.value) and "camera 4:frame 10" in str(err.value)
    assert list(out.iterdir()) == []
    res = _convert(root, out / "o.zarr", "train", skip_bad=True, sequences="S1/Seq1")
    assert res.num_samples == 15
    assert json.loads(res.skipped_report.read_text())[0]["path"] == str(missing)
    annot = fx.truncate(root / "S1/Seq1/annot.mat", 0.4)
    with pytest.raises(DatasetFormatError) as err:
        _convert(root, out / "o2.zarr", "train", sequences="S1/Seq1")
    assert str(annot) in str(err.value)
    annot_data = fx.truncate(root / "mpi_inf_3dhp_test_set/TS1/annot_data.mat", 0.5)
    with pytest.raises(DatasetFormatError) as err:
        _convert(root, out / "o3.zarr", "test", subjects="TS1")
    assert str(annot_data) in str(err.value)
    with pytest.raises(DatasetFormatError, match="TS2"):
        _convert(root, out / "o4.zarr", "test", subjects="TS2")
    # failed runs leave nothing: only the one successful store and its side files remain
    assert all(p.name.startswith("o.zarr") and "partial" not in p.name for p in out.iterdir())


def test_intrinsics_fit_rejects_a_foreign_camera(tmp_path):
    root = tmp_path / "3dhp"
    fx.write_3dhp_test_sequence(root, "TS1", np.array([1, 1]), np.random.default_rng(5),
                                camera=(1000.0, 1000.0, 1000.0, 1000.0, 2048, 2048))
    with pytest.raises(DatasetFormatError, match="far from TS1"):
        _convert(root, tmp_path / "o.zarr", "test", subjects="TS1")
