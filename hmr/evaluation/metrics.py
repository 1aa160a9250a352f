"""Per-sample 3D errors and the balanced (imbalanced-regression) summaries.

All functions are pure torch over batches and return **per-sample** errors ``(N,)`` in the
unit of their inputs (the protocols pass millimetres). Aggregation over a test set is done by
the caller, so per-sample errors can be saved, plotted and binned.

- ``mpjpe``: mean over valid joints of ‖pred − gt‖₂. Inputs are expected root-aligned by the
  protocol (see :mod:`hmr.evaluation.benchmarks`).
- ``pa_mpjpe``: the same after the per-sample similarity transform (scale, rotation without
  reflection, translation) that best maps the prediction onto the ground truth on the valid
  joints (HMR/SPIN's ``compute_similarity_transform``; see :func:`hmr.core.geometry.similarity_transform`).
- ``pve`` (MPVPE): mean over the 6890 vertices of ‖pred − gt‖₂, no alignment: both meshes
  come out of the body model without translation. *Which* body model makes the predicted
  mesh is the benchmark's PVE convention (:data:`hmr.evaluation.benchmarks.PVE_CONVENTIONS`):
  SPIN's ``eval.py`` uses the neutral model, MMHuman3D's ``human_image_dataset.py`` the
  ground-truth gender's model (3DPW: up to ~13 mm apart per sample).
- ``pck`` / ``auc`` (3DPCK, AUC; Mehta et al. 3DV 2017, the MPI-INF-3DHP metrics): percentage
  of valid joints whose error is **below** the threshold (150 mm), and the mean of that
  percentage over the 31 thresholds 0, 5, ..., 150 mm (the first always scores 0) — the rule
  of MMHuman3D's ``keypoint_3d_pck`` / ``keypoint_3d_auc`` (``core/evaluation/eval_utils.py``),
  which that file says follows the test set's ``mpii_compute_3d_pck.m``. Applied to
  root-aligned joints, or to Procrustes-aligned ones (``PA-3DPCK``, ``PA-AUC``).
- ``pck_2d``: the same count in the image, the threshold a fraction of a per-sample length
  (MMPose's ``keypoint_pck_accuracy`` normalises by the box; PCKh by the head size).

Dataset aggregates (:func:`pooled_mean`) pool over valid joints of all samples, as
MMHuman3D's ``keypoint_mpjpe`` does; with full masks (3DPW, H36M, EFT) this is the mean of
the per-sample errors.

Balanced metrics
----------------
Ren et al., "Balanced MSE for Imbalanced Visual Regression", CVPR 2022 (arXiv:2203.16427),
Sec. 4.2.2 (imbalanced human mesh recovery; the section MMHuman3D's
``configs/balanced_mse/README.md`` points to): a test sample's *rarity* is the mean
per-vertex distance between its ground-truth mesh and the mesh of the SMPL mean parameters
(``smpl_mean_params.npz``). ``All`` splits the rarity range [min, max] into 100 equal-width
bins and averages the per-bin mean errors over the non-empty bins (every region of pose
space counts the same, however many test samples it has); ``Tail 10%`` / ``Tail 5%`` are the
plain mean errors of the ``floor(N·p)`` rarest samples. Bin membership follows
``numpy.histogram`` (left-closed bins, the last one closed); MMHuman3D's reference code
subtracts 0.001 from the bin coordinate, which moves samples lying within 0.001 bin widths
above an inner edge into the lower bin — a negligible difference we do not copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmr.core.geometry import procrustes_align

BALANCED_BINS = 100
BALANCED_TAILS_PERCENT = (10, 5)
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in np.linspace(0.0, 150.0, 31))  # 0, 5, ..., 150


def joint_errors(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint: ``(N, J, 3)`` × 2 → ``(N, J)``."""
    return torch.linalg.vector_norm(pred - gt, dim=-1)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return err.mean(dim=-1)
    m = mask.to(err.dtype)
    return (err * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample MPJPE ``(N,)`` of ``pred``, ``gt`` ``(N, J, 3)``; ``mask (N, J)`` bool."""
    return _masked_mean(joint_errors(pred, gt), mask)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample Procrustes-aligned MPJPE ``(N,)`` (alignment fitted on valid joints only)."""
    dtype = pred.dtype
    aligned = procrustes_align(pred.double(), gt.double(), None if mask is None else mask.double())
    return _masked_mean(joint_errors(aligned, gt.double()), mask).to(dtype)


def pa_joint_errors(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-joint errors ``(N, J)`` after the per-sample Procrustes alignment (fitted on valid joints)."""
    aligned = procrustes_align(pred.double(), gt.double(), None if mask is None else mask.double())
    return joint_errors(aligned, gt.double()).to(pred.dtype)


def pck(errors: torch.Tensor, mask: torch.Tensor | None = None, threshold: float = PCK_THRESHOLD_MM) -> torch.Tensor:
    """Per-sample percentage ``(N,)`` of valid joints with error ``< threshold``, from per-joint
    errors ``(N, J)`` (3DPCK on millimetres; any unit works)."""
    return 100.0 * _masked_mean((errors < threshold).to(errors.dtype), mask)


def auc(errors: torch.Tensor, mask: torch.Tensor | None = None,
        thresholds: tuple[float, ...] = AUC_THRESHOLDS_MM) -> torch.Tensor:
    """Per-sample area under the PCK curve ``(N,)``: mean of :func:`pck` over ``thresholds``
    (sorted ascending). Counted per joint in one pass: a joint passes every threshold above
    its error, ``len(thresholds) - #(thresholds <= error)`` of them."""
    t = torch.as_tensor(thresholds, dtype=errors.dtype, device=errors.device)
    passed = len(thresholds) - torch.searchsorted(t, errors.contiguous(), right=True)  # (N, J)
    return 100.0 * _masked_mean(passed.to(errors.dtype) / len(thresholds), mask)


def pck_2d(pred_px: torch.Tensor, gt_px: torch.Tensor, mask: torch.Tensor, norm_px: torch.Tensor,
           alpha: float) -> torch.Tensor:
    """Per-sample 2D PCK ``(N,)`` in percent: share of valid joints ``mask (N, J)`` whose
    distance ``‖pred − gt‖`` ``(N, J, 2)`` px is below ``alpha × norm_px``; ``norm_px (N,)``
    a per-sample length, or ``(N, 2)`` per-axis lengths (MMPose: the box's width and height,
    distances taken on the normalised coordinates)."""
    norm = norm_px.to(pred_px.dtype)
    if norm.dim() == 1:
        dist = joint_errors(pred_px, gt_px) / norm[:, None]
    else:
        dist = joint_errors(pred_px / norm[:, None, :], gt_px / norm[:, None, :])
    return pck(dist, mask, alpha)


def pve(pred_vertices: torch.Tensor, gt_vertices: torch.Tensor) -> torch.Tensor:
    """Per-sample mean vertex error ``(N,)`` of ``(N, V, 3)`` meshes, no alignment."""
    return joint_errors(pred_vertices, gt_vertices).mean(dim=-1)


def mesh_rarity(gt_vertices: torch.Tensor, mean_vertices: torch.Tensor) -> torch.Tensor:
    """Balanced-MSE rarity: mean vertex distance of each GT mesh ``(N, V, 3)`` to the mean
    mesh ``(V, 3)`` → ``(N,)``."""
    return joint_errors(gt_vertices, mean_vertices[None]).mean(dim=-1)


def pooled_mean(per_sample: np.ndarray, valid_counts: np.ndarray | None = None) -> float:
    """Dataset aggregate: mean over valid joints of all samples (= mean of per-sample errors
    when every sample has the same number of valid joints)."""
    per_sample = np.asarray(per_sample, dtype=np.float64)
    if valid_counts is None:
        return float(per_sample.mean()) if per_sample.size else float("nan")
    counts = np.asarray(valid_counts, dtype=np.float64)
    return float((per_sample * counts).sum() / counts.sum()) if counts.sum() else float("nan")


@dataclass
class BalancedSummary:
    """Balanced summary of one per-sample error array."""

    all: float
    tails: dict[int, float]
    bin_edges: np.ndarray  # (num_bins + 1,)
    bin_counts: np.ndarray  # (num_bins,)
    bin_means: np.ndarray  # (num_bins,), NaN for empty bins
    tail_sizes: dict[int, int] = field(default_factory=dict)


def rarity_bins(rarity: np.ndarray, num_bins: int = BALANCED_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width bins over [min, max] of ``rarity (N,)`` → ``(bin index (N,), edges)``."""
    rarity = np.asarray(rarity, dtype=np.float64)
    lo, hi = float(rarity.min()), float(rarity.max())
    if hi <= lo:
        hi = lo + 1.0  # all samples equally rare: one non-empty bin
    edges = np.linspace(lo, hi, num_bins + 1)
    index = np.clip(np.searchsorted(edges, rarity, side="right") - 1, 0, num_bins - 1)
    return index, edges


def balanced_summary(errors: np.ndarray, rarity: np.ndarray, *, num_bins: int = BALANCED_BINS,
                     tails_percent: tuple[int, ...] = BALANCED_TAILS_PERCENT) -> BalancedSummary:
    """``All`` / ``Tail p%`` of per-sample ``errors (N,)`` given each sample's ``rarity (N,)``."""
    errors = np.asarray(errors, dtype=np.float64)
    rarity = np.asarray(rarity, dtype=np.float64)
    if errors.shape != rarity.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError(f"errors {errors.shape} and rarity {rarity.shape} must be equal, non-empty (N,)")
    index, edges = rarity_bins(rarity, num_bins)
    counts = np.bincount(index, minlength=num_bins)
    sums = np.bincount(index, weights=errors, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    order = np.argsort(-rarity, kind="stable")  # rarest first
    tails, sizes = {}, {}
    for p in tails_percent:
        k = int(len(errors) * p / 100.0)
        sizes[p] = k
        tails[p] = float(errors[order[:k]].mean()) if k else float("nan")
    return BalancedSummary(all=float(np.nanmean(means)), tails=tails, bin_edges=edges,
                           bin_counts=counts, bin_means=means, tail_sizes=sizes)
