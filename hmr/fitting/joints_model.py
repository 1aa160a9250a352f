"""The 73 fit joints without the mesh: the forward pass SMPLify runs 200 times.

:class:`FitJointsModel` gives the joints :func:`~hmr.fitting.camera.model_fit_joints` takes from
the full body model's output (``test_joints_model_matches_the_body_model``) while posing almost
nothing of the mesh:

- SMPL's 24 joints: the kinematic chain of :class:`hmr.core.body.joints_only.JointsOnlyBody`;
- smplx's 21 vertex joints: those 21 vertices alone, posed by SMPL's LBS;
- SPIN's 9 ``J_regressor_extra`` joints (824 vertices for the mannequin): never through the
  vertices. A regressed joint is ``Σ_s r_ks Σ_j w_sj (R_j v_s + t_j)`` with ``v_s`` linear in
  the betas and the pose feature, so ``P_kj = Σ_s r_ks w_sj v_s`` is a small linear map of them
  (pre-multiplied once, in float64) and the joint is ``Σ_j R_j P_kj + (Σ_s r_ks w_sj) t_j``:
  per step a (B, 207) × (207, 648) product instead of blend shapes and skinning of 845 vertices,
  forward and backward. Equal within float32 rounding; SMPLify's batched fits got 2.9× faster
  on one CPU thread (22.0 → 63.5 fits/s at batch 64, ``benchmarks/smplify.py``, docs/spin.md).
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
        body = self.body
        index = body.spin_index
        available = torch.ones(73, dtype=torch.bool, device=index.device)
        if body.extra_regressor is None:
            available[:49] = index < 45
        self.register_buffer("available", available)
        dtype, n_sub = body.v_template.dtype, body.v_template.shape[0]
        rows = body.vertex_rows  # (21,) the vertex joints' rows of the subset
        posedirs = body.posedirs.reshape(-1, n_sub, 3)  # (207, S, 3)
        self.register_buffer("vj_template", body.v_template[rows].clone())  # (21, 3)
        self.register_buffer("vj_shapedirs", body.shapedirs[rows].clone())  # (21, 3, L)
        self.register_buffer("vj_posedirs", posedirs[:, rows].reshape(posedirs.shape[0], -1).clone())  # (207, 63)
        self.register_buffer("vj_weights", body.lbs_weights[rows].clone())  # (21, 24)
        if body.extra_regressor is None:
            for name in ("rw_sum", "p_template", "p_shapedirs", "p_posedirs"):
                self.register_buffer(name, None)
        else:
            rw = (body.extra_regressor.double()[:, None, :]
                  * body.lbs_weights.double().T[None])  # (K, 24, S): r_ks w_sj
            k = rw.shape[0]
            self.register_buffer("rw_sum", rw.sum(-1).to(dtype))  # (K, 24)
            self.register_buffer("p_template", torch.einsum("kjs,sc->kjc", rw, body.v_template.double())
                                 .to(dtype))  # (K, 24, 3)
            self.register_buffer("p_shapedirs", torch.einsum("kjs,scl->kjcl", rw, body.shapedirs.double())
                                 .to(dtype))  # (K, 24, 3, L)
            flat = rw.reshape(k * 24, n_sub)
            p_pose = torch.einsum("ms,psc->pmc", flat, posedirs.double())  # (207, K*24, 3)
            self.register_buffer("p_posedirs", p_pose.reshape(posedirs.shape[0], -1).to(dtype))  # (207, K*24*3)

    @property
    def lbs_weights(self) -> torch.Tensor:
        """(21, 24) skinning weights of the vertices posed (the vertex joints')."""
        return self.vj_weights

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from smplx.lbs import batch_rodrigues

        body, batch = self.body, global_orient.shape[0]
        rot = batch_rodrigues(torch.cat([global_orient.reshape(batch, 3), body_pose.reshape(batch, 69)],
                                        dim=1).reshape(-1, 3)).reshape(batch, 24, 3, 3)
        betas = betas[:, :self.vj_shapedirs.shape[-1]]
        j_rest = body.j_template + torch.einsum("bl,jcl->bjc", betas, body.j_shapedirs)  # (B, 24, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(batch, -1)  # (B, 207)
        joints24, rel = body._kinematic_chain(rot, j_rest)  # (B, 24, 3), (B, 24, 3, 4)
        # The 21 vertex joints: SMPL's LBS on those vertices only.
        v_posed = (self.vj_template + torch.einsum("bl,vcl->bvc", betas, self.vj_shapedirs)
                   + (pose_feature @ self.vj_posedirs).reshape(batch, -1, 3))  # (B, 21, 3)
        skin = (self.vj_weights @ rel.reshape(batch, 24, 12)).reshape(batch, -1, 3, 4)  # (B, 21, 3, 4)
        vert_joints = (skin[..., :3] @ v_posed[..., None])[..., 0] + skin[..., 3]  # (B, 21, 3)
        if self.p_template is not None:
            k = self.p_template.shape[0]
            p = (self.p_template + torch.einsum("bl,kjcl->bkjc", betas, self.p_shapedirs)
                 + (pose_feature @ self.p_posedirs).reshape(batch, k, 24, 3))  # (B, K, 24, 3)
            extra = (torch.einsum("bjdc,bkjc->bkd", rel[..., :3], p)
                     + torch.einsum("kj,bjd->bkd", self.rw_sum, rel[..., 3]))  # (B, K, 3)
        root = joints24[:, 0]  # (B, 3), before translation
        posed = torch.cat([joints24, vert_joints] + ([extra] if self.p_template is not None else []), dim=1)
        if transl is not None:
            posed = posed + transl[:, None]
        if self.p_template is None:  # no J_regressor_extra: those 9 joints are zeros, marked unavailable
            posed = torch.cat([posed, posed.new_zeros(batch, 9, 3)], dim=1)
        spin = posed[:, body.spin_index]  # (B, 49, 3)
        return torch.cat([spin, posed[:, :24]], dim=1), root  # (B, 73, 3), (B, 3)
