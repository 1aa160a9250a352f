"""HMR / SPIN regression network: image crop → SMPL pose, shape and camera.

``HMR(config)(img (B, 3, S, S))`` returns an :class:`HMROutput` with, for the last IEF
iteration: ``pose_rotmat (B, 24, 3, 3)`` (joint 0 = global orientation in the camera frame,
then the 23 body joints in SMPL order), ``pose6d (B, 144)``, ``betas (B, 10)``,
``cam (B, 3)`` = weak-perspective [s, tx, ty] over the crop, and ``cam_t (B, 3)``: the
equivalent camera-frame translation in metres for a pinhole camera of focal length
``config.focal_length_px`` centred on the crop (SPIN: 5000 px for a 224 px crop).

The body model (SMPL forward) is not part of the network: :func:`smpl_output` runs it on a
prediction, so the same weights serve training, evaluation and prediction with any body model.

The model carries its :class:`~hmr.core.crop.InputConfig` (``model.input_config``: crop size,
mean/std, the crop scale it was trained with), as timm's models carry their pretrained config;
checkpoints store it (:mod:`hmr.models.checkpoint`) and evaluation and prediction crop and
normalise from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from hmr.core.body.smpl import resolve_model_file
from hmr.core.crop import InputConfig
from hmr.core.errors import BodyModelError, ConfigError
from hmr.core.geometry import rot6d_to_matrix, weak_perspective_to_translation
from hmr.models.backbone import create_backbone, flattened_feature_dim, load_backbone_weights
from hmr.models.regressor import IterativeRegressor, MeanParams, load_mean_params


@dataclass
class ModelConfig:
    """Network hyper-parameters (``[model]`` table of a training config)."""

    #: the algorithm: "hmr" (HMR/SPIN, this module), "graphcmr" (:mod:`hmr.models.graphcmr`),
    #: "pare" (:mod:`hmr.models.pare`) or "graphormer" (:mod:`hmr.models.graphormer`)
    type: str = "hmr"
    backbone: str = "resnet50"
    #: timm global pooling ("" = the model's default: avg for CNNs, token/avg for transformers),
    #: or "flatten": the unpooled feature map flattened, so the regressor sees where features
    #: are (small inputs: ResNet's map is 2×2 at 64 px, and averaging it discards the layout)
    pooling: str = ""
    #: extra keyword arguments for ``timm.create_model`` (the architecture's own options), e.g.
    #: ``{channels = [64, 128, 256, 256]}``: a ResNet's last stage at 256 channels (the demo's)
    backbone_args: dict = field(default_factory=dict)
    img_size: int = 224
    num_iters: int = 3
    hidden: int = 1024
    dropout: float = 0.5
    drop_path_rate: float = 0.0
    #: SPIN's mean parameters; "" = the file next to the default body model
    mean_params: str = ""
    #: user checkpoint to initialise the backbone from ("" = random init)
    backbone_checkpoint: str = ""
    #: refuse a backbone checkpoint that fills less than this fraction of the backbone
    backbone_min_match: float = 0.5
    focal_length_px: float = 5000.0
    #: GraphCMR: channels of the graph residual blocks, their number, the coarse mesh level
    #: (1 = 4x fewer vertices than the body model: 1,723 for SMPL)
    graph_channels: int = 256
    graph_layers: int = 5
    mesh_level: int = 1
    #: PARE (:mod:`hmr.models.pare`): channels and 3x3 conv layers of its 2D-part and 3D
    #: branches (the released model: 128, 2), channels of the shape/camera features (64)
    pare_branch_channels: int = 128
    pare_branch_layers: int = 2
    pare_smpl_features: int = 64
    #: Graphormer (:mod:`hmr.models.graphormer`; it uses ``mesh_level`` 2: 431 vertices for SMPL):
    #: each encoder block's hidden size (progressive reduction), the token widths between the
    #: blocks, which blocks hold graph residual blocks (1 = yes), layers and attention heads per
    #: block, dropout, and the largest fraction of joint / vertex tokens masked in training
    #: (masked vertex modeling; 0 = off). Defaults: the public MeshGraphormer body model.
    transformer_hidden: list[int] = field(default_factory=lambda: [1024, 256, 64])
    transformer_dims: list[int] = field(default_factory=lambda: [512, 128])
    transformer_graph: list[int] = field(default_factory=lambda: [0, 0, 1])
    transformer_layers: int = 4
    transformer_heads: int = 4
    transformer_dropout: float = 0.1
    mask_ratio: float = 0.3


@dataclass
class HMROutput:
    pose6d: torch.Tensor  # (B, 144)
    pose_rotmat: torch.Tensor  # (B, 24, 3, 3)
    betas: torch.Tensor  # (B, 10)
    cam: torch.Tensor  # (B, 3) weak perspective [s, tx, ty]
    cam_t: torch.Tensor  # (B, 3) metres
    #: (pose6d, betas, cam) of every IEF iteration, last one included
    iterations: list = field(default_factory=list)


def default_mean_params_path(body_model_path: str | None = None) -> str:
    """``smpl_mean_params.npz`` next to the SMPL pkl or in its parent folder (SPIN's ``data/``
    layout), for the body model :func:`hmr.core.body.load_body_model` would load."""
    pkl = resolve_model_file(body_model_path, "neutral")
    for folder in (pkl.parent, pkl.parent.parent):
        if (folder / "smpl_mean_params.npz").is_file():
            return os.fspath(folder / "smpl_mean_params.npz")
    raise BodyModelError("no smpl_mean_params.npz next to the body model or in its parent folder "
                         "(set model.mean_params)", path=pkl.parent)


def model_input_config(config: ModelConfig, input_config: InputConfig | None) -> InputConfig:
    """What a network of ``config`` is fed: ``input_config`` (from a checkpoint) or
    ``config.img_size`` crops with the defaults; a size that differs from ``img_size`` is a
    ConfigError (every model type checks this in its constructor)."""
    chosen = input_config or InputConfig(size_px=config.img_size)
    if chosen.size_px != config.img_size:
        raise ConfigError(f"input config size {chosen.size_px} px differs from the model's img_size {config.img_size}")
    return chosen


class HMR(nn.Module):
    predicts = ("smpl",)  # what hmr.models.prediction reads from the output

    def __init__(self, config: ModelConfig, *, mean: MeanParams | None = None,
                 load_backbone_checkpoint: bool = True, input_config: InputConfig | None = None):
        """``mean`` overrides ``config.mean_params`` (used when rebuilding from a checkpoint,
        which stores the mean parameters as buffers); ``load_backbone_checkpoint=False`` skips
        the backbone initialisation file (its weights are about to be overwritten anyway);
        ``input_config``: what the network is fed (default: ``config.img_size`` crops,
        ImageNet mean/std, crop scale not recorded)."""
        super().__init__()
        self.config = config
        self.input_config = model_input_config(config, input_config)
        self.backbone = create_backbone(config.backbone, pooling=config.pooling or None,
                                        img_size=config.img_size, drop_path_rate=config.drop_path_rate,
                                        extra=config.backbone_args)
        if mean is None:
            mean = load_mean_params(config.mean_params or default_mean_params_path())
        feature_dim = self.backbone.num_features
        if config.pooling == "flatten":
            feature_dim = flattened_feature_dim(self.backbone, config.img_size)
        self.regressor = IterativeRegressor(feature_dim, mean, hidden=config.hidden,
                                            num_iters=config.num_iters, dropout=config.dropout)
        self.init_report = None
        if config.backbone_checkpoint and load_backbone_checkpoint:
            self.init_report = load_backbone_weights(self.backbone, config.backbone_checkpoint,
                                                     min_fraction=config.backbone_min_match)

    def forward(self, img: torch.Tensor) -> HMROutput:
        features = self.backbone(img)  # (B, C)
        if features.ndim != 2:
            features = features.flatten(1)
        iterations = self.regressor(features)
        pose6d, betas, cam = iterations[-1]
        pose_rotmat = rot6d_to_matrix(pose6d.float().reshape(-1, 24, 6))  # (B, 24, 3, 3)
        cam_t = weak_perspective_to_translation(cam.float(), self.config.focal_length_px,
                                                float(self.config.img_size))
        return HMROutput(pose6d=pose6d, pose_rotmat=pose_rotmat, betas=betas, cam=cam,
                         cam_t=cam_t, iterations=iterations)


def smpl_output(body_model: nn.Module, pose_rotmat: torch.Tensor, betas: torch.Tensor):
    """Run a body model (see :func:`hmr.core.body.load_body_model`) on rotation matrices.

    ``pose_rotmat (B, 24, 3, 3)``, ``betas (B, 10)`` → the body model's output (vertices
    ``(B, 6890, 3)``, joint sets) in metres, without translation.
    """
    return body_model(global_orient=pose_rotmat[:, :1], body_pose=pose_rotmat[:, 1:],
                      betas=betas, pose2rot=False)


MODEL_TYPES = ("hmr", "graphcmr", "pare", "graphormer")


def create_model(config: ModelConfig, **kwargs) -> nn.Module:
    """The network ``config.type`` names (:data:`MODEL_TYPES`); ``kwargs`` go to its
    constructor (``load_backbone_checkpoint``, ``input_config``, and ``mean`` for HMR)."""
    if config.type == "graphcmr":
        from hmr.models.graphcmr import GraphCMR

        kwargs.pop("mean", None)
        return GraphCMR(config, **kwargs)
    if config.type == "pare":
        from hmr.models.pare import PARE

        kwargs.pop("mean", None)
        return PARE(config, **kwargs)
    if config.type == "graphormer":
        from hmr.models.graphormer import Graphormer

        kwargs.pop("mean", None)
        return Graphormer(config, **kwargs)
    if config.type != "hmr":
        raise ConfigError(f"model.type = {config.type!r}: choose one of {list(MODEL_TYPES)}")
    return HMR(config, **kwargs)


def build_model(config: ModelConfig) -> nn.Module:
    return create_model(config)
