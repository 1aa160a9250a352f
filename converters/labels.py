"""Schema fields from raw annotations, in numpy: pinhole intrinsics, rotation matrices to
axis-angle, keypoints into the superset.

Boxes are :mod:`hmr.core.boxes` and the pinhole projection
:func:`hmr.core.geometry.project_points` (one of each for the whole project, shared with
interop and the loaders); H36M's distortion model stays in :mod:`converters.h36m`.
"""

from __future__ import annotations

import numpy as np

from hmr.core.keypoints import convert_keypoints


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
