"""SMPL posed only where the fitted joints need it: the forward pass SMPLify runs 200 times.

SMPLify needs the 73 fit joints (``FIT_JOINT_NAMES``), not the 6,890 vertices. SMPL's 24
joints come from the kinematic chain; the other 49 are 21 single vertices (smplx's vertex
joints) and SPIN's ``J_regressor_extra`` rows, which touch a few hundred vertices (845 of 6,890
for the mannequin). :class:`FitJointsModel` keeps only those vertices' template, shape and pose
blend shapes and skinning weights, and runs smplx's own LBS pieces (``batch_rodrigues``,
``batch_rigid_transform``) on them: the same numbers as ``BodyModel.forward`` followed by
:func:`~hmr.fitting.camera.model_fit_joints` (``test_joints_model_matches_the_body_model``), for
~8× less work in the pose blend shapes and skinning (forward and backward).
"""

from __future__ import annotations

import torch

from hmr.body.joint_names import SPIN49_FROM_SMPL54

__all__ = ["FitJointsModel"]


class FitJointsModel(torch.nn.Module):
    """``forward(global_orient (B, 3), body_pose (B, 69), betas (B, 10), transl (B, 3) | None)``
    → fit joints ``(B, 73, 3)``, root joint ``(B, 3)`` (SMPL rotates the body about it).
    ``available`` (73,) marks joints that exist (all but 9 without ``J_regressor_extra``)."""

    def __init__(self, body_model):
        super().__init__()
        smpl = body_model.smpl
        n_verts = smpl.v_template.shape[0]
        device = smpl.v_template.device  # built on the body model's device, index tensors too
        vertex_ids = smpl.vertex_joint_selector.extra_joints_idxs.long()  # (21,)
        extra = body_model.j_regressor_extra  # (9, V) or None
        used = vertex_ids if extra is None else torch.cat([vertex_ids, (extra != 0).any(0).nonzero()[:, 0]])
        subset = torch.unique(used)  # (S,) sorted
        position = torch.full((n_verts,), -1, dtype=torch.long, device=device)
        position[subset] = torch.arange(len(subset), device=device)
        shapedirs = smpl.shapedirs  # (V, 3, n_betas)
        j_reg = smpl.J_regressor  # (24, V)
        self.register_buffer("v_template", smpl.v_template[subset].clone())  # (S, 3)
        self.register_buffer("shapedirs", shapedirs[subset].clone())  # (S, 3, n_betas)
        self.register_buffer("posedirs", smpl.posedirs.reshape(-1, n_verts, 3)[:, subset]
                             .reshape(smpl.posedirs.shape[0], -1).clone())  # (207, S*3)
        self.register_buffer("lbs_weights", smpl.lbs_weights[subset].clone())  # (S, 24)
        # Rest joints are linear in the betas: J(β) = J_reg v_template + (J_reg shapedirs) β.
        self.register_buffer("j_template", j_reg @ smpl.v_template)  # (24, 3)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcb->jcb", j_reg, shapedirs))  # (24, 3, n_betas)
        self.register_buffer("vertex_rows", position[vertex_ids])  # (21,) rows of the subset
        self.register_buffer("extra_regressor", None if extra is None else extra[:, subset].clone())  # (9, S)
        index = torch.tensor(SPIN49_FROM_SMPL54, dtype=torch.long, device=device)
        self.register_buffer("spin_index", index)
        self.parents = smpl.parents
        # Joints grouped by depth in the tree: the chain is composed one level at a time
        # (9 batched matmuls for SMPL instead of 23 one-joint ones; same numbers).
        depth = [0] * 24
        for j in range(1, 24):
            depth[j] = depth[int(self.parents[j])] + 1
        self.levels = []  # (joints, their parents) per depth
        for d in range(1, max(depth) + 1):
            joints = [j for j in range(24) if depth[j] == d]
            parents = [int(self.parents[j]) for j in joints]
            self.levels.append((torch.tensor(joints, device=device), torch.tensor(parents, device=device)))
        available = torch.ones(73, dtype=torch.bool, device=device)
        if extra is None:
            available[:49] = index < 45
        self.register_buffer("available", available)

    def _kinematic_chain(self, rot: torch.Tensor, j_rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed joints ``(B, 24, 3)`` and rest→posed transforms ``(B, 24, 3, 4)`` (top rows)
        from local rotations ``(B, 24, 3, 3)`` and rest joints ``(B, 24, 3)`` (SMPL's LBS)."""
        offset = j_rest.clone()
        offset[:, 1:] = j_rest[:, 1:] - j_rest[:, self.parents[1:]]  # (B, 24, 3) bone vectors
        local = torch.cat([rot, offset[..., None]], dim=-1)  # (B, 24, 3, 4)
        bottom = local.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(*local.shape[:2], 1, 4)
        local = torch.cat([local, bottom], dim=-2)  # (B, 24, 4, 4)
        world = local.clone()
        for idx, parent in self.levels:
            idx, parent = idx.to(world.device), parent.to(world.device)  # no-op unless moved
            world[:, idx] = world[:, parent] @ local[:, idx]
        posed = world[:, :, :3, 3]  # (B, 24, 3)
        rel = world[:, :, :3].clone()  # (B, 24, 3, 4)
        rel[..., 3] = posed - (world[:, :, :3, :3] @ j_rest[..., None])[..., 0]
        return posed, rel

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from smplx.lbs import batch_rodrigues

        batch = global_orient.shape[0]
        n_betas = self.shapedirs.shape[-1]
        betas = betas[:, :n_betas]
        v_shaped = self.v_template + torch.einsum("bl,scl->bsc", betas, self.shapedirs)  # (B, S, 3)
        j_rest = self.j_template + torch.einsum("bl,jcl->bjc", betas, self.j_shapedirs)  # (B, 24, 3)
        full_pose = torch.cat([global_orient, body_pose], dim=1).reshape(-1, 3)
        rot = batch_rodrigues(full_pose).reshape(batch, 24, 3, 3)  # (B, 24, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(batch, -1)  # (B, 207)
        v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(batch, -1, 3)  # (B, S, 3)
        joints24, rel = self._kinematic_chain(rot, j_rest)  # (B, 24, 3), (B, 24, 3, 4)
        root = joints24[:, 0]  # (B, 3) before translation
        # Blend the joints' 3×4 transforms per vertex, then apply them: one matmul and an
        # element-wise product (batched 3×3 matmuls per vertex are far slower on CPU).
        skin = (self.lbs_weights @ rel.reshape(batch, 24, 12)).reshape(batch, -1, 3, 4)  # (B, S, 3, 4)
        verts = (skin[..., :3] * v_posed[:, :, None, :]).sum(-1) + skin[..., 3]  # (B, S, 3)
        if transl is not None:
            verts = verts + transl[:, None]
            joints24 = joints24 + transl[:, None]
        joints45 = torch.cat([joints24, verts[:, self.vertex_rows]], dim=1)  # (B, 45, 3)
        if self.extra_regressor is not None:
            extra = torch.einsum("js,bsc->bjc", self.extra_regressor, verts)  # (B, 9, 3)
        else:
            extra = joints45.new_zeros(batch, 9, 3)
        spin = torch.cat([joints45, extra], dim=1)[:, self.spin_index]  # (B, 49, 3)
        return torch.cat([spin, joints24], dim=1), root
