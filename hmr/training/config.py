"""Training configuration: dataclasses filled from TOML files in ``hmr/configs/``.

A config file has one table per dataclass below (``[model]``, ``[loss]``, ``[optim]``,
``[train]``, ``[data]``, ``[spin]``) plus an optional top-level ``base = "other.toml"``: the base file
(path relative to this one, or a named config) is read first and this file's values replace
its values key by key, so the benchmark matrix is a few small files over one base.
``hmr train CONFIG --show`` prints the merged result, each value with the file (or
override) that set it (:func:`show_config`).

Overrides on the command line use dotted keys and TOML values:
``optim.lr=1e-4``, ``loss.keypoints3d="l1"``, ``train.total_steps=10``; a value that is not
valid TOML is taken as a string (``data.mix=spin``). Unknown tables or keys are errors that
name the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmr.core.errors import ConfigError
from hmr.fitting.smplify import SMPLifyConfig
from hmr.models.backbone import check_backbone
from hmr.models.hmr import MODEL_TYPES, ModelConfig
from loaders.augment import AugmentConfig
from loaders.device_decode import DECODE_MODES
from loaders.occlusion import OcclusionConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
LOSS_KINDS = ("mse", "l1", "bmc", "bni", "gai")


@dataclass
class LossConfig:
    """Loss terms and weights; SPIN's defaults: 60 × (5·2D + 5·3D + 1·pose + 0.001·betas + cam)."""

    keypoints2d: str = "mse"
    keypoints3d: str = "mse"
    pose: str = "mse"
    betas: str = "mse"
    weight_keypoints2d: float = 5.0
    weight_keypoints3d: float = 5.0
    weight_pose: float = 1.0
    weight_betas: float = 0.001
    #: camera regulariser exp(-10 s)² keeping the weak-perspective scale positive (SPIN)
    weight_cam: float = 1.0
    #: the whole sum is multiplied by this (SPIN: 60)
    scale: float = 60.0
    #: mesh-regressing models (GraphCMR): weight of the per-vertex L1 terms (non-parametric and
    #: SMPL-regressor mesh); their mesh keypoint terms use the keypoint weights above
    weight_vertices: float = 1.0
    #: PARE: weight of the body-part segmentation cross-entropy (its PART_SEGM_LOSS_WEIGHT, 1;
    #: inside ``scale`` like the other terms); samples without SMPL ground truth get none
    weight_part_segmentation: float = 1.0
    #: weight of OpenPose-detector joints (``*_openpose`` in spin_49) in the keypoint terms;
    #: SPIN trains with 0 (openpose_train_weight) and the annotated joints at 1
    openpose_weight: float = 0.0
    #: project the 2D term with each sample's own focal length (its ``cam_intrinsics`` in crop
    #: pixels, where ``has_intrinsics``) instead of ``model.focal_length_px``: SPIN's 5000 px
    #: is a near-orthographic guess for unknown cameras; where the camera is known (synthetic
    #: renders, H36M, 3DHP, 3DPW, AGORA) the 2D keypoints carry its perspective, and fitting
    #: them with the wrong focal bends the 3D pose (CLIFF, Li et al. 2022, makes the same point)
    focal_from_intrinsics: bool = False
    #: Balanced MSE noise σ (all balanced terms), learnable with its own learning rate
    noise_sigma: float = 1.0
    learnable_sigma: bool = True
    sigma_lr: float = 1e-2
    #: training-label distributions of the ``gai`` / ``bni`` terms (npz from hmr.training.label_stats.fit_label_distributions)
    label_distribution_file: str = ""


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 5e-5
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    scheduler: str = "constant"  # constant | cosine | step
    warmup_steps: int = 0
    step_milestones: list[int] = field(default_factory=list)
    step_gamma: float = 0.1
    grad_clip_norm: float = 0.0  # 0 = off
    #: Adam/AdamW as one fused kernel (CPU and CUDA); false = PyTorch's per-tensor loop
    fused: bool = True


