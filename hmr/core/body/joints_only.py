"""SMPL posed only where the joints need it: training losses and SMPLify never look at the mesh.

The losses of HMR/SPIN training and SMPLify's objective use joints, not the 6,890 vertices.
SMPL's 24 joints come from the kinematic chain; smplx's 21 vertex joints are single vertices;
SPIN's ``J_regressor_extra`` (9 joints) and ``J_regressor_h36m`` (17) touch a few hundred to
about a thousand vertices each (845 and 1,349 of 6,890 for the mannequin).
:class:`JointsOnlyBody` keeps only those vertices' template, shape and pose blend shapes and
skinning weights and runs SMPL's LBS on them: the same joints as :meth:`BodyModel.forward`
(``tests/hmr/core/body/test_joints_only.py``) for 3-8× less work in the blend shapes and skinning,
forward and backward, which is most of the body model's cost in a training step.

Rest joints are linear in the betas, ``J(β) = J_reg v_template + (J_reg shapedirs) β``, so the
full shaped mesh is never built either.
"""

from __future__ import annotations

import torch

from hmr.core.body.joint_names import SPIN49_FROM_SMPL54
from hmr.core.body.smpl import BodyOutput, pose_inputs

__all__ = ["JointsOnlyBody"]


class JointsOnlyBody(torch.nn.Module):
    """``forward`` as :meth:`hmr.core.body.BodyModel.forward` (axis-angle or rotation matrices, betas,
    transl) → :class:`~hmr.core.body.BodyOutput` with ``vertices=None`` and every joint set the body
    model has (``h36m=False`` leaves out ``joints_h36m17`` and the vertices only it needs).
    Built on the body model's device; buffers follow ``.to()``."""

    def __init__(self, body_model, *, h36m: bool = True):
        super().__init__()
        smpl = body_model.smpl
        n_verts = smpl.v_template.shape[0]
        device = smpl.v_template.device  # index tensors are built there too
        vertex_ids = smpl.vertex_joint_selector.extra_joints_idxs.long()  # (21,)
        extra = body_model.j_regressor_extra  # (9, V) or None
        h36m_reg = body_model.j_regressor_h36m if h36m else None  # (17, V) or None
        used = [vertex_ids] + [(reg != 0).any(0).nonzero()[:, 0] for reg in (extra, h36m_reg) if reg is not None]
        subset = torch.unique(torch.cat(used))  # (S,) sorted
        position = torch.full((n_verts,), -1, dtype=torch.long, device=device)
        position[subset] = torch.arange(len(subset), device=device)
        shapedirs = smpl.shapedirs  # (V, 3, n_betas)
        j_reg = smpl.J_regressor  # (24, V)
        self.register_buffer("v_template", smpl.v_template[subset].clone())  # (S, 3)
        self.register_buffer("shapedirs", shapedirs[subset].clone())  # (S, 3, n_betas)
        self.register_buffer("posedirs", smpl.posedirs.reshape(-1, n_verts, 3)[:, subset]
                             .reshape(smpl.posedirs.shape[0], -1).clone())  # (207, S*3)
        self.register_buffer("lbs_weights", smpl.lbs_weights[subset].clone())  # (S, 24)
        self.register_buffer("j_template", j_reg @ smpl.v_template)  # (24, 3)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcb->jcb", j_reg, shapedirs))  # (24, 3, n_betas)
        self.register_buffer("vertex_rows", position[vertex_ids])  # (21,) rows of the subset
        self.register_buffer("extra_regressor", None if extra is None else extra[:, subset].clone())  # (9, S)
        self.register_buffer("h36m_regressor", None if h36m_reg is None else h36m_reg[:, subset].clone())  # (17, S)
        self.register_buffer("spin_index", torch.tensor(SPIN49_FROM_SMPL54, dtype=torch.long, device=device))
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

    @property
    def num_vertices(self) -> int:
        """How many of the mesh's vertices are posed."""
        return self.v_template.shape[0]

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

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
                betas: torch.Tensor | None = None, transl: torch.Tensor | None = None,
                pose2rot: bool | None = None) -> BodyOutput:
        batch = global_orient.shape[0]
        global_orient, body_pose, axis_angle = pose_inputs(global_orient, body_pose, pose2rot)
        if axis_angle:
            from smplx.lbs import batch_rodrigues

            rot = batch_rodrigues(torch.cat([global_orient, body_pose], dim=1).reshape(-1, 3))
            rot = rot.reshape(batch, 24, 3, 3)
        else:
            rot = torch.cat([global_orient, body_pose], dim=1)  # (B, 24, 3, 3)
        n_betas = self.shapedirs.shape[-1]
        betas = rot.new_zeros(batch, n_betas) if betas is None else betas[:, :n_betas]
        v_shaped = self.v_template + torch.einsum("bl,scl->bsc", betas, self.shapedirs)  # (B, S, 3)
        j_rest = self.j_template + torch.einsum("bl,jcl->bjc", betas, self.j_shapedirs)  # (B, 24, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(batch, -1)  # (B, 207)
        v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(batch, -1, 3)  # (B, S, 3)
        joints24, rel = self._kinematic_chain(rot, j_rest)  # (B, 24, 3), (B, 24, 3, 4)
        # Blend the joints' 3×4 transforms per vertex, then apply them: one matmul and an
        # element-wise product (batched 3×3 matmuls per vertex are far slower on CPU).
        skin = (self.lbs_weights @ rel.reshape(batch, 24, 12)).reshape(batch, -1, 3, 4)  # (B, S, 3, 4)
        verts = (skin[..., :3] * v_posed[:, :, None, :]).sum(-1) + skin[..., 3]  # (B, S, 3)
        if transl is not None:
            verts = verts + transl[:, None]
            joints24 = joints24 + transl[:, None]
        joints45 = torch.cat([joints24, verts[:, self.vertex_rows]], dim=1)  # (B, 45, 3)
        extra = spin = h36m = None
        if self.extra_regressor is not None:
            extra = torch.einsum("js,bsc->bjc", self.extra_regressor, verts)  # (B, 9, 3)
            spin = torch.cat([joints45, extra], dim=1)[:, self.spin_index]  # (B, 49, 3)
        if self.h36m_regressor is not None:
            h36m = torch.einsum("js,bsc->bjc", self.h36m_regressor, verts)  # (B, 17, 3)
        return BodyOutput(vertices=None, joints_smpl24=joints24, joints_smpl45=joints45,
                          joints_h36m17=h36m, joints_extra9=extra, joints_spin49=spin)
