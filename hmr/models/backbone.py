"""Image backbones through :func:`timm.create_model`, and their initialisation from a file.

Every family the HMR benchmark compares is one timm name away (``BACKBONE_FAMILIES`` lists
the names we use for the paper's table); any other timm model name works too. The backbone
returns one pooled feature vector per image, ``(B, C)`` with ``C = backbone.num_features``:
timm's own global pooling (``"avg"`` for CNNs, the class token or mean of tokens for
transformers as each model defines it) unless ``pooling`` names another timm pooling.

No weights are ever downloaded, and neither a config nor a checkpoint can make timm read a
file or reach the network: :func:`check_backbone` accepts only timm registry names (no
``hf-hub:`` / ``local-dir:`` source prefix, no path) and refuses the ``create_model``
arguments that load weights or configs (``pretrained``, ``pretrained_cfg``,
``pretrained_cfg_overlay``, ``checkpoint_path``, ``cache_dir``, any key naming a file, path,
URL, hub or folder) and string values that look like paths or URLs. Initial weights come
from a user file (ImageNet
classification, or a COCO/MPII pose-estimation checkpoint as in the benchmark's
"L1 + COCO" variant), read with ``torch.load(weights_only=True)``. Keys are matched after
stripping the usual wrappers (``state_dict``/``model`` entries, ``module.``, ``backbone.``,
``model.`` prefixes); :class:`InitReport` says what matched.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hmr.core.errors import ConfigError

# The benchmark's backbone families → the timm names used for them.
BACKBONE_FAMILIES: dict[str, str] = {
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "resnext101": "resnext101_32x8d",
    "hrnet_w32": "hrnet_w32",
    "hrnet_w48": "hrnet_w48",
    "efficientnet_b5": "efficientnet_b5",
    "vit_base": "vit_base_patch16_224",
    "swin_base": "swin_base_patch4_window7_224",
    "twins_svt_base": "twins_svt_base",
}
#: a timm registry name, optionally with its pretrained tag (``vit_base_patch16_224.augreg_in21k``)
BACKBONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)?")
#: timm.create_model arguments that load weights or configs (files, the network)
LOADING_ARGS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
                "checkpoint_path", "cache_dir")
#: an architecture argument whose name says it points at something to read is refused too
_LOADING_WORDS = ("pretrained", "checkpoint", "file", "path", "url", "hub", "dir", "cache", "cfg")
WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")
STRIP_PREFIXES = ("module.", "backbone.", "model.", "encoder.")


def _arg_value_problem(value: object) -> str | None:
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        return "looks like a path or URL" if any(c in value for c in "/\\:") else None
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_arg_value_problem, value) if p), None)
    return f"a {type(value).__name__} (only numbers, booleans, short names and lists of them)"


def check_backbone(name: object, args: object, where: str = "model") -> None:
    """Refuse a backbone name or ``backbone_args`` that could make timm read a file or reach
    the network (see the module docstring); :class:`ConfigError` names the key."""
    if not isinstance(name, str) or not BACKBONE_NAME.fullmatch(name):
        raise ConfigError(f"{where}.backbone = {name!r}: must be a timm model name (letters, digits, "
                          "'_', one optional '.tag'); hub, local-dir and path names are refused")
    if not isinstance(args, dict):
        raise ConfigError(f"{where}.backbone_args = {args!r}: must be a table {{key = value, ...}}")
    for key, value in args.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"{where}.backbone_args: key {key!r} is not an argument name")
        if key in LOADING_ARGS or any(word in key.lower() for word in _LOADING_WORDS):
            raise ConfigError(f"{where}.backbone_args.{key}: refused (arguments that load weights, "
                              "configs or files are not accepted; initialise with model.backbone_checkpoint)")
        problem = _arg_value_problem(value)
        if problem:
            raise ConfigError(f"{where}.backbone_args.{key} = {value!r}: {problem}")


def create_backbone(name: str, *, pooling: str | None = None, img_size: int | None = None,
                    drop_path_rate: float = 0.0, extra: dict | None = None) -> nn.Module:
    """A timm model without classifier: ``forward(img (B, 3, H, W)) -> (B, num_features)``.
    ``extra``: further ``timm.create_model`` keyword arguments (lists become tuples)."""
    import timm

    check_backbone(name, extra or {})
    timm_name = BACKBONE_FAMILIES.get(name, name)
    kwargs: dict = {"pretrained": False, "num_classes": 0}
    if pooling:
        # "flatten": no pooling; the caller flattens the (B, C, h, w) map (see HMR)
        kwargs["global_pool"] = "" if pooling == "flatten" else pooling
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    if img_size is not None and _takes_img_size(timm_name):
        kwargs["img_size"] = img_size
    for key, value in (extra or {}).items():
        if key in kwargs or key == "pretrained":
            raise ConfigError(f"model.backbone_args.{key}: set by hmrkit itself (use the model option)")
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    try:
        return timm.create_model(timm_name, **kwargs)
    except (RuntimeError, ValueError, AssertionError) as exc:  # timm: "Unknown model (...)", bad sizes
        raise ConfigError(f"backbone {name!r}: {exc}") from None
    except TypeError as exc:  # an argument the architecture does not take
        raise ConfigError(f"backbone {name!r} with model.backbone_args {extra}: {exc}") from None


def flattened_feature_dim(backbone: nn.Module, img_size: int) -> int:
    """Length of the flattened unpooled output (C·h·w) for ``img_size`` inputs (one dummy
    forward in eval mode, so no BatchNorm statistics move)."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        dim = backbone(torch.zeros(1, 3, img_size, img_size)).flatten(1).shape[1]
    backbone.train(was_training)
    return int(dim)


