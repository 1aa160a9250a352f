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
    tri = verts_px[faces]  # (F, 3, 3)
    in_front = (tri[:, :, 2] > 1e-6).all(axis=1)
    xy = tri[:, :, :2]
    # Signed area (x right, y down): > 0 for triangles seen counter-clockwise on screen.
    e1, e2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # (F,)
    keep = in_front & (np.abs(area) > 1e-12)
    if cull_backfaces:
        keep &= area < 0
    x0 = np.clip(np.ceil(xy[:, :, 0].min(axis=1)), 0, width)
    x1 = np.clip(np.floor(xy[:, :, 0].max(axis=1)), -1, width - 1)
    y0 = np.clip(np.ceil(xy[:, :, 1].min(axis=1)), 0, height)
    y1 = np.clip(np.floor(xy[:, :, 1].max(axis=1)), -1, height - 1)
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
    fid = np.repeat(np.arange(len(faces)), count)  # (P,)
    start = np.cumsum(count) - count
    local = np.arange(total) - np.repeat(start, count)  # index inside each face's box
    px = x0[fid] + local % nx[fid]
    py = y0[fid] + local // nx[fid]
    a, b, c = xy[fid, 0], xy[fid, 1], xy[fid, 2]  # (P, 2)
    # Barycentric weights of (px, py) w.r.t. (a, b, c).
    w_b = ((px - a[:, 0]) * (c[:, 1] - a[:, 1]) - (py - a[:, 1]) * (c[:, 0] - a[:, 0])) / area[fid]
    w_c = ((py - a[:, 1]) * (b[:, 0] - a[:, 0]) - (px - a[:, 0]) * (b[:, 1] - a[:, 1])) / area[fid]
    w_a = 1.0 - w_b - w_c
    eps = -1e-9
    inside = (w_a >= eps) & (w_b >= eps) & (w_c >= eps)
    fid, px, py = fid[inside], px[inside].astype(np.int64), py[inside].astype(np.int64)
    w = np.stack([w_a[inside], w_b[inside], w_c[inside]], axis=1)  # (P', 3)
    # Perspective-correct depth: interpolate 1/z in screen space.
    inv_z = (w / tri[fid, :, 2]).sum(axis=1)
    z = 1.0 / inv_z
    pix = py * width + px
    order = np.lexsort((z, pix))  # by pixel, then nearest first
    pix_sorted = pix[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    win = order[first]
    flat = pix[win]
    face_out.ravel()[flat] = fid[win]
    depth_out.ravel()[flat] = z[win]
    # Perspective-correct barycentrics.
    wz = w[win] / tri[fid[win], :, 2]
    bary_out.reshape(-1, 3)[flat] = wz / wz.sum(axis=1, keepdims=True)
    return Fragments(face_out, depth_out, bary_out)
