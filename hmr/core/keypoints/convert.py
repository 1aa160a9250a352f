"""Converting and flipping keypoint arrays between conventions, by joint name.

Arrays are ``(..., K, C)``: any leading batch shape, ``K`` joints, ``C`` channels
(``x, y`` or ``x, y, conf`` for 2D; ``x, y, z`` or ``x, y, z, conf`` for 3D). numpy arrays
and torch tensors are both accepted and the result has the input's type, dtype and device.

Horizontal flip of pixel coordinates (our choice, used everywhere in hmrkit): pixel centres
sit at integer coordinates ``0 .. W-1``, so mirroring the image about its vertical centre
line maps ``x -> W - 1 - x``. This is exactly what ``cv2.flip(img, 1)`` / ``img[:, ::-1]``
do to pixel indices, and what HMR's flip uses. (For coordinates whose origin is the image's
corner, pixel centres at ``k + 0.5``, the exact mirror would be ``W - x``; the two differ by
one pixel.) A joint with confidence 0 (absent) stays all-zero.
"""

from __future__ import annotations

import sys

from functools import lru_cache
from typing import Any

import numpy as np

from hmr.core.errors import ConventionError
from hmr.core.keypoints.convention import Convention, get_convention


def _is_torch(x: Any) -> bool:
    # torch is imported only when a tensor can exist: converters that work on numpy alone
    # should not pay torch's import time and memory.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


@lru_cache(maxsize=None)
def _mapping(src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    src_c, dst_c = get_convention(src), get_convention(dst)
    dst_pos = {n: i for i, n in enumerate(dst_c.joint_names)}
    pairs = [(i, dst_pos[n]) for i, n in enumerate(src_c.joint_names) if n in dst_pos]
    src_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    dst_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    src_idx.setflags(write=False)
    dst_idx.setflags(write=False)
    return src_idx, dst_idx


def mapping_indices(src: str | Convention, dst: str | Convention) -> tuple[np.ndarray, np.ndarray]:
    """Rows shared by two conventions: ``dst[..., dst_idx, :] = src[..., src_idx, :]``.

    Returns ``(src_idx, dst_idx)``, np.int64 (M,) each, ordered by source row; read-only.
    """
    return _mapping(get_convention(src).name, get_convention(dst).name)


def _check_shape(kps: Any, conv: Convention, what: str) -> None:
    if kps.ndim < 2 or kps.shape[-2] != conv.num_joints:
        raise ConventionError(f"{what} keypoints have shape {tuple(kps.shape)}; convention "
                              f"'{conv.name}' needs (..., {conv.num_joints}, C)")


def convert_keypoints(kps: Any, src: str | Convention, dst: str | Convention) -> tuple[Any, Any]:
    """Re-order ``kps`` (..., K_src, C) from ``src`` into ``dst`` by joint name.

    Returns ``(out, mask)``: ``out`` (..., K_dst, C) with zeros (confidence 0) where ``dst``
    has a joint ``src`` lacks, and ``mask`` (K_dst,) bool, True where a value was copied.
    ``out``/``mask`` are numpy arrays or torch tensors, following ``kps``.
    """
    src_c, dst_c = get_convention(src), get_convention(dst)
    if not _is_torch(kps):
        kps = np.asarray(kps)
    _check_shape(kps, src_c, "source")
    src_idx, dst_idx = mapping_indices(src_c, dst_c)
    shape = (*kps.shape[:-2], dst_c.num_joints, kps.shape[-1])
    if _is_torch(kps):
        import torch

        out = kps.new_zeros(shape)
        s = torch.tensor(src_idx, device=kps.device)  # copies: the cached arrays are read-only
        d = torch.tensor(dst_idx, device=kps.device)
        out[..., d, :] = kps[..., s, :]
        mask = torch.zeros(dst_c.num_joints, dtype=torch.bool, device=kps.device)
        mask[d] = True
        return out, mask
    out = np.zeros(shape, dtype=kps.dtype)
    out[..., dst_idx, :] = kps[..., src_idx, :]
    mask = np.zeros(dst_c.num_joints, dtype=bool)
    mask[dst_idx] = True
    return out, mask


def flip_permutation(name: str | Convention) -> np.ndarray:
    """Row permutation of a horizontal flip (left <-> right), np.int64 (K,); an involution."""
    return np.asarray(get_convention(name).flip_index, dtype=np.int64)


def _permute(kps: Any, perm: np.ndarray) -> Any:
    if _is_torch(kps):
        import torch

        return kps[..., torch.tensor(perm, device=kps.device), :]
    return np.asarray(kps)[..., perm, :]


def _mirror_copy(kps: Any, convention: str | Convention, channels: tuple[int, int],
                 what: str) -> tuple[Convention, Any]:
    """Checked copy of ``kps`` to mirror; ``channels`` are the allowed sizes of C."""
    conv = get_convention(convention)
    if not _is_torch(kps):
        kps = np.asarray(kps)
    _check_shape(kps, conv, what)
    if kps.shape[-1] not in channels:
        axes = "x, y[, conf]" if what == "2D" else "x, y, z[, conf]"
        raise ConventionError(f"{what} keypoints need {channels[0]} or {channels[1]} channels "
                              f"({axes}), got {kps.shape[-1]}")
    return conv, (kps.clone() if _is_torch(kps) else np.array(kps, copy=True))


def flip_keypoints2d(kps: Any, convention: str | Convention, image_width: float) -> Any:
    """Mirror 2D keypoints (..., K, 2|3) in pixels: ``x -> W - 1 - x``, left/right swapped.

    With a confidence channel (C == 3), joints of confidence 0 stay all-zero.
    """
    conv, out = _mirror_copy(kps, convention, (2, 3), "2D")
    out[..., 0] = (image_width - 1) - out[..., 0]
    if out.shape[-1] == 3:
        absent = out[..., 2] == 0  # (..., K)
        out[..., 0][absent] = 0
    return _permute(out, flip_permutation(conv))


def flip_keypoints3d(kps: Any, convention: str | Convention) -> Any:
    """Mirror 3D keypoints (..., K, 3|4) in a camera frame: ``x -> -x``, left/right swapped."""
    conv, out = _mirror_copy(kps, convention, (3, 4), "3D")
    out[..., 0] = -out[..., 0]
    return _permute(out, flip_permutation(conv))
