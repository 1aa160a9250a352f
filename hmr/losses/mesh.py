"""Per-vertex loss of mesh-regressing models (GraphCMR's "shape loss"), and the orthographic
projection their keypoint terms use (Graphormer).

GraphCMR (``nkolot/GraphCMR``, ``train/trainer.py``, ``shape_loss``) compares the predicted
mesh with the ground-truth SMPL mesh vertex by vertex with an L1 loss (``nn.L1Loss``: the
mean over vertices, coordinates and the samples that have SMPL ground truth), for both its
non-parametric mesh and the mesh of the SMPL parameters regressed from it; a batch without
SMPL ground truth gives 0.
"""

from __future__ import annotations

import torch


def vertex_l1(pred_vertices: torch.Tensor, gt_vertices: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """``pred_vertices``, ``gt_vertices (B, V, 3)`` metres, ``has_smpl (B,)`` → scalar: mean
    absolute error over the samples with ``has_smpl`` (0 when there are none)."""
    keep = has_smpl.to(pred_vertices.device) > 0
    if not bool(keep.any()):
        return pred_vertices.sum() * 0.0  # keeps the graph (and DDP's gradient buckets) intact
    return (pred_vertices[keep] - gt_vertices[keep].to(pred_vertices.dtype)).abs().mean()


def weak_perspective_project(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Orthographic projection with a weak-perspective camera: ``points (B, K, 3)`` metres,
    ``cam (B, 3)`` = [s, tx, ty] → ``s · (X_xy + t)`` ``(B, K, 2)`` in [-1, 1] crop coordinates
    (MeshGraphormer's and GraphCMR's ``orthographic_projection``)."""
    return cam[:, None, :1] * (points[..., :2] + cam[:, None, 1:])
