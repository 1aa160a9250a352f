"""AGORA converter: pandas DataFrame pickles read without pandas, torch-tensor SMPL fits read
without running code, the publisher's camera rule, kids flagged, SMPL-X kept in extras."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd  # a test dependency: the fixture writes DataFrames with pandas, as AGORA did
import pytest
import torch
from scipy.spatial.transform import Rotation

from converters import agora
from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.geometry import project_points
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS, SMPL_SOURCES
from tests.fixtures import agora as fx
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.converters_3d import evil_pickle_bytes

SMPL45 = get_convention("smpl_45").superset_indices
SMPLX = get_convention("smplx").superset_indices


@pytest.fixture(scope="module")
def model():
    return load_body_model()


@pytest.fixture(scope="module")
def release(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("agora")
    people = fx.write_agora(root, model=model, four_k=True)
    return root, people


def _forward(model, orient, body_pose, betas, transl):
    t = lambda a: torch.as_tensor(np.asarray(a)[None], dtype=torch.float32)
    with torch.no_grad():
        return model(global_orient=t(orient), body_pose=t(body_pose), betas=t(betas), transl=t(transl))


def _by_key(cols):
    return {tuple(int(x) for x in k.split(":")[1:]): i for i, k in enumerate(cols["source_key"])}


# ------------------------------------------------------------------------------- readers
def test_dataframe_pickles_are_read_without_pandas(tmp_path):
    rows = [{"imgPath": "a.png", "X": [1.0, 2.0], "camX": 3.5, "isValid": [True, False],
             "gt_joints_3d": [np.arange(6.0).reshape(2, 3), np.ones((2, 3))]},
            {"imgPath": "b.png", "X": [4.0], "camX": -1.0, "isValid": [True], "gt_joints_3d": [np.zeros((2, 3))]}]
    df = fx.write_dataframe(tmp_path / "d.pkl", rows)
    df.index = [7, 9]  # not a RangeIndex: an index pickled with its data
    df.to_pickle(tmp_path / "e.pkl")
    for name in ("d.pkl", "e.pkl"):
        cols = agora.read_dataframe(tmp_path / name)
        assert sorted(cols) == sorted(rows[0])
        assert cols["imgPath"] == ["a.png", "b.png"] and cols["camX"] == [3.5, -1.0]
        assert cols["X"] == [[1.0, 2.0], [4.0]] and cols["isValid"] == [[True, False], [True]]
        np.testing.assert_array_equal(cols["gt_joints_3d"][0][0], np.arange(6.0).reshape(2, 3))


def test_meshes_are_dropped_while_reading(release):
    root, _ = release
    for folder, rows in (("camera_dataframe_smpl", 6890), ("camera_dataframe", 10475)):
        path = root / folder / "validation_0_withjv.pkl"
        with open(path, "rb") as fh:
            raw = pickle.load(fh)  # our own fixture, unrestricted: the meshes are there
        assert raw["gt_verts"][0][0].shape == (rows, 3)
        cols = agora.read_dataframe(path)
        assert cols["gt_verts"][0][0].shape == (0, 3)
        assert np.asarray(cols["gt_joints_3d"][0][0]).shape[1] == 3


def test_a_pandas_1x_pickle_is_read(tmp_path):
    """Written by pandas 1.5.3 (bytes in the fixture module): Int64Index, object columns."""
    import base64

    path = tmp_path / "old.pkl"
    path.write_bytes(base64.b64decode("".join(fx.PANDAS_1_5_3_PICKLE_B64)))
    cols = agora.read_dataframe(path)
    assert cols["imgPath"] == ["a.png", "b.png"] and cols["camX"] == [3.5, -1.0]
    assert cols["X"] == [[1.0, 2.0], [4.0]] and cols["isValid"] == [[True, False], [True]]
    np.testing.assert_array_equal(cols["gt_joints_3d"][0][0], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(cols["gt_joints_3d"][1][0], np.zeros((2, 3)))


def test_pickles_that_name_other_globals_are_refused(tmp_path):
    for name in ("frame.pkl", "fit.pkl"):
        (tmp_path / name).write_bytes(evil_pickle_bytes())
    with pytest.raises(UnsafePickleError, match="os.system") as err:
        agora.read_dataframe(tmp_path / "frame.pkl")
    assert "frame.pkl" in str(err.value)
    with pytest.raises(UnsafePickleError, match="os.system"):
        agora.read_torch_pickle(tmp_path / "fit.pkl")
    # a DataFrame with pandas' string dtype holds classes outside the allow-list: refused, named
    df = pd.DataFrame({"imgPath": pd.Series(["a.png"], dtype="string")})
    df.to_pickle(tmp_path / "s.pkl")
    with pytest.raises(UnsafePickleError, match="refusing"):
        agora.read_dataframe(tmp_path / "s.pkl")


def test_torch_tensor_fits_load_as_arrays(tmp_path):
    fit = {"root_pose": torch.tensor([[0.1, 0.2, 0.3]]), "betas": torch.arange(11.0)[None],
           "body_pose": torch.nn.Parameter(torch.ones(1, 69))}
    with open(tmp_path / "f.pkl", "wb") as fh:
        pickle.dump(fit, fh)
    params = agora.read_fit(tmp_path / "f.pkl", "smpl")
    np.testing.assert_allclose(params["global_orient"], [0.1, 0.2, 0.3], atol=1e-7)
    assert params["betas"].size == 11 and params["body_pose"].size == 69
    # a fit saved as rotation matrices (pose2rot off) is read as axis-angle
    params = {"global_orient": Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix().reshape(-1),
              "body_pose": np.tile(np.eye(3).reshape(-1), 23), "betas": np.zeros(10), "transl": np.zeros(3)}
    assert agora.check_fit(params, "smpl") is None
    np.testing.assert_allclose(params["global_orient"], [0.1, 0.2, 0.3], atol=1e-7)
    params["global_orient"] = -np.eye(3).reshape(-1)  # a reflection is no rotation
    assert "not rotations" in agora.check_fit(params, "smpl")


def test_fits_saved_from_a_gpu_load_on_the_cpu(tmp_path):
    """A tensor pickled on a GPU records its storage's location as 'cuda:0' (the nested
    torch.save blob); plain pickle.load then fails without CUDA. The bytes are made here with
    torch's own legacy writer, the CPU storage tagged as CUDA's tagger would tag it."""
    import torch.serialization as ser

    registry = list(ser._package_registry)
    ser.register_package(1, lambda obj: "cuda:0" if getattr(obj, "device", None) is not None else None,
                         lambda obj, location: None)
    try:
        data = pickle.dumps({"betas": torch.arange(3.0)[None]}, protocol=2)
    finally:
        ser._package_registry[:] = registry
    assert b"cuda:0" in data
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            pickle.loads(data)
    (tmp_path / "gpu.pkl").write_bytes(data)
    np.testing.assert_array_equal(agora.read_torch_pickle(tmp_path / "gpu.pkl")["betas"], [[0.0, 1.0, 2.0]])


# ------------------------------------------------------------------------------- values
def test_smpl_reproduces_the_dataframe_joints_in_the_camera_frame(tmp_path, release, model):
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation")
    cols = store.columns()
    index = _by_key(cols)
    assert sorted(index) == [(0, 0), (0, 1), (1, 0)]  # (1, 1) is isValid=false: skipped
    for (r, p), i in index.items():
        truth = people[(r, p)]["smpl"]
        assert cols["image_path"][i].endswith("_1280x720.png") and tuple(cols["image_hw"][i]) == (720, 1280)
        assert cols["has_smpl"][i] and cols["smpl_source"][i] == SMPL_SOURCES.index("ground-truth")
        assert GENDERS[cols["gender"][i]] == "neutral"  # AGORA's SMPL fits use the neutral model
        np.testing.assert_allclose(cols["smpl_betas"][i], truth["params"]["betas"][:10], atol=1e-6)
        # 3-D: the dataframe's camera-frame joints, each in its named slot
        np.testing.assert_allclose(cols["keypoints3d"][i, SMPL45, :3], truth["j3d"], atol=1e-5)
        lw = get_convention("smpl_45").joint_names.index("smpl_left_wrist")  # publisher's index 20
        assert lw == 20
        np.testing.assert_allclose(cols["keypoints3d"][i, slot("smpl_left_wrist"), :3], truth["j3d"][20], atol=1e-5)
        # SMPL from the store, through the body model, lands on those joints
        out = _forward(model, cols["smpl_global_orient"][i], cols["smpl_body_pose"][i], cols["smpl_betas"][i],
                       cols["smpl_transl"][i])
        np.testing.assert_allclose(out.joints_smpl45[0].numpy(), truth["j3d"], atol=2e-4)
        # 2-D at 1280x720 = 4K / 3, and the 3-D joints project onto them with the stored K
        np.testing.assert_allclose(cols["keypoints2d"][i, SMPL45, :2], truth["j2d"] / 3, atol=1e-3)
        proj = project_points(cols["keypoints3d"][i, SMPL45, :3].astype(np.float64),
                              cols["cam_intrinsics"][i].astype(np.float64))
        np.testing.assert_allclose(proj, cols["keypoints2d"][i, SMPL45, :2], atol=0.01)
        np.testing.assert_allclose(cols["cam_intrinsics"][i][:2, 2], (640, 360))


def test_global_orient_follows_the_publisher_rule(tmp_path, release):
    """R_cam = R_pitch R_y(Yaw - 90 - camYaw) diag(1, -1, -1) R_fit; the raw orient is wrong."""
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation", fit="smpl")
    cols = store.columns()
    for (r, p), i in _by_key(cols).items():
        e = people[(r, p)]
        cam = e["cam"]
        rot = (Rotation.from_rotvec([np.deg2rad(cam["pitch"]), 0, 0])
               * Rotation.from_rotvec([0, np.deg2rad(e["yaw"] - 90 - cam["yaw"]), 0])
               * Rotation.from_matrix(np.diag([1.0, -1, -1]))
               * Rotation.from_rotvec(e["smpl"]["params"]["orient"]))
        got = Rotation.from_rotvec(cols["smpl_global_orient"][i].astype(np.float64))
        assert (got.inv() * rot).magnitude() < 1e-5
        assert (Rotation.from_rotvec(e["smpl"]["params"]["orient"]).inv() * got).magnitude() > 0.1
        assert "extra_smplx_global_orient" not in cols  # fit=smpl reads no SMPL-X


def test_kids_are_flagged_and_keep_their_eleventh_beta(tmp_path, release):
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation")
    cols = store.columns()
    index = _by_key(cols)
    kid, adult = index[(0, 1)], index[(0, 0)]
    assert cols["extra_agora_kid"][kid] and not cols["extra_agora_kid"][adult]
    assert cols["extra_agora_smpl_kid_beta"][kid] == pytest.approx(people[(0, 1)]["smpl"]["params"]["betas"][10], abs=1e-6)
    assert cols["extra_agora_smpl_kid_beta"][adult] == 0.0
    assert cols["extra_smplx_kid_beta"][kid] == pytest.approx(people[(0, 1)]["smplx"]["params"]["betas"][0, 10], abs=1e-6)
    # a female kid's SMPL-X goes with the neutral kid model (agora_evaluation docs/kid_model.md)
    assert GENDERS[cols["extra_agora_gender"][kid]] == "female"
    assert GENDERS[cols["extra_smplx_gender"][kid]] == "neutral"
    assert GENDERS[cols["extra_smplx_gender"][adult]] == "female"


def test_smplx_parameters_are_kept_in_the_camera_frame(tmp_path, release):
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation")
    cols = store.columns()
    for (r, p), i in _by_key(cols).items():
        e = people[(r, p)]["smplx"]
        prm = e["params"]
        for k in ("body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose", "reye_pose",
                  "expression"):
            np.testing.assert_allclose(cols[f"extra_smplx_{k}"][i], prm[k][0], atol=1e-6)
        np.testing.assert_allclose(cols["extra_smplx_betas"][i], prm["betas"][0, :10], atol=1e-6)
        assert not cols["extra_smplx_use_pca"][i] and cols["extra_smplx_num_pca_comps"][i] == 0
        # the camera-frame root: posed pelvis = J0 + transl lands on the dataframe's pelvis
        np.testing.assert_allclose(cols["extra_smplx_transl"][i] + e["rest"], e["j3d"][0], atol=1e-5)
        # SMPL-X's joints fill the slots SMPL lacks (fingers), SMPL keeps the shared ones
        finger = get_convention("smplx").joint_names.index("smplx_left_index_1")
        np.testing.assert_allclose(cols["keypoints3d"][i, SMPLX[finger], :3], e["j3d"][finger], atol=1e-5)
        np.testing.assert_allclose(cols["keypoints3d"][i, slot("smpl_pelvis"), :3],
                                   people[(r, p)]["smpl"]["j3d"][0], atol=1e-5)


def test_smplx_from_the_store_reproduces_the_dataframe_joints(tmp_path, release):
    """The extra_smplx_* columns through the SMPL-X model (the mannequin) land on the SMPL-X
    dataframe's camera-frame joints: root and translation were moved into the camera right."""
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation")
    cols = store.columns()
    names = ("global_orient", "body_pose", "betas", "left_hand_pose", "right_hand_pose", "jaw_pose",
             "leye_pose", "reye_pose", "expression", "transl")
    for (r, p), i in _by_key(cols).items():
        model = fx.smplx_model(GENDERS[cols["extra_smplx_gender"][i]])
        with torch.no_grad():
            out = model(**{k: torch.as_tensor(cols[f"extra_smplx_{k}"][i][None], dtype=torch.float32) for k in names})
        np.testing.assert_allclose(out.joints[0].numpy(), people[(r, p)]["smplx"]["j3d"], atol=3e-4)


