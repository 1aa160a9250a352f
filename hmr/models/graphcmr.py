"""GraphCMR (Kolotouros, Pavlakos, Daniilidis, CVPR 2019): a graph CNN regresses the mesh.

Read in the public repository ``nkolot/GraphCMR`` (``models/graph_cnn.py``,
``models/graph_layers.py``, ``models/smpl_param_regressor.py``, ``utils/mesh.py``,
``utils/train_options.py``); written here in our own code:

- ResNet-50 (timm, :func:`hmr.models.backbone.create_backbone`) → pooled feature ``(B, 2048)``,
  attached to every coarse vertex next to its normalised template coordinates (the template
  centred on its bounding-box centre and divided by its largest absolute coordinate).
- Per-vertex linear ``3 + C → 2c``, a graph residual block ``2c → c``, ``graph_layers`` (5)
  blocks ``c → c`` (``graph_channels`` c = 256); shape head: blocks ``c → 64 → 32``, GroupNorm,
  ReLU, linear ``32 → 3``; camera head: GroupNorm, ReLU, linear ``c → 1``, ReLU, fully
  connected ``n → 3`` (weak perspective [s, tx, ty]).
- Graph residual block (pre-activation bottleneck): GroupNorm(in/8 groups) → ReLU → linear
  ``in → out/2`` → GroupNorm → ReLU → graph convolution ``A X W`` (``A`` the row-normalised
  adjacency with self loops) → GroupNorm → ReLU → linear ``out/2 → out``; a linear skip when
  ``in ≠ out``.
- Coarse mesh ``(B, n, 3)`` upsampled to the full mesh by ``U`` (:mod:`hmr.models.mesh_sampling`,
  our own sampling: ``mesh_level`` 1 = 4× fewer vertices, 1,723 for SMPL, as GraphCMR).
- SMPL-parameter regressor on the detached coarse mesh and the template, ``(B, 6n)``: fully
  connected block ``6n → 1024`` (linear, BatchNorm, ReLU), two residual blocks (linear, BN,
  ReLU, linear, BN, skip, ReLU), linear ``1024 → 24·9 + 10``; the 3×3 blocks are made rotations
  by SVD (``U Vᵀ``, times its determinant).

Deliberate differences, each for the shared trainer/evaluation: layers keep vertices as
``(B, n, C)`` (channels last); the initial weights are PyTorch's defaults rather than the
repository's tiny uniform ranges (tried: slower to start on the synthetic check,
docs/models.md); the camera's last layer starts at ``s = 0.9`` (SPIN's mean scale) so the
perspective translation ``cam_t`` the shared objective projects with is finite from step one.
``cam_t`` is computed from the *detached* camera, so only the mesh branch trains the camera, as
GraphCMR detaches it for the SMPL branch's keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.geometry import weak_perspective_to_translation
from hmr.models.backbone import create_backbone, flattened_feature_dim, load_backbone_weights
from hmr.models.hmr import ModelConfig, model_input_config
from hmr.models.mesh_sampling import mesh_hierarchy, normalised_adjacency

SMPL_OUT = 24 * 9 + 10


@dataclass
class GraphCMROutput:
    vertices: torch.Tensor  # (B, V, 3) non-parametric mesh, metres, model frame
    vertices_coarse: torch.Tensor  # (B, n, 3)
    pose_rotmat: torch.Tensor  # (B, 24, 3, 3) from the SMPL-parameter regressor
    betas: torch.Tensor  # (B, 10)
    cam: torch.Tensor  # (B, 3) weak perspective [s, tx, ty]
    cam_t: torch.Tensor  # (B, 3) metres, from the detached camera


class GraphMesh(nn.Module):
    """The coarse graph and its upsampling as buffers (saved in checkpoints, so a trained model
    needs no body model to be rebuilt): ``ref_vertices (n, 3)``, ``adj_index (2, E)`` /
    ``adj_value (E,)`` (normalised adjacency), ``up_index (2, M)`` / ``up_value (M,)`` (``U``)."""

    def __init__(self, ref_vertices, adj_index, adj_value, up_index, up_value, num_vertices: int):
        super().__init__()
        self.num_vertices = int(num_vertices)
        for name, value in (("ref_vertices", ref_vertices), ("adj_index", adj_index), ("adj_value", adj_value),
                            ("up_index", up_index), ("up_value", up_value)):
            self.register_buffer(name, torch.as_tensor(value))

    @classmethod
    def from_template(cls, v_template: np.ndarray, faces: np.ndarray, level: int = 1) -> GraphMesh:
        v_template = np.asarray(v_template, dtype=np.float64)
        lv = mesh_hierarchy(v_template, faces, levels=level)[level - 1]
        ref = v_template - 0.5 * (v_template.max(0) + v_template.min(0))
        ref = ref / np.abs(ref).max()
        adj, up = normalised_adjacency(lv.adjacency).tocsr(), lv.up.tocsr()
        adj.sort_indices()
        up.sort_indices()
        adj, up = adj.tocoo(), up.tocoo()
        return cls(torch.tensor(ref[lv.vertex_ids], dtype=torch.float32),
                   torch.tensor(np.stack([adj.row, adj.col]), dtype=torch.long),
                   torch.tensor(adj.data, dtype=torch.float32),
                   torch.tensor(np.stack([up.row, up.col]), dtype=torch.long),
                   torch.tensor(up.data, dtype=torch.float32), len(v_template))

    @classmethod
    def from_state(cls, state: dict, prefix: str = "mesh.") -> GraphMesh:
        """Empty-shaped buffers of the right sizes from a state dict (values loaded after)."""
        up_index = state[prefix + "up_index"]
        return cls(*(state[prefix + k] for k in ("ref_vertices", "adj_index", "adj_value", "up_index", "up_value")),
                   num_vertices=int(up_index[0].max()) + 1 if up_index.numel() else 0)

    @property
    def num_coarse(self) -> int:
        return self.ref_vertices.shape[0]

    def _sparse(self, index, value, shape):
        # rows then columns sorted (from scipy's canonical CSR): already coalesced
        return torch.sparse_coo_tensor(index, value, shape, device=value.device, is_coalesced=True,
                                       check_invariants=False)

    def adjacency(self) -> torch.Tensor:
        n = self.num_coarse
        return self._sparse(self.adj_index, self.adj_value, (n, n))

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n, C)`` → ``(B, V, C)`` (float32)."""
        return batched_spmm(self._sparse(self.up_index, self.up_value, (self.num_vertices, self.num_coarse)), x)


