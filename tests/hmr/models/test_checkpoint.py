"""Checkpoints carry the model's input config; older ones give it from their crop_scale."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from hmr.core.crop import InputConfig
from hmr.core.errors import ConfigError
from hmr.models import HMR, ModelConfig
from hmr.models.checkpoint import load_model, save_checkpoint
from tests.fixtures.training import write_mean_params


def _model(tmp_path, input_config=None):
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=32,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    return config, HMR(config, input_config=input_config)


def test_the_input_config_travels_with_the_weights(tmp_path):
    net_input = InputConfig(size_px=64, crop_scale=1.3)
    config, model = _model(tmp_path, net_input)
    path = save_checkpoint(tmp_path / "ckpt.pt", {"config": {"model": asdict(config)}, "model": model.state_dict(),
                                                  "input_config": model.input_config.to_dict()})
    assert torch.load(path, weights_only=True)["input_config"]["crop_scale"] == 1.3
    loaded, _ = load_model(path)
    assert loaded.input_config == net_input


def test_older_checkpoints_give_their_crop_scale_or_none(tmp_path):
    config, model = _model(tmp_path)
    assert model.input_config == InputConfig(size_px=64)  # default: the model's size, scale not recorded
    base = {"config": {"model": asdict(config)}, "model": model.state_dict()}
    framed, _ = load_model(save_checkpoint(tmp_path / "a.pt", {**base, "crop_scale": 1.2}))
    plain, _ = load_model(save_checkpoint(tmp_path / "b.pt", base))
    assert framed.input_config == InputConfig(size_px=64, crop_scale=1.2)
    assert plain.input_config.crop_scale is None


def test_an_input_size_other_than_the_models_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="img_size"):
        _model(tmp_path, InputConfig(size_px=224))