@dataclass
class TrainConfig:
    total_steps: int = 100_000
    batch_size: int = 64  # per process
    seed: int = 0
    device: str = ""  # "" = cuda if available, else cpu
    precision: str = "auto"  # auto (bf16 on CUDA and on CPUs with bf16 units) | bf16 | fp32
    channels_last: bool = True  # NHWC images and weights (faster on CUDA and on CPU)
    log_every: int = 50
    checkpoint_every: int = 2_000
    keep_checkpoints: int = 3
    #: body model folder for training labels ("" = $HMR_BODY_MODEL or the mannequin)
    body_model: str = ""
    #: initialise the whole network from this hmrkit checkpoint (fine-tuning; SPIN from HMR)
    init_from: str = ""
    #: validation during training: every ``eval_every`` steps (0 = never) rank 0 runs
    #: ``hmr evaluate`` on benchmark ``eval_bench`` with store ``eval_data`` (first
    #: ``eval_max_samples`` samples, 0 = all) and logs its numbers as ``eval/<bench>/<metric>``
    eval_every: int = 0
    eval_bench: str = "3dpw"
    eval_data: str = ""
    eval_max_samples: int = 0
    #: every process writes the sample keys of each step to ``samples/rank_RRRRR.jsonl``
    #: (hmr.training.sample_log): an audit of how the data is split over ranks and resumed
    log_samples: bool = False


@dataclass
class DataConfig:
    """What to train on; interpreted by :func:`hmr.training.data.build_batches`."""

    source: str = "shards"  # shards | random
    #: folder or URL prefix (http(s)://, s3://, gs://) holding the shard sets
    #: (``<root>/<set>/index.json``), for ``mix``
    root: str = ""
    #: a loaders mix preset (``mix1`` .. ``mix11``) or a mix TOML/JSON file
    mix: str = ""
    #: explicit shard-set folders, equal ratios (instead of ``mix``)
    shards: list[str] = field(default_factory=list)
    convention: str = "spin_49"
    num_workers: int = 4
    augment: bool = True
    #: geometric/colour augmentation settings by name (loaders.augment.AugmentConfig), e.g.
    #: {flip_prob = 0.5, rotation_prob = 0.0}; unnamed ones keep SPIN's defaults
    augmentation: dict = field(default_factory=dict)
    shuffle_buffer: int = 1000
    #: true: each (rank, worker) draws shards at random, forever (an epoch is a nominal length);
    #: false: each epoch reads every shard of one set once, split over ranks × workers, and
    #: ends when every rank has the same count of batches (loaders.build.exact_epoch_batches)
    resampled: bool = True
    #: MiB of decoded samples kept in memory across epochs (loaders.cache; 0 = off). Pays
    #: with num_workers = 0 (workers restart every epoch and start empty): small machines
    cache_mb: int = 0
    #: occlusion-style augmentations: probabilities by name (loaders.occlusion.OcclusionConfig)
    occlusion: dict = field(default_factory=dict)
    #: where each crop's JPEG is decoded and warped: "cpu" (the loader, OpenCV) or "device" (the
    #: training device, torchvision's decode_jpeg + grid_sample: loaders.device_decode; the
    #: same labels, pixels within docs/loaders.md's tolerance; refuses occlusion augmentations)
    decode_on: str = "cpu"
    #: random source: distinct batches, cycled (labels from the body model)
    random_batches: int = 8


