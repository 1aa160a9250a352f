"""Person boxes, numpy: ``bbox_xywh`` (x, y of the top-left corner, width, height; px) from
labelled keypoints, from SPIN/HMR's centre and scale, or from a mask. Shared by the
converters and the interop importers (no torch here, so converters stay light to import).
"""

from __future__ import annotations

import numpy as np

PIXEL_STD = 200.0  # SPIN/HMR: scale = box side / 200 px


def bbox_from_keypoints(keypoints2d: np.ndarray, *, scale: float = 1.2, min_conf: float = 0.0
                        ) -> np.ndarray | None:
    """Box around the labelled keypoints, enlarged ``scale`` times about its centre.

    keypoints2d: (K, 3) px with confidence. Returns (4,) xywh float32, or None if fewer than
    two keypoints are labelled (no box can be made). A side under 1 px is taken as 1 px.
    """
    valid = keypoints2d[:, 2] > min_conf
    if valid.sum() < 2:
        return None
    xy = keypoints2d[valid, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, size = (lo + hi) / 2, np.maximum(hi - lo, 1.0) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)


def bbox_from_xyxy(corners: object) -> np.ndarray | str:
    """``bbox_xywh`` (4,) float32 from (x1, y1, x2, y2) corners, or a sentence saying why
    they cannot be one (the converter puts it in its BadRecord)."""
    try:
        box = np.asarray(corners, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return f"box {corners!r} is not four numbers"
    if box.size != 4 or not np.isfinite(box).all():
        return f"box {corners!r} is not four finite numbers (x1, y1, x2, y2)"
    if box[2] <= box[0] or box[3] <= box[1]:
        return f"box {corners!r} has x2 <= x1 or y2 <= y1 (expected corners x1, y1, x2, y2)"
    return np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]], dtype=np.float32)


def bbox_from_center_scale(center: np.ndarray, scale: np.ndarray | float, *,
                           pixel_std: float = PIXEL_STD) -> np.ndarray:
    """SPIN/HMR boxes: squares of side ``scale * 200`` px centred at ``center``.

    center (..., 2) px, scale (...) -> (..., 4) xywh float32.
    """
    side = np.asarray(scale, dtype=np.float64)[..., None] * pixel_std  # (..., 1)
    corner = np.asarray(center, dtype=np.float64) - side / 2  # (..., 2)
    return np.concatenate([corner, side, side], axis=-1).astype(np.float32)


def bbox_from_mask(mask: np.ndarray, *, scale: float = 1.0) -> np.ndarray | None:
    """Box around the non-zero pixels of ``mask`` (H, W), scaled about its centre; None if
    the mask is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    lo = np.array([xs.min(), ys.min()], dtype=np.float64)
    hi = np.array([xs.max() + 1, ys.max() + 1], dtype=np.float64)
    centre, size = (lo + hi) / 2, (hi - lo) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)
