"""Square person crops: box → similarity transform → warped pixels and labels.

Conventions (same as schema v1): pixel centres at integer coordinates, x right, y down.
A square box of side ``side_px`` centred at ``center_px`` covers the continuous interval
``[c - side/2, c + side/2]``; mapped onto an ``S × S`` crop it lands on ``[-0.5, S - 0.5]``,
so ``p_crop = (S / side) · (p - c) + (S / 2 - 0.5)``.

Every transform here is a 2×3 affine ``A`` mapping *source* pixels to *destination* pixels
(``p_dst = A @ [x, y, 1]``). For a similarity ``A = [s·R | t]`` a pinhole camera ``K``
(fx = fy) stays a pinhole camera if the 3D points are rotated by ``R`` about the optical
axis: ``A3 · K = K' · Rz`` with ``K' = [[s fx, 0, c'x], [0, s fy, c'y], [0, 0, 1]]``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def box_to_square(bbox_xywh: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Centre (2,) and side (px) of the square enclosing the box, times ``scale``."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    center = np.array([x + w / 2.0, y + h / 2.0], dtype=np.float64)  # (2,)
    return center, max(w, h) * float(scale)


def square_affine(center_px: np.ndarray, side_px: float, out_size: int,
                  rotation_deg: float = 0.0) -> np.ndarray:
    """Affine (2, 3) mapping source pixels to an ``out_size`` crop of the square box.

    ``rotation_deg`` rotates the *image content* counter-clockwise as displayed (the crop
    window turns clockwise about the box centre); the label transforms follow from ``A``.
    """
    s = out_size / float(side_px)
    theta = math.radians(rotation_deg)
    # y points down, so a visually counter-clockwise turn is a negative angle in (x, y).
    cos_t, sin_t = math.cos(-theta), math.sin(-theta)
    lin = s * np.array([[cos_t, -sin_t], [sin_t, cos_t]])  # (2, 2)
    centre_out = np.array([out_size / 2.0 - 0.5, out_size / 2.0 - 0.5])
    t = centre_out - lin @ np.asarray(center_px, dtype=np.float64)
    return np.hstack([lin, t[:, None]])  # (2, 3)


def flip_affine(out_size: int) -> np.ndarray:
    """Horizontal mirror of an ``out_size``-wide image: x → S - 1 - x. (2, 3)"""
    return np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])


def to3x3(affine: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(affine, dtype=np.float64), [0.0, 0.0, 1.0]])  # (3, 3)


def compose(a_then_b: tuple[np.ndarray, ...]) -> np.ndarray:
    """Affine of applying the given (2, 3) affines in order."""
    out = np.eye(3)
    for a in a_then_b:
        out = to3x3(a) @ out
    return out[:2]


def invert(affine: np.ndarray) -> np.ndarray:
    return np.linalg.inv(to3x3(affine))[:2]


def apply_points(affine: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """Transform (..., 2) points by a (2, 3) affine."""
    a = np.asarray(affine, dtype=np.float64)
    pts = np.asarray(points_px, dtype=np.float64)
    return pts @ a[:, :2].T + a[:, 2]


def warp(image: np.ndarray, affine: np.ndarray, out_size: int,
         interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(H, W, 3) uint8 → (out_size, out_size, 3); outside the source is black."""
    return cv2.warpAffine(image, np.asarray(affine, dtype=np.float64), (out_size, out_size),
                          flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def similarity_parts(affine: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """(scale, 2D rotation (2, 2), mirrored) of a similarity affine ``[s·R·F | t]``."""
    lin = np.asarray(affine, dtype=np.float64)[:, :2]
    det = float(np.linalg.det(lin))
    mirrored = det < 0
    if mirrored:
        lin = lin @ np.diag([-1.0, 1.0])
    scale = math.sqrt(abs(det))
    return scale, lin / scale, mirrored


def transform_intrinsics(affine: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera of the warped image for an unmirrored similarity ``affine``.

    Returns ``(K_new (3, 3), R3 (3, 3))`` with ``A3 · K ≈ K_new · R3``: 3D points must be
    rotated by ``R3`` (about the optical axis) to stay consistent. Exact when fx = fy; for
    fx ≠ fy under rotation the small skew term is dropped.
    """
    scale, rot2, mirrored = similarity_parts(affine)
    if mirrored:
        raise ValueError("transform_intrinsics takes an unmirrored affine; mirror 3D separately")
    r3 = np.eye(3)
    r3[:2, :2] = rot2
    k_new = to3x3(affine) @ np.asarray(intrinsics, dtype=np.float64) @ r3.T  # (3, 3)
    k_new[0, 1] = 0.0
    k_new[1, 0] = 0.0
    k_new[2] = (0.0, 0.0, 1.0)
    return k_new, r3


def project(intrinsics: np.ndarray, points_m: np.ndarray) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-frame points to (..., 2) pixels."""
    p = np.asarray(points_m, dtype=np.float64) @ np.asarray(intrinsics, dtype=np.float64).T
    return p[..., :2] / p[..., 2:3]
