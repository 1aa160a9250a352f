"""Rotations, alignment and camera projection: pure functions over batches (torch; the
pinhole projection also takes numpy arrays, so converters, loaders and the rasteriser share it).

Conventions
-----------
- Rotation matrices act on column vectors: ``x_rotated = R @ x``; batches are ``(..., 3, 3)``.
- Axis-angle vectors are ``(..., 3)``, direction = axis, norm = angle in radians (SMPL).
- 6D rotations use **SPIN's interleaved layout** (Zhou et al. 2019, as implemented by SPIN): the
  six numbers are a 3×2 matrix read row by row, i.e. ``x.view(-1, 3, 2)``; its two columns
  ``(x0, x2, x4)`` and ``(x1, x3, x5)`` are Gram–Schmidt-orthonormalised into the first two
  columns of ``R``. Keeping this layout lets us read SPIN's ``smpl_mean_params.npz`` (its
  ``pose`` entry is 24 × 6 numbers in this order) and SPIN checkpoints unchanged.
- Cameras follow OpenCV: x right, y down, z forward, pinhole ``u = f x / z + c``.
- Weak-perspective cameras ``[s, tx, ty]`` are HMR/SPIN's: the body, translated by (tx, ty),
  is scaled by ``s`` into normalised crop coordinates in [-1, 1]. The equivalent perspective
  translation for focal length ``f`` (px) and crop side ``S`` (px) is
  ``t = (tx, ty, 2 f / (S s))`` (SPIN's ``pred_cam_t``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_EPS = 1e-8


# ------------------------------------------------------------------------------------------
# Rotations
# ------------------------------------------------------------------------------------------
def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. ``(..., 3)`` → ``(..., 3, 3)``; exact at angle 0 (Taylor terms)."""
    angle2 = (axis_angle * axis_angle).sum(-1, keepdim=True)  # (..., 1)
    angle = torch.sqrt(angle2.clamp_min(_EPS * _EPS))
    small = angle2 < 1e-8
    # sin(a)/a and (1-cos a)/a², with their series near 0 so gradients stay finite.
    sinc = torch.where(small, 1.0 - angle2 / 6.0, torch.sin(angle) / angle)  # (..., 1)
    cosc = torch.where(small, 0.5 - angle2 / 24.0, (1.0 - torch.cos(angle)) / angle2.clamp_min(1e-12))
    x, y, z = axis_angle.unbind(-1)
    zeros = torch.zeros_like(x)
    skew = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=-1)
    skew = skew.reshape(*axis_angle.shape[:-1], 3, 3)  # (..., 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + sinc[..., None] * skew + cosc[..., None] * (skew @ skew)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` → unit quaternion ``(..., 4)`` as (w, x, y, z) with w ≥ 0.

    Picks, per matrix, the best-conditioned of the four candidate formulas (Shepperd).
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4·q_i² for i = w, x, y, z
    q_sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                        1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)  # (..., 4)
    q_abs = torch.sqrt(q_sq.clamp_min(0.0))
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    # Each row: 4·q_k·q (for candidate k), so dividing by 2·|2 q_k| gives q.
    candidates = torch.stack([
        torch.stack([q_sq[..., 0], d21, d02, d10], -1),
        torch.stack([d21, q_sq[..., 1], s10, s02], -1),
        torch.stack([d02, s10, q_sq[..., 2], s21], -1),
        torch.stack([d10, s02, s21, q_sq[..., 3]], -1),
    ], dim=-2)  # (..., 4, 4)
    candidates = candidates / (2.0 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(dim=-1)  # (...,)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = F.normalize(quat, dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` (w, x, y, z) → axis-angle ``(..., 3)`` with angle in [0, π]."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    vec_norm = quat[..., 1:].norm(dim=-1, keepdim=True)  # (..., 1) = sin(angle/2)
    half = torch.atan2(vec_norm, quat[..., :1])
    angle = 2.0 * half
    small = vec_norm < 1e-6
    # angle / sin(angle/2) → 2 as the angle → 0
    scale = torch.where(small, 2.0 + angle * angle / 12.0, angle / vec_norm.clamp_min(1e-12))
    return quat[..., 1:] * scale


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` → ``(..., 3)``; robust near 0 and π (through quaternions)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """SPIN-layout 6D ``(..., 6)`` → rotation matrix ``(..., 3, 3)`` (see module docstring)."""
    m = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]  # (..., 3) each: (x0, x2, x4) and (x1, x3, x5)
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)  # columns b1, b2, b3


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rot6d_to_matrix` on rotations: ``(..., 3, 3)`` → ``(..., 6)``."""
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


# ------------------------------------------------------------------------------------------
# Alignment
# ------------------------------------------------------------------------------------------
def similarity_transform(source: torch.Tensor, target: torch.Tensor,
                         weights: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity (Umeyama 1991) mapping ``source`` onto ``target``, per sample.

    ``source``, ``target``: ``(B, N, 3)``; ``weights``: ``(B, N)`` ≥ 0 (0 = ignore the point).
    Returns ``scale (B,)``, ``rotation (B, 3, 3)``, ``translation (B, 3)`` minimising
    ``Σ w ‖s R x + t − y‖²``; reflections are forbidden (det R = +1), as in the HMR/SPIN
    evaluation code (``compute_similarity_transform``). A sample with a non-finite point gets
    NaN results (the others are unaffected).
    """
    if weights is None:
        weights = torch.ones(source.shape[:2], dtype=source.dtype, device=source.device)
    w = weights.to(source.dtype)[..., None]  # (B, N, 1)
    source, target = torch.where(w > 0, source, 0.0), torch.where(w > 0, target, 0.0)  # ignored: any value
    w_sum = w.sum(dim=1, keepdim=True).clamp_min(_EPS)  # (B, 1, 1)
    mu_src = (w * source).sum(1, keepdim=True) / w_sum  # (B, 1, 3)
    mu_tgt = (w * target).sum(1, keepdim=True) / w_sum
    x = source - mu_src
    y = target - mu_tgt
    var_src = (w * x * x).sum(dim=(1, 2))  # (B,)
    cov = (w * y).transpose(1, 2) @ x  # (B, 3, 3) = Σ w y xᵀ
    # A NaN / inf point (a diverged prediction, a broken camera) makes the SVD fail for the
    # whole batch: such samples get an identity stand-in here and NaN results below.
    finite = torch.isfinite(cov).all(dim=(1, 2)) & torch.isfinite(var_src)  # (B,)
    eye = torch.eye(3, dtype=cov.dtype, device=cov.device).expand_as(cov)
    u, sing, vh = torch.linalg.svd(torch.where(finite[:, None, None], cov, eye))
    d = torch.sign(torch.det(u @ vh))  # (B,)
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones_like(sing)
    diag[:, 2] = d
    rotation = u @ torch.diag_embed(diag) @ vh  # (B, 3, 3)
    scale = (sing * diag).sum(-1) / var_src.clamp_min(_EPS)  # (B,)
    translation = mu_tgt[:, 0] - scale[:, None] * (rotation @ mu_src[:, 0, :, None])[..., 0]
    nan = torch.full_like(scale, float("nan"))
    return (torch.where(finite, scale, nan), torch.where(finite[:, None, None], rotation, nan[:, None, None]),
            torch.where(finite[:, None], translation, nan[:, None]))


def procrustes_align(source: torch.Tensor, target: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """``source`` ``(B, N, 3)`` mapped by its best similarity onto ``target`` → ``(B, N, 3)``."""
    scale, rotation, translation = similarity_transform(source, target, weights)
    return scale[:, None, None] * source @ rotation.transpose(1, 2) + translation[:, None]


# ------------------------------------------------------------------------------------------
# Cameras
# ------------------------------------------------------------------------------------------
def project_points(points_cam, intrinsics, *, min_depth: float | None = None):
    """Pinhole projection, numpy or torch: ``p @ K^T``, divided by its last coordinate.

    points_cam: ``(..., N, 3)`` camera frame (metres; OpenCV axes); intrinsics: ``(3, 3)`` or
    ``(..., 3, 3)`` px with last row ``(0, 0, 1)``. Returns ``(..., N, 2)`` px. ``min_depth``:
    depths with ``|z|`` below it become ``min_depth`` (keeps fitting gradients finite for
    points at the camera).
    """
    uvw = points_cam @ intrinsics.swapaxes(-1, -2)  # (..., N, 3); uvw[..., 2] == z
    w = uvw[..., 2:3]
    if min_depth is not None:
        if isinstance(w, torch.Tensor):
            w = torch.where(w.abs() < min_depth, torch.full_like(w, min_depth), w)
        else:
            w = np.where(np.abs(w) < min_depth, min_depth, w)
    return uvw[..., :2] / w


def perspective_projection(points: torch.Tensor, focal_length_px: torch.Tensor | float,
                           camera_center_px: torch.Tensor | float = 0.0,
                           rotation: torch.Tensor | None = None,
                           translation: torch.Tensor | None = None) -> torch.Tensor:
    """Pinhole projection of ``points`` ``(B, N, 3)`` → ``(B, N, 2)`` pixels.

    ``focal_length_px``: scalar, ``(B,)`` or ``(B, 2)``; ``camera_center_px``: scalar or
    ``(B, 2)``; optional extrinsics ``rotation (B, 3, 3)``, ``translation (B, 3)`` applied
    first (``R x + t``).
    """
    if rotation is not None:
        points = points @ rotation.transpose(1, 2)
    if translation is not None:
        points = points + translation[:, None, :]
    focal = torch.as_tensor(focal_length_px, dtype=points.dtype, device=points.device)
    center = torch.as_tensor(camera_center_px, dtype=points.dtype, device=points.device)
    if focal.ndim == 1:
        focal = focal[:, None]
    if focal.ndim == 2:
        focal = focal[:, None, :]  # (B, 1, 1|2)
    if center.ndim == 2:
        center = center[:, None, :]  # (B, 1, 2)
    z = points[..., 2:3]
    z = torch.where(z.abs() < 1e-6, torch.full_like(z, 1e-6), z)
    return points[..., :2] / z * focal + center


def weak_perspective_to_translation(cam: torch.Tensor, focal_length_px: float | torch.Tensor,
                                    crop_size_px: float) -> torch.Tensor:
    """HMR/SPIN camera ``(B, 3)`` = [s, tx, ty] → camera-frame translation ``(B, 3)`` (m).

    Depth ``2 f / (S s)`` makes the perspective projection of the translated body match the
    weak-perspective one at the body's depth; ``s`` is clamped away from 0.
    """
    s = cam[:, 0]
    s = torch.where(s.abs() < 1e-4, torch.full_like(s, 1e-4), s)
    depth = 2.0 * focal_length_px / (crop_size_px * s)
    return torch.stack([cam[:, 1], cam[:, 2], depth], dim=-1)