def _takes_img_size(timm_name: str) -> bool:
    # Transformers bake the token grid into their position embeddings: tell them the size.
    return any(k in timm_name for k in ("vit", "swin", "deit", "beit", "eva"))


@dataclass
class InitReport:
    """Which backbone weights a checkpoint provided."""

    path: str
    matched: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    @property
    def fraction_matched(self) -> float:
        total = len(self.matched) + len(self.shape_mismatch) + len(self.missing)
        return len(self.matched) / total if total else 0.0

    def summary(self) -> str:
        return (f"{self.path}: {len(self.matched)} tensors loaded ({self.fraction_matched:.0%} of the "
                f"backbone), {len(self.missing)} missing, {len(self.shape_mismatch)} with another "
                f"shape, {len(self.unused)} in the file unused")


def _unwrap(state: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            inner = next((state[k] for k in WRAPPER_KEYS if k in state), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, dict):
        raise ConfigError("checkpoint holds no state dict", path=path)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike, *,
                          min_fraction: float = 0.0) -> InitReport:
    """Copy matching tensors of the checkpoint at ``path`` into ``backbone``.

    Raises :class:`ConfigError` when fewer than ``min_fraction`` of the backbone's tensors
    match (a checkpoint of another architecture silently loading nothing is the usual
    mistake this guards against).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors of many types; weights_only refuses code
        raise ConfigError(f"cannot read as a weights-only torch checkpoint ({exc})", path=path) from None
    source = {_strip(k): v for k, v in _unwrap(raw, path).items()}
    own = backbone.state_dict()
    report = InitReport(path=str(path))
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor in own.items():
        if key not in source:
            report.missing.append(key)
        elif source[key].shape != tensor.shape:
            report.shape_mismatch.append(key)
        else:
            to_load[key] = source[key]
            report.matched.append(key)
    report.unused = sorted(set(source) - set(own))
    backbone.load_state_dict(to_load, strict=False)
    if report.fraction_matched < min_fraction:
        raise ConfigError(f"only {report.fraction_matched:.0%} of the backbone matched "
                          f"(need {min_fraction:.0%}): {report.summary()}", path=path)
    return report
