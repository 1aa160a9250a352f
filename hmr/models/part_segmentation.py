"""Body-part segmentation targets for PARE, from the body model's skinning weights.

PARE (Kocabas et al., ICCV 2021) supervises its 2D part branch with a 25-class map
(background + 24 SMPL parts) of the ground-truth mesh: ``mkocabas/PARE``
``pare/core/trainer.py`` renders the GT SMPL mesh with a per-face part texture
(``get_body_part_texture``, from ``data/smpl_partSegmentation_mapping.pkl``) through the crop
camera, background 0 and part ``k`` as ``k + 1`` (``pare/utils/image_utils.py``,
``generate_part_labels``), only for samples with SMPL. We derive the same kind of labels from
whichever body model is loaded:

- part of a vertex = the bone with the largest skinning weight (``argmax`` over the 24 columns
  of ``lbs_weights``, ties to the lower index) — :func:`vertex_parts`;
- part of a face = the part most of its three vertices have (the first vertex's where all
  three differ) — :func:`face_parts`;
- the map: the posed GT mesh projected with the sample's camera and rasterised with a
  z-buffer straight at the head's resolution (56 × 56 for 224 px crops) — :func:`rasterize_labels`.
  PARE renders at the crop size (224) and upsamples its 56 × 56 logits bilinearly to it for the
  loss; rendering at 56 px instead is 16× fewer pixels and the same supervision up to the
  up/down-sampling (``hmr.losses.segmentation.part_segmentation_loss`` upsamples the logits
  when a target is larger, as PARE does).

Camera (:func:`part_map_camera`): a sample whose camera-frame translation and intrinsics are
both known (``has_smpl_transl``, ``has_intrinsics``) is projected with them, exactly as its
image was taken; otherwise the translation is fitted to the GT 2D keypoints at the crop camera
(focal ``model.focal_length_px``, principal point at the crop centre), as PARE/SPIN do
(``estimate_translation``). A sample with fewer than 4 confident keypoints and no known camera
gets no target.

Rasterisation convention: as :mod:`hmr.core.render.rasterize` — pixel (row i, column j) has its
centre at (x=j, y=i); a face covers the pixel centres inside it; the nearest face wins.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

NUM_PARTS = 24


def vertex_parts(lbs_weights: torch.Tensor) -> torch.Tensor:
    """``(V, 24)`` skinning weights → ``(V,)`` part index 0..23 (the dominant bone)."""
    return lbs_weights.float().argmax(dim=1)


def face_parts(faces: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """``faces (F, 3)``, ``parts (V,)`` → ``(F,)`` the majority part of each face's corners."""
    a, b, c = parts[faces].unbind(1)  # (F,) each
    return torch.where((b == c) & (a != b), b, a)  # a unless b and c agree against it


def rasterize_labels(verts_px: torch.Tensor, faces: torch.Tensor, face_labels: torch.Tensor, size: int,
                     *, max_window: int = 8) -> torch.Tensor:
    """Z-buffered label map ``(B, size, size)`` int64 (0 = empty, else ``face_labels + 1``).

    ``verts_px (B, V, 3)``: x, y in map pixels and the camera-frame depth z (> 0 in front).
    Every face tests the pixel centres of a ``w × w`` window from its bounding box's first
    pixel, ``w`` the largest box side in the batch (at most ``max_window``: a face larger than
    that, only when the body fills far more than the map, loses its far pixels).
    """
    b = verts_px.shape[0]
    corners = verts_px[:, faces]  # (B, F, 3 corners, 3)
    x, y, z = corners.unbind(-1)  # (B, F, 3) each
    x0, y0 = x.amin(-1).ceil(), y.amin(-1).ceil()  # (B, F) first pixel centre of the box
    extent = torch.maximum(x.amax(-1) - x0, y.amax(-1) - y0)
    visible = (z > 1e-6).all(-1) & (x.amax(-1) >= 0) & (y.amax(-1) >= 0) & (x0 < size) & (y0 < size)
    if not bool(visible.any()):
        return torch.zeros(b, size, size, dtype=torch.long, device=verts_px.device)
    window = int(min(max_window, int(extent[visible].max().floor()) + 1))
    offsets = torch.arange(window, device=verts_px.device, dtype=verts_px.dtype)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    px = x0[..., None] + dx.reshape(-1)  # (B, F, w²)
    py = y0[..., None] + dy.reshape(-1)
    ax, bx, cx = (x[..., k, None] for k in range(3))  # (B, F, 1)
    ay, by, cy = (y[..., k, None] for k in range(3))
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, float("nan")), area)  # degenerate: never inside
    w_b = ((px - ax) * (cy - ay) - (py - ay) * (cx - ax)) / area
    w_c = ((py - ay) * (bx - ax) - (px - ax) * (by - ay)) / area
    w_a = 1.0 - w_b - w_c
    inside = (w_a >= -1e-9) & (w_b >= -1e-9) & (w_c >= -1e-9) & visible[..., None]
    inside &= (px >= 0) & (px < size) & (py >= 0) & (py < size)
    inv_z = w_a / z[..., 0, None] + w_b / z[..., 1, None] + w_c / z[..., 2, None]  # perspective-correct 1/z
    sample = torch.arange(b, device=verts_px.device)[:, None, None].expand_as(px)
    pixel = (sample * size * size + py * size + px)[inside].long()  # (P,)
    depth = 1.0 / inv_z[inside]
    labels = face_labels.to(verts_px.device)[None, :, None].expand_as(px)[inside] + 1
    zbuf = torch.full((b * size * size,), float("inf"), device=verts_px.device, dtype=depth.dtype)
    zbuf = zbuf.scatter_reduce(0, pixel, depth, reduce="amin")
    win = depth <= zbuf[pixel]
    out = torch.zeros(b * size * size, dtype=torch.long, device=verts_px.device)
    out[pixel[win]] = labels[win]
    return out.reshape(b, size, size)


