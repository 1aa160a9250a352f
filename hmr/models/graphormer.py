"""Mesh Graphormer (Lin, Wang, Liu, ICCV 2021): a transformer with graph convolutions regresses
joints and a coarse mesh from image-feature tokens.

Read in the public repository ``microsoft/MeshGraphormer`` (``src/modeling/bert/
e2e_body_network.py``, ``src/modeling/bert/modeling_graphormer.py``, ``src/modeling/_gcnn.py``,
``src/modeling/hrnet/hrnet_cls_net_gridfeat.py``, ``src/datasets/human_mesh_tsv.py``, the
arguments of ``src/tools/run_gphmer_bodymesh.py`` and the body command of ``docs/EXP.md``);
written here in our own code:

- Backbone (timm, :func:`hmr.models.backbone.create_backbone`, unpooled): a global feature
  ``(B, 2048)`` and grid features. For HRNet (timm's classification HRNet, as the public
  ``hrnet_cls_net_gridfeat``): the grid is the 1,024-channel map entering the head's last 1×1
  convolution (7×7 at 224 px), the global feature the average of that convolution's output; any
  other backbone: the grid is its unpooled output, the global feature its average. Grid features
  are projected to ``3 + C`` channels (``grid_proj``, public ``grid_feat_dim``).
- Tokens: 14 joints (:data:`JOINTS14`: LSP order, H36M's head) and the ``n`` vertices of the
  coarse mesh (``model.mesh_level`` 2: 431 for SMPL), each its template position (the body
  model at rest, turned upside down by π about x into the camera frame, minus its H36M pelvis)
  concatenated with the global feature, then the grid tokens.
- Masked vertex modeling (training only): per sample up to ``model.mask_ratio`` (0.3) of the
  joint tokens and, independently, of the vertex tokens (a uniform fraction of it, at random
  places) are replaced by a constant 0.01 vector.
- Encoder: blocks with progressive dimension reduction. Block ``i`` (public ``Graphormer``, a
  BERT encoder): linear ``d_i → h_i`` plus a learned position embedding, dropout, ``L`` layers,
  then ``linear(h_i → d_{i+1}) + linear(d_i → d_{i+1})`` (its output and a residual of its
  input). Public sizes (``docs/EXP.md``): d = 2051, 512, 128, 3; h = 1024, 256, 64; 4 layers,
  4 heads, feed-forward 2h, dropout 0.1, a graph block in the last encoder block only.
- Layer: multi-head self-attention (BERT: output linear, dropout, post-LayerNorm with the
  input), then, in a graph block, a graph residual block on the vertex tokens only (joints and
  grid tokens pass by), then the feed-forward (linear ``h → 2h``, GELU, linear ``2h → h``,
  dropout, post-LayerNorm with the attention output).
- Graph residual block (``_gcnn.GraphResBlock``): LayerNorm, ReLU, linear ``h → h/2``,
  LayerNorm, ReLU, graph convolution ``A X W + b`` over the coarse mesh's adjacency (row-
  normalised with self loops, :func:`hmr.models.mesh_sampling.normalised_adjacency`),
  LayerNorm, ReLU, linear ``h/2 → h``, plus the input.
- Heads: the 3-d outputs of the joint tokens are the 3D joints, those of the vertex tokens the
  coarse mesh. Camera (weak perspective [s, tx, ty]): linear ``3 → 1`` per vertex, then
  ``n → 250 → 3``. Upsampling: learned linear maps over the vertex axis, one per mesh level
  (431 → 1,723 → 6,890).

Deliberate differences, each stated in ``docs/models.md``: the upsampling layers start from
our own upsampling matrices (:mod:`hmr.models.mesh_sampling`) instead of random weights; the
camera's last bias starts at ``s = 0.9`` (as our GraphCMR) so ``cam_t`` is finite from step
one; BERT parts the body network never calls (word/token-type embeddings, pooler, the graph
block's unused skip projection) are left out; attention uses PyTorch's fused kernel; the
output projections and the upsampling run in float32 under bf16 autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.geometry import weak_perspective_to_translation
from hmr.models.backbone import create_backbone, load_backbone_weights
from hmr.models.graphcmr import GraphMesh, batched_spmm
from hmr.models.hmr import ModelConfig, model_input_config
from hmr.models.mesh_sampling import level_size, mesh_hierarchy

#: the joint tokens' convention: MeshGraphormer's 14 (``J24_TO_J14`` / ``H36M_J17_TO_J14``)
JOINTS14 = "spin_eval_j14"
#: rows of the learned position embedding (BERT's ``max_position_embeddings``)
POSITIONS = 512
#: the [MASK] token's value (``e2e_body_network.py``: a vector of 0.01s)
MASK_VALUE = 0.01
CAM_HIDDEN = 250


@dataclass
class GraphormerOutput:
    vertices: torch.Tensor  # (B, V, 3) metres, camera orientation, centred on the H36M pelvis
    vertex_levels: list  # [(B, n_L, 3) coarsest, ..., (B, n_1, 3)]: the mesh before each upsampling
    joints3d: torch.Tensor  # (B, 14, 3) the joint tokens' output, JOINTS14 order
    cam: torch.Tensor  # (B, 3) weak perspective [s, tx, ty]
    cam_t: torch.Tensor  # (B, 3) metres, from the detached camera


def mesh_joints14(body_model, vertices: torch.Tensor) -> torch.Tensor:
    """The 14 joints ``(B, 14, 3)`` of meshes ``(B, V, 3)``: H36M-regressed (MeshGraphormer's
    ``get_h36m_joints`` + ``H36M_J17_TO_J14``) when the body model has that regressor."""
    from hmr.core.keypoints import convert_keypoints
    from hmr.models.prediction import joints_from_vertices

    out = joints_from_vertices(body_model, vertices)
    if out.joints_h36m17 is not None:
        return convert_keypoints(out.joints_h36m17, "h36m", JOINTS14)[0]
    return convert_keypoints(out.joints_spin49, "spin_49", JOINTS14)[0]


def mesh_pelvis(body_model, vertices: torch.Tensor) -> torch.Tensor:
    """``(B, 3)``: the H36M pelvis of meshes ``(B, V, 3)`` (the mid-hips of :data:`JOINTS14`
    without that regressor): MeshGraphormer centres its meshes on it."""
    from hmr.models.prediction import joints_from_vertices

    out = joints_from_vertices(body_model, vertices)
    if out.joints_h36m17 is not None:
        return out.joints_h36m17[:, 0]
    return mesh_joints14(body_model, vertices)[:, 2:4].mean(dim=1)


def token_keep_mask(batch: int, count: int, ratio: float, device) -> torch.Tensor:
    """``(B, count)`` bool, False at masked tokens: per sample ``int(u · ratio · count)`` tokens
    at random places, ``u`` uniform in [0, 1) (``human_mesh_tsv.py``, ``mvm_percent``)."""
    masked = (torch.rand(batch, 1, device=device) * ratio * count).long()  # (B, 1)
    rank = torch.rand(batch, count, device=device).argsort(dim=1).argsort(dim=1)
    return rank >= masked


def check_encoder_config(config: ModelConfig) -> tuple[list[int], list[int]]:
    """The encoder sizes ``(hidden, dims)`` of ``config``, checked (a checkpoint's config too):
    :class:`ConfigError` names the key."""
    hidden, dims, graph = config.transformer_hidden, config.transformer_dims, config.transformer_graph
    for key, values, low in (("transformer_hidden", hidden, 2), ("transformer_dims", dims, 1),
                             ("transformer_graph", graph, 0)):
        if not all(type(v) is int and v >= low for v in values):
            raise ConfigError(f"model.{key} = {values!r}: integers of at least {low}")
    if not hidden or len(dims) != len(hidden) - 1 or len(graph) != len(hidden):
        raise ConfigError(f"model.transformer_hidden {hidden} needs len - 1 = {len(hidden) - 1} "
                          f"transformer_dims (got {dims}) and as many transformer_graph flags (got {graph})")
    if config.transformer_layers < 1 or config.transformer_heads < 1:
        raise ConfigError("model.transformer_layers and model.transformer_heads must be at least 1")
    if any(g and h % 2 for g, h in zip(graph, hidden)):
        raise ConfigError(f"model.transformer_hidden {hidden}: a block with graph blocks needs an even width")
    if not 0.0 <= config.mask_ratio <= 1.0 or not 0.0 <= config.transformer_dropout < 1.0:
        raise ConfigError("model.mask_ratio must be in [0, 1] and model.transformer_dropout in [0, 1)")
    return list(hidden), list(dims)


class MeshResBlock(nn.Module):
    """MeshGraphormer's graph residual block (``_gcnn.GraphResBlock``) on ``(B, n, width)``."""

    def __init__(self, width: int, mesh: GraphMesh):
        super().__init__()
        mid = width // 2
        self.mesh = [mesh]  # shared buffers, not a submodule (saved once, under "mesh.")
        self.pre_norm = nn.LayerNorm(width, eps=1e-12)
        self.lin1 = nn.Linear(width, mid)
        self.norm1 = nn.LayerNorm(mid, eps=1e-12)
        self.conv = nn.Linear(mid, mid)  # the graph convolution's weight: A (X W) + b
        self.norm2 = nn.LayerNorm(mid, eps=1e-12)
        self.lin2 = nn.Linear(mid, width)
        with torch.no_grad():  # the public initial ranges (GraphLinear, GraphConvolution)
            for lin in (self.lin1, self.lin2):
                bound = 1.0 / (lin.in_features * lin.out_features)
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)
            bound = 6.0 / math.sqrt(2 * mid)
            self.conv.weight.uniform_(-bound, bound)
            self.conv.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, width)
        y = self.lin1(F.relu(self.pre_norm(x)))
        support = F.relu(self.norm1(y)) @ self.conv.weight.t()  # (B, n, mid)
        y = batched_spmm(self.mesh[0].adjacency(), support).to(support.dtype) + self.conv.bias
        return x + self.lin2(F.relu(self.norm2(y)))