@dataclass
class SpinConfig:
    """SMPLify in the training loop (SPIN, Kolotouros et al. 2019); see :mod:`hmr.training.spin`.

    Defaults are SPIN's: two Adam stages of 100 iterations at lr 1e-2, Geman-McClure σ 100 px,
    prior weights 4.78² (GMM pose), 15.2² (elbows/knees), 5² (shape), fits in a 224-px crop
    frame, and a fit supervises only if its reprojection loss < 100 (or GT SMPL exists).
    """

    enabled: bool = False
    # SMPLify's own settings: the defaults live once, in hmr.fitting.smplify.SMPLifyConfig.
    camera_iters: int = SMPLifyConfig.camera_iters
    body_iters: int = SMPLifyConfig.body_iters
    lr: float = SMPLifyConfig.lr
    sigma_px: float = SMPLifyConfig.sigma_px
    pose_prior_weight: float = SMPLifyConfig.pose_prior_weight
    angle_prior_weight: float = SMPLifyConfig.angle_prior_weight
    shape_prior_weight: float = SMPLifyConfig.shape_prior_weight
    #: a fit supervises where its reprojection loss is below this (SPIN: 100, for 49 joints)
    threshold: float = 100.0
    #: keypoints and K are rescaled to a crop of this side before fitting (SPIN's weights' frame)
    fit_crop_px: float = 224.0
    #: fit with the sample's own camera where it has one (else the network's crop camera)
    use_intrinsics: bool = True
    #: GMM pose prior: SPIN's gmm_08.pkl or ours (.npz); "" = found or fitted automatically
    pose_prior: str = ""
    #: shard-set name → SPIN static fits (*_fits.npy) to start its table from; sets not named
    #: here start from their store's SMPL (mean pose where none)
    static_fits: dict = field(default_factory=dict)
    #: fold every rank's improvements into the tables every this many steps (0 = each epoch)
    merge_every: int = 0
    #: fits table (SET_DIR/fits/<table>): "" = this run's own (named after the run folder), so
    #: runs on the same shards never share fits; a name = that table, shared on purpose
    table: str = ""


