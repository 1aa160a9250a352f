import numpy as np
import pytest
import torch

from hmr.core.geometry import project_points
from hmr.fitting.camera import (FIT_JOINT_NAMES, MIN_DEPTH_M, fit_keypoints, init_translation, model_fit_joints,
                                to_crop_frame)
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, SMPLParams, gmof, mean_smpl_params
from hmr.fitting.problems import joint_errors_mm, make_problem


def _crop_problem(model, n, seed, **kw):
    prob = make_problem(model, n, seed, **kw)
    kp, k, frame = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics)
    return prob, torch.from_numpy(kp), torch.from_numpy(k), frame


def _true_params(prob, with_transl=True):
    return SMPLParams(torch.from_numpy(prob.global_orient), torch.from_numpy(prob.body_pose),
                      torch.from_numpy(prob.betas), torch.from_numpy(prob.transl) if with_transl else None)


def test_fit_joint_set_is_spin49_then_smpl24():
    assert len(FIT_JOINT_NAMES) == 73 and len(set(FIT_JOINT_NAMES)) == 73
    assert FIT_JOINT_NAMES[0] == "nose_openpose" and FIT_JOINT_NAMES[49] == "smpl_pelvis"
    superset = np.zeros((2, 248, 3), np.float32)
    from hmr.core.keypoints import SUPERSET_JOINTS

    superset[:, SUPERSET_JOINTS.index("smpl_left_knee")] = [10, 20, 1]
    out = fit_keypoints(superset)
    assert out.shape == (2, 73, 3) and out[0, FIT_JOINT_NAMES.index("smpl_left_knee")].tolist() == [10, 20, 1]
    assert out[..., 2].sum() == 2


def test_truth_reprojects_exactly_in_the_crop_frame(body_model, pose_prior):
    prob, kp, k, _ = _crop_problem(body_model, 4, 0)
    fitter = SMPLify(body_model, pose_prior)
    loss, err = fitter.evaluate(_true_params(prob), kp, k)
    assert err.max() < 0.05 and loss.max() < 1.0  # crop px


def test_missing_extra_regressor_fits_the_rest(body_model):
    out = body_model(torch.zeros(2, 3), torch.zeros(2, 69))
    full, available = model_fit_joints(out)
    out.joints_spin49 = None
    part, avail_part = model_fit_joints(out)
    assert available.all() and avail_part.sum() == 73 - 9
    torch.testing.assert_close(part[:, avail_part], full[:, avail_part])


def test_translation_start_from_the_torso_is_close(body_model):
    prob, kp, k, frame = _crop_problem(body_model, 6, 1)
    with torch.no_grad():
        joints, _ = model_fit_joints(body_model(**vars(_true_params(prob, with_transl=False))))
    transl = init_translation(joints, kp, k)
    depth_err = (transl[:, 2] / torch.from_numpy(prob.transl[:, 2]) - 1).abs()
    assert depth_err.max() < 0.1
    assert (transl[:, :2] - torch.from_numpy(prob.transl[:, :2])).norm(dim=-1).max() < 0.15


def test_gmof_is_quadratic_near_zero_and_bounded():
    x = torch.tensor([0.01, 1e4])
    r = gmof(x, 100.0)
    assert r[0] == pytest.approx(1e-4, rel=1e-3) and r[1] < 100.0 ** 2


def test_smplify_reduces_2d_error_and_improves_3d(body_model, pose_prior):
    prob, kp, k, frame = _crop_problem(body_model, 6, 2)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=20, body_iters=30))
    res = fitter(kp, k)
    assert res.reprojection_error_px.median() * 4 < res.initial_reprojection_error_px.median()
    assert torch.isfinite(res.loss).all()
    start = mean_smpl_params(6)
    with torch.no_grad():
        fit_j = body_model(**vars(res.params)).joints_smpl24
        start_j = body_model(**vars(start)).joints_smpl24
    true_j = torch.from_numpy(prob.joints3d_m)
    assert joint_errors_mm(fit_j, true_j)[0].median() < 0.6 * joint_errors_mm(start_j, true_j)[0].median()


def test_default_iterations_reach_a_few_pixels_and_good_3d(body_model, pose_prior):
    prob, kp, k, frame = _crop_problem(body_model, 16, 3)
    res = SMPLify(body_model, pose_prior)(kp, k)
    image_px = res.reprojection_error_px / torch.from_numpy(frame.scale).float()
    assert image_px.median() < 6.0
    assert res.initial_reprojection_error_px.median() > 5 * res.reprojection_error_px.median()
    with torch.no_grad():
        fit_j = body_model(**vars(res.params)).joints_smpl24
    mpjpe, pa = joint_errors_mm(fit_j, torch.from_numpy(prob.joints3d_m))
    assert pa.median() < 70.0 and mpjpe.median() < 100.0


def test_batch_equals_single_fits(body_model, pose_prior):
    _, kp, k, _ = _crop_problem(body_model, 3, 4)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=4, body_iters=4))
    batch = fitter(kp, k)
    for i in range(3):
        one = fitter(kp[i:i + 1], k[i:i + 1])
        torch.testing.assert_close(one.params.body_pose[0], batch.params.body_pose[i], atol=1e-4, rtol=0)
        torch.testing.assert_close(one.params.transl[0], batch.params.transl[i], atol=1e-5, rtol=0)


