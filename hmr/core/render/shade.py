"""Shaded rendering of a triangle mesh under a pinhole camera.

Lambertian shading with one directional light plus ambient, smooth (per-vertex) normals
interpolated with perspective-correct barycentrics, per-vertex colours, optional
supersampling for anti-aliased edges. Everything is in the camera frame of the schema:
x right, y down, z forward, metres.
"""

from __future__ import annotations

import numpy as np

from hmr.core.render.rasterize import Fragments, rasterize
from hmr.core.geometry import project_points


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. verts (V, 3), faces (F, 3) -> (V, 3)."""
    cols = [np.ascontiguousarray(verts[:, k]) for k in range(3)]
    corners = [np.ascontiguousarray(faces[:, k]) for k in range(3)]
    # Edge vectors per coordinate ((F,) arrays: np.cross on (F, 3) is several times slower).
    e1 = [c[corners[1]] - c[corners[0]] for c in cols]
    e2 = [c[corners[2]] - c[corners[0]] for c in cols]
    face_n = (e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
              e1[0] * e2[1] - e1[1] * e2[0])  # |n| = 2 area
    # Scatter-add of each face normal to its three vertices (bincount is ~10x np.add.at).
    idx = np.concatenate(corners)  # (3F,) corner-major
    sums = [np.bincount(idx, weights=np.tile(n, 3), minlength=len(verts)) for n in face_n]
    length = np.maximum(np.sqrt(sums[0] ** 2 + sums[1] ** 2 + sums[2] ** 2), 1e-12)
    return np.stack([c / length for c in sums], axis=1)


def to_screen(verts_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """verts_cam (V, 3) -> (V, 3): pixel x, y (:func:`~hmr.core.geometry.project_points`) and depth z."""
    return np.concatenate([project_points(verts_cam, intrinsics), verts_cam[:, 2:3]], axis=1)


def render_mesh(verts_cam: np.ndarray, faces: np.ndarray, intrinsics: np.ndarray, height: int,
                width: int, *, vertex_colors: np.ndarray | None = None,
                background: np.ndarray | None = None, light_dir: tuple[float, float, float] = (0.3, -0.5, -1.0),
                ambient: float = 0.35, supersample: int = 2) -> tuple[np.ndarray, np.ndarray, Fragments]:
    """Render a mesh over a background.

    verts_cam (V, 3) metres, camera frame; faces (F, 3); intrinsics (3, 3) px;
    vertex_colors (V, 3) in [0, 1] (default light grey); background (H, W, 3) uint8.
    Returns (image (H, W, 3) uint8, coverage (H, W) float in [0, 1], full-resolution fragments
    at the supersampled size).
    """
    s = max(int(supersample), 1)
    k_ss = np.diag([s, s, 1.0]) @ np.asarray(intrinsics, dtype=np.float64)
    # Pixel centres: a supersampled pixel (i, j) covers original (i + 0.5) / s - 0.5.
    k_ss[0, 2] += (s - 1) / 2
    k_ss[1, 2] += (s - 1) / 2
    verts_cam = np.asarray(verts_cam, dtype=np.float64)
    frags = rasterize(to_screen(verts_cam, k_ss), faces, height * s, width * s)
    colors = np.full((len(verts_cam), 3), 0.75) if vertex_colors is None else np.asarray(vertex_colors)
    normals = vertex_normals(verts_cam, faces)
    light = -np.asarray(light_dir, dtype=np.float64)
    light /= np.linalg.norm(light)
    mask = frags.mask
    f = frags.face[mask]
    w = frags.bary[mask][:, :, None]  # (P, 3, 1)
    n = (normals[faces[f]] * w).sum(axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    col = (colors[faces[f]] * w).sum(axis=1)
    # Two-sided lighting: a normal facing away from the camera is flipped.
    facing = np.where((n * verts_cam[faces[f]].mean(axis=1)).sum(axis=1, keepdims=True) > 0, -1.0, 1.0)
    diffuse = np.clip(((n * facing) @ light)[:, None], 0, 1)
    shaded = np.clip(col * (ambient + (1 - ambient) * diffuse), 0, 1)
    fg = np.zeros((height * s, width * s, 3))
    fg[mask] = shaded
    # Box-filter down to the output size.
    fg = fg.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    coverage = mask.reshape(height, s, width, s).mean(axis=(1, 3))
    bg = np.zeros((height, width, 3)) if background is None else background.astype(np.float64) / 255.0
    image = bg * (1 - coverage[..., None]) + fg
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), coverage, frags
