"""The training objective: zero at the labels, every loss kind finite, σ trainable, bf16 safe."""

from types import SimpleNamespace

import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.geometry import axis_angle_to_matrix
from hmr.training.config import LossConfig
from hmr.training.objective import Objective
from tests.fixtures.training import random_body_batch


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def _perfect_output(batch):
    """A network output equal to the labels (cam chosen to reproduce smpl_transl)."""
    aa = torch.cat([batch["smpl_global_orient"], batch["smpl_body_pose"]], 1).reshape(-1, 24, 3)
    transl = batch["smpl_transl"]
    scale = 2 * 5000.0 / (64 * transl[:, 2])
    return SimpleNamespace(pose_rotmat=axis_angle_to_matrix(aa), betas=batch["smpl_betas"].clone(),
                           cam=torch.stack([scale, transl[:, 0], transl[:, 1]], 1), cam_t=transl.clone())


def _objective(**loss):
    return Objective(LossConfig(**loss), "spin_49", focal_length_px=5000.0, crop_px=64)


def test_objective_is_zero_at_the_labels(body):
    batch = random_body_batch(body, 6, seed=1, render=False)
    out = _perfect_output(batch)
    body_out = body(global_orient=out.pose_rotmat[:, :1], body_pose=out.pose_rotmat[:, 1:], betas=out.betas,
                    pose2rot=False)
    _, terms = _objective()(out, body_out, batch)
    for name in ("loss_keypoints2d", "loss_keypoints3d", "loss_pose", "loss_betas"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-8), name
    # the camera prior exp(-10 s)^2 is the only remaining term
    assert terms["loss"].item() == pytest.approx(60 * torch.exp(-10 * out.cam[:, 0]).pow(2).mean().item(), abs=1e-7)


def test_samples_without_labels_do_not_count(body):
    batch = random_body_batch(body, 6, seed=2, render=False)
    out = _perfect_output(batch)
    no_smpl = ~batch["has_smpl"]
    out.betas[no_smpl] += 5.0  # wrong only where there is no SMPL label
    batch["keypoints3d"][:, :, 3] = 0.0  # no 3D labels at all
    body_out = body(global_orient=out.pose_rotmat[:, :1], body_pose=out.pose_rotmat[:, 1:],
                    betas=batch["smpl_betas"], pose2rot=False)
    _, terms = _objective()(out, body_out, batch)
    assert terms["loss_betas"].item() == pytest.approx(0.0, abs=1e-8)
    assert terms["loss_keypoints3d"].item() == 0.0


@pytest.mark.parametrize("kind", ["mse", "l1", "bmc"])
def test_each_loss_kind_gives_finite_gradients_in_bf16(body, kind):
    batch = random_body_batch(body, 6, seed=3, render=False)
    out = _perfect_output(batch)
    pose = (out.pose_rotmat + 0.05 * torch.randn_like(out.pose_rotmat)).requires_grad_(True)
    out.pose_rotmat = pose
    objective = _objective(keypoints2d=kind, keypoints3d=kind, pose=kind, betas=kind)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        body_out = body(global_orient=pose[:, :1], body_pose=pose[:, 1:], betas=out.betas, pose2rot=False)
        loss, terms = objective(out, body_out, batch)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
    sigmas = objective.sigma_parameters()
    if kind == "bmc":
        assert len(sigmas) == 4 and all(s.grad is not None and torch.isfinite(s.grad) for s in sigmas)
        assert any(k.startswith("sigma/") for k in terms)
    else:
        assert sigmas == []


def test_openpose_joints_weighted_as_configured(body):
    batch = random_body_batch(body, 4, seed=4, render=False)
    out = _perfect_output(batch)
    body_out = body(global_orient=out.pose_rotmat[:, :1], body_pose=out.pose_rotmat[:, 1:], betas=out.betas,
                    pose2rot=False)
    batch["keypoints2d"][:, :25, :2] += 0.5  # corrupt only the OpenPose joints (spin_49 rows 0-24)
    _, ignored = _objective()(out, body_out, batch)
    _, counted = _objective(openpose_weight=1.0)(out, body_out, batch)
    assert ignored["loss_keypoints2d"].item() == pytest.approx(0.0, abs=1e-8)
    # mean over 49 x 2 entries of which 25 x 2 are off by 0.5: 0.25 · 25 / 49
    assert counted["loss_keypoints2d"].item() == pytest.approx(0.25 * 25 / 49, rel=1e-4)


def test_focal_from_intrinsics_projects_with_each_samples_camera(body):
    """Labels made with a 150 px crop focal: zero 2D loss with the samples' focal, not with
    SPIN's 5000 px; samples without intrinsics fall back to the model's focal."""
    batch = random_body_batch(body, 6, seed=5, render=False, focal_length_px=150.0)
    out = _perfect_output(batch)
    out.cam[:, 0] = 2 * 150.0 / (64 * batch["smpl_transl"][:, 2])  # the same depth through f = 150
    body_out = body(global_orient=out.pose_rotmat[:, :1], body_pose=out.pose_rotmat[:, 1:], betas=out.betas,
                    pose2rot=False)
    _, own = _objective(focal_from_intrinsics=True)(out, body_out, batch)
    _, spin = _objective()(out, body_out, batch)
    assert own["loss_keypoints2d"].item() == pytest.approx(0.0, abs=1e-6)
    assert spin["loss_keypoints2d"].item() > 1e-3  # 5000 px flattens the perspective of the labels
    batch["has_intrinsics"][:] = False
    _, fallback = _objective(focal_from_intrinsics=True)(out, body_out, batch)
    out_5000 = SimpleNamespace(**vars(out))
    out_5000.cam_t = torch.stack([out.cam[:, 1], out.cam[:, 2], 2 * 5000.0 / (64 * out.cam[:, 0])], 1)
    _, default = _objective()(out_5000, body_out, batch)
    assert fallback["loss_keypoints2d"].item() == pytest.approx(default["loss_keypoints2d"].item(), rel=1e-5)
