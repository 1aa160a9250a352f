"""Batched float32 posing of SMPL meshes for PVE, without the generic forward pass.

PVE needs every predicted mesh. The generic path (``BodyModel.forward`` -> smplx ``lbs``)
spends most of its time outside the one product that cannot be avoided — profiled on 2 AVX2
cores at batch 1,024: the skinning ``bmm`` of ``(B, V, 24) @ (B, 24, 16)`` transforms and the
``einsum`` / ``cat`` / ``copy`` of shape blend shapes and the joint regressor were ~85% of the
time, the pose-blend-shape GEMM ``(B, 207) @ (207, 3V)`` ~10%. :class:`FastMesh` poses the same
SMPL equations (smplx ``lbs``: ``v = Σ_k W_vk A_k (t_v + S_v β + P_v f(θ))``) as

- one GEMM ``[f(θ), β] (B, 207 + n) @ [P; S] (207 + n, 3V)`` for both blend shapes;
- rest joints ``J_regressor @ (t + S β)`` folded once: ``J0 + β @ JS`` (24 rows, tiny);
- SMPL's bone transforms, composed one tree level at a time
  (:func:`hmr.evaluation.regressed_joints.bone_transforms`);
- skinning restricted to each vertex's non-zero weights (``top_k`` bones, padded with zero
  weights), computed vertex-chunk by vertex-chunk so the per-vertex transforms stay in cache.

:func:`FastMesh.pve` compares the posed meshes with ground-truth vertices chunk by chunk and
never materialises the ``(B, V, 3)`` predicted mesh beyond one chunk. Results equal the
generic path up to float32 rounding (``tests/hmr/evaluation/test_fast_mesh.py``).
"""

from __future__ import annotations

import weakref

import torch

from hmr.evaluation.regressed_joints import bone_transforms, tree_levels

__all__ = ["FastMesh", "fast_mesh_for"]


