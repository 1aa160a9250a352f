"""What the network sees: the square person crop, its geometry, and the input normalisation.

One module for every path to the network's input: shards (:mod:`loaders.shard` crops, the
loaders warp and normalise), evaluation and prediction (:mod:`hmr.evaluation`). The model
carries an :class:`InputConfig` (size, mean/std, crop scale, channel order), as timm's
pretrained configs do; it is saved in every checkpoint and the evaluation transform derives
from it.

Conventions (same as schema v1): pixel centres at integer coordinates, x right, y down.
A square box of side ``side_px`` centred at ``center_px`` covers the continuous interval
``[c - side/2, c + side/2]``; mapped onto an ``S × S`` crop it lands on ``[-0.5, S - 0.5]``,
so ``p_crop = (S / side) · (p - c) + (S / 2 - 0.5)``.

Every transform here is a 2×3 affine ``A`` mapping *source* pixels to *destination* pixels
(``p_dst = A @ [x, y, 1]``). For a similarity ``A = [s·R | t]`` a pinhole camera ``K``
(fx = fy) stays a pinhole camera if the 3D points are rotated by ``R`` about the optical
axis: ``A3 · K = K' · Rz`` with ``K' = [[s fx, 0, c'x], [0, s fy, c'y], [0, 0, 1]]``.

The two paths, by design: evaluation and prediction warp the image once, straight to
``S × S`` (:func:`crop_person`). Training reads a stored crop: the shard writer warps the
image to ``crop_size`` px covering ``context ×`` the person's square (so augmentations have
pixels), stores it as JPEG, and the loader warps that crop to ``S × S``. Both frame the same
square (the two affines compose to :func:`person_affine`), so without augmentation they
differ only by the JPEG loss and the second bilinear resampling; on smooth image content that
is about half a grey level on average (``tests/hmr/evaluation/test_input_paths.py`` measures
it and bounds it at one).
Resampling the original once for training too would change the training data, so the stored
crop stays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from hmr.core.errors import ConfigError

#: ImageNet statistics (RGB, of pixel values in [0, 1]): every backbone here is timm's,
#: pretrained on ImageNet with these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: HMR / SPIN's crop: the square of side ``1.2 × max(box w, h)`` (their "rescale" factor).
DEFAULT_CROP_SCALE = 1.2


@dataclass(frozen=True)
class InputConfig:
    """What the network takes: ``size_px`` square crops of side ``crop_scale × max(box w, h)``,
    channels in ``channel_order``, normalised ``(v / 255 - mean) / std``.

    ``crop_scale`` None: not recorded (a model trained on random bodies, which come cropped,
    or an older checkpoint); the caller picks the framing (a benchmark's protocol,
    :data:`DEFAULT_CROP_SCALE`). Training makes it in :func:`hmr.training.data.input_config`.
    """

    size_px: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_scale: float | None = None
    #: the order of the three input planes; the loaders decode to RGB, the only order supported
    channel_order: str = "RGB"

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if int(self.size_px) <= 0 or len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"input config: size_px > 0 and three means and positive stds, got {self}")
        if self.crop_scale is not None and not float(self.crop_scale) > 0:
            raise ConfigError(f"input config: crop_scale must be positive, got {self.crop_scale}")
        if self.channel_order != "RGB":
            raise ConfigError(f"input config: channel_order {self.channel_order!r} (only 'RGB')")

    def to_dict(self) -> dict:
        """Plain values (lists, floats): what a checkpoint stores (``torch.load(weights_only=True)``)."""
        d = asdict(self)
        return {**d, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "InputConfig":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"input config: unknown fields {sorted(unknown)}")
        return cls(**data)

    def with_crop_scale(self, crop_scale: float | None) -> "InputConfig":
        return replace(self, crop_scale=crop_scale)

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 crop → (3, S, S) float32 network input (the loaders' table, no noise)."""
        out = np.empty((3, *rgb.shape[:2]), np.float32)
        return normalise_into(rgb, normalise_lut(np.ones(3), self.mean, self.std), out)


def normalise_lut(gains: np.ndarray, mean, std) -> np.ndarray:
    """(256, 1, 3) float32 table: uint8 value → (clip(v · gain) / 255 - mean) / std per channel.

    Computed in float64 from the float32 mean and std, rounded once; with cv2.LUT it applies
    colour noise (``gains``, ones for none) and the normalisation in one pass.
    """
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    v = np.clip(np.round(np.arange(256.0)[:, None] * np.asarray(gains)[None, :]), 0, 255)  # (256, 3)
    return ((v / 255.0 - mean) / std).astype(np.float32).reshape(256, 1, 3)


def normalise_into(rgb: np.ndarray, lut: np.ndarray, out: np.ndarray, channels_last: bool = False) -> np.ndarray:
    """Look ``rgb`` (S, S, 3) uint8 up in ``lut`` (:func:`normalise_lut`), writing ``out``:
    (3, S, S) float32, or (S, S, 3) with ``channels_last``."""
    rgb = np.ascontiguousarray(rgb)
    if channels_last:
        cv2.LUT(rgb, lut, dst=out)
        return out
    for c, plane in enumerate(cv2.split(rgb)):
        cv2.LUT(plane, np.ascontiguousarray(lut[:, :, c]), dst=out[c])
    return out


