"""The mannequin files: SMPL's format, a closed genus-0 body of human proportions, its rig."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch

from hmr.core.body import mannequin as mq
from hmr.core.body.joint_names import H36M17_JOINT_NAMES, SMPL24_JOINT_NAMES, SMPL24_PARENTS
from hmr.core.body.mannequin_mesh import rest_joints
from hmr.core.body.mesh_ops import surface_report
from hmr.core.utils import safe_pickle
from tests.fixtures.body import winding_numbers

J = {name: i for i, name in enumerate(SMPL24_JOINT_NAMES)}


def _read(mannequin_dir: Path, gender: str = "neutral") -> dict:
    return safe_pickle.load(mannequin_dir / "smpl" / f"SMPL_{gender.upper()}.pkl", allow_scipy_sparse=True)


def _height(v: np.ndarray) -> float:
    return float(v[:, 1].max() - v[:, 1].min())


def test_files_have_smpl_keys_shapes_and_dtypes(mannequin_dir):
    for gender in mq.GENDERS:
        d = _read(mannequin_dir, gender)
        assert d["v_template"].shape == (6890, 3) and d["v_template"].dtype == np.float64
        assert d["shapedirs"].shape == (6890, 3, 10) and d["shapedirs"].dtype == np.float64
        assert d["posedirs"].shape == (6890, 3, 207) and d["posedirs"].dtype == np.float64
        assert isinstance(d["J_regressor"], scipy.sparse.csc_matrix)
        assert d["J_regressor"].shape == (24, 6890)
        assert d["weights"].shape == (6890, 24)
        assert d["f"].shape == (13776, 3) and d["f"].dtype == np.uint32
        assert d["J"].shape == (24, 3)
        assert d["kintree_table"].shape == (2, 24) and d["kintree_table"][0, 0] == 4294967295
        assert list(d["kintree_table"][0, 1:]) == list(SMPL24_PARENTS[1:])
        assert (d["bs_style"], d["bs_type"]) == ("lbs", "lrotmin")
    assert np.load(mannequin_dir / "J_regressor_extra.npy").shape == (9, 6890)
    assert np.load(mannequin_dir / "J_regressor_h36m.npy").shape == (17, 6890)
    assert "licence-free" in (mannequin_dir / "README.txt").read_text()


@pytest.mark.parametrize("gender", mq.GENDERS)
def test_smplx_loads_the_folder_unchanged(mannequin_dir, gender):
    model = smplx.create(str(mannequin_dir), model_type="smpl", gender=gender)
    out = model(body_pose=torch.zeros(1, 69), global_orient=torch.zeros(1, 3))
    template = _read(mannequin_dir, gender)["v_template"]
    assert out.vertices.shape == (1, 6890, 3) and out.joints.shape == (1, 45, 3)
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), template, atol=1e-5)


@pytest.mark.parametrize("gender", mq.GENDERS)
def test_surface_is_one_closed_oriented_genus0_sheet(mannequin_dir, gender):
    d = _read(mannequin_dir, gender)
    rep = surface_report(d["v_template"], d["f"].astype(np.int64))
    assert rep.closed and rep.oriented and rep.components == 1
    assert rep.euler == 2 and rep.genus == 0
    assert rep.unused_vertices == 0 and rep.degenerate_faces == 0
    assert rep.signed_volume > 0.04  # outward normals; a 60-70 kg body is about 0.065 m^3


def test_neutral_has_human_proportions(mannequin_dir):
    d = _read(mannequin_dir)
    v, joints = d["v_template"], d["J"]
    assert 1.6 < _height(v) < 1.85
    assert -0.26 < joints[J["pelvis"], 1] < -0.18 and abs(joints[J["pelvis"], 0]) < 1e-3
    arm_span = v[:, 0].max() - v[:, 0].min()
    assert 0.9 < arm_span / _height(v) < 1.1  # arm span ~ height
    # Every joint lies inside the body.
    np.testing.assert_allclose(winding_numbers(joints, v, d["f"].astype(np.int64)), 1.0, atol=1e-6)


def test_joint_order_and_sides(mannequin_dir):
    joints = _read(mannequin_dir)["J"]
    y = joints[:, 1]
    for side in ("left", "right"):
        assert y[J["head"]] > y[J["neck"]] > y[J["pelvis"]] > y[J[f"{side}_knee"]] > y[J[f"{side}_ankle"]]
        chain = [f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist", f"{side}_hand"]
        assert np.all(np.diff(np.abs(joints[[J[n] for n in chain], 0])) > 0.05)  # T-pose arms out
    for name, index in J.items():
        if name.startswith("left_"):
            assert joints[index, 0] > 0.05, name
            np.testing.assert_allclose(joints[J["right_" + name[5:]]] * [-1, 1, 1], joints[index], atol=1e-3)
    assert joints[J["left_foot"], 2] > joints[J["left_ankle"], 2] + 0.08  # feet point forward (+z)


def test_gender_variants_differ_plausibly(mannequin_dir):
    v = {g: _read(mannequin_dir, g)["v_template"] for g in mq.GENDERS}
    joints = {g: _read(mannequin_dir, g)["J"] for g in mq.GENDERS}
    assert _height(v["male"]) > _height(v["neutral"]) + 0.015 > _height(v["female"]) + 0.03

    def shoulder_to_hip(g):
        shoulders = joints[g][J["left_shoulder"], 0] - joints[g][J["right_shoulder"], 0]
        hips = np.ptp(v[g][np.abs(v[g][:, 1] + 0.27) < 0.03, 0])
        return shoulders / hips

    assert shoulder_to_hip("male") > shoulder_to_hip("neutral") > shoulder_to_hip("female")


def test_weights_are_convex_and_local(mannequin_dir):
    d = _read(mannequin_dir)
    w = d["weights"]
    assert w.min() >= 0 and np.allclose(w.sum(axis=1), 1.0)
    # Each vertex is driven by a few neighbouring joints only, and blends exist (smooth skin).
    assert (w > 0).sum(axis=1).max() <= 4
    assert ((w > 0.05) & (w < 0.95)).any(axis=1).sum() > 1000


def test_regressors_are_convex_and_hit_intended_joints(mannequin_dir):
    d = _read(mannequin_dir)
    reg = d["J_regressor"].toarray()
    extra = np.load(mannequin_dir / "J_regressor_extra.npy")
    h36m = np.load(mannequin_dir / "J_regressor_h36m.npy")
    for r in (reg, extra, h36m):
        assert r.min() >= 0 and np.allclose(r.sum(axis=1), 1.0)
    assert np.abs(reg @ d["v_template"] - rest_joints()).max() < 0.01
    np.testing.assert_allclose(d["J"], reg @ d["v_template"], atol=1e-12)


def test_h36m_rows_land_on_matching_smpl_joints(mannequin_dir):
    d = _read(mannequin_dir)
    h36m = np.load(mannequin_dir / "J_regressor_h36m.npy") @ d["v_template"]  # (17, 3)
    joints = d["J"]
    h = {n: i for i, n in enumerate(H36M17_JOINT_NAMES)}
    for side in ("left", "right"):
        for part in ("knee", "ankle", "shoulder", "elbow", "wrist"):
            assert np.linalg.norm(h36m[h[f"{side}_{part}"]] - joints[J[f"{side}_{part}"]]) < 0.02
        assert np.linalg.norm(h36m[h[f"{side}_hip"]] - joints[J[f"{side}_hip"]]) < 0.04
    assert h36m[h["left_hip"], 0] > 0 > h36m[h["right_hip"], 0]  # SPIN's order: left leg first
    assert h36m[h["head_top"], 1] > h36m[h["jaw"], 1] > h36m[h["thorax"], 1] > h36m[h["spine"], 1]
    assert h36m[h["pelvis"], 1] < joints[J["spine1"], 1]


def test_betas_change_height_and_girth(mannequin_dir):
    d = _read(mannequin_dir)
    v, dirs, faces = d["v_template"], d["shapedirs"], d["f"].astype(np.int64)
    vol0 = surface_report(v, faces).signed_volume
    tall, short = v + 2 * dirs[:, :, 0], v - 2 * dirs[:, :, 0]
    assert _height(tall) - _height(v) > 0.08 and _height(v) - _height(short) > 0.08
    heavy, thin = v + 2 * dirs[:, :, 1], v - 2 * dirs[:, :, 1]
    assert abs(_height(heavy) - _height(v)) < 0.015
    assert surface_report(heavy, faces).signed_volume > 1.2 * vol0
    assert surface_report(thin, faces).signed_volume < 0.8 * vol0
    flat = dirs.reshape(-1, 10) / np.linalg.norm(dirs.reshape(-1, 10), axis=0)
    cosines = flat.T @ flat - np.eye(10)
    assert np.abs(cosines).max() < 0.7 and np.abs(cosines[0]).max() < 1e-9
    for k in range(10):  # +-2 betas stay plausible bodies
        for b in (-2, 2):
            assert 1.5 < _height(v + b * dirs[:, :, k]) < 1.95
            assert surface_report(v + b * dirs[:, :, k], faces).signed_volume > 0.035


def test_posedirs_are_small_and_local(mannequin_dir):
    d = _read(mannequin_dir)
    p, w = d["posedirs"], d["weights"]
    assert 0 < np.abs(p).max() < 0.01
    left_elbow = p[:, :, 9 * (J["left_elbow"] - 1):9 * J["left_elbow"]]
    moved = np.abs(left_elbow).max(axis=(1, 2)) > 0
    assert moved.sum() > 20 and np.all(w[moved, J["left_elbow"]] > 0)


def test_landmark_vertices_match_smplx_vertex_ids(mannequin_dir):
    model = smplx.create(str(mannequin_dir), model_type="smpl")
    j = model().joints[0].detach().numpy()  # (45, 3): 24 joints + 21 vertex landmarks
    head, ankle_l, hand_l = j[J["head"]], j[J["left_ankle"]], j[J["left_hand"]]
    nose, reye, leye, rear, lear = j[24:29]
    assert nose[2] > head[2] + 0.08 and abs(nose[0]) < 0.01
    assert leye[0] > 0 > reye[0] and leye[1] > nose[1] and leye[2] > head[2]
    assert lear[0] > 0.07 and rear[0] < -0.07
    lbig, lsmall, lheel = j[29:32]
    assert lbig[2] > ankle_l[2] + 0.15 and lsmall[0] > lbig[0] and lheel[2] < ankle_l[2]
    assert np.all(j[35:40, 0] > hand_l[0]) and np.all(j[40:45, 0] < -hand_l[0])  # finger tips


def test_mean_params_follow_spin_layout():
    params = mq.mean_params()
    assert params["pose"].shape == (144,) and params["shape"].shape == (10,) and params["cam"].shape == (3,)
    six = params["pose"].reshape(24, 3, 2)  # SPIN reads each 6-vector as a 3x2 matrix
    a1, a2 = six[:, :, 0], six[:, :, 1]
    b1 = a1 / np.linalg.norm(a1, axis=1, keepdims=True)
    b2 = a2 - np.sum(b1 * a2, axis=1, keepdims=True) * b1
    b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
    rot = np.stack([b1, b2, np.cross(b1, b2)], axis=-1)
    np.testing.assert_allclose(rot[0], np.diag([1.0, -1.0, -1.0]), atol=1e-9)  # root upside down
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)


def test_mean_params_file_matches(mannequin_dir):
    with np.load(mannequin_dir / "smpl_mean_params.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["cam", "pose", "shape"]
        np.testing.assert_array_equal(f["pose"], mq.mean_params()["pose"])


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generation_is_deterministic(mannequin_dir):
    # A separate process (no shared cache) with another BLAS/OpenMP thread count: the bytes
    # it would write must equal the fixture's files.
    code = ("import hashlib, json; from hmr.core.body.mannequin import mannequin_files; "
            "print(json.dumps({k: hashlib.sha256(v).hexdigest() for k, v in mannequin_files().items()}))")
    env = {**os.environ, "OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).parents[4], env=env).stdout
    assert json.loads(out) == _digests(mannequin_dir)
    assert len(_digests(mannequin_dir)) == 7


def test_write_refuses_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        mq.write_mannequin(tmp_path)
    assert (tmp_path / "keep.txt").exists()
