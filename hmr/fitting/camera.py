"""Joints SMPLify fits, the pinhole camera, crop normalisation and the translation start.

Fitted joints (``FIT_JOINT_NAMES``, 73): SPIN's 49 (``spin_49``: 25 OpenPose-style joints then
the 24 "ground-truth" joints of LSP/MPII/H36M/COCO) followed by SMPL's 24 kinematic joints
(``smpl``: superset names ``smpl_*``), i.e. every joint of the superset the body model itself
provides. Keypoints come from any store convention by joint name; a joint the data lacks has
confidence 0 and costs nothing. SPIN's own SMPLify fits the 49; the 24 SMPL joints let stores
that annotate SMPL joints (our synthetic data, SMPL-fit datasets) be fitted too. As in SPIN,
``neck_openpose``, ``right_hip_openpose`` and ``left_hip_openpose`` are ignored by default
(detectors place them differently from SMPL's joints).

Camera: pinhole ``K`` (B, 3, 3) in the pixel frame of the keypoints (OpenCV axes: x right,
y down, z forward); no rotation (the body's ``global_orient`` is its rotation in the camera
frame) and translation ``transl`` (m, camera frame).

Crop normalisation (:func:`to_crop_frame`): SPIN fits in a 224-px crop of the person box
(side = 1.2 × the box's longer side) with focal 5000 px; its prior weights and the robust
scale (σ = 100 px) are tuned to that frame. We fit in the same frame: keypoints and ``K`` are
mapped by the same similarity (``K_crop = A K``), which leaves the 3D solution, translation
included, in the original camera frame. Without intrinsics we use SPIN's camera: focal 5000 px
at 224 px, principal point at the crop centre; the translation is then relative to that assumed
camera (callers flag it as unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmr.core.body.joint_names import SPIN49_FROM_SMPL54
from hmr.core.keypoints import convert_keypoints, get_convention

#: fitting projects with depths clamped to at least this (m): finite gradients at the camera
MIN_DEPTH_M = 1e-6

__all__ = ["MIN_DEPTH_M", "FIT_JOINT_NAMES", "DEFAULT_IGNORED_JOINTS", "CropFrame", "fit_keypoints", "init_translation",
           "model_fit_joints", "solve_translation", "spin_crop_intrinsics", "to_crop_frame"]


def _names(convention: str) -> tuple[str, ...]:
    return tuple(get_convention(convention).joint_names)


FIT_JOINT_NAMES: tuple[str, ...] = _names("spin_49") + _names("smpl")
NUM_SPIN = 49
DEFAULT_IGNORED_JOINTS = ("neck_openpose", "right_hip_openpose", "left_hip_openpose")
# Shoulder-hip pairs (same side) in each naming family: the torso whose 2D height fixes depth.
TORSO_PAIRS = tuple((f"{side}_shoulder{suffix}", f"{side}_hip{suffix}")
                    for suffix in ("", "_openpose") for side in ("left", "right")) + \
    (("smpl_left_shoulder", "smpl_left_hip"), ("smpl_right_shoulder", "smpl_right_hip"))
TORSO_JOINTS = tuple(sorted({n for pair in TORSO_PAIRS for n in pair}))


def joint_index(names: tuple[str, ...] | list[str]) -> list[int]:
    """Rows of ``FIT_JOINT_NAMES`` for ``names``."""
    pos = {n: i for i, n in enumerate(FIT_JOINT_NAMES)}
    return [pos[n] for n in names]


def fit_keypoints(keypoints: np.ndarray | torch.Tensor, convention: str = "superset"):
    """Keypoints ``(..., K, C)`` of ``convention`` → ``(..., 73, C)`` in ``FIT_JOINT_NAMES``
    order (joints the convention lacks are zero, i.e. confidence 0)."""
    spin, _ = convert_keypoints(keypoints, convention, "spin_49")
    smpl, _ = convert_keypoints(keypoints, convention, "smpl")
    if isinstance(spin, torch.Tensor):
        return torch.cat([spin, smpl], dim=-2)
    return np.concatenate([spin, smpl], axis=-2)


def model_fit_joints(out) -> tuple[torch.Tensor, torch.Tensor]:
    """Model joints in ``FIT_JOINT_NAMES`` order ``(B, 73, 3)`` and which exist ``(73,)`` bool.

    Without SPIN's ``J_regressor_extra.npy`` the 9 SPIN joints built from it are missing
    (zeros, ``available`` False): fit with the rest.
    """
    j24 = out.joints_smpl24  # (B, 24, 3)
    if out.joints_spin49 is not None:
        return torch.cat([out.joints_spin49, j24], dim=1), torch.ones(73, dtype=torch.bool, device=j24.device)
    index = torch.tensor(SPIN49_FROM_SMPL54, device=j24.device)
    available = torch.cat([index < 45, torch.ones(24, dtype=torch.bool, device=j24.device)])
    spin = out.joints_smpl45[:, index.clamp(max=44)] * available[:NUM_SPIN, None]  # (B, 49, 3)
    return torch.cat([spin, j24], dim=1), available


def spin_crop_intrinsics(batch: int, focal_length_px: float = 5000.0, crop_size_px: float = 224.0,
                         dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """SPIN's crop camera ``(B, 3, 3)``: focal 5000 px, principal point at the crop centre."""
    k = torch.zeros(batch, 3, 3, dtype=dtype, device=device)
    k[:, 0, 0] = k[:, 1, 1] = focal_length_px
    k[:, :2, 2] = crop_size_px / 2.0
    k[:, 2, 2] = 1.0
    return k


