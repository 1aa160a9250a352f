import numpy as np
import torch

from hmr.core.geometry import project_points
from hmr.fitting.camera import MIN_DEPTH_M, model_fit_joints, solve_translation, spin_crop_intrinsics
from hmr.fitting.fits_table import FitsTable
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, SMPLParams, mean_smpl_params
from hmr.fitting.spin import (flip_pose, rotation_about_optical_axis, spin_fit_step, to_batch_frame,
                              to_canonical_frame)
from tests.fixtures.fitting import problem


def _poses(n, seed=0):
    prob = problem(n, seed)
    return torch.from_numpy(np.c_[prob.global_orient, prob.body_pose])


def test_frames_round_trip_and_match_the_loader_augmentation():
    from loaders.augment import _rotate_aa, flip_smpl_pose

    pose = _poses(4)
    rz = rotation_about_optical_axis([30.0, -45.0, 0.0, 10.0])
    flip = torch.tensor([True, False, True, False])
    batch = to_batch_frame(pose, rz, flip)
    torch.testing.assert_close(to_canonical_frame(batch, rz, flip), pose, atol=1e-5, rtol=0)
    torch.testing.assert_close(flip_pose(flip_pose(pose)), pose)
    for i in range(4):
        orient = _rotate_aa(rz[i].double().numpy(), pose[i, :3].double().numpy())
        body = pose[i, 3:].double().numpy()
        if flip[i]:
            orient, body = flip_smpl_pose(orient, body)
        np.testing.assert_allclose(batch[i].numpy(), np.r_[orient, body], atol=1e-5)


def test_solve_translation_recovers_the_camera_offset(body_model):
    prob = problem(4, 1)
    with torch.no_grad():
        joints, _ = model_fit_joints(body_model(torch.from_numpy(prob.global_orient),
                                                torch.from_numpy(prob.body_pose), torch.from_numpy(prob.betas)))
    t = solve_translation(joints, torch.from_numpy(prob.keypoints2d_px), torch.from_numpy(prob.intrinsics))
    torch.testing.assert_close(t, torch.from_numpy(prob.transl), atol=2e-3, rtol=0)


def _batch_keypoints(body_model, pose, betas, transl, k):
    with torch.no_grad():
        joints, _ = model_fit_joints(body_model(pose[:, :3], pose[:, 3:], betas, transl))
    return torch.cat([project_points(joints, k, min_depth=MIN_DEPTH_M), torch.ones(*joints.shape[:2], 1)], -1)


def test_spin_step_keeps_an_exact_stored_fit_seen_through_augmentation(tmp_path, body_model, pose_prior):
    prob = problem(3, 2)
    canonical = torch.from_numpy(np.c_[prob.global_orient, prob.body_pose])
    betas = torch.from_numpy(prob.betas)
    keys = [f"s_{i:09d}" for i in range(3)]
    table = FitsTable.create(tmp_path, keys, canonical.numpy(), betas.numpy())
    rz = rotation_about_optical_axis([20.0, 0.0, -35.0])
    flip = torch.tensor([False, True, True])
    k = spin_crop_intrinsics(3)
    transl = torch.tensor([[0.0, 0.1, 48.0], [0.05, 0.0, 52.0], [-0.05, 0.2, 45.0]])  # SPIN: f 5000, S 224
    kp = _batch_keypoints(body_model, to_batch_frame(canonical, rz, flip), betas, transl, k)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=3, body_iters=3))
    prediction = mean_smpl_params(3)
    prediction.transl = transl
    targets = spin_fit_step(fitter, table, keys, prediction, kp, k, rz, flip)
    assert not targets.improved.any() and targets.valid.all() and targets.loss.max() < 1.0
    torch.testing.assert_close(torch.cat([targets.global_orient, targets.body_pose], 1),
                               to_batch_frame(canonical, rz, flip), atol=1e-5, rtol=0)
    assert table.reset_counts() == (3, 0)


def test_spin_step_replaces_bad_fits_and_stores_them_canonically(tmp_path, body_model, pose_prior):
    prob = problem(3, 3)
    canonical = torch.from_numpy(np.c_[prob.global_orient, prob.body_pose])
    betas = torch.from_numpy(prob.betas)
    keys = [f"s_{i:09d}" for i in range(3)]
    mean = mean_smpl_params(3)
    table = FitsTable.create(tmp_path, keys, np.c_[mean.global_orient, mean.body_pose], mean.betas.numpy(),
                             error=np.full(3, 1e9))
    rz = rotation_about_optical_axis([25.0, -10.0, 0.0])
    flip = torch.tensor([True, False, True])
    k = spin_crop_intrinsics(3)
    transl = torch.tensor([[0.0, 0.1, 48.0], [0.05, 0.0, 52.0], [-0.05, 0.2, 45.0]])  # SPIN: f 5000, S 224
    batch_pose = to_batch_frame(canonical, rz, flip)
    kp = _batch_keypoints(body_model, batch_pose, betas, transl, k)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=5, body_iters=10))
    # A good prediction (the truth, slightly off): the refined fit beats the mean-pose fit.
    prediction = SMPLParams(batch_pose[:, :3] + 0.05, batch_pose[:, 3:] + 0.05, betas, transl)
    targets = spin_fit_step(fitter, table, keys, prediction, kp, k, rz, flip)
    assert targets.improved.all() and torch.equal(targets.valid, targets.loss < 100.0)
    stored, _, err = table.lookup(keys)
    torch.testing.assert_close(to_batch_frame(torch.from_numpy(stored), rz, flip),
                               torch.cat([targets.global_orient, targets.body_pose], 1), atol=1e-4, rtol=0)
    # Stored canonically: close to the canonical truth, not to the batch-frame pose.
    assert (torch.from_numpy(stored)[:, :3] - canonical[:, :3]).norm(dim=1).max() < 0.3
    assert np.allclose(err, targets.loss.numpy())
