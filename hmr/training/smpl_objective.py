"""The SMPL branch: HMR's and SPIN's whole loss, the first part of GraphCMR's and PARE's.

The network's SMPL parameters pose the body model at the joints only
(:class:`hmr.core.body.JointsOnlyBody`), and :class:`hmr.training.objective.Objective` scores
those joints and parameters against the batch (keypoints, SMPL pose and betas, camera prior).
Under SPIN the batch's SMPL labels are SMPLify's fits (:mod:`hmr.training.spin`), put there
before this runs; the loss itself is HMR's.
"""

from __future__ import annotations

import torch

from hmr.models import smpl_output
from hmr.training.objective import Objective


class SmplObjective:
    """``loss(out, batch) -> (total, {term: value})`` for an output with ``pose_rotmat``,
    ``betas``, ``cam`` and ``cam_t``; ``loss_body`` is the joints-only body model."""

    #: the terms every call returns (and ``sigma/<term>`` for each Balanced MSE term)
    TERMS = ("loss", "loss_keypoints2d", "loss_keypoints3d", "loss_pose", "loss_betas", "loss_cam")

    def __init__(self, objective: Objective, loss_body):
        self.objective, self.loss_body = objective, loss_body

    def __call__(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        body_out = smpl_output(self.loss_body, out.pose_rotmat.float(), out.betas.float())
        loss, terms = self.objective(out, body_out, batch)
        added = self.added_terms(out, batch)
        if added is not None:
            added_loss, added_terms = added
            loss = loss + added_loss
            terms.update(added_terms, loss=loss)
        return loss, terms

    def added_terms(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """A model's terms beyond the SMPL branch's, added to its total (HMR and SPIN: none)."""
        return None
