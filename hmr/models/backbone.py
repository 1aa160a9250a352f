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
"L1 + COCO" variant), read with ``torch.load(weights_only=True)`` (numpy scalars and
arrays, which MMCV/MMEngine write into a checkpoint's ``meta``, are the only objects allowed
besides tensors and containers). Keys are matched after stripping the usual wrappers
(``state_dict``/``model`` entries, ``module.``, ``backbone.``, ``model.`` prefixes);
:class:`InitReport` says what matched, what was missing and why, and what in the file was
not used.

MMPose top-down checkpoints (the benchmark's ``resnet50_coco_pose.pth``,
``hrnet_coco_pose.pth``, ``hrnetw48_coco_pose.pth``) are recognised by their layout: a
``backbone.`` part next to a pose head (``keypoint_head.`` in MMPose 0.x ``TopDown``,
``head.`` in 1.x ``TopdownPoseEstimator``). Read in ``open-mmlab/mmpose``,
``mmpose/models/backbones/resnet.py`` and ``hrnet.py``:

- ResNet: the torchvision layout timm uses too (``conv1``, ``bn1``, ``layer1.0.conv1``,
  ``layer1.0.bn1``, ``layer1.0.downsample.0/1``; the norm layers are named ``bn<k>`` by
  MMCV's ``build_norm_layer``), so names are equal once ``backbone.`` is stripped. The
  deep-stem variant (``ResNetV1d``) keeps its stem in ``stem.<i>.conv`` / ``stem.<i>.bn``
  (MMCV ``ConvModule``s), renamed here to timm's ``resnet50d`` ``conv1.<0,1,3,4,6>`` and
  ``bn1``; its average-pool downsamples (``downsample.0/1/2``) are timm's layout already,
  but the first stage's, without a pool, is ``downsample.0/1`` where timm keeps an
  ``Identity`` first (``downsample.1/2``), so those shift by one.
- HRNet: the layout of the official HRNet code timm's ``hrnet_w*`` come from (``conv1``,
  ``bn1``, ``conv2``, ``bn2``, ``layer1``, ``transition<k>.<i>.0/1``,
  ``stage<k>.<m>.branches.<b>.<block>.conv1/bn1/...``,
  ``stage<k>.<m>.fuse_layers.<i>.<j>...``), names equal once ``backbone.`` is stripped. Two
  groups of a timm HRNet have no counterpart in a pose checkpoint and stay as they were
  (reported in :attr:`InitReport.expected_missing`): the classification head
  (``incre_modules``, ``downsamp_modules``, ``final_layer``), and the fuse layers that make
  stage 4's lower-resolution outputs in its last module, because a top-down pose HRNet is
  built with ``multiscale_output=False`` (only the stride-4 output is fused). A group is
  reported so whenever an HRNet file holds none of it, MMPose-wrapped or a bare backbone
  state dict alike; what :class:`InitReport` leaves out of ``fraction_of_layout``.
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
#: an MMPose top-down pose model's parts besides its backbone (0.x ``keypoint_head``, 1.x ``head``)
MMPOSE_HEAD_PREFIXES = ("keypoint_head.", "head.", "neck.")
#: MMPose ``ResNetV1d`` deep stem (``stem.<i>.conv|bn``) -> timm ``resnet*d`` (``conv1.<k>``, ``bn1``)
_MMPOSE_DEEP_STEM = {("0", "conv"): "conv1.0", ("0", "bn"): "conv1.1", ("1", "conv"): "conv1.3",
                     ("1", "bn"): "conv1.4", ("2", "conv"): "conv1.6", ("2", "bn"): "bn1"}