@dataclass
class CropFrame:
    """Similarity image → crop, per sample: ``crop = scale · (image − center) + crop_size / 2``."""

    center_px: np.ndarray  # (B, 2)
    scale: np.ndarray  # (B,) crop px per image px
    crop_size_px: float

    def affine(self) -> np.ndarray:
        """(B, 3, 3) homogeneous image → crop transform."""
        a = np.zeros((len(self.scale), 3, 3))
        a[:, 0, 0] = a[:, 1, 1] = self.scale
        a[:, :2, 2] = self.crop_size_px / 2.0 - self.scale[:, None] * self.center_px
        a[:, 2, 2] = 1.0
        return a


def to_crop_frame(keypoints2d_px: np.ndarray, bbox_xywh: np.ndarray, intrinsics: np.ndarray | None,
                  has_intrinsics: np.ndarray | None = None, *, crop_size_px: float = 224.0,
                  bbox_scale: float = 1.2, default_focal_px: float = 5000.0
                  ) -> tuple[np.ndarray, np.ndarray, CropFrame]:
    """Keypoints ``(B, J, 3)`` and ``K`` ``(B, 3, 3)`` of the original image → SPIN's crop frame.

    The box is ``bbox_xywh`` (B, 4); where it is empty, the extent of the confident keypoints.
    Samples without intrinsics get SPIN's crop camera. Returns crop keypoints (confidence
    unchanged), crop intrinsics and the :class:`CropFrame`.
    """
    kp = np.asarray(keypoints2d_px, dtype=np.float64)
    box = np.asarray(bbox_xywh, dtype=np.float64).copy()
    n = len(kp)
    for i in np.flatnonzero((box[:, 2] <= 0) | (box[:, 3] <= 0)):
        seen = kp[i, kp[i, :, 2] > 0, :2]
        lo, hi = (seen.min(0), seen.max(0)) if len(seen) else (np.zeros(2), np.ones(2))
        box[i] = [lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)]
    center = box[:, :2] + box[:, 2:] / 2.0  # (B, 2)
    side = np.maximum(box[:, 2], box[:, 3]) * bbox_scale  # (B,)
    frame = CropFrame(center, crop_size_px / side, crop_size_px)
    a = frame.affine()  # (B, 3, 3)
    out = kp.copy()
    out[..., :2] = kp[..., :2] * frame.scale[:, None, None] + a[:, None, :2, 2]
    k_crop = spin_crop_intrinsics(n, default_focal_px, crop_size_px, torch.float64).numpy()
    if intrinsics is not None:
        use = np.ones(n, bool) if has_intrinsics is None else np.asarray(has_intrinsics, bool)
        k_crop[use] = a[use] @ np.asarray(intrinsics, dtype=np.float64)[use]
    return out.astype(np.float32), k_crop.astype(np.float32), frame


