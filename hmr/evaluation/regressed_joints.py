"""The 17 ``J_regressor_h36m`` joints of a posed SMPL body without posing its mesh.

Evaluation scores joints regressed from the mesh, ``J = R @ LBS(θ, β)`` with ``R (17, V)``.
Linear blend skinning is linear in the per-vertex rest positions once the bone transforms
``A_k (B, 24, 4, 4)`` are known, so the sum over vertices can be done once per body model::

    J_j = Σ_k A_k[:3, :3] Q_jk + A_k[:3, 3] M_jk,   M_jk = Σ_v R_jv W_vk,
    Q_jk = Σ_v R_jv W_vk (t_v + S_v β + P_v f(θ))  = T_jk + S_jk β + P_jk f(θ)

(``W`` skinning weights, ``t`` template, ``S`` shape and ``P`` pose blend shapes, ``f(θ)``
SMPL's 207 pose features). Only the (joint, bone) pairs with ``M_jk ≠ 0`` are kept. The
result equals ``BodyModel.forward(...).joints_h36m17`` up to float rounding
(``tests/hmr/evaluation/test_speed_paths.py``) at a fraction of the cost: no 6,890-vertex
blend shapes and skinning per sample, which is what bounds evaluation speed. The bone
transforms ``A_k`` are SMPL's (smplx ``batch_rigid_transform``: world transform of bone k
with its rest joint moved to the origin), composed one tree level at a time.
"""

from __future__ import annotations

import weakref

import torch

__all__ = ["RegressedJoints", "regressed_joints_for"]


