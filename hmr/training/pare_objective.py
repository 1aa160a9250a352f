"""PARE's training loss (``mkocabas/PARE`` ``pare/losses/losses.py``, ``PARELoss``): the SMPL
branch's terms (:class:`hmr.training.smpl_objective.SmplObjective`) plus the body-part
segmentation term of :meth:`PAREObjective.part_terms`. docs/models.md, PARE, "Losses", lists
each term beside PARE's name and weight for it.
"""

from __future__ import annotations

import torch

from hmr.losses.segmentation import part_segmentation_loss
from hmr.models.part_segmentation import PartMapper, part_map_camera
from hmr.training.config import Config
from hmr.training.objective import Objective, predicted_joints
from hmr.training.smpl_objective import SmplObjective


class PAREObjective(SmplObjective):
    """``loss(out, batch) -> (total, {term: value})`` for a :class:`hmr.models.pare.PAREOutput`;
    ``body_model`` (the full mesh) draws the ground-truth part maps."""

    TERMS = (*SmplObjective.TERMS, "loss_part_segmentation")

    def __init__(self, config: Config, objective: Objective, loss_body, body_model):
        super().__init__(objective, loss_body)
        self.config, self.body_model = config, body_model
        self.part_mapper = PartMapper.from_body_model(body_model).to(body_model.lbs_weights.device)

    def added_terms(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.part_terms(out, batch)

    def part_terms(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """PARE's body-part segmentation term (``mkocabas/PARE`` ``pare/losses/losses.py``,
        ``part_segm``): cross-entropy of the part logits against the GT mesh's part map
        (:mod:`hmr.models.part_segmentation`, drawn at the logits' resolution), for the samples
        with SMPL ground truth and a camera to draw it with; the keypoint and SMPL terms are the
        SMPL branch's, added by :meth:`SmplObjective.__call__`."""
        size = out.part_logits.shape[-1]
        with torch.no_grad():
            gt = self.body_model(global_orient=batch["smpl_global_orient"].float(),
                                 body_pose=batch["smpl_body_pose"].float(), betas=batch["smpl_betas"].float(),
                                 pose2rot=True)
            transl, intrinsics, ok = part_map_camera(
                batch, predicted_joints(gt, self.objective.convention), crop_px=self.config.model.img_size,
                focal_length_px=self.config.model.focal_length_px, size=size)
            target = self.part_mapper(gt.vertices, transl, intrinsics, size)  # (B, h, w)
        keep = batch["has_smpl"].to(target.device).bool() & ok
        seg = part_segmentation_loss(out.part_logits.float(), target, keep)
        c = self.config.loss
        return c.scale * c.weight_part_segmentation * seg, {"loss_part_segmentation": seg}
