"""Model checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is one ``.pt`` file holding only tensors and plain Python values::

    {"format": "hmrkit-checkpoint", "version": 1,
     "config": {...},            # the full TrainConfig as nested dicts (rebuilds the model)
     "model": state_dict,        # the bare model (DDP wrapper removed)
     "input_config": {...},      # what the network is fed (hmr.core.crop.InputConfig)
     "objective": state_dict,    # loss modules: learnable Balanced-MSE noise sigma, ...
     "optimizer": ..., "scheduler": ...,
     "step": int,                # optimiser steps done
     "rng": {"python": ..., "numpy": ..., "torch": ByteTensor, "cuda": [ByteTensor, ...]},
     "metrics": {...}}           # last logged scalars (for humans)

Only ``config["model"]`` and ``model`` are needed to rebuild the network (:func:`load_model`);
the rest is the training run's (:mod:`hmr.training.run_folder` keeps a run's files and RNG
state). Checkpoints written before ``input_config`` existed record the crop scale as
``crop_scale`` (absent: not recorded) and the size as ``config["model"]["img_size"]``.

Files are written under a temporary name and renamed, so a run killed at any moment leaves
either the previous checkpoint or the new one, never a truncated file. The temporary file a
killed run leaves (``step_N.pt.partial-<pid>``, often hundreds of MB) is removed by the next
save or load in that folder once its process is gone (``--resume`` loads, then saves).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.utils.atomic import atomic_path, remove_partials_in
from hmr.models.backbone import check_backbone
from hmr.models.hmr import MODEL_TYPES, ModelConfig, create_model
from hmr.models.regressor import MeanParams

FORMAT = "hmrkit-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see the module docstring) atomically to ``path``."""
    path = Path(path)
    remove_stale_checkpoint_partials(path.parent)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    return path


def remove_stale_checkpoint_partials(folder: str | os.PathLike) -> int:
    """Remove the ``*.partial-<pid>`` files of dead processes in a checkpoint folder (a run
    killed while saving); a folder we may not write (shared, read-only) is left alone."""
    with contextlib.suppress(OSError):
        return remove_partials_in(Path(folder)) if Path(folder).is_dir() else 0
    return 0


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    remove_stale_checkpoint_partials(path.parent)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, pickled code refused by weights_only, ...
        raise ConfigError(f"cannot read checkpoint ({type(exc).__name__}: {exc})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ConfigError("not an hmrkit checkpoint (no 'format' marker)", path=path)
    if ckpt.get("version") != VERSION:
        raise ConfigError(f"checkpoint version {ckpt.get('version')} is not supported (need {VERSION})", path=path)
    return ckpt


def checkpoint_input_config(ckpt: dict[str, Any], img_size: int) -> InputConfig:
    """The :class:`InputConfig` a checkpoint records (older ones: its ``crop_scale`` and the
    model's ``img_size``)."""
    if "input_config" in ckpt:
        return InputConfig.from_dict(dict(ckpt["input_config"]))
    scale = ckpt.get("crop_scale")
    return InputConfig(size_px=img_size, crop_scale=float(scale) if scale else None)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the trained network (:class:`hmr.models.HMR`, ``GraphCMR``, as ``model.type`` says) of a checkpoint, in eval mode, with its
    input config; returns ``(model, checkpoint dict)``.

    The mean parameters come from the checkpoint's own buffers and the backbone
    initialisation file is not read, so a checkpoint is self-contained. Its model config is
    checked by :func:`checkpoint_model_config`; weights holding NaN or inf are refused.
    """
    ckpt = load_checkpoint(path)
    config = checkpoint_model_config(ckpt, path)
    state = ckpt.get("model")
    bad = next((k for k, v in (state.items() if isinstance(state, dict) else ())
                if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:  # a diverged run: every prediction would be NaN
        raise ConfigError(f"checkpoint weights '{bad}' hold NaN or inf (a diverged run?)", path=path, record=bad)
    try:
        if config.type in ("graphcmr", "graphormer"):  # the coarse graph is in the checkpoint's own buffers
            from hmr.models.graphcmr import GraphMesh

            built = {"mesh": GraphMesh.from_state(state)}
        elif config.type == "pare":  # no mean parameters: PARE regresses them outright
            built = {}
        else:
            built = {"mean": MeanParams(state["regressor.init_pose6d"][0], state["regressor.init_betas"][0],
                                        state["regressor.init_cam"][0])}
    except (KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"checkpoint model lacks {exc}", path=path) from None
    try:
        input_config = checkpoint_input_config(ckpt, config.img_size)
        model = create_model(config, **built, load_backbone_checkpoint=False, input_config=input_config)
        model.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError, AssertionError) as exc:  # untrusted content
        raise ConfigError(f"checkpoint model cannot be rebuilt: {type(exc).__name__}: {exc}", path=path) from None
    return model.to(device).eval(), ckpt


#: ``[model]`` keys a checkpoint may not set: files its run read (the network is rebuilt from
#: the checkpoint's own tensors, so these are never needed to load it)
FILE_KEYS = ("backbone_checkpoint", "mean_params")
#: ``[model]`` integer keys and their smallest sane value
MIN_VALUES = {"img_size": 16, "num_iters": 1, "hidden": 1, "graph_channels": 64, "graph_layers": 0, "mesh_level": 1,
              "pare_branch_channels": 1, "pare_branch_layers": 1, "pare_smpl_features": 1}


def checkpoint_model_config(ckpt: dict[str, Any], path: str | os.PathLike) -> ModelConfig:
    """The checkpoint's ``config["model"]``, trusted no further than a training config: unknown
    keys and recorded file paths (:data:`FILE_KEYS`) are dropped; every other value must have
    its field's type; the backbone name and ``backbone_args`` pass
    :func:`hmr.models.backbone.check_backbone`, so a checkpoint cannot make timm download
    (``pretrained``, ``hf-hub:`` names) or read a file (``checkpoint_path``, ``local-dir:``)."""
    config = ckpt.get("config")
    table = config.get("model", {}) if isinstance(config, dict) else None
    if not isinstance(table, dict):
        raise ConfigError("checkpoint has no config['model'] table", path=path, record="config.model")
    defaults, values = ModelConfig(), {}
    for key, value in table.items():
        if key not in ModelConfig.__dataclass_fields__ or key in FILE_KEYS:
            continue
        default = getattr(defaults, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        bad = type(value) is not type(default) or (isinstance(value, float) and not math.isfinite(value))
        if bad or (key in MIN_VALUES and value < MIN_VALUES[key]):
            raise ConfigError(f"config.model.{key} = {value!r} is not a valid {type(default).__name__}",
                              path=path, record=f"config.model.{key}")
        values[key] = value
    if values.get("type", defaults.type) not in MODEL_TYPES:
        raise ConfigError(f"config.model.type = {values['type']!r} is not one of {list(MODEL_TYPES)}",
                          path=path, record="config.model.type")
    try:
        check_backbone(values.get("backbone", defaults.backbone), values.get("backbone_args", {}),
                       where="config.model")
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path) from None
    return ModelConfig(**values)
