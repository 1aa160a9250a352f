"""The network's input: crop geometry and the input config (hmr.core.crop)."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.crop import (
    DEFAULT_CROP_SCALE, IMAGENET_MEAN, IMAGENET_STD, InputConfig, crop_person, person_affine,
)
from hmr.core.errors import ConfigError


def test_person_affine_maps_box_onto_crop():
    m = person_affine(np.array([100.0, 50.0, 40.0, 80.0]), 64, 1.0)  # square side 80 around (120, 90)
    corners = np.array([[80 + 0.5 * 80 / 64, 50 + 0.5 * 80 / 64, 1.0], [120, 90, 1.0]])
    uv = corners @ m.T
    np.testing.assert_allclose(uv, [[0.0, 0.0], [31.5, 31.5]], atol=1e-9)


def test_crop_person_is_rgb_and_black_outside_the_image():
    bgr = np.zeros((40, 60, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    crop = crop_person(bgr, np.array([0.0, 0.0, 60.0, 40.0]), 30, 2.0)  # twice the box: borders outside
    assert crop.shape == (30, 30, 3) and crop.flags.c_contiguous
    assert crop[15, 15].tolist() == [0, 0, 200] and crop[0, 0].tolist() == [0, 0, 0]


def test_input_config_round_trips_and_checks_its_fields():
    cfg = InputConfig(size_px=64, crop_scale=1.2)
    assert cfg.mean == IMAGENET_MEAN and cfg.std == IMAGENET_STD and cfg.channel_order == "RGB"
    assert InputConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.with_crop_scale(None).crop_scale is None and DEFAULT_CROP_SCALE == 1.2
    with pytest.raises(AttributeError):
        cfg.size_px = 32  # frozen: a model's input config does not drift
    for bad in ({"channel_order": "BGR"}, {"crop_scale": 0.0}, {"std": (0.2, 0.0, 0.2)}, {"size_px": 0}):
        with pytest.raises(ConfigError):
            InputConfig(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        InputConfig.from_dict({**cfg.to_dict(), "interpolation": "bicubic"})


def test_normalise_is_the_float64_formula_rounded_once():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = InputConfig(size_px=8).normalise(rgb)  # (3, 8, 8)
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    expect = ((rgb / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)
    assert out.dtype == np.float32 and np.array_equal(out, expect)