def batched_spmm(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse ``(M, n)`` times each ``x[b] (n, C)`` → ``(B, M, C)``, in float32 (sparse kernels
    have no bf16 on every device)."""
    b, n, c = x.shape
    flat = x.float().transpose(0, 1).reshape(n, b * c)  # (n, B·C)
    return torch.sparse.mm(matrix, flat).reshape(-1, b, c).transpose(0, 1)


class GraphResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, mesh: GraphMesh):
        super().__init__()
        mid = out_channels // 2
        self.mesh = [mesh]  # shared buffers, not a submodule (saved once, under "mesh.")
        self.pre_norm = nn.GroupNorm(in_channels // 8, in_channels)
        self.lin1 = nn.Linear(in_channels, mid)
        self.norm1 = nn.GroupNorm(mid // 8, mid)
        self.conv = nn.Linear(mid, mid)  # the graph convolution's weight: A (X W) + b
        self.norm2 = nn.GroupNorm(mid // 8, mid)
        self.lin2 = nn.Linear(mid, out_channels)
        self.skip = nn.Linear(in_channels, out_channels) if in_channels != out_channels else None

    @staticmethod
    def _norm_relu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(norm(x.transpose(1, 2)).transpose(1, 2))  # GroupNorm wants (B, C, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, C_in)
        y = self.lin1(self._norm_relu(self.pre_norm, x))
        y = self._norm_relu(self.norm1, y)
        support = y @ self.conv.weight.t()  # (B, n, mid)
        y = batched_spmm(self.mesh[0].adjacency(), support).to(support.dtype) + self.conv.bias
        y = self.lin2(self._norm_relu(self.norm2, y))
        return (x if self.skip is None else self.skip(x)) + y


class FCResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                  nn.Linear(width, width), nn.BatchNorm1d(width))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def orthonormalise(m: torch.Tensor) -> torch.Tensor:
    """Nearest rotation ``(…, 3, 3)`` by SVD, sign fixed by the determinant (GraphCMR)."""
    u, _, vh = torch.linalg.svd(m.float())
    r = u @ vh
    return r * torch.det(r)[..., None, None]


class SMPLParamRegressor(nn.Module):
    def __init__(self, num_coarse: int, width: int = 1024):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(num_coarse * 6, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                    FCResBlock(width), FCResBlock(width), nn.Linear(width, SMPL_OUT))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, n, 6)
        out = self.layers(x.flatten(1)).float()
        return orthonormalise(out[:, :24 * 9].reshape(-1, 24, 3, 3)), out[:, 24 * 9:]


class GraphCMR(nn.Module):
    """``GraphCMR(config)(img (B, 3, S, S))`` → :class:`GraphCMROutput`."""

    predicts = ("vertices", "smpl")  # what hmr.models.prediction reads from the output

    def __init__(self, config: ModelConfig, *, mesh: GraphMesh | None = None, load_backbone_checkpoint: bool = True,
                 input_config: InputConfig | None = None, body_model=None):
        """``mesh``: the coarse graph (default: computed from ``body_model``, else the default
        body model: ``$HMR_BODY_MODEL`` or the mannequin)."""
        super().__init__()
        self.config = config
        self.input_config = model_input_config(config, input_config)
        c = config.graph_channels
        if c < 64 or c % 16:
            raise ConfigError(f"model.graph_channels = {c}: need a multiple of 16, at least 64 (GroupNorm groups)")
        if mesh is None:
            if body_model is None:
                from hmr.core.body.smpl import load_body_model

                body_model = load_body_model()
            mesh = GraphMesh.from_template(body_model.v_template.detach().cpu().numpy(), body_model.faces,
                                           config.mesh_level)
        self.mesh = mesh
        self.backbone = create_backbone(config.backbone, pooling=config.pooling or None, img_size=config.img_size,
                                        drop_path_rate=config.drop_path_rate, extra=config.backbone_args)
        feature_dim = self.backbone.num_features
        if config.pooling == "flatten":
            feature_dim = flattened_feature_dim(self.backbone, config.img_size)
        blocks = [GraphResBlock(2 * c, c, mesh)] + [GraphResBlock(c, c, mesh) for _ in range(config.graph_layers)]
        self.lin_in = nn.Linear(3 + feature_dim, 2 * c)
        self.graph = nn.Sequential(*blocks)
        self.shape_head = nn.Sequential(GraphResBlock(c, 64, mesh), GraphResBlock(64, 32, mesh))
        self.shape_norm = nn.GroupNorm(4, 32)
        self.shape_out = nn.Linear(32, 3)
        self.cam_norm = nn.GroupNorm(c // 8, c)
        self.cam_lin = nn.Linear(c, 1)
        self.cam_fc = nn.Linear(mesh.num_coarse, 3)
        with torch.no_grad():
            self.cam_fc.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
        self.smpl_regressor = SMPLParamRegressor(mesh.num_coarse)
        self.init_report = None
        if config.backbone_checkpoint and load_backbone_checkpoint:
            self.init_report = load_backbone_weights(self.backbone, config.backbone_checkpoint,
                                                     min_fraction=config.backbone_min_match)

    def forward(self, img: torch.Tensor) -> GraphCMROutput:
        features = self.backbone(img)  # (B, C)
        if features.ndim != 2:
            features = features.flatten(1)
        b, ref = features.shape[0], self.mesh.ref_vertices
        x = torch.cat([ref[None].expand(b, -1, -1).to(features.dtype),
                       features[:, None].expand(-1, ref.shape[0], -1)], dim=2)  # (B, n, 3 + C)
        x = self.graph(self.lin_in(x))  # (B, n, c)
        y = GraphResBlock._norm_relu(self.shape_norm, self.shape_head(x))
        coarse = self.shape_out(y).float()  # (B, n, 3)
        cam_x = torch.relu(self.cam_lin(GraphResBlock._norm_relu(self.cam_norm, x)))  # (B, n, 1)
        cam = self.cam_fc(cam_x[..., 0]).float()  # (B, 3)
        vertices = self.mesh.upsample(coarse)  # (B, V, 3)
        # the regressor sees the mesh, not the graph CNN's gradient (GraphCMR detaches it)
        reg_in = torch.cat([coarse.detach(), ref[None].expand(b, -1, -1)], dim=2)  # (B, n, 6)
        pose_rotmat, betas = self.smpl_regressor(reg_in)
        cam_t = weak_perspective_to_translation(cam.detach(), self.config.focal_length_px, float(self.config.img_size))
        return GraphCMROutput(vertices=vertices, vertices_coarse=coarse, pose_rotmat=pose_rotmat, betas=betas,
                              cam=cam, cam_t=cam_t)