class FastMesh(torch.nn.Module):
    """Poses an SMPL body model's meshes: ``forward(pose_rotmat (B, 24, 3, 3), betas (B, n))
    -> (B, V, 3)`` metres without translation, or :meth:`pve` against given vertices."""

    def __init__(self, body_model, dtype: torch.dtype = torch.float32, vertex_chunk: int = 512, batch: int = 128):
        super().__init__()
        smpl = getattr(body_model, "smpl", body_model)
        dev = smpl.v_template.device
        v_template = smpl.v_template.double()  # (V, 3)
        n_verts = v_template.shape[0]
        shapedirs = smpl.shapedirs.double()  # (V, 3, n_betas)
        n_betas = shapedirs.shape[-1]
        posedirs = smpl.posedirs.double()  # (207, 3V)
        # blend shapes of [f(θ), β] in one matrix; rows vertex-chunk-major columns (x, y, z per vertex)
        self.register_buffer("blend", torch.cat([posedirs, shapedirs.reshape(n_verts * 3, n_betas).T], 0))
        self.register_buffer("template", v_template.reshape(-1))  # (3V,)
        j_reg = smpl.J_regressor.double()  # (24, V)
        self.register_buffer("j_template", j_reg @ v_template)  # (24, 3)
        self.register_buffer("j_shape", torch.einsum("jv,vcl->jcl", j_reg, shapedirs))  # (24, 3, n_betas)
        self.register_buffer("blend_t", self.blend.T.contiguous())  # (3V, 207 + n), vertex-major
        self.register_buffer("weights", smpl.lbs_weights.double())  # (V, 24)
        parents = [int(p) for p in smpl.parents]
        self.register_buffer("parent", torch.tensor(parents[1:], device=dev))
        self.levels = tree_levels(parents, dev)
        self.n_betas, self.n_verts, self.vertex_chunk, self.batch = n_betas, n_verts, vertex_chunk, batch
        self.to(dtype)

    def _prepare(self, pose_rotmat: torch.Tensor, betas: torch.Tensor):
        batch = pose_rotmat.shape[0]
        rot = pose_rotmat.to(self.template)  # (B, 24, 3, 3)
        betas = betas.to(self.template)[:, :self.n_betas]
        if betas.shape[1] < self.n_betas:
            betas = torch.nn.functional.pad(betas, (0, self.n_betas - betas.shape[1]))
        j_rest = self.j_template[:, None] + torch.einsum("bl,jcl->jbc", betas, self.j_shape)  # (24, B, 3)
        bone_r, bone_t = bone_transforms(rot.transpose(0, 1).contiguous(), j_rest, self.parent, self.levels)
        # (24, B, 3, 3), (24, B, 3) -> (24, 12, B): rows of [R | t], batch last
        transforms = torch.cat([bone_r, bone_t[..., None]], -1).reshape(24, batch, 12).permute(0, 2, 1)
        features = torch.cat([(rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(batch, -1),
                              betas], 1)  # (B, 207 + n)
        return features.T.contiguous(), transforms.reshape(24, 12 * batch)

    def _chunk(self, features: torch.Tensor, transforms: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Posed vertices ``lo:hi``, vertex-major ``(C, 3, B)``; ``features (207 + n, B)``,
        ``transforms (24, 12 B)``."""
        batch = features.shape[1]
        rest = torch.addmm(self.template[3 * lo:3 * hi, None], self.blend_t[3 * lo:3 * hi], features)
        rest = rest.reshape(hi - lo, 3, batch)  # (C, 3, B)
        t = (self.weights[lo:hi] @ transforms).reshape(hi - lo, 3, 4, batch)  # per-vertex [R | t]
        out = torch.addcmul(t[:, :, 3], t[:, :, 0], rest[:, 0:1])
        out.addcmul_(t[:, :, 1], rest[:, 1:2]).addcmul_(t[:, :, 2], rest[:, 2:3])
        return out

    def forward(self, pose_rotmat: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        features, transforms = self._prepare(pose_rotmat, betas)
        step = self.vertex_chunk
        return torch.cat([self._chunk(features, transforms, lo, min(lo + step, self.n_verts))
                          for lo in range(0, self.n_verts, step)], 0).permute(2, 0, 1)

    def pve(self, pose_rotmat: torch.Tensor, betas: torch.Tensor, gt_vertices: torch.Tensor,
            rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample mean vertex distance ``(B,)`` (metres) of the posed meshes to
        ``gt_vertices (B, V, 3)`` — or to ``gt_vertices[rows]`` when ``rows (B,)`` is given
        (gathered per sub-batch, never as a whole) — ``batch`` samples at a time (vertex
        chunk × batch sized so one chunk's transforms, ~3 MB, stay in cache: 512 × 128
        measured best)."""
        out = []
        for start in range(0, len(pose_rotmat), self.batch):
            part = slice(start, start + self.batch)
            gt = gt_vertices[part] if rows is None else gt_vertices.index_select(0, rows[part])
            out.append(self._pve(pose_rotmat[part], betas[part], gt))
        return torch.cat(out) if out else pose_rotmat.new_zeros(0).to(self.template)

    def _pve(self, pose_rotmat: torch.Tensor, betas: torch.Tensor, gt_vertices: torch.Tensor) -> torch.Tensor:
        features, transforms = self._prepare(pose_rotmat, betas)
        gt = gt_vertices.to(self.template).permute(1, 2, 0)  # (V, 3, B) view
        total = features.new_zeros(features.shape[1])
        step = self.vertex_chunk
        for lo in range(0, self.n_verts, step):
            hi = min(lo + step, self.n_verts)
            diff = self._chunk(features, transforms, lo, hi).sub_(gt[lo:hi])
            total += diff.mul_(diff).sum(1).sqrt_().sum(0)
        return total / self.n_verts


_BUILT: "weakref.WeakKeyDictionary[torch.nn.Module, FastMesh]" = weakref.WeakKeyDictionary()


def fast_mesh_for(body_model) -> FastMesh | None:
    """The (cached) :class:`FastMesh` of an SMPL body model; None when it is not one."""
    try:
        return _BUILT[body_model]
    except (KeyError, TypeError):
        pass
    try:
        built = FastMesh(body_model)
    except (AttributeError, ValueError, RuntimeError):
        return None
    try:
        _BUILT[body_model] = built
    except TypeError:
        pass
    return built
