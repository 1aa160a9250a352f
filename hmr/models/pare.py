"""PARE (Kocabas, Huang, Hilliges, Black, ICCV 2021): Part Attention REgressor.

Read in the public repository ``mkocabas/PARE`` (``pare/models/pare.py``,
``pare/models/head/pare_head.py``, ``pare/models/layers/keypoint_attention.py``,
``pare/models/layers/locallyconnected2d.py``, ``pare/models/backbone/hrnet.py``,
``pare/core/config.py``) and in MMHuman3D's port of its released setting
(``configs/pare/hrnet_w32_conv_pare_coco.py``); written here in our own code. The variant is
the released one: backbone ``hrnet_w32-conv``, ``use_heatmaps='part_segm'`` (which switches
on ``use_keypoint_attention``), ``num_deconv_layers=2``, ``num_deconv_filters=128``,
``num_features_smpl=64``, one-layer pose/shape/camera MLPs, no iterative regression, no
co-attention, no non-local blocks, no mean-parameter offsets (``use_mean_camshape`` and
``use_mean_pose`` false):

- backbone: HRNet-W32's four last-stage branches fused at stride 4, ``(B, 480, S/4, S/4)``
  (:class:`hmr.models.feature_backbone.FusedFeatures`);
- 2D part branch: ``branch_layers`` × [3×3 conv without bias, BatchNorm, ReLU] to
  ``branch_channels`` (128), then a 1×1 conv to 25 part logits (background + 24 SMPL parts);
- 3D branch: the same conv stack (own weights) → ``F`` (128 channels); a 1×1 conv of it →
  ``F_cs`` (64 channels) for shape and camera;
- part attention: the 24 part channels (background dropped), softmax over the pixels of each,
  pool ``F`` → one 128-vector per part and ``F_cs`` → one 64-vector per part;
- SMPL pose: part ``j``'s vector → its own linear map (a locally connected layer, no bias) →
  6D rotation of joint ``j`` (SPIN's layout) → rotation matrix;
- shape and camera: the 24 × 64 pooled vectors flattened → linear → 10 betas; → linear → weak
  perspective camera [s, tx, ty].

Deliberate differences: the camera linear's bias starts at ``s = 0.9`` (SPIN's mean scale) so
the perspective translation the shared objective projects with is finite from the first step
(PARE starts from PyTorch's default bias and relies on its camera prior); the flattened
shape/camera input is ordered part-major (PARE flattens channel-major: the same layer up to a
permutation of its inputs). The locally connected pose weights start, as PARE's, from a
standard normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.geometry import rot6d_to_matrix, weak_perspective_to_translation
from hmr.models.backbone import load_backbone_weights
from hmr.models.feature_backbone import FusedFeatures
from hmr.models.hmr import ModelConfig, model_input_config
from hmr.models.part_segmentation import NUM_PARTS


@dataclass
class PAREOutput:
    pose6d: torch.Tensor  # (B, 144) 6D rotations, joint-major
    pose_rotmat: torch.Tensor  # (B, 24, 3, 3)
    betas: torch.Tensor  # (B, 10)
    cam: torch.Tensor  # (B, 3) weak perspective [s, tx, ty]
    cam_t: torch.Tensor  # (B, 3) metres
    part_logits: torch.Tensor  # (B, 25, S/4, S/4): background + 24 parts
    part_attention: torch.Tensor  # (B, 24, S/4, S/4) softmax over pixels of each part


def conv_stack(in_channels: int, channels: int, layers: int) -> nn.Sequential:
    """PARE's HRNet branch (``_make_conv_layer``): [3×3 conv, no bias; BN; ReLU] × layers."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                 nn.BatchNorm2d(channels, momentum=0.1), nn.ReLU(inplace=True)]
        in_channels = channels
    return nn.Sequential(*mods)


class PartLinear(nn.Module):
    """One linear map per part, no bias (PARE's ``LocallyConnected2d`` with a 1×1 kernel):
    ``(B, P, C_in) → (B, P, C_out)``."""

    def __init__(self, parts: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(parts, in_features, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bpi,pio->bpo", x, self.weight)


def part_attention_pool(features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """``features (B, C, h, w)``, ``attention (B, P, h, w)`` (each map sums to 1) → ``(B, P, C)``."""
    return attention.flatten(2) @ features.flatten(2).transpose(1, 2)


class PARE(nn.Module):
    """``PARE(config)(img (B, 3, S, S))`` → :class:`PAREOutput`."""

    predicts = ("smpl",)  # what hmr.models.prediction reads from the output

    def __init__(self, config: ModelConfig, *, load_backbone_checkpoint: bool = True,
                 input_config: InputConfig | None = None):
        super().__init__()
        self.config = config
        self.input_config = model_input_config(config, input_config)
        if config.img_size % 32:
            raise ConfigError(f"model.img_size = {config.img_size}: PARE needs a multiple of 32 (HRNet's strides)")
        c, cs = config.pare_branch_channels, config.pare_smpl_features
        self.backbone = FusedFeatures(config.backbone, extra=config.backbone_args,
                                      drop_path_rate=config.drop_path_rate)
        feat = self.backbone.num_features
        self.part_branch = conv_stack(feat, c, config.pare_branch_layers)
        self.part_head = nn.Conv2d(c, NUM_PARTS + 1, 1)
        self.smpl_branch = conv_stack(feat, c, config.pare_branch_layers)
        self.smpl_head = nn.Conv2d(c, cs, 1)
        self.pose_mlp = PartLinear(NUM_PARTS, c, 6)
        self.shape_mlp = nn.Linear(NUM_PARTS * cs, 10)
        self.cam_mlp = nn.Linear(NUM_PARTS * cs, 3)
        with torch.no_grad():
            self.cam_mlp.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
        self.init_report = None
        if config.backbone_checkpoint and load_backbone_checkpoint:
            self.init_report = load_backbone_weights(self.backbone.trunk, config.backbone_checkpoint,
                                                     min_fraction=config.backbone_min_match)

    def forward(self, img: torch.Tensor) -> PAREOutput:
        features = self.backbone(img)  # (B, 480, h, w)
        part_logits = self.part_head(self.part_branch(features))  # (B, 25, h, w)
        smpl_feats = self.smpl_branch(features)  # (B, c, h, w)
        cam_shape_feats = self.smpl_head(smpl_feats)  # (B, cs, h, w)
        b, _, h, w = part_logits.shape
        attention = torch.softmax(part_logits[:, 1:].float().flatten(2), dim=-1).reshape(b, NUM_PARTS, h, w)
        pose_feats = part_attention_pool(smpl_feats, attention.to(smpl_feats.dtype))  # (B, 24, c)
        cs_feats = part_attention_pool(cam_shape_feats, attention.to(cam_shape_feats.dtype)).flatten(1)  # (B, 24·cs)
        pose6d = self.pose_mlp(pose_feats).float()  # (B, 24, 6)
        betas = self.shape_mlp(cs_feats).float()
        cam = self.cam_mlp(cs_feats).float()
        cam_t = weak_perspective_to_translation(cam, self.config.focal_length_px, float(self.config.img_size))
        return PAREOutput(pose6d=pose6d.flatten(1), pose_rotmat=rot6d_to_matrix(pose6d), betas=betas, cam=cam,
                          cam_t=cam_t, part_logits=part_logits, part_attention=attention)
