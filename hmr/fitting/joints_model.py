"""The 73 fit joints without the mesh: the forward pass SMPLify runs 200 times.

:class:`FitJointsModel` is :class:`hmr.core.body.joints_only.JointsOnlyBody` (SMPL posed only at
the vertices the joints need; without the H36M regressor, which SMPLify does not use) laid out
as :func:`~hmr.fitting.camera.model_fit_joints` lays out the full body model's output
(``test_joints_model_matches_the_body_model``).
"""

from __future__ import annotations

import torch

from hmr.core.body.joints_only import JointsOnlyBody

__all__ = ["FitJointsModel"]


class FitJointsModel(torch.nn.Module):
    """``forward(global_orient (B, 3), body_pose (B, 69), betas (B, 10), transl (B, 3) | None)``
    → fit joints ``(B, 73, 3)``, root joint ``(B, 3)`` (SMPL rotates the body about it).
    ``available`` (73,) marks joints that exist (all but 9 without ``J_regressor_extra``)."""

    def __init__(self, body_model):
        super().__init__()
        self.body = JointsOnlyBody(body_model, h36m=False)
        index = self.body.spin_index
        available = torch.ones(73, dtype=torch.bool, device=index.device)
        if self.body.extra_regressor is None:
            available[:49] = index < 45
        self.register_buffer("available", available)

    @property
    def lbs_weights(self) -> torch.Tensor:
        """(S, 24) skinning weights of the posed vertex subset."""
        return self.body.lbs_weights

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(global_orient, body_pose, betas, transl, pose2rot=True)
        joints24 = out.joints_smpl24  # (B, 24, 3), translated
        root = joints24[:, 0] if transl is None else joints24[:, 0] - transl  # (B, 3)
        spin = out.joints_spin49
        if spin is None:  # no J_regressor_extra: those 9 joints are zeros, marked unavailable
            extra = joints24.new_zeros(joints24.shape[0], 9, 3)
            spin = torch.cat([out.joints_smpl45, extra], dim=1)[:, self.body.spin_index]  # (B, 49, 3)
        return torch.cat([spin, joints24], dim=1), root
