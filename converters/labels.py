"""Schema fields from raw annotations, in numpy: boxes (from keypoints, SPIN's centre/scale,
a mask), pinhole intrinsics, rotation matrices to axis-angle, keypoints into the superset.

The pinhole projection itself is :func:`hmr.core.geometry.project_points` (one for the
whole project); H36M's distortion model stays in :mod:`converters.h36m`.
"""

from __future__ import annotations

import numpy as np

from hmr.core.keypoints import convert_keypoints


def bbox_from_keypoints(keypoints2d: np.ndarray, *, scale: float = 1.2, min_conf: float = 0.0
                        ) -> np.ndarray | None:
    """Box around the labelled keypoints, enlarged ``scale`` times about its centre.

    keypoints2d: (K, 3) px with confidence. Returns (4,) xywh, or None if fewer than two
    keypoints are labelled (no box can be made).
    """
    valid = keypoints2d[:, 2] > min_conf
    if valid.sum() < 2:
        return None
    xy = keypoints2d[valid, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, size = (lo + hi) / 2, np.maximum(hi - lo, 1.0) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)


def bbox_from_center_scale(center: np.ndarray, scale: float, *, pixel_std: float = 200.0) -> np.ndarray:
    """SPIN/HMR boxes: a square of side ``scale * 200`` px centred at ``center``."""
    side = float(scale) * pixel_std
    return np.array([center[0] - side / 2, center[1] - side / 2, side, side], dtype=np.float32)


def bbox_from_mask(mask: np.ndarray, *, scale: float = 1.0) -> np.ndarray | None:
    """Box around the non-zero pixels of ``mask`` (H, W), scaled about its centre."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    lo = np.array([xs.min(), ys.min()], dtype=np.float64)
    hi = np.array([xs.max() + 1, ys.max() + 1], dtype=np.float64)
    centre, size = (lo + hi) / 2, (hi - lo) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole K (3, 3) float32 from focal lengths and principal point, px."""
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)


def rotmat_to_axis_angle(rotmats: np.ndarray, *, atol: float = 1e-3) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) radians.

    Matrices must be rotations within ``atol`` (orthonormal, det +1): a fit file with a
    reflection or a scaled matrix is an error, not something to silently project.
    Angles near pi are handled (scipy's quaternion path, not the trace formula).
    """
    from scipy.spatial.transform import Rotation

    mats = np.asarray(rotmats, dtype=np.float64)
    if mats.shape[-2:] != (3, 3):
        raise ValueError(f"expected (..., 3, 3) rotation matrices, got {mats.shape}")
    flat = mats.reshape(-1, 3, 3)
    if not np.isfinite(flat).all():
        raise ValueError("rotation matrices contain NaN or inf")
    gram = np.einsum("nji,njk->nik", flat, flat) - np.eye(3)
    if np.abs(gram).max(initial=0.0) > atol or (np.linalg.det(flat) <= 0).any():
        raise ValueError("matrices are not rotations (not orthonormal or det <= 0)")
    return Rotation.from_matrix(flat).as_rotvec().reshape(*mats.shape[:-2], 3)


def to_superset(keypoints: np.ndarray, convention: str) -> np.ndarray:
    """Native keypoints (..., K_src, C) -> superset (..., K, C); missing joints get zeros."""
    out, _ = convert_keypoints(np.asarray(keypoints, dtype=np.float32), convention, "superset")
    return out


def merge_keypoints(*arrays: np.ndarray) -> np.ndarray:
    """Merge superset keypoint arrays (K, C): each slot takes the first array's value whose
    confidence (last column) is > 0; slots no array labels stay zero."""
    out = np.zeros_like(np.asarray(arrays[0], dtype=np.float32))
    for arr in arrays:
        free = (out[..., -1] <= 0) & (np.asarray(arr)[..., -1] > 0)
        out[free] = np.asarray(arr, dtype=np.float32)[free]
    return out
