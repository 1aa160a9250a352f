"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is one ``.pt`` file holding only tensors and plain Python values::

    {"format": "hmrkit-checkpoint", "version": 1,
     "config": {...},            # the full TrainConfig as nested dicts (rebuilds the model)
     "model": state_dict,        # the bare model (DDP wrapper removed)
     "objective": state_dict,    # loss modules: learnable Balanced-MSE noise sigma, ...
     "optimizer": ..., "scheduler": ...,
     "step": int,                # optimiser steps done
     "rng": {"python": ..., "numpy": ..., "torch": ByteTensor, "cuda": [ByteTensor, ...]},
     "metrics": {...}}           # last logged scalars (for humans)

Files are written under a temporary name and renamed, so a run killed at any moment leaves
either the previous checkpoint or the new one, never a truncated file.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmr.core.errors import ConfigError
from hmr.core.utils.atomic import atomic_path

FORMAT = "hmrkit-checkpoint"
VERSION = 1
LAST = "last.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(value: Any) -> Any:
    # weights_only loading may return lists where tuples were saved: random.setstate needs tuples
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuple(v) for v in value)
    return value


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


def step_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the periodic checkpoints in ``run_dir``, oldest first."""
    found = []
    for p in Path(run_dir).glob("step_*.pt"):
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest periodic checkpoints (``last.pt`` is never deleted)."""
    if keep <= 0:
        return
    for _, p in step_checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    last = Path(run_dir) / LAST
    if last.is_file():
        return last
    steps = step_checkpoints(run_dir)
    return steps[-1][1] if steps else None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the trained :class:`hmr.models.HMR` of a checkpoint, in eval mode.

    The mean parameters come from the checkpoint's own buffers and the backbone
    initialisation file is not read, so a checkpoint is self-contained.
    """
    from hmr.models import HMR, MeanParams, ModelConfig

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
    model = HMR(config, mean=mean, load_backbone_checkpoint=False)
    model.load_state_dict(state)
    return model.to(device).eval(), ckpt