def test_smplx_only_leaves_smpl_empty(tmp_path, model):
    root = tmp_path / "agora"
    people = fx.write_agora(root, model=model, fits=("smplx",))
    _, store = convert("agora", root, tmp_path / "o", "validation", fit="smplx")
    cols = store.columns()
    assert not cols["has_smpl"].any() and len(cols["source_key"]) == 3
    i = _by_key(cols)[(1, 0)]
    np.testing.assert_allclose(cols["keypoints3d"][i, SMPLX, :3], people[(1, 0)]["smplx"]["j3d"], atol=1e-5)
    with pytest.raises(DatasetFormatError, match="camera_dataframe_smpl"):
        convert("agora", root, tmp_path / "o2", "validation", fit="smpl")


def test_options_resolution_and_invalid_persons(tmp_path, release):
    root, people = release
    _, store = convert("agora", root, tmp_path / "o", "validation", resolution="3840x2160", valid_only=False)
    cols = store.columns()
    index = _by_key(cols)
    assert sorted(index) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    i = index[(1, 1)]
    assert not cols["extra_agora_is_valid"][i] and cols["extra_agora_occlusion"][i] == 97.0
    assert not cols["image_path"][i].endswith("_1280x720.png") and tuple(cols["image_hw"][i]) == (2160, 3840)
    np.testing.assert_allclose(cols["keypoints2d"][i, SMPL45, :2], people[(1, 1)]["smpl"]["j2d"], atol=2e-3)
    np.testing.assert_allclose(cols["cam_intrinsics"][i][:2, 2], (1920, 1080))