def init_translation(joints3d: torch.Tensor, keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                     min_depth_m: float = 0.3) -> torch.Tensor:
    """Camera translation ``(B, 3)`` that places ``joints3d`` (B, 73, 3; the body at zero
    translation) under ``keypoints2d`` (B, 73, 3 with confidence): depth from similar triangles
    on the torso (mean 3D shoulder-hip length vs its mean 2D length, SMPLify's start), x/y so
    the centroids of the confident joints line up. Samples without a visible torso pair use the
    RMS spread of all confident joints instead."""
    focal = 0.5 * (intrinsics[:, 0, 0] + intrinsics[:, 1, 1])  # (B,)
    conf = keypoints2d[..., 2] > 0  # (B, J)
    a_idx, b_idx = (torch.tensor(joint_index([p[k] for p in TORSO_PAIRS]), device=joints3d.device)
                    for k in (0, 1))
    pair_ok = (conf[:, a_idx] & conf[:, b_idx]).to(joints3d.dtype)  # (B, P)
    len3 = (joints3d[:, a_idx] - joints3d[:, b_idx]).norm(dim=-1)  # (B, P)
    len2 = (keypoints2d[:, a_idx, :2] - keypoints2d[:, b_idx, :2]).norm(dim=-1)
    n_pairs = pair_ok.sum(1)
    depth_torso = focal * (pair_ok * len3).sum(1) / (pair_ok * len2).sum(1).clamp_min(1e-6)
    w = conf.to(joints3d.dtype)[..., None]  # (B, J, 1)
    count = w.sum(1).clamp_min(1.0)  # (B, 1)
    mean3 = (w * joints3d).sum(1) / count  # (B, 3)
    mean2 = (w * keypoints2d[..., :2]).sum(1) / count  # (B, 2)
    spread3 = ((w * (joints3d[..., :2] - mean3[:, None, :2]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
    spread2 = ((w * (keypoints2d[..., :2] - mean2[:, None]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
    depth_all = focal * spread3 / spread2.clamp_min(1e-6)
    depth = torch.where(n_pairs > 0, depth_torso, depth_all).clamp_min(min_depth_m)  # (B,)
    # ``depth`` is the depth of the joints' centroid; back-project the 2D centroid there
    # (x = (u - cx) z / fx, no skew) and move the body's centroid onto that point.
    fxy = torch.stack([intrinsics[:, 0, 0], intrinsics[:, 1, 1]], -1)  # (B, 2)
    xy = (mean2 - intrinsics[:, :2, 2]) * depth[:, None] / fxy  # (B, 2)
    return torch.cat([xy, depth[:, None]], dim=-1) - mean3


def solve_translation(joints3d: torch.Tensor, keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                      min_depth_m: float = 0.1) -> torch.Tensor:
    """Least-squares camera translation ``(B, 3)`` for a fixed body (``joints3d`` (B, J, 3) at
    zero translation) given ``keypoints2d`` (B, J, 3) with confidences: the linear
    (DLT-style) solution of ``K (X + t) ∝ (u, v, 1)`` weighted by confidence, as SPIN uses to
    place a stored fit before comparing it with a new one. Depth is clamped to
    ``min_depth_m``; samples with fewer than 2 confident joints fall back to
    :func:`init_translation`."""
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]  # (B, 1)
    cx, cy = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None]
    w = keypoints2d[..., 2].clamp_min(0).sqrt()  # (B, J): squared residuals weighted by conf
    du, dv = keypoints2d[..., 0] - cx, keypoints2d[..., 1] - cy  # (B, J)
    x, y, z = joints3d.unbind(-1)
    zero = torch.zeros_like(du)
    # fx tx - du tz = du Z - fx X   and   fy ty - dv tz = dv Z - fy Y
    rows = torch.cat([torch.stack([fx.expand_as(du), zero, -du], -1),
                      torch.stack([zero, fy.expand_as(dv), -dv], -1)], dim=1)  # (B, 2J, 3)
    rhs = torch.cat([du * z - fx * x, dv * z - fy * y], dim=1)  # (B, 2J)
    ww = torch.cat([w, w], dim=1)  # (B, 2J)
    a = rows * ww[..., None]
    b = rhs * ww
    ata = a.transpose(1, 2) @ a + 1e-9 * torch.eye(3, dtype=a.dtype, device=a.device)  # (B, 3, 3)
    t = torch.linalg.solve(ata, (a.transpose(1, 2) @ b[..., None]))[..., 0]  # (B, 3)
    enough = (keypoints2d[..., 2] > 0).sum(1) >= 2
    t = torch.where(enough[:, None], t, init_translation(joints3d, keypoints2d, intrinsics))
    return torch.cat([t[:, :2], t[:, 2:].clamp_min(min_depth_m)], dim=-1)
