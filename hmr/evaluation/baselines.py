"""Reference predictors for comparison tables.

``mean_pose_checkpoint`` turns any HMR checkpoint into the *mean-pose baseline*: its pose
and shape decoders are zeroed, so every image gets SMPL's mean parameters (the regressor's
starting point) and only the camera still comes from the network. A trained model that does
not clearly beat it has learnt nothing about pose.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hmr.models.checkpoint import load_checkpoint, save_checkpoint


def mean_pose_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a copy of checkpoint ``src`` that always predicts the mean pose and shape."""
    ckpt = load_checkpoint(src)
    state = dict(ckpt["model"])
    for name in ("regressor.dec_pose.weight", "regressor.dec_pose.bias",
                 "regressor.dec_betas.weight", "regressor.dec_betas.bias"):
        state[name] = torch.zeros_like(state[name])
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    payload["model"] = state
    for key in ("optimizer", "scheduler", "rng", "loss"):  # a baseline resumes nothing
        payload.pop(key, None)
    return save_checkpoint(dst, payload)
