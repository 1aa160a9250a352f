"""Vectorised triangle rasterisation with a z-buffer.

Convention: pixel (row i, column j) has its centre at image coordinates (x=j, y=i), the
same convention as the schema's 2D keypoints, so a projected vertex at (x, y) lands on the
pixel whose centre is nearest to it.

Algorithm: every triangle proposes the pixel centres inside its bounding box as
(triangle, pixel) candidate pairs (all triangles at once, with ``np.repeat``); barycentric
coordinates select the pairs inside the triangle; the nearest candidate per pixel wins
(one ``lexsort``). At the sizes the synthetic data uses (128–256 px bodies) the candidate
list is a few tens of thousands of pairs, so a frame costs milliseconds, not a Python loop
over 13,776 faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Fragments:
    """Per-pixel result of rasterisation (H, W arrays); ``face`` is -1 where empty."""

    face: np.ndarray  # (H, W) int64
    depth: np.ndarray  # (H, W) float64, inf where empty
    bary: np.ndarray  # (H, W, 3) float64 barycentric weights of the face's vertices

    @property
    def mask(self) -> np.ndarray:
        return self.face >= 0


def rasterize(verts_px: np.ndarray, faces: np.ndarray, height: int, width: int, *,
              max_candidates: int = 20_000_000, cull_backfaces: bool = False) -> Fragments:
    """Rasterise triangles given in pixel coordinates plus depth.

    verts_px: (V, 3) with x, y in pixels and z the camera-frame depth (> 0 in front).
    faces: (F, 3) vertex indices. Returns :class:`Fragments` of size (height, width).
    """
    faces = np.asarray(faces, dtype=np.int64)
    # Per-vertex coordinate columns gathered per face corner: (F,) arrays, all contiguous
    # (reductions over a strided (F, 3) axis cost 10-20x more at these sizes).
    vx, vy, vz = (np.ascontiguousarray(verts_px[:, k]) for k in range(3))
    corners = [np.ascontiguousarray(faces[:, k]) for k in range(3)]
    ax, bx, cx = (vx[i] for i in corners)
    ay, by, cy = (vy[i] for i in corners)
    az, bz, cz = (vz[i] for i in corners)
    in_front = (az > 1e-6) & (bz > 1e-6) & (cz > 1e-6)
    # Signed area (x right, y down): > 0 for triangles seen counter-clockwise on screen.
    e1x, e1y, e2x, e2y = bx - ax, by - ay, cx - ax, cy - ay
    area = e1x * e2y - e1y * e2x  # (F,)
    keep = in_front & (np.abs(area) > 1e-12)
    if cull_backfaces:
        keep &= area < 0
    x0 = np.clip(np.ceil(np.minimum(np.minimum(ax, bx), cx)), 0, width)
    x1 = np.clip(np.floor(np.maximum(np.maximum(ax, bx), cx)), -1, width - 1)
    y0 = np.clip(np.ceil(np.minimum(np.minimum(ay, by), cy)), 0, height)
    y1 = np.clip(np.floor(np.maximum(np.maximum(ay, by), cy)), -1, height - 1)
    nx = np.maximum(x1 - x0 + 1, 0).astype(np.int64)
    ny = np.maximum(y1 - y0 + 1, 0).astype(np.int64)
    count = np.where(keep, nx * ny, 0)  # candidate pixels per face
    total = int(count.sum())
    if total > max_candidates:
        raise ValueError(f"{total} candidate pixels exceed max_candidates={max_candidates}: "
                         "triangles too large for this image size")
    face_out = np.full((height, width), -1, dtype=np.int64)
    depth_out = np.full((height, width), np.inf)
    bary_out = np.zeros((height, width, 3))
    if total == 0:
        return Fragments(face_out, depth_out, bary_out)
    # From here on only the faces with candidates (at 128 px most of a body's 13,776
    # triangles cover no pixel centre).
    live = np.flatnonzero(count)
    count, nx = count[live], nx[live]
    fid = np.repeat(np.arange(len(live)), count)  # (P,) index into live
    start = np.cumsum(count) - count
    local = np.arange(total) - np.repeat(start, count)  # index inside each face's box
    nx_p = nx[fid]
    px = x0[live][fid] + local % nx_p
    py = y0[live][fid] + local // nx_p
    # Barycentric weights of (px, py) w.r.t. (a, b, c).
    dx, dy = px - ax[live][fid], py - ay[live][fid]
    inv_area = (1.0 / area[live])[fid]
    w_b = (dx * e2y[live][fid] - dy * e2x[live][fid]) * inv_area
    w_c = (dy * e1x[live][fid] - dx * e1y[live][fid]) * inv_area
    w_a = 1.0 - w_b - w_c
    eps = -1e-9
    inside = (w_a >= eps) & (w_b >= eps) & (w_c >= eps)
    fid, px, py = fid[inside], px[inside].astype(np.int64), py[inside].astype(np.int64)
    w = np.stack([w_a[inside], w_b[inside], w_c[inside]], axis=1)  # (P', 3)
    # Perspective-correct depth: interpolate 1/z in screen space.
    inv_corner_z = 1.0 / np.stack([az[live], bz[live], cz[live]], axis=1)[fid]  # (P', 3)
    wz = w * inv_corner_z
    z = 1.0 / wz.sum(axis=1)
    pix = py * width + px
    order = np.lexsort((z, pix))  # by pixel, then nearest first
    pix_sorted = pix[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    win = order[first]
    flat = pix[win]
    face_out.ravel()[flat] = live[fid[win]]
    depth_out.ravel()[flat] = z[win]
    # Perspective-correct barycentrics.
    bary_out.reshape(-1, 3)[flat] = wz[win] * z[win, None]
    return Fragments(face_out, depth_out, bary_out)
