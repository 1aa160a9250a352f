"""HMR's iterative error-feedback (IEF) regressor, initialised from SMPL mean parameters.

Input: a pooled image feature ``(B, C)``. State: the current estimate
``θ = [pose6d (144), betas (10), cam (3)]`` (157 numbers), starting from the mean parameters of
``smpl_mean_params.npz`` (SPIN's file: ``pose`` (144,) in SPIN's interleaved 6D layout, see
:mod:`hmr.core.geometry`; ``shape`` (10,); ``cam`` (3,) = [s, tx, ty]). Each of the ``num_iters``
iterations (3, as in HMR and SPIN) feeds ``[feature, θ]`` through two fully connected layers
of width ``hidden`` with dropout and adds the predicted correction to ``θ``. The three output
layers start near zero (Xavier weights with gain 0.01, as SPIN; biases 0, where SPIN keeps
PyTorch's default) so the untrained model predicts close to the mean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hmr.core.errors import BodyModelError

NUM_JOINTS = 24  # SMPL: root + 23 body joints
POSE6D_DIM = NUM_JOINTS * 6
BETAS_DIM = 10
CAM_DIM = 3
MEAN_PARAM_SHAPES = {"pose": (POSE6D_DIM,), "shape": (BETAS_DIM,), "cam": (CAM_DIM,)}


@dataclass
class MeanParams:
    pose6d: torch.Tensor  # (144,)
    betas: torch.Tensor  # (10,)
    cam: torch.Tensor  # (3,)


def load_mean_params(path: str | os.PathLike) -> MeanParams:
    """Read SPIN's ``smpl_mean_params.npz`` (no pickles allowed)."""
    path = Path(path)
    if not path.is_file():
        raise BodyModelError("smpl_mean_params.npz not found", path=path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k], dtype=np.float32).reshape(-1) for k in MEAN_PARAM_SHAPES}
    except KeyError as exc:
        raise BodyModelError(f"missing key {exc} (expected pose, shape, cam)", path=path) from None
    except (ValueError, OSError) as exc:
        raise BodyModelError(f"not a readable npz ({exc})", path=path) from None
    for key, shape in MEAN_PARAM_SHAPES.items():
        if arrays[key].shape != shape or not np.isfinite(arrays[key]).all():
            raise BodyModelError(f"'{key}' must be {shape} finite numbers, got {arrays[key].shape}",
                                 path=path)
    return MeanParams(*(torch.from_numpy(arrays[k]) for k in ("pose", "shape", "cam")))


class IterativeRegressor(nn.Module):
    """``forward(features (B, C)) -> list of (pose6d (B, 144), betas (B, 10), cam (B, 3))``,
    one triple per iteration (the last is the prediction)."""

    def __init__(self, feature_dim: int, mean: MeanParams, *, hidden: int = 1024,
                 num_iters: int = 3, dropout: float = 0.5):
        super().__init__()
        state_dim = POSE6D_DIM + BETAS_DIM + CAM_DIM
        self.num_iters = num_iters
        self.fc1 = nn.Linear(feature_dim + state_dim, hidden)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(dropout)
        self.dec_pose = nn.Linear(hidden, POSE6D_DIM)
        self.dec_betas = nn.Linear(hidden, BETAS_DIM)
        self.dec_cam = nn.Linear(hidden, CAM_DIM)
        for layer in (self.dec_pose, self.dec_betas, self.dec_cam):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
            nn.init.zeros_(layer.bias)
        self.register_buffer("init_pose6d", mean.pose6d.reshape(1, -1).clone())
        self.register_buffer("init_betas", mean.betas.reshape(1, -1).clone())
        self.register_buffer("init_cam", mean.cam.reshape(1, -1).clone())

    def forward(self, features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        batch = features.shape[0]
        pose6d = self.init_pose6d.expand(batch, -1)  # (B, 144)
        betas = self.init_betas.expand(batch, -1)  # (B, 10)
        cam = self.init_cam.expand(batch, -1)  # (B, 3)
        outputs = []
        for _ in range(self.num_iters):
            x = torch.cat([features, pose6d.to(features.dtype), betas.to(features.dtype),
                           cam.to(features.dtype)], dim=1)  # (B, C + 157)
            x = self.drop1(torch.relu(self.fc1(x)))
            x = self.drop2(torch.relu(self.fc2(x)))
            # The state accumulates in float32 even under bf16 autocast.
            pose6d = pose6d + self.dec_pose(x).float()
            betas = betas + self.dec_betas(x).float()
            cam = cam + self.dec_cam(x).float()
            outputs.append((pose6d, betas, cam))
        return outputs