_DEEP_STEM_KEY = re.compile(r"stem\.([012])\.(conv|bn)\.(.+)")
_DOWNSAMPLE_KEY = re.compile(r"(layer\d+\.\d+\.downsample\.)\d+\..+")
_HRNET_CLASSIFIER = re.compile(r"(incre_modules|downsamp_modules|final_layer)\.")
_HRNET_FUSE = re.compile(r"stage4\.(\d+)\.fuse_layers\.(\d+)\.")
HRNET_CLASSIFIER_REASON = ("HRNet classification head (incre_modules, downsamp_modules, final_layer): "
                           "a pose HRNet has none")
HRNET_LOW_RES_FUSE_REASON = ("stage 4 last module's fuse layers to the lower-resolution outputs: a top-down "
                             "pose HRNet fuses only the stride-4 output (MMPose multiscale_output=False)")


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
    """Which backbone weights a checkpoint provided.

    ``matched``, ``shape_mismatch`` and ``missing`` are the backbone's own tensor names;
    ``unused`` the file's (after stripping wrappers), ``head`` the subset of ``unused`` that
    is a pose model's head. ``expected_missing`` groups the missing tensors the file's layout
    cannot have (reason -> names), see the module docstring.
    """

    path: str
    layout: str = "plain"  # "plain" | "mmpose-topdown"
    matched: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    expected_missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fraction_matched(self) -> float:
        """Of all the backbone's tensors."""
        total = len(self.matched) + len(self.shape_mismatch) + len(self.missing)
        return len(self.matched) / total if total else 0.0

    @property
    def fraction_of_layout(self) -> float:
        """Of the backbone's tensors that the file's layout can provide (the ones in
        ``expected_missing`` left out); what ``min_fraction`` is checked against."""
        expected = sum(len(v) for v in self.expected_missing.values())
        total = len(self.matched) + len(self.shape_mismatch) + len(self.missing) - expected
        return len(self.matched) / total if total else 0.0

    def summary(self) -> str:
        layout = "" if self.layout == "plain" else f" [{self.layout}]"
        text = (f"{self.path}{layout}: {len(self.matched)} tensors loaded ({self.fraction_matched:.0%} of the "
                f"backbone), {len(self.missing)} missing, {len(self.shape_mismatch)} with another "
                f"shape, {len(self.unused)} in the file unused")
        if self.head:
            text += f" ({len(self.head)} of them the pose head)"
        for reason, names in self.expected_missing.items():
            text += f"; {len(names)} left as initialised: {reason}"
        unexplained = len(self.missing) - sum(len(v) for v in self.expected_missing.values())
        if self.expected_missing and unexplained:
            text += f"; {unexplained} other missing"
        return text