def test_zero_confidence_and_ignored_joints_do_not_matter(body_model, pose_prior):
    _, kp, k, _ = _crop_problem(body_model, 2, 5)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=3, body_iters=3))
    ref = fitter(kp, k)
    noisy = kp.clone()
    noisy[:, 30:40, 2] = 0.0
    noisy[:, 30:40, :2] += 500.0  # garbage where confidence is 0 ...
    noisy[:, FIT_JOINT_NAMES.index("neck_openpose"), :2] += 80.0  # ... and on an ignored joint
    kp0 = kp.clone()
    kp0[:, 30:40, 2] = 0.0
    torch.testing.assert_close(fitter(noisy, k).params.body_pose, fitter(kp0, k).params.body_pose)
    assert not torch.equal(ref.params.body_pose, fitter(kp0, k).params.body_pose)


def test_start_from_given_params_keeps_a_good_fit(body_model, pose_prior):
    prob, kp, k, _ = _crop_problem(body_model, 3, 6)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=5, body_iters=5))
    res = fitter(kp, k, init=_true_params(prob))
    assert res.initial_reprojection_error_px.max() < 0.05 and res.reprojection_error_px.max() < 2.0


def test_crop_frame_keeps_the_projection(body_model):
    prob = make_problem(body_model, 3, 7)
    kp, k, frame = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics)
    with torch.no_grad():
        joints, _ = model_fit_joints(body_model(**vars(_true_params(prob))))
    uv = project_points(joints, torch.from_numpy(k), min_depth=MIN_DEPTH_M)
    torch.testing.assert_close(uv, torch.from_numpy(kp[..., :2]), atol=2e-3, rtol=0)
    assert np.allclose((kp[..., :2].max(1) - kp[..., :2].min(1)).max(1), 224 / 1.2, rtol=1e-4)
    _, k_default, _ = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics, np.zeros(3, bool))
    assert (k_default[:, 0, 0] == 5000).all() and (k_default[:, :2, 2] == 112).all()


def test_wrong_keypoint_shape_is_refused(body_model, pose_prior):
    with pytest.raises(ValueError, match="73"):
        SMPLify(body_model, pose_prior)(torch.zeros(1, 49, 3), torch.eye(3)[None])


@pytest.mark.parametrize("drop_extra", [False, True])
def test_joints_model_matches_the_body_model(body_model, drop_extra):
    from hmr.fitting.joints_model import FitJointsModel

    prob = make_problem(body_model, 3, 8)
    params = _true_params(prob)
    extra = body_model.j_regressor_extra
    try:
        if drop_extra:
            body_model.j_regressor_extra = None
        with torch.no_grad():
            out = body_model(**vars(params))
            expected, available = model_fit_joints(out)
            joints_model = FitJointsModel(body_model)
            joints, root = joints_model(**vars(params))
    finally:
        body_model.j_regressor_extra = extra
    assert torch.equal(joints_model.available, available)
    torch.testing.assert_close(joints, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(root + params.transl, out.joints_smpl24[:, 0], atol=2e-5, rtol=0)
    assert joints_model.lbs_weights.shape[0] < body_model.lbs_weights.shape[0] // 4


def test_mean_params_from_spin_file_or_upright_rest_pose(tmp_path):
    from hmr.core.body import default_body_model_dir

    spin = mean_smpl_params(2)
    with np.load(default_body_model_dir() / "smpl_mean_params.npz") as data:
        assert spin.betas[0].tolist() == pytest.approx(data["shape"].tolist(), abs=1e-6)
    fallback = mean_smpl_params(2, path=tmp_path / "missing.npz")
    assert fallback.global_orient[1].tolist() == pytest.approx([np.pi, 0, 0])
    assert not fallback.body_pose.any() and not fallback.transl.any()


class _MeshFitJoints(torch.nn.Module):
    """The fit joints through the whole posed mesh (``BodyModel.forward``), the reference for
    :class:`hmr.fitting.joints_model.FitJointsModel`."""

    def __init__(self, body_model, available):
        super().__init__()
        self.body_model, self.available = body_model, available

    def forward(self, global_orient, body_pose, betas, transl=None):
        out = self.body_model(global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl)
        root = out.joints_smpl24[:, 0] - (0 if transl is None else transl)
        return model_fit_joints(out)[0], root


def test_fits_equal_fits_through_the_full_mesh(body_model, pose_prior):
    _, kp, k, _ = _crop_problem(body_model, 3, 9)
    fitter = SMPLify(body_model, pose_prior, SMPLifyConfig(camera_iters=6, body_iters=6))
    fast = fitter(kp, k)
    fitter.joints_model = _MeshFitJoints(body_model, fitter.joints_model.available)
    mesh = fitter(kp, k)
    for name in ("global_orient", "body_pose", "betas", "transl"):
        torch.testing.assert_close(getattr(fast.params, name), getattr(mesh.params, name), atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.reprojection_error_px, mesh.reprojection_error_px, atol=1e-3, rtol=1e-4)
    assert (fast.params.body_pose - fitter.start_params(kp, k).body_pose).abs().max() > 1e-3  # it moved
