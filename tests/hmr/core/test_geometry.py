"""Rotations, Procrustes and cameras against closed forms and scipy."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr.core.geometry import (
    axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, procrustes_align, perspective_projection, project_points,
    rot6d_to_matrix, similarity_transform, weak_perspective_to_translation,
)


def _random_axis_angle(n, seed=0):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.uniform(0, math.pi, size=(n, 1))
    return axis * angle


def test_axis_angle_to_matrix_matches_scipy():
    aa = _random_axis_angle(50)
    expected = Rotation.from_rotvec(aa).as_matrix()
    got = axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_axis_angle_zero_is_identity_with_finite_gradient():
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    rot = axis_angle_to_matrix(aa)
    np.testing.assert_allclose(rot.detach().numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)))
    rot.sum().backward()
    assert torch.isfinite(aa.grad).all()


@pytest.mark.parametrize("angle", [0.0, 1e-7, 0.5, math.pi - 1e-4, math.pi])
def test_matrix_to_axis_angle_round_trip(angle):
    axis = np.array([0.3, -0.5, 0.81])
    axis /= np.linalg.norm(axis)
    aa = torch.from_numpy(axis * angle)[None]
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    # at π, axis and −axis are the same rotation: compare matrices
    np.testing.assert_allclose(axis_angle_to_matrix(back).numpy(), axis_angle_to_matrix(aa).numpy(), atol=1e-9)
    if angle < math.pi - 1e-3:
        np.testing.assert_allclose(back.numpy(), aa.numpy(), atol=1e-9)


def test_rot6d_uses_spin_interleaved_layout():
    # columns c1 = (1, 0, 0), c2 = (0, 1, 0) are stored as x = [c1x, c2x, c1y, c2y, c1z, c2z]
    identity6d = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(rot6d_to_matrix(identity6d)[0].numpy(), np.eye(3), atol=1e-7)
    rot = Rotation.from_rotvec([0.2, -1.0, 0.4]).as_matrix()
    x = torch.tensor([[rot[0, 0], rot[0, 1], rot[1, 0], rot[1, 1], rot[2, 0], rot[2, 1]]])
    np.testing.assert_allclose(rot6d_to_matrix(x)[0].numpy(), rot, atol=1e-12)
    np.testing.assert_allclose(matrix_to_rot6d(torch.from_numpy(rot))[None].numpy(), x.numpy())


def test_rot6d_orthonormalises_arbitrary_input():
    rot = rot6d_to_matrix(torch.randn(100, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    np.testing.assert_allclose((rot.transpose(1, 2) @ rot).numpy(), eye.numpy(), atol=1e-12)
    np.testing.assert_allclose(torch.det(rot).numpy(), np.ones(100), atol=1e-12)


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(1)
    src = torch.from_numpy(rng.normal(size=(4, 14, 3)))
    rot = torch.from_numpy(Rotation.from_rotvec(_random_axis_angle(4, 2)).as_matrix())
    scale = torch.tensor([0.5, 1.0, 2.0, 3.3], dtype=torch.float64)
    trans = torch.from_numpy(rng.normal(size=(4, 3)))
    tgt = scale[:, None, None] * src @ rot.transpose(1, 2) + trans[:, None]
    s, r, t = similarity_transform(src, tgt)
    np.testing.assert_allclose(s.numpy(), scale.numpy(), atol=1e-10)
    np.testing.assert_allclose(r.numpy(), rot.numpy(), atol=1e-10)
    np.testing.assert_allclose(t.numpy(), trans.numpy(), atol=1e-10)
    np.testing.assert_allclose(procrustes_align(src, tgt).numpy(), tgt.numpy(), atol=1e-10)


def test_similarity_transform_forbids_reflection_and_honours_weights():
    rng = np.random.default_rng(3)
    src = torch.from_numpy(rng.normal(size=(1, 20, 3)))
    mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    _, r, _ = similarity_transform(src, mirrored)
    assert torch.det(r).item() == pytest.approx(1.0)
    # points with weight 0 may be anything: the fit uses the others only
    tgt = src.clone() + 1.0
    tgt[0, :5] = 100.0
    weights = torch.ones(1, 20, dtype=torch.float64)
    weights[0, :5] = 0
    aligned = procrustes_align(src, tgt, weights)
    np.testing.assert_allclose(aligned[0, 5:].numpy(), tgt[0, 5:].numpy(), atol=1e-10)


def test_perspective_projection_closed_form():
    pts = torch.tensor([[[0.5, -0.25, 2.0], [0.0, 0.0, 4.0]]])
    uv = perspective_projection(pts, torch.tensor([[1000.0, 500.0]]), torch.tensor([[320.0, 240.0]]))
    np.testing.assert_allclose(uv[0].numpy(), [[320 + 250.0, 240 - 62.5], [320.0, 240.0]])


def test_weak_perspective_translation_reproduces_weak_projection():
    # points on the z = 0 plane of the body frame: perspective/(S/2) equals s (x + t) exactly
    cam = torch.tensor([[0.8, 0.1, -0.2]])
    focal, size = 5000.0, 224.0
    transl = weak_perspective_to_translation(cam, focal, size)
    pts = torch.tensor([[[0.3, 0.4, 0.0], [-0.5, 0.1, 0.0]]])
    uv = perspective_projection(pts, focal, 0.0, translation=transl) / (size / 2)
    expected = cam[:, None, :1] * (pts[..., :2] + cam[:, None, 1:])
    np.testing.assert_allclose(uv.numpy(), expected.numpy(), rtol=1e-6)


def test_project_points_numpy_and_torch_agree_with_the_pinhole_formula():
    rng = np.random.default_rng(3)
    pts = rng.normal(0, 0.5, (4, 7, 3)) + [0, 0, 4.0]  # (B, N, 3) in front of the camera
    k = np.array([[500.0, 0, 112], [0, 480.0, 100], [0, 0, 1]])
    expected = np.stack([500 * pts[..., 0] / pts[..., 2] + 112, 480 * pts[..., 1] / pts[..., 2] + 100], -1)
    np.testing.assert_allclose(project_points(pts, k), expected, rtol=1e-12)
    batched_k = np.broadcast_to(k, (4, 3, 3)).copy()
    out_t = project_points(torch.from_numpy(pts), torch.from_numpy(batched_k))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), expected, rtol=1e-12)


def test_project_points_min_depth_keeps_points_at_the_camera_finite():
    pts = np.array([[0.1, 0.2, 0.0], [0.1, 0.2, 2.0]])
    k = np.eye(3)
    with np.errstate(divide="ignore"):
        assert not np.isfinite(project_points(pts, k)).all()
    out = project_points(torch.tensor(pts), torch.tensor(k), min_depth=1e-3)
    np.testing.assert_allclose(out.numpy(), [[100.0, 200.0], [0.05, 0.1]])
