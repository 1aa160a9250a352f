"""Shared converter helpers: option casting, rotation matrices, image-header probing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from converters.images import attach_image_sizes
from converters.labels import rotmat_to_axis_angle
from converters.options import ConvertOptions, Option, get_option
from hmr.core.errors import HmrError
from tests.fixtures.converters_2d import write_image


def test_get_option_casts_to_the_declared_type():
    declared = (Option("n", 1, int, ""), Option("flag", True, bool, ""), Option("on", False, bool, ""),
                Option("name", "", str, ""), Option("x", 1.0, float, ""), Option("absent", 3, int, ""))
    opts = ConvertOptions(extra={"n": "12", "flag": "no", "on": "1", "name": "spin", "x": "0.5"})
    assert get_option(opts, declared, "n") == 12
    assert get_option(opts, declared, "flag") is False and get_option(opts, declared, "on") is True
    assert get_option(opts, declared, "name") == "spin" and get_option(opts, declared, "x") == 0.5
    assert get_option(opts, declared, "absent") == 3
    with pytest.raises(HmrError, match="n=.*int"):
        get_option(ConvertOptions(extra={"n": "many"}), declared, "n")
    with pytest.raises(HmrError):
        get_option(ConvertOptions(extra={"flag": "maybe"}), declared, "flag")


@pytest.mark.parametrize("angle", [0.0, 1e-7, 0.3, 2.5, np.pi - 1e-6, np.pi])
def test_rotmat_to_axis_angle_round_trips(angle):
    axis = np.array([0.2, -0.9, 0.4]) / np.linalg.norm([0.2, -0.9, 0.4])
    mats = Rotation.from_rotvec(axis * angle).as_matrix()[None].repeat(2, 0)  # (2, 3, 3)
    aa = rotmat_to_axis_angle(mats)
    assert aa.shape == (2, 3)
    np.testing.assert_allclose(Rotation.from_rotvec(aa).as_matrix(), mats, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(aa[0]), angle, atol=1e-6)


def test_rotmat_to_axis_angle_refuses_non_rotations():
    with pytest.raises(ValueError, match="not rotations"):
        rotmat_to_axis_angle(np.diag([1.0, 1.0, -1.0]))  # a reflection
    with pytest.raises(ValueError, match="not rotations"):
        rotmat_to_axis_angle(1.01 * np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        rotmat_to_axis_angle(np.full((3, 3), np.nan))


@pytest.mark.parametrize("workers", [1, 2])
def test_attach_image_sizes(tmp_path, workers, monkeypatch):
    # force the pool after the first (timed, in-process) chunk even on a fast disk
    monkeypatch.setattr("converters.images.POOL_MIN_SECONDS_PER_IMAGE", -1.0)
    paths = [write_image(tmp_path / f"{i}.png", (10 + i, 20)) for i in range(5)]
    items = [str(p) for p in paths] + [None, str(tmp_path / "missing.jpg"), str(paths[0])]
    out = list(attach_image_sizes(items, lambda x: x, workers=workers, chunk=3))
    assert [x for x, _ in out] == items  # order kept across chunks
    sizes = [s for _, s in out]
    assert sizes[:5] == [(10 + i, 20) for i in range(5)]
    assert sizes[5] is None and "missing" in sizes[6] and sizes[7] == (10, 20)
