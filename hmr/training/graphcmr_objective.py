"""GraphCMR's training loss (``nkolot/GraphCMR`` ``train/trainer.py``, ``train_step``): the SMPL
branch's terms (:class:`hmr.training.smpl_objective.SmplObjective`, on the SMPL parameters
regressed from the mesh) plus the mesh terms of :meth:`GraphCMRObjective.mesh_terms`.
docs/models.md, GraphCMR, "Losses", lists each term beside GraphCMR's name for it.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from hmr.core.geometry import weak_perspective_to_translation
from hmr.losses.mesh import vertex_l1
from hmr.models import smpl_output
from hmr.models.prediction import joints_from_vertices
from hmr.training.config import Config
from hmr.training.objective import Objective
from hmr.training.smpl_objective import SmplObjective


class GraphCMRObjective(SmplObjective):
    """``loss(out, batch) -> (total, {term: value})`` for a
    :class:`hmr.models.graphcmr.GraphCMROutput`; ``body_model`` (the full mesh) gives the
    ground-truth meshes and the mesh's joint regressors."""

    TERMS = (*SmplObjective.TERMS, "loss_vertices", "loss_vertices_smpl", "loss_mesh_keypoints2d",
             "loss_mesh_keypoints3d")

    def __init__(self, config: Config, objective: Objective, loss_body, body_model):
        super().__init__(objective, loss_body)
        self.config, self.body_model = config, body_model

    def added_terms(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.mesh_terms(out, batch)

    def mesh_terms(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """GraphCMR's mesh terms (``nkolot/GraphCMR`` ``train/trainer.py``): per-vertex L1 of the
        regressed mesh and of the SMPL regressor's mesh against the ground-truth SMPL mesh, and
        the keypoint terms of the joints regressed from the mesh, projected with the graph's own
        (not detached) camera; the SMPL branch's terms are added by
        :meth:`SmplObjective.__call__`."""
        c, has_smpl = self.config.loss, batch["has_smpl"].float()
        with torch.no_grad():
            gt_vertices = self.body_model(global_orient=batch["smpl_global_orient"].float(),
                                          body_pose=batch["smpl_body_pose"].float(),
                                          betas=batch["smpl_betas"].float(), pose2rot=True).vertices
        smpl_vertices = smpl_output(self.body_model, out.pose_rotmat.float(), out.betas.float()).vertices
        cam_t = weak_perspective_to_translation(out.cam.float(), self.config.model.focal_length_px,
                                                float(self.config.model.img_size))
        mesh_out = SimpleNamespace(pose_rotmat=out.pose_rotmat, betas=out.betas, cam=out.cam, cam_t=cam_t)
        _, kp = self.objective(mesh_out, joints_from_vertices(self.body_model, out.vertices.float()), batch)
        shape, shape_smpl = vertex_l1(out.vertices.float(), gt_vertices, has_smpl), \
            vertex_l1(smpl_vertices, gt_vertices, has_smpl)
        total = c.scale * (c.weight_vertices * (shape + shape_smpl) + c.weight_keypoints2d * kp["loss_keypoints2d"]
                           + c.weight_keypoints3d * kp["loss_keypoints3d"])
        return total, {"loss_vertices": shape, "loss_vertices_smpl": shape_smpl,
                       "loss_mesh_keypoints2d": kp["loss_keypoints2d"], "loss_mesh_keypoints3d": kp["loss_keypoints3d"]}