def _allowed_globals() -> list:
    """Numpy scalar, array and dtype constructors: MMCV/MMEngine ``meta`` holds numpy values (a
    best score, MMPose 1.x ``dataset_meta`` arrays: keypoint sigmas, colours). They rebuild
    values; anything an array holds goes through the same restricted unpickler."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "uint8", "bool")]
    # files pickled under numpy 1.x name these by their old module
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), _reconstruct,
            (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, *dtypes]


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


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def is_mmpose_topdown(keys) -> bool:
    """A ``backbone.`` part next to an MMPose pose head (after any ``module.`` wrapper)."""
    keys = [_strip_module(k) for k in keys]
    return any(k.startswith("backbone.") for k in keys) and any(k.startswith(MMPOSE_HEAD_PREFIXES) for k in keys)


def mmpose_to_timm(keys) -> dict[str, str]:
    """MMPose top-down backbone keys (``backbone.`` already stripped) -> timm's names: equal,
    except for a ``ResNetV1d`` (deep stem, see the module docstring). There MMPose's
    downsample of a stride-1 stage is ``[conv, bn]`` (``downsample.0/1``) where timm's
    ``resnet*d`` keeps an ``Identity`` in place of the average pool (``downsample.1/2``)."""
    keys = list(keys)
    if not any(_DEEP_STEM_KEY.fullmatch(k) for k in keys):
        return {k: k for k in keys}
    # blocks whose downsample starts with the conv (no average pool before it)
    conv_first = {m.group(1) for k in keys if (m := _DOWNSAMPLE_KEY.fullmatch(k)) and k == f"{m.group(1)}0.weight"}
    names = {}
    for key in keys:
        stem, down = _DEEP_STEM_KEY.fullmatch(key), _DOWNSAMPLE_KEY.fullmatch(key)
        if stem:
            names[key] = f"{_MMPOSE_DEEP_STEM[stem.group(1), stem.group(2)]}.{stem.group(3)}"
        elif down and down.group(1) in conv_first:
            index, rest = key[len(down.group(1)):].split(".", 1)
            names[key] = f"{down.group(1)}{int(index) + 1}.{rest}"
        else:
            names[key] = key
    return names


def _expected_missing(missing: list[str], own_keys, source_keys) -> dict[str, list[str]]:
    """The missing tensors of a timm HRNet that a pose HRNet's checkpoint cannot have: a group
    counts when the file is an HRNet's (it has stage 4) and holds none of the group's tensors
    (an ImageNet HRNet's file missing part of its head is missing it for real)."""
    if not any(k.startswith("stage4.") for k in source_keys):
        return {}
    last_stage4 = max((int(m.group(1)) for k in own_keys if (m := _HRNET_FUSE.match(k))), default=None)

    def low_res_fuse(key: str) -> bool:
        fuse = _HRNET_FUSE.match(key)
        return bool(fuse) and int(fuse.group(1)) == last_stage4 and int(fuse.group(2)) > 0

    groups: dict[str, list[str]] = {}
    for reason, member in ((HRNET_CLASSIFIER_REASON, lambda k: bool(_HRNET_CLASSIFIER.match(k))),
                           (HRNET_LOW_RES_FUSE_REASON, low_res_fuse)):
        names = [k for k in missing if member(k)]
        if names and not any(member(k) for k in source_keys):
            groups[reason] = names
    return groups


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling fails with many types; weights_only refuses code
        raise ConfigError(f"cannot read as a weights-only torch checkpoint ({exc})", path=path) from None
    return _unwrap(raw, path)


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike, *,
                          min_fraction: float = 0.0) -> InitReport:
    """Copy matching tensors of the checkpoint at ``path`` into ``backbone``.

    An MMPose top-down checkpoint (see the module docstring) contributes its ``backbone.``
    tensors, renamed to timm's names; its head is reported in :attr:`InitReport.head`.
    Raises :class:`ConfigError` when fewer than ``min_fraction`` of the backbone's tensors
    that the file's layout can provide match (a checkpoint of another architecture silently
    loading nothing is the usual mistake this guards against).
    """
    path = Path(path)
    file_state = _read_checkpoint(path)
    mmpose = is_mmpose_topdown(file_state)
    report = InitReport(path=str(path), layout="mmpose-topdown" if mmpose else "plain")
    source: dict[str, torch.Tensor] = {}
    for key, tensor in file_state.items():
        inner = _strip_module(key)
        if mmpose and not inner.startswith("backbone."):
            report.unused.append(inner)
            if inner.startswith(MMPOSE_HEAD_PREFIXES):
                report.head.append(inner)
            continue
        source[_strip(inner)] = tensor
    if mmpose:
        source = {new: source[old] for old, new in mmpose_to_timm(source).items()}
    own = backbone.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor in own.items():
        if key not in source:
            report.missing.append(key)
        elif source[key].shape != tensor.shape:
            report.shape_mismatch.append(key)
        else:
            to_load[key] = source[key]
            report.matched.append(key)
    report.unused = sorted(report.unused + [k for k in source if k not in own])
    report.head.sort()
    report.expected_missing = _expected_missing(report.missing, own, source)
    backbone.load_state_dict(to_load, strict=False)
    if report.fraction_of_layout < min_fraction:
        raise ConfigError(f"only {report.fraction_of_layout:.0%} of the backbone matched "
                          f"(need {min_fraction:.0%}): {report.summary()}", path=path)
    return report