@dataclass
class Config:
    name: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    spin: SpinConfig = field(default_factory=SpinConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        """Check every value (type, range, finiteness, choices) and the combinations;
        :class:`ConfigError` names the key. The device's presence is checked separately
        (:func:`check_device`): a config may be shown or checked on a machine without it."""
        check_values(self)
        if self.train.eval_every and not self.train.eval_data:
            raise ConfigError("train.eval_every needs train.eval_data (a test store)")
        if self.spin.enabled and self.data.source != "shards":
            raise ConfigError("spin.enabled needs data.source = 'shards' (fits are kept per shard sample)")
        if self.spin.enabled and self.model.type != "hmr":
            raise ConfigError(f"spin.enabled needs model.type = 'hmr' (SPIN refines HMR's SMPL), not {self.model.type!r}")
        self._check_decode_on()
        return self

    def _check_decode_on(self) -> None:
        data = self.data
        if data.decode_on != "device":
            return
        if data.source != "shards":
            raise ConfigError(f"data.decode_on = 'device' decodes shard JPEGs; data.source = {data.source!r} has none")
        occluding = sorted(k for k, v in data.occlusion.items() if k != "occluder_images" and v)
        if data.augment and occluding:
            # they draw on decoded pixels in the loader; the device path cannot reproduce them
            raise ConfigError(f"data.decode_on = 'device' cannot apply data.occlusion {occluding}: "
                              "set them to 0 or decode on the cpu")


SECTIONS = {"model": ModelConfig, "loss": LossConfig, "optim": OptimConfig, "train": TrainConfig,
            "data": DataConfig, "spin": SpinConfig}


# --------------------------------------------------------------------------------------
# Value checks: every key's type, range and choices, each error naming the key
# --------------------------------------------------------------------------------------
def _at_least(low: float) -> tuple:
    return (lambda v: v >= low), f"at least {low}"


def _above(low: float) -> tuple:
    return (lambda v: v > low), f"above {low}"


def _within(low: float, high: float, *, high_inclusive: bool = False) -> tuple:
    if high_inclusive:
        return (lambda v: low <= v <= high), f"in [{low}, {high}]"
    return (lambda v: low <= v < high), f"in [{low}, {high})"


#: section.key -> (test, what it must be); keys not named here only have their type checked
RANGES: dict[str, tuple] = {
    "model.img_size": _at_least(16), "model.num_iters": _at_least(1), "model.hidden": _at_least(1),
    "model.dropout": _within(0, 1), "model.drop_path_rate": _within(0, 1),
    "model.backbone_min_match": _within(0, 1, high_inclusive=True), "model.focal_length_px": _above(0),
    **{f"loss.{k}": _at_least(0) for k in ("weight_keypoints2d", "weight_keypoints3d", "weight_pose",
                                          "weight_betas", "weight_cam", "scale", "openpose_weight", "sigma_lr",
                                          "weight_vertices", "weight_part_segmentation")},
    "model.graph_channels": _at_least(64), "model.graph_layers": _at_least(0), "model.mesh_level": _within(1, 4, high_inclusive=True),
    **{f"model.pare_{k}": _at_least(1) for k in ("branch_channels", "branch_layers", "smpl_features")},
    "loss.noise_sigma": _above(0),
    "optim.lr": _above(0), "optim.weight_decay": _at_least(0), "optim.momentum": _within(0, 1, high_inclusive=True),
    "optim.warmup_steps": _at_least(0), "optim.step_gamma": _above(0), "optim.grad_clip_norm": _at_least(0),
    "train.total_steps": _at_least(1), "train.batch_size": _at_least(1), "train.seed": _within(0, 2**31),
    "train.log_every": _at_least(1), "train.checkpoint_every": _at_least(1), "train.keep_checkpoints": _at_least(0),
    "train.eval_every": _at_least(0), "train.eval_max_samples": _at_least(0),
    "data.num_workers": _at_least(0), "data.shuffle_buffer": _at_least(0), "data.cache_mb": _at_least(0),
    "data.random_batches": _at_least(1),
    **{f"spin.{k}": _at_least(0) for k in ("camera_iters", "body_iters", "merge_every", "pose_prior_weight",
                                          "angle_prior_weight", "shape_prior_weight")},
    **{f"spin.{k}": _above(0) for k in ("lr", "sigma_px", "threshold", "fit_crop_px")},
}
#: timm's global poolings (CNN and transformer heads) and ours ("flatten")
POOLINGS = ("", "flatten", "avg", "max", "avgmax", "catavgmax", "fast", "token", "map")
CHOICES: dict[str, tuple] = {
    **{f"loss.{term}": LOSS_KINDS for term in ("keypoints2d", "keypoints3d", "pose", "betas")},
    "optim.optimizer": ("adam", "adamw", "sgd"), "optim.scheduler": ("constant", "cosine", "step"),
    "train.precision": ("auto", "bf16", "fp32"), "data.source": ("shards", "random"), "model.pooling": POOLINGS,
    "model.type": MODEL_TYPES, "data.decode_on": DECODE_MODES,
}
DEVICES = ("", "cpu", "cuda", "mps")  # and "cuda:N"


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the field type ``hint`` (bool, int, float, str, list[...],
    dict), or None."""
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return None if isinstance(value, bool) else "true or false"
    if origin is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "int"
    if origin is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "float"
        return None if math.isfinite(value) else "a finite float (not nan or inf)"
    if origin is str:
        return None if isinstance(value, str) else "str"
    if origin is dict:
        return None if isinstance(value, dict) else "a table {key = value, ...}"
    if origin is list:
        if not isinstance(value, list):
            return "a list [...]"
        (item,) = typing.get_args(hint) or (Any,)
        if item is Any or all(_type_problem(v, item) is None for v in value):
            return None
        return "a list of " + {int: "int", float: "finite float", str: "str"}.get(item, str(item))
    return None


def check_values(config: Config) -> None:
    """Raise :class:`ConfigError` naming the first key whose value has the wrong type, is not
    finite, is out of range or is not one of its choices."""
    if not isinstance(config.name, str) or config.name in (".", "..") or any(c in config.name for c in "/\\\0"):
        raise ConfigError(f"name = {config.name!r}: must be a plain folder name (the run folder runs/<name>)")
    for section, cls in SECTIONS.items():
        values = getattr(config, section)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, value = f"{section}.{f.name}", getattr(values, f.name)
            problem = _type_problem(value, hints[f.name])
            if problem:
                raise ConfigError(f"{key} must be {problem}, got {value!r}")
            if key in RANGES and not RANGES[key][0](value):
                raise ConfigError(f"{key} must be {RANGES[key][1]}, got {value!r}")
            if key in CHOICES and value not in CHOICES[key]:
                raise ConfigError(f"{key} = {value!r}: choose one of {', '.join(map(repr, CHOICES[key]))}")
    for key, cls in (("augmentation", AugmentConfig), ("occlusion", OcclusionConfig)):
        _check_table(getattr(config.data, key), cls, f"data.{key}")
    milestones = config.optim.step_milestones
    if any(m < 1 for m in milestones) or milestones != sorted(set(milestones)):
        raise ConfigError(f"optim.step_milestones = {milestones}: must be increasing steps >= 1")
    device = config.train.device
    if device not in DEVICES and not re.fullmatch(r"cuda:\d+", device):
        raise ConfigError(f"train.device = {device!r}: choose '' (cuda if present, else cpu), cpu, cuda, "
                          "cuda:N or mps")
    check_backbone(config.model.backbone, config.model.backbone_args)


def _check_table(values: dict, cls: type, where: str) -> None:
    """A ``{name = value}`` table read into ``cls`` (the loaders' augmentation settings): known
    names, their types, numbers at least 0, probabilities at most 1."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{where}.{key}: unknown (known: {', '.join(sorted(hints))})")
        problem = _type_problem(value, hints[key])
        if problem:
            raise ConfigError(f"{where}.{key} must be {problem}, got {value!r}")
        high = 1 if cls is OcclusionConfig or key.endswith("_prob") else math.inf
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 <= value <= high:
            raise ConfigError(f"{where}.{key} must be " + ("in [0, 1]" if high == 1 else "at least 0")
                              + f", got {value!r}")


def check_device(config: Config) -> None:
    """Refuse a ``train.device`` this machine does not have (before any work)."""
    import torch

    device = config.train.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {device!r}, but PyTorch sees no CUDA device on this machine "
                          "(set train.device = \"cpu\" or \"\")")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"train.device = {device!r}, but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device = 'mps', but PyTorch sees no MPS device on this machine")