def fit_translation(joints: torch.Tensor, keypoints2d: torch.Tensor, focal_norm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera translation ``(B, 3)`` putting ``joints (B, J, 3)`` (metres, no translation) under
    ``keypoints2d (B, J, 3)`` ([-1, 1] crop coordinates about the crop centre + confidence) for
    a pinhole of focal ``focal_norm`` in those units (``2 f / S``): confidence-weighted linear
    least squares of ``f (X + t_x) = u (Z + t_z)`` (and y), SPIN's ``estimate_translation``.
    Also returns ``(B,)`` bool: at least 4 confident joints and a positive depth."""
    conf = keypoints2d[..., 2].clamp_min(0)  # (B, J)
    u, v = keypoints2d[..., 0], keypoints2d[..., 1]
    jx, jy, jz = joints.unbind(-1)
    zero, f = torch.zeros_like(u), torch.full_like(u, focal_norm)
    rows = torch.cat([torch.stack([f, zero, -u], -1), torch.stack([zero, f, -v], -1)], 1)  # (B, 2J, 3)
    rhs = torch.cat([u * jz - f * jx, v * jz - f * jy], 1)  # (B, 2J)
    w = torch.cat([conf, conf], 1).sqrt()
    a, rhs = rows * w[..., None], rhs * w
    ata = a.transpose(1, 2) @ a + 1e-6 * torch.eye(3, dtype=a.dtype, device=a.device)
    t = torch.linalg.solve(ata, a.transpose(1, 2) @ rhs[..., None])[..., 0]  # (B, 3)
    ok = ((conf > 0).sum(1) >= 4) & (t[:, 2] > 0.1)
    return t, ok


def part_map_camera(batch: dict, joints: torch.Tensor, *, crop_px: int, focal_length_px: float, size: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Translation ``(B, 3)``, intrinsics in map pixels ``(B, 3, 3)`` and ``(B,)`` validity for
    the part maps (see the module docstring); ``joints (B, J, 3)``: the GT body's joints in the
    keypoints' convention, no translation."""
    dev = joints.device
    t_fit, ok_fit = fit_translation(joints.float(), batch["keypoints2d"].float().to(dev), 2.0 * focal_length_px / crop_px)
    centre = crop_px / 2.0  # where the loaders' keypoints are 0 (u = 2 x / S − 1)
    k_crop = torch.tensor([[focal_length_px, 0.0, centre], [0.0, focal_length_px, centre], [0.0, 0.0, 1.0]],
                          device=dev).expand(len(joints), 3, 3)
    known = (batch["has_smpl_transl"].to(dev).bool() & batch["has_intrinsics"].to(dev).bool())
    own_k = batch["cam_intrinsics"].float().to(dev)
    known &= (own_k[:, 0, 0] > 0) & (own_k[:, 1, 1] > 0)
    transl = torch.where(known[:, None], batch["smpl_transl"].float().to(dev), t_fit)
    k_crop = torch.where(known[:, None, None], own_k, k_crop)
    s = size / crop_px  # crop pixel (x + 0.5) · s − 0.5 = map pixel
    to_map = torch.tensor([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]], device=dev)
    return transl, to_map @ k_crop, known | ok_fit


class PartMapper(nn.Module):
    """The body model's face labels as buffers; ``forward(vertices, transl, intrinsics, size)``
    → ``(B, size, size)`` part maps (0 background, 1..24 parts)."""

    def __init__(self, faces: np.ndarray | torch.Tensor, lbs_weights: torch.Tensor):
        super().__init__()
        faces = torch.as_tensor(np.asarray(faces), dtype=torch.long)
        self.register_buffer("faces", faces, persistent=False)
        self.register_buffer("face_labels", face_parts(faces, vertex_parts(lbs_weights.cpu())), persistent=False)

    @classmethod
    def from_body_model(cls, body_model) -> PartMapper:
        return cls(body_model.faces, body_model.lbs_weights)

    @torch.no_grad()
    def forward(self, vertices: torch.Tensor, transl: torch.Tensor, intrinsics: torch.Tensor, size: int) -> torch.Tensor:
        """``vertices (B, V, 3)`` metres (no translation), ``transl (B, 3)``, ``intrinsics
        (B, 3, 3)`` in map pixels."""
        cam = vertices.float() + transl[:, None].float()  # (B, V, 3)
        z = cam[..., 2:3]
        safe_z = torch.where(z.abs() < 1e-6, torch.full_like(z, 1e-6), z)
        xy = cam[..., :2] / safe_z  # (B, V, 2)
        k = intrinsics.float()
        px = k[:, None, 0, 0, None] * xy[..., :1] + k[:, None, 0, 2, None]
        py = k[:, None, 1, 1, None] * xy[..., 1:] + k[:, None, 1, 2, None]
        return rasterize_labels(torch.cat([px, py, z], -1), self.faces, self.face_labels, size)
