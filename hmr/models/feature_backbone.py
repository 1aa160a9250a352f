"""Dense multi-resolution image features through timm, fused at stride 4 (PARE's HRNet input).

PARE (Kocabas et al., ICCV 2021) feeds its head the four branches of HRNet's last stage,
brought to the highest resolution and concatenated: with HRNet-W32 at 224 px that is
32 + 64 + 128 + 256 = 480 channels on a 56 × 56 grid. Its default backbone ``hrnet_w32-conv``
(``pare/models/backbone/hrnet.py`` in ``mkocabas/PARE``, ``downsample=False, use_conv=True``;
the same setting in MMHuman3D's ``configs/pare/hrnet_w32_conv_pare_coco.py``) upsamples branch
``i`` (stride ``4·2^i``) by ``i`` steps of [bilinear ×2 (align_corners), 3×3 conv without bias,
BatchNorm, ReLU], keeping its channel count. :class:`FusedFeatures` does the same on the
feature maps of any timm model created with ``features_only=True``: for HRNet the raw branch
outputs (``feature_location=""``, not the classification head's widened "incre" features),
for other families (the tests' small ResNet) every map at stride 4 or more.

The timm model is built as :mod:`hmr.models.backbone` builds classification backbones: the
name and extra arguments pass :func:`hmr.models.backbone.check_backbone` (no hub, file or URL
source, nothing that loads weights), ``pretrained=False`` always; initial weights come from a
user file through :func:`hmr.models.backbone.load_backbone_weights` applied to ``.trunk``
(timm's HRNet keys, ``conv1``, ``layer1``, ``stage4.…``, are those of MMPose's top-down HRNet
once its ``backbone.`` prefix is stripped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmr.core.errors import ConfigError
from hmr.models.backbone import BACKBONE_FAMILIES, check_backbone

#: timm creates these itself for a feature extractor; a config may not override them
_OWN_ARGS = ("pretrained", "features_only", "out_indices", "feature_location", "num_classes", "global_pool")


def _upsample_step(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(channels, momentum=0.1), nn.ReLU(inplace=True))


class FusedFeatures(nn.Module):
    """``forward(img (B, 3, S, S)) -> (B, C, S/4, S/4)``, ``C = num_features`` (480 for
    HRNet-W32): the trunk's maps at strides 4, 8, 16, 32, each lower one upsampled to stride 4
    by PARE's conv steps, concatenated highest resolution first."""

    def __init__(self, name: str, *, extra: dict | None = None, drop_path_rate: float = 0.0):
        super().__init__()
        import timm

        extra = dict(extra or {})
        check_backbone(name, extra)
        for key in extra:
            if key in _OWN_ARGS:
                raise ConfigError(f"model.backbone_args.{key}: set by hmrkit itself for a feature backbone")
        timm_name = BACKBONE_FAMILIES.get(name, name)
        kwargs: dict = {"pretrained": False, "features_only": True}
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        if timm_name.startswith("hrnet"):
            kwargs.update(feature_location="", out_indices=(1, 2, 3, 4))
        kwargs.update({k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()})
        try:
            trunk = timm.create_model(timm_name, **kwargs)
        except (RuntimeError, ValueError, AssertionError, TypeError) as exc:
            raise ConfigError(f"feature backbone {name!r}: {exc}") from None
        reductions = trunk.feature_info.reduction()
        keep = [i for i, r in enumerate(reductions) if r >= 4]
        if not keep or reductions[keep[0]] != 4:
            raise ConfigError(f"feature backbone {name!r} has no stride-4 feature map (strides {reductions})")
        self.trunk = trunk
        self.keep = keep
        channels = [trunk.feature_info.channels()[i] for i in keep]
        steps = [(reductions[i] // 4).bit_length() - 1 for i in keep]  # 0, 1, 2, 3 doublings
        self.upsample = nn.ModuleList(nn.Sequential(*[_upsample_step(c) for _ in range(n)])
                                      for c, n in zip(channels, steps))
        self.num_features = int(sum(channels))
        self.stride = 4

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        maps = self.trunk(img)
        maps = [maps[i] for i in self.keep]
        size = maps[0].shape[-2:]
        fused = []
        for x, up in zip(maps, self.upsample):
            x = up(x)
            if x.shape[-2:] != size:  # odd input sizes: align to the stride-4 grid
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
            fused.append(x)
        return torch.cat(fused, dim=1)  # (B, C, S/4, S/4)