def list_configs() -> list[str]:
    """Names of the configs shipped in ``hmr/configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml") if not p.name.startswith("_"))


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    named = CONFIG_DIR / f"{p.name.removesuffix('.toml')}.toml"
    if named.is_file():
        return named
    raise ConfigError(f"no config file {str(p)!r} and no named config of that name "
                      f"(named configs: {', '.join(list_configs())})")


def _read_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The chain of config files ``path`` inherits from, base first: (file, its own values)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError("configs inherit from each other in a cycle", path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML ({exc})", path=path) from None
    base = data.pop("base", None)
    if base is None:
        return [(path, data)]
    if not isinstance(base, str):
        raise ConfigError(f"base = {base!r}: must be a config name or file", path=path)
    base_path = path.parent / base if (path.parent / base).is_file() else resolve_config_path(base)
    return [*_read_layers(base_path, (*seen, path)), (path, data)]


def _merge_layers(layers: list[tuple[Path, dict[str, Any]]],
                  origins: dict[str, str] | None = None) -> dict[str, Any]:
    """Later layers replace earlier ones key by key within a table; ``origins`` (if given)
    receives, per ``section.key`` (or top-level key), the file that set it last."""
    merged: dict[str, Any] = {}
    for path, data in layers:
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
            if origins is not None:
                keys = [f"{key}.{k}" for k in value] if isinstance(value, dict) else [key]
                origins.update(dict.fromkeys(keys, _display_path(path)))
    return merged


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    return _merge_layers(_read_layers(path, seen))


def _display_path(path: Path) -> str:
    """A shipped config as ``hmr/configs/NAME.toml``, any other file relative to the working
    folder when it lies below it, else absolute."""
    path = path.resolve()
    if path.parent == CONFIG_DIR.resolve():
        return f"hmr/configs/{path.name}"
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if parts[0] == "name" and len(parts) > 1:
            raise ConfigError(f"override {item!r}: name is a single value, not a table (use name=VALUE)")
        if not sep or len(parts) != 2:
            if sep and parts == ["name"]:
                data["name"] = _parse_value(value.strip())
                continue
            raise ConfigError(f"override {item!r} must look like section.key=value")
        table = data.setdefault(parts[0], {})
        if not isinstance(table, dict):
            raise ConfigError(f"override {item!r}: '{parts[0]}' is not a table")
        table[parts[1]] = _parse_value(value.strip())
    return data


def _build(cls, values: Any, where: str, path: Path | None):
    if not isinstance(values, dict):
        raise ConfigError(f"[{where}] must be a table of keys, got {values!r}", path=path)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"[{where}] has unknown keys {unknown} (known: {sorted(known)})", path=path)
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[key] = value  # types, ranges and choices: check_values
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    data = dict(data)
    unknown = sorted(set(data) - set(SECTIONS) - {"name"})
    if unknown:
        raise ConfigError(f"unknown tables {unknown} (known: {sorted(SECTIONS)})", path=path)
    sections = {name: _build(cls, data.get(name, {}), name, path) for name, cls in SECTIONS.items()}
    name = data.get("name") or (path.stem if path else "")
    if not isinstance(name, str):
        raise ConfigError(f"name = {name!r}: must be a string", path=path)
    try:
        return Config(name=name, **sections).validate()
    except ConfigError as exc:
        if exc.path is not None or path is None:
            raise
        raise ConfigError(exc.message, path=path) from None


def load_config(name_or_path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """Read a config file (or named config) and apply ``section.key=value`` overrides."""
    path = resolve_config_path(name_or_path)
    data = apply_overrides(_read_toml(path), list(overrides or []))
    config = config_from_dict(data, path)
    check_device(config)
    return config


def config_with_origins(name_or_path: str | os.PathLike,
                        overrides: list[str] | None = None) -> tuple[Config, dict[str, str], list[str]]:
    """Like :func:`load_config`, and also where each value came from: a dict from
    ``section.key`` (and ``name``) to the config file that set it last, ``"override"`` for a
    command-line ``key=value``, or ``"default"`` (the dataclass default in this module or the
    model's); and the inheritance chain, base first."""
    path = resolve_config_path(name_or_path)
    layers = _read_layers(path)
    origins: dict[str, str] = {}
    data = _merge_layers(layers, origins)
    data = apply_overrides(data, list(overrides or []))  # checks each item's form
    origins.update((item.partition("=")[0].strip(), "override") for item in overrides or [])
    config = config_from_dict(data, path)
    origins.setdefault("name", "file name")
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            for key in values:
                origins.setdefault(f"{section}.{key}", "default")
    return config, origins, [_display_path(p) for p, _ in layers]


def _toml_value(value: Any) -> str:
    """One value as inline TOML (tables inline too, so each key stays on one line)."""
    import tomli_w

    if isinstance(value, dict):
        items = ", ".join(f"{tomli_w.dumps({k: 0}).split(' = ')[0]} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().split(" = ", 1)[1]


def show_config(name_or_path: str | os.PathLike, overrides: list[str] | None = None) -> str:
    """The merged config as TOML, each value followed by a comment naming its origin
    (``hmr train CONFIG --show``). The text reads back to the same config."""
    config, origins, chain = config_with_origins(name_or_path, overrides)
    lines = [f"# config {config.name!r}: " + " -> ".join([*chain, *(["overrides"] if overrides else [])]),
             "# after each value: the file (or override) that set it; default = the dataclass default",
             f"name = {_toml_value(config.name)}  # {origins['name']}"]
    for section, values in config.to_dict().items():
        if not isinstance(values, dict):
            continue
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            origin = origins[f"{section}.{key}"]
            if value is None:  # TOML has no null: shown, commented out
                lines.append(f"# {key} = (unset)  # {origin}")
            else:
                lines.append(f"{key} = {_toml_value(value)}  # {origin}")
    return "\n".join(lines) + "\n"