class EncoderLayer(nn.Module):
    """One BERT layer, with MeshGraphormer's graph block after the attention when ``graph``."""

    def __init__(self, hidden: int, heads: int, dropout: float, graph: MeshResBlock | None):
        super().__init__()
        if hidden % heads:
            raise ConfigError(f"Graphormer hidden size {hidden} is not a multiple of {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)  # BERT's query, key, value in one product
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.graph = graph
        self.ff_in = nn.Linear(hidden, 2 * hidden)  # intermediate size = 2 × hidden (interm_size_scale)
        self.ff_out = nn.Linear(2 * hidden, hidden)
        self.ff_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, vertex_slice: slice) -> torch.Tensor:  # (B, T, h)
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, dropout_p=p).transpose(1, 2).reshape(b, t, h)
        a = self.attn_norm(F.dropout(self.attn_out(context), p, self.training) + x)
        if self.graph is not None:
            a = torch.cat([a[:, :vertex_slice.start], self.graph(a[:, vertex_slice]), a[:, vertex_slice.stop:]],
                          dim=1)
        y = self.ff_out(F.gelu(self.ff_in(a)))
        return self.ff_norm(F.dropout(y, p, self.training) + a)


class EncoderBlock(nn.Module):
    """MeshGraphormer's ``Graphormer`` module: tokens ``(B, T, d_in)`` → ``(B, T, d_out)``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, *, layers: int, heads: int, dropout: float,
                 mesh: GraphMesh | None):
        super().__init__()
        self.embed = nn.Linear(in_dim, hidden)
        self.position = nn.Embedding(POSITIONS, hidden)
        self.dropout = dropout
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, dropout, None if mesh is None else
                                                 MeshResBlock(hidden, mesh)) for _ in range(layers))
        self.head = nn.Linear(hidden, out_dim)  # "cls_head": the dimension reduction
        self.residual = nn.Linear(in_dim, out_dim)
        graph = {id(m) for layer in self.layers if layer.graph is not None for m in layer.graph.modules()}
        for m in self.modules():  # BERT's init_weights (the graph blocks keep their own)
            if isinstance(m, (nn.Linear, nn.Embedding)) and id(m) not in graph:
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, vertex_slice: slice) -> torch.Tensor:
        t = x.shape[1]
        h = F.dropout(self.embed(x) + self.position.weight[:t], self.dropout, self.training)
        for layer in self.layers:
            h = layer(h, vertex_slice)
        with torch.autocast(x.device.type, enabled=False):  # the coordinates in float32
            return self.head(h.float()) + self.residual(x.float())


class Graphormer(nn.Module):
    """``Graphormer(config)(img (B, 3, S, S))`` → :class:`GraphormerOutput`."""

    predicts = ("vertices",)  # what hmr.models.prediction reads from the output

    def __init__(self, config: ModelConfig, *, mesh: GraphMesh | None = None, load_backbone_checkpoint: bool = True,
                 input_config: InputConfig | None = None, body_model=None):
        """``mesh``: the coarse graph as saved in a checkpoint (the templates, vertex indices and
        upsampling weights then come from its state dict); default: computed from
        ``body_model``, else the default body model (``$HMR_BODY_MODEL`` or the mannequin)."""
        super().__init__()
        self.config = config
        self.input_config = model_input_config(config, input_config)
        hidden, dims = check_encoder_config(config)
        self.backbone = create_backbone(config.backbone, pooling="flatten", img_size=config.img_size,
                                        drop_path_rate=config.drop_path_rate, extra=config.backbone_args)
        self._grid: list[torch.Tensor] = []
        final = getattr(self.backbone, "final_layer", None)  # timm HRNet: keep the map entering it
        if isinstance(final, nn.Module):
            final.register_forward_pre_hook(lambda _module, args: self._grid.append(args[0]))
        global_dim, grid_dim, grid_tokens = self._feature_sizes(config.img_size)
        levels, templates = self._mesh_levels(config, mesh, body_model)
        self.mesh = levels["mesh"]
        n, total = self.mesh.num_coarse, self.mesh.num_vertices
        self.num_joints, self.num_grid = 14, grid_tokens
        if self.num_joints + n + grid_tokens > POSITIONS:
            raise ConfigError(f"Graphormer: {self.num_joints} + {n} + {grid_tokens} tokens exceed {POSITIONS} "
                              "positions (a finer model.mesh_level or a larger input than the paper's)")
        self.register_buffer("template_joints", templates[0])  # (14, 3)
        self.register_buffer("template_vertices", templates[1])  # (n, 3)
        for lv, ids in levels["ids"].items():
            self.register_buffer(f"vertex_ids_{lv}", ids)  # (n_l,) full-mesh rows kept at level l
        token_dim = 3 + global_dim
        self.grid_proj = nn.Linear(grid_dim, token_dim)
        ins, outs = [token_dim, *dims], [*dims, 3]
        self.blocks = nn.ModuleList(
            EncoderBlock(i, h, o, layers=config.transformer_layers, heads=config.transformer_heads,
                         dropout=config.transformer_dropout, mesh=self.mesh if g else None)
            for i, h, o, g in zip(ins, hidden, outs, config.transformer_graph))
        self.cam_fc1 = nn.Linear(3, 1)
        self.cam_fc2 = nn.Linear(n, CAM_HIDDEN)
        self.cam_fc3 = nn.Linear(CAM_HIDDEN, 3)
        sizes = [level_size(total, lv) for lv in range(config.mesh_level, 0, -1)] + [total]
        self.upsampling = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            self.cam_fc3.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
            for layer, weight in zip(self.upsampling, levels["up"]):
                layer.weight.copy_(weight)
                layer.bias.zero_()
        self.init_report = None
        if config.backbone_checkpoint and load_backbone_checkpoint:
            self.init_report = load_backbone_weights(self.backbone, config.backbone_checkpoint,
                                                     min_fraction=config.backbone_min_match)

    # -- construction ----------------------------------------------------------------------
    def _feature_sizes(self, img_size: int) -> tuple[int, int, int]:
        """(global feature channels, grid channels, grid tokens) at ``img_size`` (one dummy
        forward in eval mode)."""
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            global_feat, grid = self.image_features(torch.zeros(1, 3, img_size, img_size))
        self.backbone.train(was_training)
        return global_feat.shape[1], grid.shape[2], grid.shape[1]

    @staticmethod
    def _mesh_levels(config: ModelConfig, mesh: GraphMesh | None, body_model):
        """The coarse graph, per-level vertex indices, upsampling initial weights and templates:
        computed from the body model, or empty placeholders of the right sizes for ``mesh``."""
        if mesh is not None:  # rebuilt from a checkpoint: its state dict fills every value
            total = mesh.num_vertices
            ids = {lv: torch.zeros(level_size(total, lv), dtype=torch.long) for lv in range(1, config.mesh_level + 1)}
            sizes = [level_size(total, lv) for lv in range(config.mesh_level, 0, -1)] + [total]
            up = [torch.zeros(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
            return {"mesh": mesh, "ids": ids, "up": up}, (torch.zeros(14, 3), torch.zeros(mesh.num_coarse, 3))
        if body_model is None:
            from hmr.core.body.smpl import load_body_model

            body_model = load_body_model()
        v_template = body_model.v_template.detach().cpu().numpy()
        hierarchy = mesh_hierarchy(v_template, body_model.faces, levels=config.mesh_level)
        mesh = GraphMesh.from_template(v_template, body_model.faces, config.mesh_level)
        ids = {lv + 1: torch.as_tensor(h.vertex_ids, dtype=torch.long) for lv, h in enumerate(hierarchy)}
        up = []  # level l → level l-1 (the full mesh after level 1): rows of U_l at level l-1's vertices
        for lv in range(config.mesh_level, 0, -1):
            u = hierarchy[lv - 1].up.toarray()  # (V, n_l)
            rows = hierarchy[lv - 2].vertex_ids if lv > 1 else np.arange(u.shape[0])
            up.append(torch.tensor(u[rows], dtype=torch.float32))
        with torch.no_grad():  # the rest pose, upside down into the camera frame (π about x)
            param = body_model.v_template
            orient = torch.tensor([[math.pi, 0.0, 0.0]], dtype=param.dtype, device=param.device)
            rest = body_model(global_orient=orient, body_pose=torch.zeros_like(orient).repeat(1, 23),
                              betas=torch.zeros(1, 10, dtype=param.dtype, device=param.device)).vertices.float()
            pelvis = mesh_pelvis(body_model, rest)[:, None]  # (1, 1, 3)
            joints = (mesh_joints14(body_model, rest) - pelvis)[0].cpu()
            vertices = (rest - pelvis)[0, ids[config.mesh_level].to(rest.device)].cpu()
        return {"mesh": mesh, "ids": ids, "up": up}, (joints, vertices)

    # -- forward ---------------------------------------------------------------------------
    def image_features(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``img (B, 3, S, S)`` → global feature ``(B, C)``, grid tokens ``(B, h·w, C_grid)``."""
        self._grid.clear()
        fmap = self.backbone(img)  # (B, C, h, w)
        grid = self._grid.pop() if self._grid else fmap
        self._grid.clear()
        return fmap.mean(dim=(2, 3)), grid.flatten(2).transpose(1, 2)

    def forward(self, img: torch.Tensor) -> GraphormerOutput:
        global_feat, grid = self.image_features(img)
        b, j, n = img.shape[0], self.num_joints, self.mesh.num_coarse
        ref = torch.cat([self.template_joints, self.template_vertices])[None].expand(b, -1, -1)  # (B, j + n, 3)
        queries = torch.cat([ref.to(global_feat.dtype), global_feat[:, None].expand(-1, j + n, -1)], dim=2)
        if self.training and self.config.mask_ratio > 0:  # masked vertex (and joint) modeling
            keep = torch.cat([token_keep_mask(b, j, self.config.mask_ratio, img.device),
                              token_keep_mask(b, n, self.config.mask_ratio, img.device)], dim=1)
            queries = torch.where(keep[..., None], queries, torch.full_like(queries, MASK_VALUE))
        x = torch.cat([queries, self.grid_proj(grid)], dim=1)  # (B, j + n + h·w, 3 + C)
        vertex_slice = slice(j, j + n)
        for block in self.blocks:
            x = block(x, vertex_slice)
        with torch.autocast(img.device.type, enabled=False):
            x = x.float()
            joints, coarse = x[:, :j], x[:, vertex_slice]
            cam = self.cam_fc3(self.cam_fc2(self.cam_fc1(coarse)[..., 0]))  # (B, 3)
            levels = [coarse]
            for layer in self.upsampling:  # over the vertex axis: (B, 3, n_l) → (B, 3, n_{l-1})
                levels.append(layer(levels[-1].transpose(1, 2)).transpose(1, 2))
        cam_t = weak_perspective_to_translation(cam.detach(), self.config.focal_length_px, float(self.config.img_size))
        return GraphormerOutput(vertices=levels[-1], vertex_levels=levels[:-1], joints3d=joints, cam=cam, cam_t=cam_t)

    def vertex_ids(self, level: int) -> torch.Tensor:
        """Full-mesh rows kept at ``level`` (1 = 4× fewer vertices)."""
        return getattr(self, f"vertex_ids_{level}")
