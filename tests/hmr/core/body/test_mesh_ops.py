"""Mesh building blocks: zipper, seam caps, boundary loops and the surface checks."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.body import mesh_ops


def _ring(k: int, y: float, r: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = phase + 2 * np.pi * np.arange(k) / k  # counter-clockwise about +y
    return np.stack([r * np.cos(t), np.full(k, y), -r * np.sin(t)], axis=1)


def _capsule(k_bottom: int, k_top: int, chain: int) -> tuple[np.ndarray, np.ndarray]:
    """Two rings of different sizes zipped together, closed by seam caps at both ends."""
    pts = np.concatenate([_ring(k_bottom, 0.0), _ring(k_top, 1.0, 0.8, 0.3),
                          np.stack([np.linspace(-0.5, 0.5, chain), np.full(chain, -0.3), np.zeros(chain)], 1),
                          np.stack([np.linspace(-0.4, 0.4, chain), np.full(chain, 1.3), np.zeros(chain)], 1)])
    a = np.arange(k_bottom)
    b = np.arange(k_bottom, k_bottom + k_top)
    c_bot = np.arange(k_bottom + k_top, k_bottom + k_top + chain)
    c_top = c_bot + chain
    faces = [mesh_ops.zipper(a, b, pts, np.zeros(3), np.array([0.0, 1.0, 0.0])),
             mesh_ops.seam_cap(b, c_top[::-1], pts),  # chain runs from b[0] (+x side)
             # the bottom opening faces -y: walk its loop the other way round
             mesh_ops.seam_cap(np.roll(a[::-1], 1), c_bot[::-1], pts)]
    return pts, np.concatenate(faces)


@pytest.mark.parametrize("k_bottom,k_top,chain", [(8, 8, 0), (12, 7, 3), (6, 10, 5)])
def test_zipper_and_caps_make_a_closed_sphere(k_bottom, k_top, chain):
    pts, faces = _capsule(k_bottom, k_top, chain)
    rep = mesh_ops.surface_report(pts, faces)
    assert rep.closed and rep.oriented and rep.euler == 2 and rep.components == 1
    assert rep.degenerate_faces == 0 and rep.signed_volume > 0
    assert len(faces) == 2 * len(pts) - 4


def test_surface_report_catches_holes_and_flips():
    pts, faces = _capsule(8, 8, 2)
    holed = mesh_ops.surface_report(pts, faces[1:])
    assert not holed.closed and holed.euler == 1
    flipped = faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert not mesh_ops.surface_report(pts, flipped).oriented
    assert mesh_ops.surface_report(pts, faces[:, ::-1]).signed_volume < 0


def test_boundary_loops_of_an_open_tube():
    faces = mesh_ops.band(np.arange(6), np.arange(6, 12))
    loops = mesh_ops.boundary_loops(faces)
    assert sorted(len(lp) for lp in loops) == [6, 6]
    assert {frozenset(lp.tolist()) for lp in loops} == {frozenset(range(6)), frozenset(range(6, 12))}


def test_zipper_rejects_a_clockwise_loop():
    pts = np.concatenate([_ring(8, 0.0), _ring(6, 1.0)])
    with pytest.raises(ValueError, match="counter-clockwise"):
        mesh_ops.zipper(np.arange(8)[::-1], np.arange(8, 14), pts, np.zeros(3), np.array([0.0, 1.0, 0.0]))
