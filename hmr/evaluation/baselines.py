"""Reference predictors for comparison tables: the *mean-pose baseline*.

The baseline predicts SMPL's mean pose and shape (SPIN's ``smpl_mean_params.npz``, the
starting point of HMR's regressor) for every image. A trained model that does not clearly
beat it has learnt nothing about pose. Two ways to get it, with the same numbers for HMR:

- :func:`evaluate_mean_pose`, for any model type: :class:`MeanPoseModel` scored by
  :func:`hmr.evaluation.run.evaluate_model`, the path every checkpoint goes through (same
  crops, benchmarks, metrics and report), framed as the given checkpoint (its crop size, crop
  scale and camera focal length). Its camera is the mean one, so only the 2D benchmarks and
  the overlays depend on it; MPJPE, PA-MPJPE and PVE do not (root-relative, aligned, or in the
  model frame).
- :func:`mean_pose_checkpoint`, for HMR checkpoints (what ``hmr demo`` compares with): a copy
  of the checkpoint whose pose and shape decoders are zeroed, so the regressor stays at its
  mean parameters while the camera still comes from the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.core.geometry import rot6d_to_matrix, weak_perspective_to_translation
from hmr.evaluation.run import EvalOptions, eval_device, evaluate_model
from hmr.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from hmr.models.hmr import ModelConfig, default_mean_params_path
from hmr.models.prediction import Prediction
from hmr.models.regressor import MeanParams, load_mean_params


class MeanPoseModel(nn.Module):
    """``MeanPoseModel(mean, config, input_config)(img (B, 3, S, S))`` → a :class:`Prediction`
    of the mean pose, shape and camera for every image (the image is not looked at).
    ``config``: the model config of the network it stands in for (``img_size`` and
    ``focal_length_px`` turn the camera into ``cam_t``, as that network's would be)."""

    predicts = ("smpl",)

    def __init__(self, mean: MeanParams, config: ModelConfig, input_config: InputConfig):
        super().__init__()
        self.config, self.input_config = config, input_config
        self.register_buffer("pose_rotmat", rot6d_to_matrix(mean.pose6d.float().reshape(1, 24, 6)))  # (1, 24, 3, 3)
        self.register_buffer("betas", mean.betas.float().reshape(1, 10))
        self.register_buffer("cam", mean.cam.float().reshape(1, 3))

    def forward(self, img: torch.Tensor) -> Prediction:
        b = img.shape[0]
        cam = self.cam.expand(b, -1)
        cam_t = weak_perspective_to_translation(cam, self.config.focal_length_px, float(self.config.img_size))
        return Prediction(cam=cam, cam_t=cam_t, pose_rotmat=self.pose_rotmat.expand(b, -1, -1, -1),
                          betas=self.betas.expand(b, -1))


def checkpoint_mean_params(ckpt: dict[str, Any], path: str | os.PathLike,
                           mean_params: str | os.PathLike | None = None,
                           body_model: str | None = None) -> tuple[MeanParams, str]:
    """The mean parameters the baseline of checkpoint ``path`` predicts, and where they come
    from: ``mean_params`` (an ``smpl_mean_params.npz``) when given; else an HMR checkpoint's own
    (its regressor's starting point, so the baseline equals :func:`mean_pose_checkpoint`'s);
    else the file next to the body model (:func:`hmr.models.hmr.default_mean_params_path`),
    the one a run of any model type reads by default."""
    if mean_params:
        return load_mean_params(mean_params), str(mean_params)
    state = ckpt.get("model") if isinstance(ckpt.get("model"), dict) else {}
    keys = ("regressor.init_pose6d", "regressor.init_betas", "regressor.init_cam")
    if all(k in state for k in keys):
        try:
            return MeanParams(*(state[k].reshape(-1).float() for k in keys)), f"the regressor's of {path}"
        except (AttributeError, RuntimeError) as exc:
            raise ConfigError(f"checkpoint mean parameters unreadable: {exc}", path=path) from None
    default = default_mean_params_path(body_model)
    return load_mean_params(default), default


def mean_pose_model(checkpoint: str | os.PathLike, mean_params: str | os.PathLike | None = None,
                    body_model: str | None = None) -> tuple[MeanPoseModel, str]:
    """The baseline standing in for ``checkpoint`` (any model type), and where its mean comes from."""
    network, ckpt = load_model(checkpoint)  # checked as evaluation checks it; its config and input config
    mean, source = checkpoint_mean_params(ckpt, checkpoint, mean_params, body_model)
    return MeanPoseModel(mean, network.config, network.input_config).eval(), source


def evaluate_mean_pose(checkpoint: str | os.PathLike, bench_name: str, store_path: str | os.PathLike,
                       out_dir: str | os.PathLike, options: EvalOptions | None = None,
                       mean_params: str | os.PathLike | None = None) -> dict[str, Any]:
    """Score the mean-pose baseline of ``checkpoint`` (framed as it: crops, camera) on one
    benchmark, as :func:`hmr.evaluation.run.evaluate` scores the checkpoint itself; returns the
    summary written to ``out_dir/results.json``."""
    opts = options or EvalOptions()
    model, source = mean_pose_model(checkpoint, mean_params, opts.body_model)
    what = {"checkpoint": f"mean-pose baseline (mean parameters: {source}) framed as {checkpoint}",
            "checkpoint_step": -1}
    return evaluate_model(model.to(eval_device(opts)), bench_name, store_path, out_dir, opts, source=what)


def mean_pose_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a copy of HMR checkpoint ``src`` that always predicts the mean pose and shape
    (other model types: :func:`evaluate_mean_pose`)."""
    ckpt = load_checkpoint(src)
    state = dict(ckpt["model"])
    names = ("regressor.dec_pose.weight", "regressor.dec_pose.bias",
             "regressor.dec_betas.weight", "regressor.dec_betas.bias")
    missing = [n for n in names if n not in state]
    if missing:
        raise ConfigError(f"not an HMR checkpoint (no {missing[0]}): use evaluate_mean_pose for other model types",
                          path=src)
    for name in names:
        state[name] = torch.zeros_like(state[name])
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    payload["model"] = state
    for key in ("optimizer", "scheduler", "rng", "loss"):  # a baseline resumes nothing
        payload.pop(key, None)
    return save_checkpoint(dst, payload)