class RegressedJoints(torch.nn.Module):
    """``forward(pose_rotmat (B, 24, 3, 3), betas (B, n)) -> (B, 17, 3)`` H36M-regressed joints
    (metres, no translation). The sums over vertices are folded in float64 and the per-sample
    work runs in ``dtype`` (float32: the precision of the body model's own forward pass)."""

    def __init__(self, body_model, dtype: torch.dtype = torch.float32):
        super().__init__()
        smpl = body_model.smpl
        reg = body_model.j_regressor_h36m  # (17, V)
        if reg is None:
            raise ValueError("the body model has no J_regressor_h36m")
        dev = smpl.v_template.device
        reg, weights = reg.double(), smpl.lbs_weights.double()  # (17, V), (V, 24)
        n_verts = weights.shape[0]
        coupling = reg[:, None, :] * weights.T[None]  # (17, 24, V)
        mass = coupling.sum(-1)  # (17, 24)
        pairs = (coupling != 0).any(-1).nonzero()  # (P, 2): joint, bone
        c = coupling[pairs[:, 0], pairs[:, 1]]  # (P, V)
        posedirs = smpl.posedirs.double().reshape(-1, n_verts, 3)  # (207, V, 3)
        shapedirs = smpl.shapedirs.double()  # (V, 3, n_betas)
        self.register_buffer("joint", pairs[:, 0].to(dev))
        self.register_buffer("bone", pairs[:, 1].to(dev))
        self.register_buffer("mass", mass[pairs[:, 0], pairs[:, 1]])  # (P,)
        self.register_buffer("template", c @ smpl.v_template.double())  # (P, 3)
        self.register_buffer("shape", torch.einsum("pv,vcl->pcl", c, shapedirs))  # (P, 3, n_betas)
        self.register_buffer("pose", torch.einsum("pv,fvc->fpc", c, posedirs).reshape(posedirs.shape[0], -1))
        j_reg = smpl.J_regressor.double()  # (24, V): SMPL's rest joints, linear in β
        self.register_buffer("j_template", j_reg @ smpl.v_template.double())  # (24, 3)
        self.register_buffer("j_shape", torch.einsum("jv,vcl->jcl", j_reg, shapedirs))  # (24, 3, n_betas)
        parents = [int(p) for p in smpl.parents]
        self.levels = tree_levels(parents, dev)
        self.register_buffer("parent", torch.tensor(parents[1:], device=dev))  # (23,)
        self.num_joints = reg.shape[0]
        self.to(dtype)

    @property
    def num_pairs(self) -> int:
        return int(self.joint.numel())

    def bones(self, rot: torch.Tensor, j_rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`bone_transforms` of this body model's tree."""
        return bone_transforms(rot, j_rest, self.parent, self.levels)

    def forward(self, pose_rotmat: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        batch = pose_rotmat.shape[0]
        rot = pose_rotmat.to(self.template)  # (B, 24, 3, 3)
        betas = betas.to(self.template)[:, :self.shape.shape[-1]]  # (B, n_betas)
        j_rest = self.j_template[:, None] + torch.einsum("bl,jcl->jbc", betas, self.j_shape)  # (24, B, 3)
        bone_r, bone_t = self.bones(rot.transpose(0, 1).contiguous(), j_rest)  # (24, B, 3, 3), (24, B, 3)
        features = (rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(batch, -1)  # (B, 207)
        rest = (features @ self.pose + betas @ self.shape.permute(2, 0, 1).reshape(betas.shape[1], -1))
        rest = rest.reshape(batch, -1, 3).transpose(0, 1) + self.template[:, None]  # (P, B, 3)
        part = (_apply(bone_r.index_select(0, self.bone), rest)
                + bone_t.index_select(0, self.bone) * self.mass[:, None, None])  # (P, B, 3)
        out = rest.new_zeros(self.num_joints, batch, 3).index_add_(0, self.joint, part)  # (17, B, 3)
        return out.transpose(0, 1)


def tree_levels(parents: list[int], device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(joints, their parents) of each depth of the kinematic tree, root excluded."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [(torch.tensor([j for j in range(1, len(parents)) if depth[j] == d], device=device),
             torch.tensor([parents[j] for j in range(1, len(parents)) if depth[j] == d], device=device))
            for d in range(1, max(depth) + 1)]


def bone_transforms(rot: torch.Tensor, j_rest: torch.Tensor, parent: torch.Tensor,
                    levels: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """SMPL's bone transforms, joint-major: local rotations ``(24, B, 3, 3)`` and rest joints
    ``(24, B, 3)`` -> rotation ``(24, B, 3, 3)`` and translation ``(24, B, 3)`` of
    ``x -> R_world (x - j_rest) + j_posed`` (``parent (23,)``: parents of joints 1..23;
    ``levels``: :func:`tree_levels`). Joint-major tensors make the per-level gathers
    contiguous copies (batch-major gathers dominated the time)."""
    offset = j_rest.clone()
    offset[1:] -= j_rest.index_select(0, parent)  # (24, B, 3) bone vectors
    world_r, world_t = rot.clone(), offset.clone()
    for idx, par in levels:  # index_select/index_copy_: far faster than [] indexing here
        parent_r = world_r.index_select(0, par)  # (n, B, 3, 3)
        world_t.index_copy_(0, idx, _apply(parent_r, offset.index_select(0, idx)) + world_t.index_select(0, par))
        world_r.index_copy_(0, idx, _compose(parent_r, rot.index_select(0, idx)))
    return world_r, world_t - _apply(world_r, j_rest)


def _apply(r: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``r (..., 3, 3) @ x (..., 3)`` as three broadcast products (tiny batched matmuls are slow on CPU)."""
    return r[..., 0] * x[..., 0:1] + r[..., 1] * x[..., 1:2] + r[..., 2] * x[..., 2:3]


def _compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for ``(..., 3, 3)`` matrices."""
    return a[..., :, 0:1] * b[..., 0:1, :] + a[..., :, 1:2] * b[..., 1:2, :] + a[..., :, 2:3] * b[..., 2:3, :]


_BUILT: "weakref.WeakKeyDictionary[torch.nn.Module, RegressedJoints]" = weakref.WeakKeyDictionary()


def regressed_joints_for(body_model) -> RegressedJoints | None:
    """The (cached) :class:`RegressedJoints` of a body model; None when it cannot be built
    (no ``J_regressor_h36m``, or not an SMPL body model)."""
    try:
        return _BUILT[body_model]
    except (KeyError, TypeError):
        pass
    try:
        built = RegressedJoints(body_model)
    except (AttributeError, ValueError):
        return None
    try:
        _BUILT[body_model] = built
    except TypeError:
        pass
    return built
