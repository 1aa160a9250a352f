"""Mesh Graphormer's training loss (``microsoft/MeshGraphormer``, ``src/tools/run_gphmer_bodymesh.py``,
``run``), on the shared batches::

    total = scale × ( w3d · (L3d(joint tokens) + L3d(joints of the mesh))
                    + wv  · Σ_levels 0.33 · L1(mesh at that level, GT mesh there)
                    + w2d · (L2d(joint tokens) + L2d(joints of the mesh)) )

- Public weights: ``joints_loss_weight`` 1000 (w3d), ``vertices_loss_weight`` 100 for the
  vertices *and* the 2D term (wv, w2d), ``vloss_w_full = vloss_w_sub = vloss_w_sub2 = 0.33``;
  ``loss.weight_keypoints3d``, ``loss.weight_vertices``, ``loss.weight_keypoints2d`` hold them.
- Joints: the 14 of :data:`hmr.models.graphormer.JOINTS14`; the mesh's by the body model's H36M
  regressor. Ground truth: the batch's keypoints converted to those 14 by name.
- 3D: pelvis (mid-hips) aligned in prediction and ground truth, ``L`` = ``loss.keypoints3d``
  (public: MSE) weighted by the confidence; samples without both hips get none.
- 2D: orthographic projection ``s · (X_xy + t)`` with the predicted camera [s, tx, ty], in
  [-1, 1] crop coordinates, ``L`` = ``loss.keypoints2d`` (public: MSE) times the confidence.
- Vertices: L1 (:func:`hmr.losses.mesh.vertex_l1`) at every resolution (the full mesh and each
  coarse level, the ground truth subsampled at the same vertices), both centred on the GT
  mesh's H36M pelvis, for the samples with SMPL ground truth.

Reductions follow :mod:`hmr.losses.regression` (``mean`` over all entries, masked ones
included), where the public code averages the 3D term over the samples that have 3D joints.
"""

from __future__ import annotations

import torch

from hmr.core.errors import ConfigError
from hmr.core.keypoints import convert_keypoints, get_convention
from hmr.losses import build_loss
from hmr.losses.mesh import vertex_l1, weak_perspective_project
from hmr.models.graphormer import JOINTS14, mesh_joints14, mesh_pelvis
from hmr.training.config import LossConfig

#: ``vloss_w_full``, ``vloss_w_sub``, ``vloss_w_sub2``: each resolution's vertex-loss weight
VERTEX_LEVEL_WEIGHT = 0.33


class GraphormerObjective:
    """``objective(out, batch) -> (total, {term: value})`` for a
    :class:`hmr.models.graphormer.GraphormerOutput`; ``model`` gives the coarse levels' vertex
    indices, ``body_model`` the ground-truth meshes and the joint regressors."""

    #: the terms every call returns
    TERMS = ("loss", "loss_keypoints2d", "loss_keypoints3d", "loss_vertices")

    def __init__(self, config: LossConfig, convention: str, body_model, model):
        for term in ("keypoints2d", "keypoints3d"):
            if getattr(config, term) not in ("mse", "l1"):
                raise ConfigError(f"loss.{term} = {getattr(config, term)!r}: Graphormer's keypoint terms take "
                                  "'mse' or 'l1'")
        self.config, self.convention, self.body_model = config, get_convention(convention).name, body_model
        self.loss2d = build_loss(config.keypoints2d)
        self.loss3d = build_loss(config.keypoints3d)
        self.level_ids = [model.vertex_ids(lv) for lv in range(model.config.mesh_level, 0, -1)]
        hips = get_convention(JOINTS14)
        self.hips = [hips.index("right_hip"), hips.index("left_hip")]

    def _keypoints3d(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """``pred (B, 14, 3)``, ``gt (B, 14, 4)`` (x, y, z, confidence), metres."""
        hips_ok = (gt[:, self.hips, 3] > 0).all(dim=1).float()[:, None, None]  # (B, 1, 1)
        gt_rel = gt[..., :3] - gt[:, self.hips, :3].mean(dim=1, keepdim=True)
        pred_rel = pred - pred[:, self.hips].mean(dim=1, keepdim=True)
        return self.loss3d(pred_rel, gt_rel, gt[..., 3:4] * hips_ok)

    def __call__(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        kp2d = convert_keypoints(batch["keypoints2d"].float(), self.convention, JOINTS14)[0]  # (B, 14, 3)
        kp3d = convert_keypoints(batch["keypoints3d"].float(), self.convention, JOINTS14)[0]  # (B, 14, 4)
        has_smpl = batch["has_smpl"].float()
        with torch.no_grad():
            gt = self.body_model(global_orient=batch["smpl_global_orient"].float(),
                                 body_pose=batch["smpl_body_pose"].float(), betas=batch["smpl_betas"].float(),
                                 pose2rot=True).vertices
            gt = gt - mesh_pelvis(self.body_model, gt)[:, None]  # (B, V, 3)
        vertices = out.vertices.float()
        loss_vertices = VERTEX_LEVEL_WEIGHT * vertex_l1(vertices, gt, has_smpl)
        for pred, ids in zip(out.vertex_levels, self.level_ids):
            loss_vertices = loss_vertices + VERTEX_LEVEL_WEIGHT * vertex_l1(pred.float(), gt[:, ids], has_smpl)
        joints_tokens, joints_mesh = out.joints3d.float(), mesh_joints14(self.body_model, vertices)
        loss_3d = self._keypoints3d(joints_tokens, kp3d) + self._keypoints3d(joints_mesh, kp3d)
        cam = out.cam.float()
        conf2d = kp2d[..., 2:3]
        loss_2d = (self.loss2d(weak_perspective_project(joints_tokens, cam), kp2d[..., :2], conf2d)
                   + self.loss2d(weak_perspective_project(joints_mesh, cam), kp2d[..., :2], conf2d))
        total = c.scale * (c.weight_keypoints3d * loss_3d + c.weight_vertices * loss_vertices
                           + c.weight_keypoints2d * loss_2d)
        return total, {"loss": total, "loss_keypoints2d": loss_2d, "loss_keypoints3d": loss_3d,
                       "loss_vertices": loss_vertices}
