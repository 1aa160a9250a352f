"""SPIN's in-the-loop step, short of the loop: refine a batch's predictions with SMPLify, update
the fits table with SPIN's rule, and return the fits that supervise the regressor.

The table stores fits in each sample's *canonical* frame (the stored crop, no augmentation).
A training batch is augmented: the camera frame is rotated about the optical axis by ``Rz``
and possibly mirrored, exactly as :mod:`loaders.augment` moves SMPL labels (global orient
``R' = Rz R``, then the mirror: left/right joints swapped, axis-angle y and z negated). So:

- stored fit → batch frame: :func:`to_batch_frame` (rotate, then flip);
- new fit → table: :func:`to_canonical_frame` (un-flip, then rotate back).

Per batch (:func:`spin_fit_step`), as SPIN does: place the stored fit with the least-squares
translation (:func:`~hmr.fitting.camera.solve_translation`), measure its reprojection loss on
this batch's keypoints, run SMPLify from the network's prediction, keep the new fit where its
loss is lower (:meth:`FitsTable.update` with the re-measured old loss), and supervise with the
better of the two where its loss is below ``threshold`` (SPIN: 100; samples with ground-truth
SMPL are supervised by it regardless — the trainer ORs ``has_smpl`` in). The loss sums over
the confident fit joints: SPIN's threshold assumes its 49; a store that also annotates the 24
SMPL joints (e.g. synthetic data) has ~1.5× larger losses for the same fit quality.

Keypoints and ``K`` are in output-crop pixels (batch keypoints in [-1, 1] map to
``(x + 1) · S / 2``; ``K`` is the batch's ``cam_intrinsics`` where ``has_intrinsics``, else
SPIN's focal 5000 px at S = 224: :func:`~hmr.fitting.camera.spin_crop_intrinsics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from hmr.core.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from hmr.fitting.camera import solve_translation
from hmr.fitting.fits_table import FitsTable
from hmr.fitting.smplify import SMPLify, SMPLParams

__all__ = ["SpinFitTargets", "flip_pose", "rotation_about_optical_axis", "spin_fit_step", "to_batch_frame",
           "to_canonical_frame"]

SMPL_FLIP_PAIRS = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))


def _flip_perm() -> list[int]:
    perm = list(range(24))
    for a, b in SMPL_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


_PERM = _flip_perm()


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror SMPL poses ``(B, 72)`` in the camera x axis (an involution)."""
    out = pose.reshape(-1, 24, 3)[:, _PERM].clone()  # (B, 24, 3)
    out[..., 1:] *= -1.0
    return out.reshape(-1, 72)


def _rotate_orient(pose: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    orient = matrix_to_axis_angle(rotation @ axis_angle_to_matrix(pose[:, :3]))  # (B, 3)
    return torch.cat([orient, pose[:, 3:]], dim=1)


def to_batch_frame(pose: torch.Tensor, rotation: torch.Tensor | None = None,
                   flip: torch.Tensor | None = None) -> torch.Tensor:
    """Canonical poses ``(B, 72)`` → the augmented batch frame (``rotation`` (B, 3, 3) = Rz,
    ``flip`` (B,) bool)."""
    if rotation is not None:
        pose = _rotate_orient(pose, rotation.to(pose))
    if flip is not None and bool(flip.any()):
        pose = torch.where(flip.to(pose.device)[:, None], flip_pose(pose), pose)
    return pose


def to_canonical_frame(pose: torch.Tensor, rotation: torch.Tensor | None = None,
                       flip: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of :func:`to_batch_frame`."""
    if flip is not None and bool(flip.any()):
        pose = torch.where(flip.to(pose.device)[:, None], flip_pose(pose), pose)
    if rotation is not None:
        pose = _rotate_orient(pose, rotation.to(pose).transpose(1, 2))
    return pose


@dataclass
class SpinFitTargets:
    """Supervision from the fits, in the batch frame."""

    global_orient: torch.Tensor  # (B, 3)
    body_pose: torch.Tensor  # (B, 69)
    betas: torch.Tensor  # (B, 10)
    loss: torch.Tensor  # (B,) reprojection loss of the fit used
    valid: torch.Tensor  # (B,) bool: loss < threshold
    improved: torch.Tensor  # (B,) bool: the new fit replaced the stored one


def spin_fit_step(fitter: SMPLify, table: FitsTable, keys: Sequence[str], prediction: SMPLParams,
                  keypoints2d: torch.Tensor, intrinsics: torch.Tensor, rotation: torch.Tensor | None = None,
                  flip: torch.Tensor | None = None, threshold: float = 100.0) -> SpinFitTargets:
    """One SPIN fitting step for a batch (see the module docstring); updates ``table`` in memory
    (the trainer flushes it; rank 0 merges at the end of the epoch)."""
    ref = fitter.body_model.v_template
    kp, k = keypoints2d.to(ref), intrinsics.to(ref)
    pose, betas, _ = table.lookup(keys)
    stored_pose = to_batch_frame(torch.from_numpy(pose).to(ref), rotation, flip)  # (B, 72)
    stored_betas = torch.from_numpy(betas).to(ref)
    with torch.no_grad():
        stored = SMPLParams(stored_pose[:, :3], stored_pose[:, 3:], stored_betas)
        joints, _ = fitter.joints(stored)  # (B, 73, 3) at zero translation
        stored.transl = solve_translation(joints, kp, k)
        old_loss, _ = fitter.evaluate(stored, kp, k)
    new = fitter(kp, k, init=prediction.detach().to(ref.device, ref.dtype))
    new_pose = torch.cat([new.params.global_orient, new.params.body_pose], dim=1)
    canonical = to_canonical_frame(new_pose, rotation, flip)
    improved = table.update(keys, canonical.cpu().numpy(), new.params.betas.cpu().numpy(),
                            new.reprojection_loss.cpu().numpy(), old_error=old_loss.cpu().numpy())
    use_new = torch.from_numpy(improved).to(ref.device)
    pose_t = torch.where(use_new[:, None], new_pose, stored_pose)
    betas_t = torch.where(use_new[:, None], new.params.betas, stored_betas)
    loss = torch.where(use_new, new.reprojection_loss, old_loss)
    return SpinFitTargets(pose_t[:, :3], pose_t[:, 3:], betas_t, loss, loss < threshold, use_new)


def rotation_about_optical_axis(degrees: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``Rz`` ``(B, 3, 3)`` for in-plane rotations of ``degrees`` (B,), for callers that know
    the augmentation's angle rather than its matrix (sign: as the caller's affine defines it)."""
    rad = torch.as_tensor(degrees, dtype=torch.float64) * (np.pi / 180.0)
    c, s = torch.cos(rad), torch.sin(rad)
    rz = torch.zeros(len(rad), 3, 3, dtype=torch.float64)
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
    return rz.float()
