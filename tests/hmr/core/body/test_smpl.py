"""Loading SMPL-format files safely and the batched body-model forward pass."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr.core.body import (SPIN49_JOINT_NAMES, SMPL24_JOINT_NAMES, default_body_model_dir,
                      load_body_model, read_smpl_pickle, resolve_model_file)
from hmr.core.body.joint_names import EXTRA9_JOINT_NAMES
from hmr.core.errors import BodyModelError, UnsafePickleError
from hmr.core.utils import safe_pickle
from tests.fixtures.body import chumpy_style_pickle, malicious_pickle

J = {name: i for i, name in enumerate(SMPL24_JOINT_NAMES)}
S49 = {name: i for i, name in enumerate(SPIN49_JOINT_NAMES)}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _random_pose(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(batch, 3, generator=g), 0.3 * torch.randn(batch, 69, generator=g),
            torch.randn(batch, 10, generator=g))


def test_output_shapes_and_joint_sets(neutral_model):
    orient, pose, betas = _random_pose(2)
    out = neutral_model(orient, pose, betas)
    assert out.vertices.shape == (2, 6890, 3) and out.joints_smpl24.shape == (2, 24, 3)
    assert out.joints_h36m17.shape == (2, 17, 3) and out.joints_extra9.shape == (2, 9, 3)
    assert out.joints_spin49.shape == (2, 49, 3) and len(SPIN49_JOINT_NAMES) == 49
    assert neutral_model.faces.shape == (13776, 3) and neutral_model.parents[0] == -1
    s49, j24, j45 = out.joints_spin49, out.joints_smpl24, out.joints_smpl45
    # SPIN's JOINT_MAP: GT joints from SMPL's skeleton, OpenPose face points from vertices.
    torch.testing.assert_close(s49[:, S49["Right Ankle"]], j24[:, J["right_ankle"]])
    torch.testing.assert_close(s49[:, S49["OP LWrist"]], j24[:, J["left_wrist"]])
    torch.testing.assert_close(s49[:, S49["OP Nose"]], out.vertices[:, 332])
    torch.testing.assert_close(s49[:, S49["Left Eye"]], j45[:, 26])
    for k, name in enumerate(EXTRA9_JOINT_NAMES):
        torch.testing.assert_close(s49[:, S49[name]], out.joints_extra9[:, k])


def test_spin49_joints_are_anatomically_placed(neutral_model):
    out = neutral_model(torch.zeros(1, 3), torch.zeros(1, 69))
    s = out.joints_spin49[0].numpy()
    assert s[S49["Top of Head (LSP)"], 1] > s[S49["Head (H36M)"], 1] > s[S49["Nose"], 1] > s[S49["Neck (LSP)"], 1]
    mid_hip = (s[S49["Left Hip"]] + s[S49["Right Hip"]]) / 2
    assert np.linalg.norm(mid_hip - s[S49["Pelvis (MPII)"]]) < 0.01
    assert s[S49["Left Hip"], 0] > 0.07 > -0.07 > s[S49["Right Hip"], 0]
    for side in ("L", "R"):
        assert s[S49[f"OP {side}BigToe"], 2] > s[S49[f"OP {side}Heel"], 2] + 0.2


def test_rotation_matrices_match_axis_angle(neutral_model):
    orient, pose, betas = _random_pose(3)  # batch of 3: (3, 3) must not be read as a matrix
    rot = torch.as_tensor(Rotation.from_rotvec(torch.cat([orient, pose], 1).reshape(-1, 3).numpy())
                          .as_matrix(), dtype=torch.float32).reshape(3, 24, 3, 3)
    a = neutral_model(orient, pose, betas)
    b = neutral_model(rot[:, :1], rot[:, 1:], betas)
    c = neutral_model(rot[:, 0], rot[:, 1:].reshape(3, -1), betas, pose2rot=False)
    torch.testing.assert_close(a.vertices, b.vertices, atol=2e-5, rtol=0)
    torch.testing.assert_close(a.vertices, c.vertices, atol=2e-5, rtol=0)


def test_batching_and_translation_are_consistent(neutral_model):
    orient, pose, betas = _random_pose(4, seed=1)
    transl = torch.tensor([[0.1, -0.2, 3.0]]).repeat(4, 1)
    with torch.no_grad():
        full = neutral_model(orient, pose, betas, transl=transl)
        one = neutral_model(orient[2:3], pose[2:3], betas[2:3])
    torch.testing.assert_close(full.vertices[2] - transl[2], one.vertices[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(full.joints_spin49[2] - transl[2], one.joints_spin49[0], atol=1e-5, rtol=0)
    assert not full.vertices.requires_grad


def test_gradients_flow_to_pose_and_shape(neutral_model):
    orient, pose, betas = (t.requires_grad_() for t in _random_pose(2))
    neutral_model(orient, pose, betas).joints_spin49.square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (orient, pose, betas))


def test_elbow_bend_moves_only_forearm_and_hand(neutral_model):
    rest = neutral_model(torch.zeros(1, 3), torch.zeros(1, 69))
    pose = torch.zeros(1, 69)
    pose[0, 3 * (J["left_elbow"] - 1) + 1] = -math.pi / 2  # forearm swings forward
    bent = neutral_model(torch.zeros(1, 3), pose)
    v0 = rest.vertices[0].numpy()
    moved = (bent.vertices[0] - rest.vertices[0]).norm(dim=-1).numpy() > 1e-6
    elbow_x = rest.joints_smpl24[0, J["left_elbow"], 0].item()
    allowed = (v0[:, 0] > elbow_x - 0.05) & (v0[:, 1] > 0.1)  # forearm, hand, upper arm by the elbow
    assert moved.sum() > 300 and not np.any(moved & ~allowed)
    assert np.all(moved[v0[:, 0] > elbow_x + 0.05])
    hand = bent.joints_smpl24[0, J["left_hand"]] - bent.joints_smpl24[0, J["left_elbow"]]
    assert hand[2] > 0.3 and abs(hand[0]) < 0.03  # the hand is now in front of the elbow


def test_runs_on_the_available_device(mannequin_dir):
    model = load_body_model(mannequin_dir, device=DEVICE)
    orient, pose, betas = _random_pose(2)
    out = model(orient.to(DEVICE), pose.to(DEVICE), betas.to(DEVICE))
    assert out.vertices.device.type == DEVICE and torch.isfinite(out.vertices).all()


@pytest.mark.parametrize("layout", ["folder", "smpl_subfolder", "pkl_file", "env", "official_name"])
def test_model_path_forms(mannequin_dir, tmp_path, monkeypatch, layout):
    pkl = mannequin_dir / "smpl" / "SMPL_FEMALE.pkl"
    flat, official = tmp_path / "flat", tmp_path / "download"
    flat.mkdir()
    (flat / "SMPL_FEMALE.pkl").symlink_to(pkl)
    official.mkdir()
    (official / "basicModel_f_lbs_10_207_0_v1.0.0.pkl").symlink_to(pkl)
    (official / "basicmodel_m_lbs_10_207_0_v1.0.0.pkl").symlink_to(mannequin_dir / "smpl" / "SMPL_MALE.pkl")
    path = {"folder": flat, "smpl_subfolder": mannequin_dir, "pkl_file": pkl, "env": None,
            "official_name": official}[layout]
    if layout == "env":
        monkeypatch.setenv("HMR_BODY_MODEL", str(mannequin_dir))
    assert resolve_model_file(path, "female").resolve() == pkl.resolve()
    model = load_body_model(path, gender="female")
    expected = safe_pickle.load(pkl, allow_scipy_sparse=True)["v_template"]
    np.testing.assert_allclose(model.v_template.numpy(), expected, atol=1e-6)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(BodyModelError, match="SMPL_MALE.pkl") as err:
        load_body_model(tmp_path, gender="male")
    assert str(tmp_path) in str(err.value)
    with pytest.raises(BodyModelError, match="gender"):
        resolve_model_file(tmp_path, gender="robot")


def test_pickle_without_smpl_keys_is_refused(tmp_path):
    import pickle

    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((10, 3))}, protocol=2))
    with pytest.raises(BodyModelError, match="missing keys"):
        read_smpl_pickle(bad)


def test_chumpy_style_smpl_file_loads_without_chumpy(mannequin_dir, tmp_path):
    pkl = mannequin_dir / "smpl" / "SMPL_NEUTRAL.pkl"
    data = safe_pickle.load(pkl, allow_scipy_sparse=True)
    blob = chumpy_style_pickle(data)
    assert b"chumpy.ch" in blob and "chumpy" not in sys.modules
    legacy = tmp_path / "SMPL_NEUTRAL.pkl"
    legacy.write_bytes(blob)
    read = read_smpl_pickle(legacy)
    assert isinstance(read["shapedirs"], np.ndarray) and "chumpy" not in sys.modules
    model = load_body_model(legacy)
    orient, pose, betas = _random_pose(2)
    reference = load_body_model(pkl)
    torch.testing.assert_close(model(orient, pose, betas).vertices, reference(orient, pose, betas).vertices)


def test_code_in_a_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "SMPL_NEUTRAL.pkl"
    evil.write_bytes(malicious_pickle(f"touch {marker}"))
    with pytest.raises(UnsafePickleError, match="os|posix|system"):
        load_body_model(evil)
    assert not marker.exists()


def test_default_model_is_the_cached_mannequin(tmp_path, monkeypatch, mannequin_dir):
    monkeypatch.setenv("HMR_CACHE", str(tmp_path))
    model = load_body_model()
    cached = tmp_path / "mannequin-v1"
    assert Path(model.source) == cached / "smpl" / "SMPL_NEUTRAL.pkl"
    assert default_body_model_dir() == cached and (cached / "smpl_mean_params.npz").is_file()
    stamp = (cached / "smpl" / "SMPL_NEUTRAL.pkl").stat().st_mtime_ns
    load_body_model(gender="male")  # reuses the folder
    assert (cached / "smpl" / "SMPL_NEUTRAL.pkl").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["mannequin-v1"]
    assert (cached / "J_regressor_h36m.npy").read_bytes() == (mannequin_dir / "J_regressor_h36m.npy").read_bytes()


@pytest.mark.slow
def test_concurrent_cache_creation_is_safe(tmp_path):
    code = "from hmr.core.body import ensure_mannequin; print(ensure_mannequin())"
    env = {**__import__("os").environ, "HMR_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              cwd=Path(__file__).parents[4]) for _ in range(2)]
    outputs = [p.communicate()[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1] == str(tmp_path / "mannequin-v1")
    assert [p.name for p in tmp_path.iterdir()] == ["mannequin-v1"]  # no temporary leftovers
    shutil.rmtree(tmp_path / "mannequin-v1")


def test_pickle_with_wrong_shapes_is_refused(mannequin_dir, tmp_path):
    import pickle

    data = safe_pickle.load(mannequin_dir / "smpl" / "SMPL_NEUTRAL.pkl", allow_scipy_sparse=True)
    data["posedirs"] = data["posedirs"][:, :, :69]
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(BodyModelError, match="posedirs") as err:
        load_body_model(tmp_path)
    assert str(bad) in str(err.value)
