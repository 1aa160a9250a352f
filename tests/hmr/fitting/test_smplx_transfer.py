"""SMPL-X → SMPL transfer on the mannequins: small residuals, anatomy kept, deterministic, columns read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmr.core.body import SMPLX55_JOINT_NAMES, ensure_smplx_mannequin, load_body_model
from hmr.fitting.smplx_transfer import smplx_params, transfer_smplx_to_smpl

# Measured on the mannequins (4 random poses, seed 0, default config): mean ~4 mm, max ~7 mm.
# The bounds leave margin for other BLAS / thread counts.
MEAN_BOUND_MM, MAX_BOUND_MM = 12.0, 25.0


@pytest.fixture(scope="module")
def smplx_model():
    # The mannequin by path: a user's $HMR_SMPLX_MODEL must not change what the tests check.
    return load_body_model(ensure_smplx_mannequin(), model_type="smplx")


def random_smplx(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = lambda n, s: s * torch.randn(batch, n, generator=g)  # noqa: E731
    return dict(global_orient=r(3, 0.8), body_pose=r(63, 0.3), betas=r(10, 1.0), left_hand_pose=r(45, 0.3),
                right_hand_pose=r(45, 0.3), jaw_pose=r(3, 0.1), leye_pose=r(3, 0.1), reye_pose=r(3, 0.1),
                expression=r(10, 1.0), transl=r(3, 1.0))


@pytest.fixture(scope="module")
def fitted(body_model, smplx_model):
    params = random_smplx(4)
    return params, transfer_smplx_to_smpl(body_model, smplx_model, params)


def test_residual_is_small_on_random_poses(fitted, body_model, smplx_model):
    params, res = fitted
    err_mm = 1000 * res.joint_error_m.numpy()
    assert err_mm.mean() < MEAN_BOUND_MM and err_mm.max() < MAX_BOUND_MM, err_mm
    assert np.all(err_mm < 1000 * res.initial_joint_error_m.numpy())  # the fit improved on copying the pose
    # Recomputed independently with the full models: SMPL's joints sit on SMPL-X's.
    p = res.params
    with torch.no_grad():
        smpl = body_model(p.global_orient, p.body_pose, p.betas, p.transl).joints_smpl24[:, :22]
        target = smplx_model(**params).joints55[:, :22]
    dist = (smpl - target).norm(dim=-1).mean(dim=1)
    np.testing.assert_allclose(dist.numpy(), res.joint_error_m.numpy(), atol=1e-4)


def test_anatomy_and_pose_are_kept(fitted, body_model):
    params, res = fitted
    p = res.params
    with torch.no_grad():
        joints = body_model(p.global_orient, p.body_pose, p.betas, p.transl).joints_smpl24
    # In each body's own frame, the left wrist is on the body's left (+x of the pelvis frame).
    from scipy.spatial.transform import Rotation

    rot = torch.tensor(Rotation.from_rotvec(p.global_orient.numpy()).as_matrix(), dtype=torch.float32)
    local = torch.einsum("bji,bkj->bki", rot, joints - joints[:, :1])  # R^T (x - pelvis)
    j = {n: i for i, n in enumerate(SMPLX55_JOINT_NAMES)}
    assert torch.all(local[:, j["left_hip"], 0] > 0) and torch.all(local[:, j["right_hip"], 0] < 0)
    # Same kinematic tree: the fitted rotations stay near SMPL-X's (radians).
    diff = (p.body_pose[:, :63] - params["body_pose"]).abs()
    assert diff.mean() < 0.1 and torch.all(p.body_pose[:, 63:] == 0)


def test_deterministic(body_model, smplx_model, fitted):
    params, res = fitted
    again = transfer_smplx_to_smpl(body_model, smplx_model, params)
    for a, b in zip((res.params.global_orient, res.params.body_pose, res.params.betas, res.params.transl),
                    (again.params.global_orient, again.params.body_pose, again.params.betas, again.params.transl)):
        assert torch.equal(a, b)


def test_columns_pca_hands_mean_and_shape_widths(smplx_model):
    rng = np.random.default_rng(0)
    n = 3
    coeffs = rng.standard_normal((n, 12)).astype(np.float32)
    cols = {
        "image_path": np.array(["a", "b", "c"]),
        "extra_smplx_global_orient": rng.standard_normal((n, 3)).astype(np.float32),
        "extra_smplx_body_pose": rng.standard_normal((n, 63)).astype(np.float32),
        "extra_smplx_betas": rng.standard_normal((n, 16)).astype(np.float32),
        "extra_smplx_left_hand_pose": coeffs, "extra_smplx_right_hand_pose": coeffs,
        "extra_smplx_hand_pca": np.full(n, 12, np.int32),
    }
    p = smplx_params(cols, np.arange(n), smplx_model, torch.float32, "cpu", flat_hand_mean=True)
    assert p["betas"].shape == (n, 10) and "jaw_pose" not in p and "transl" not in p
    comps = smplx_model.hand_components_l.numpy()
    np.testing.assert_allclose(p["left_hand_pose"].numpy(), coeffs @ comps[:12], atol=1e-5)
    assert not np.allclose(p["right_hand_pose"].numpy(), p["left_hand_pose"].numpy())  # mirrored basis
    # Per-row PCA counts (0: axis-angle), and poses relative to the mean hand where the row says so.
    cols["extra_smplx_hand_pca"] = np.array([12, 6, 0], np.int32)
    cols["extra_smplx_flat_hand_mean"] = np.array([1, 0, 1], np.uint8)
    cols["extra_smplx_left_hand_pose"] = np.pad(coeffs, ((0, 0), (0, 33)))
    cols["extra_smplx_right_hand_pose"] = cols["extra_smplx_left_hand_pose"]
    p = smplx_params(cols, np.arange(n), smplx_model, torch.float32, "cpu")
    mean = smplx_model.hand_mean("left").numpy()
    assert np.abs(mean).max() > 0.05
    np.testing.assert_allclose(p["left_hand_pose"][0].numpy(), coeffs[0] @ comps[:12], atol=1e-5)
    np.testing.assert_allclose(p["left_hand_pose"][1].numpy(), coeffs[1, :6] @ comps[:6] + mean, atol=1e-5)
    np.testing.assert_allclose(p["left_hand_pose"][2].numpy(), cols["extra_smplx_left_hand_pose"][2])
    # AGORA/MTP's spelling of the PCA count: extra_smplx_use_pca + extra_smplx_num_pca_comps.
    del cols["extra_smplx_hand_pca"]
    cols["extra_smplx_num_pca_comps"] = np.array([12, 6, 6], np.int32)
    cols["extra_smplx_use_pca"] = np.array([True, True, False])
    q = smplx_params(cols, np.arange(n), smplx_model, torch.float32, "cpu")
    np.testing.assert_allclose(q["left_hand_pose"].numpy(), p["left_hand_pose"].numpy(), atol=1e-6)