def test_the_download_folder_names_are_read(tmp_path, model):
    """SMPL/ and SMPLX/ dataframes, images in images/{split}_<k>/ (the zips' own layout)."""
    root = tmp_path / "agora"
    fx.write_agora(root, model=model, seed=6)
    (root / "camera_dataframe_smpl").rename(root / "SMPL")
    (root / "camera_dataframe").rename(root / "SMPLX")
    (root / "images/validation").rename(root / "images/validation_0")
    _, store = convert("agora", root, tmp_path / "o", "validation")
    cols = store.columns()
    assert len(cols["source_key"]) == 3 and cols["source_key"][0].startswith("SMPL/validation_0_withjv.pkl:")
    assert all(p.startswith("images/validation_0/") for p in cols["image_path"])


# ------------------------------------------------------------------------------- bad input
def test_bad_records_name_file_and_person(tmp_path, model):
    root = tmp_path / "agora"
    fx.write_agora(root, model=model, seed=4)
    (root / "smpl_gt/validationset_renderpeople/10_w_Person_1_0.pkl").unlink()
    with pytest.raises(DatasetFormatError) as err:
        convert("agora", root, tmp_path / "o", "validation")
    assert "camera_dataframe_smpl/validation_0_withjv.pkl" in str(err.value)
    assert "1:0" in str(err.value) and "10_w_Person_1_0.pkl not found" in str(err.value)
    _, store = convert("agora", root, tmp_path / "o2", "validation", skip_bad=True)
    assert len(store.columns()["source_key"]) == 2
    # a fit file that does not belong to its row (another person's) is caught by the pelvis check
    other = root / "smpl_gt/validationset_renderpeople/00_w_Person_0_0.pkl"
    (root / "smpl_gt/validationset_renderpeople/10_w_Person_1_0.pkl").write_bytes(other.read_bytes())
    with pytest.raises(DatasetFormatError, match="disagree"):
        convert("agora", root, tmp_path / "o3", "validation")


def test_smpl_and_smplx_rows_must_match(tmp_path, model):
    root = tmp_path / "agora"
    fx.write_agora(root, model=model, seed=5)
    cols = agora.read_dataframe(root / "camera_dataframe/validation_0_withjv.pkl")
    rows = [{c: cols[c][r] for c in cols} for r in range(2)]
    rows[1]["imgPath"] = "ag_validationset_other_00009.png"
    fx.write_dataframe(root / "camera_dataframe/validation_0_withjv.pkl", rows)
    with pytest.raises(DatasetFormatError, match="SMPLX dataframe's row 1"):
        convert("agora", root, tmp_path / "o", "validation")
