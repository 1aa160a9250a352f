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
either the previous checkpoint or the new one, never a truncated file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.utils.atomic import atomic_path
from hmr.models.hmr import HMR, ModelConfig
from hmr.models.regressor import MeanParams

FORMAT = "hmrkit-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see the module docstring) atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
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
    """Rebuild the trained :class:`hmr.models.HMR` of a checkpoint, in eval mode, with its
    input config; returns ``(model, checkpoint dict)``.

    The mean parameters come from the checkpoint's own buffers and the backbone
    initialisation file is not read, so a checkpoint is self-contained.
    """
    ckpt = load_checkpoint(path)
    cfg_dict = dict(ckpt["config"].get("model", {}))
    known = set(ModelConfig.__dataclass_fields__)
    config = ModelConfig(**{k: v for k, v in cfg_dict.items() if k in known})
    state = ckpt["model"]
    try:
        mean = MeanParams(state["regressor.init_pose6d"][0], state["regressor.init_betas"][0],
                          state["regressor.init_cam"][0])
    except KeyError as exc:
        raise ConfigError(f"checkpoint model lacks {exc}", path=path) from None
    input_config = checkpoint_input_config(ckpt, config.img_size)
    model = HMR(config, mean=mean, load_backbone_checkpoint=False, input_config=input_config)
    model.load_state_dict(state)
    return model.to(device).eval(), ckpt