def box_to_square(bbox_xywh: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Centre (2,) and side (px) of the square enclosing the box, times ``scale``; a box under
    a pixel counts as one pixel (a zero side would make no crop)."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    center = np.array([x + w / 2.0, y + h / 2.0], dtype=np.float64)  # (2,)
    return center, max(w, h, 1.0) * float(scale)


def person_affine(bbox_xywh: np.ndarray, out_px: int, crop_scale: float) -> np.ndarray:
    """(2, 3) affine from image pixels to the ``out_px`` crop of the person's square: side
    ``crop_scale × max(w, h)``, centred on the box (its centre lands on ``(S - 1) / 2``)."""
    center, side = box_to_square(bbox_xywh, crop_scale)
    return square_affine(center, side, out_px)


def crop_person(image_bgr: np.ndarray, bbox_xywh: np.ndarray, out_px: int, crop_scale: float) -> np.ndarray:
    """(H, W, 3) uint8 BGR (as cv2 reads it) → the person's (S, S, 3) uint8 RGB crop, bilinear,
    black outside the image: the evaluation and prediction input before :meth:`InputConfig.normalise`."""
    crop = warp(image_bgr, person_affine(bbox_xywh, out_px, crop_scale), out_px)
    return np.ascontiguousarray(crop[..., ::-1])


def square_affine(center_px: np.ndarray, side_px: float, out_size: int,
                  rotation_deg: float = 0.0) -> np.ndarray:
    """Affine (2, 3) mapping source pixels to an ``out_size`` crop of the square box.

    ``rotation_deg`` rotates the *image content* counter-clockwise as displayed (the crop
    window turns clockwise about the box centre); the label transforms follow from ``A``.
    """
    s = out_size / float(side_px)
    theta = math.radians(rotation_deg)
    # y points down, so a visually counter-clockwise turn is a negative angle in (x, y).
    cos_t, sin_t = math.cos(-theta), math.sin(-theta)
    lin = s * np.array([[cos_t, -sin_t], [sin_t, cos_t]])  # (2, 2)
    centre_out = np.array([out_size / 2.0 - 0.5, out_size / 2.0 - 0.5])
    t = centre_out - lin @ np.asarray(center_px, dtype=np.float64)
    return np.hstack([lin, t[:, None]])  # (2, 3)


def flip_affine(out_size: int) -> np.ndarray:
    """Horizontal mirror of an ``out_size``-wide image: x → S - 1 - x. (2, 3)"""
    return np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])


def to3x3(affine: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(affine, dtype=np.float64), [0.0, 0.0, 1.0]])  # (3, 3)


def compose(a_then_b: tuple[np.ndarray, ...]) -> np.ndarray:
    """Affine of applying the given (2, 3) affines in order."""
    out = np.eye(3)
    for a in a_then_b:
        out = to3x3(a) @ out
    return out[:2]


def invert(affine: np.ndarray) -> np.ndarray:
    return np.linalg.inv(to3x3(affine))[:2]


def apply_points(affine: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """Transform (..., 2) points by a (2, 3) affine."""
    a = np.asarray(affine, dtype=np.float64)
    pts = np.asarray(points_px, dtype=np.float64)
    return pts @ a[:, :2].T + a[:, 2]


def warp(image: np.ndarray, affine: np.ndarray, out_size: int,
         interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(H, W, 3) uint8 → (out_size, out_size, 3); outside the source is black."""
    return cv2.warpAffine(image, np.asarray(affine, dtype=np.float64), (out_size, out_size),
                          flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def similarity_parts(affine: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """(scale, 2D rotation (2, 2), mirrored) of a similarity affine ``[s·R·F | t]``."""
    lin = np.asarray(affine, dtype=np.float64)[:, :2]
    det = float(np.linalg.det(lin))
    mirrored = det < 0
    if mirrored:
        lin = lin @ np.diag([-1.0, 1.0])
    scale = math.sqrt(abs(det))
    return scale, lin / scale, mirrored


def transform_intrinsics(affine: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera of the warped image for an unmirrored similarity ``affine``.

    Returns ``(K_new (3, 3), R3 (3, 3))`` with ``A3 · K ≈ K_new · R3``: 3D points must be
    rotated by ``R3`` (about the optical axis) to stay consistent. Exact when fx = fy; for
    fx ≠ fy under rotation the small skew term is dropped.
    """
    scale, rot2, mirrored = similarity_parts(affine)
    if mirrored:
        raise ValueError("transform_intrinsics takes an unmirrored affine; mirror 3D separately")
    r3 = np.eye(3)
    r3[:2, :2] = rot2
    k_new = to3x3(affine) @ np.asarray(intrinsics, dtype=np.float64) @ r3.T  # (3, 3)
    k_new[0, 1] = 0.0
    k_new[1, 0] = 0.0
    k_new[2] = (0.0, 0.0, 1.0)
    return k_new, r3
