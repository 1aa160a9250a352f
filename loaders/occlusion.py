"""The benchmark's occlusion-style augmentations, on the output crop (image only).

Pang et al., "Benchmarking 3D Pose and Shape Estimation Beyond Algorithms" (NeurIPS 2022,
github.com/smplbody/hmr-benchmarks, ``configs/augmentation``) train with one of nine
occlusion-style augmentations at a time. Eight of them change pixels only, so every label
stays valid; the ninth, random crop, changes the crop window and therefore lives in the
geometric stage (:func:`loaders.augment.draw_geometry`). Parameters default to the
benchmark's configs:

======================  ===================================================================
coarse_dropout          Albumentations CoarseDropout: 1–8 holes of 10–40 px, zero fill, p=0.5
grid_dropout            Albumentations GridDropout: unit 10–40 px, ratio 0.5, random offset, p=0.5
photometric_distortion  brightness ±32, contrast 0.5–1.5, saturation 0.5–1.5, hue ±18, channel swap
hard_erasing            a box of up to 70% of the person box replaced by noise, p=0.5
soft_erasing            random-erasing region (2–40% of the image, aspect 0.3–3.3) blended with
                        noise by m ~ U(0.1, 0.9), p=0.5
self_mixing             the same region blended with another region of the same image, p=0.5
synthetic_occlusion     1–7 occluders pasted anywhere, scaled 0.2–1.0 × (S / 256)
synthetic_occlusion_kp  the same, centred near a labelled keypoint (σ = 0.1 × box side)
======================  ===================================================================

The benchmark applies some of them to the full image before cropping; we apply all of them
to the output crop (same effect on the person, no full image needed). Occluders are RGBA
patches (:class:`OccluderBank`) cut from images of the user's choosing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hmr.core.errors import HmrError

OCCLUSION_AUGMENTATIONS: tuple[str, ...] = (
    "coarse_dropout", "grid_dropout", "photometric_distortion", "random_crop", "hard_erasing",
    "soft_erasing", "self_mixing", "synthetic_occlusion", "synthetic_occlusion_kp")


@dataclass
class OcclusionConfig:
    """Probability of each occlusion-style augmentation (0 = off)."""

    coarse_dropout: float = 0.0
    grid_dropout: float = 0.0
    photometric_distortion: float = 0.0
    hard_erasing: float = 0.0
    soft_erasing: float = 0.0
    self_mixing: float = 0.0
    synthetic_occlusion: float = 0.0
    synthetic_occlusion_kp: float = 0.0
    occluder_images: list[str] = field(default_factory=list)

    def enabled(self) -> list[str]:
        return [n for n in OCCLUSION_AUGMENTATIONS if n != "random_crop" and getattr(self, n) > 0]


def coarse_dropout(img: np.ndarray, rng: np.random.Generator, holes: tuple[int, int] = (1, 8),
                   size_px: tuple[int, int] = (10, 40)) -> np.ndarray:
    """(H, W, 3) uint8 → same, with 1–8 rectangles set to 0."""
    out = img.copy()
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(holes[0], holes[1] + 1))):
        hh, ww = (int(rng.integers(size_px[0], size_px[1] + 1)) for _ in range(2))
        y, x = int(rng.integers(0, max(1, h - hh + 1))), int(rng.integers(0, max(1, w - ww + 1)))
        out[y:y + hh, x:x + ww] = 0
    return out


def grid_dropout(img: np.ndarray, rng: np.random.Generator, unit_px: tuple[int, int] = (10, 40),
                 ratio: float = 0.5) -> np.ndarray:
    """Zero a square of side ``ratio × unit`` in every cell of a randomly offset grid."""
    out = img.copy()
    h, w = img.shape[:2]
    unit = int(rng.integers(unit_px[0], unit_px[1] + 1))
    hole = max(1, int(round(unit * ratio)))
    oy, ox = (int(rng.integers(0, unit)) for _ in range(2))
    for y in range(oy - unit, h, unit):
        for x in range(ox - unit, w, unit):
            out[max(0, y):max(0, y + hole), max(0, x):max(0, x + hole)] = 0
    return out


def photometric_distortion(img: np.ndarray, rng: np.random.Generator, brightness: float = 32.0,
                           contrast: tuple[float, float] = (0.5, 1.5),
                           saturation: tuple[float, float] = (0.5, 1.5), hue_deg2: int = 18) -> np.ndarray:
    """Brightness, contrast (before or after), saturation/hue in HSV, channel swap; each p=0.5."""
    out = img.astype(np.float32)
    if rng.random() < 0.5:
        out = out + rng.uniform(-brightness, brightness)
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        out = out * rng.uniform(*contrast)
    hsv_mode = int(rng.integers(0, 4))
    if hsv_mode:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        if hsv_mode in (1, 3):
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0, 255)
        if hsv_mode in (2, 3):
            hsv[..., 0] = (hsv[..., 0] + rng.integers(-hue_deg2, hue_deg2)) % 180  # OpenCV hue: 0..179
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if not contrast_first and rng.random() < 0.5:
        out = out * rng.uniform(*contrast)
    if rng.random() < 0.5:
        out = out[..., rng.permutation(3)]
    return np.clip(out, 0, 255).astype(np.uint8)


def hard_erasing(img: np.ndarray, rng: np.random.Generator, box_center_px: np.ndarray,
                 box_side_px: float, max_area: float = 0.7) -> np.ndarray:
    """Replace a random box (≤ 70% of the person box, aspect 0.3–3.3) inside it by noise."""
    out = img.copy()
    h, w = img.shape[:2]
    area = rng.random() * max_area * box_side_px ** 2
    aspect = rng.uniform(0.3, 1 / 0.3)
    eh, ew = math.sqrt(area * aspect), math.sqrt(area / aspect)
    x0 = box_center_px[0] - box_side_px / 2 + rng.random() * max(0.0, box_side_px - ew - 1)
    y0 = box_center_px[1] - box_side_px / 2 + rng.random() * max(0.0, box_side_px - eh - 1)
    x0, y0 = int(max(0, x0)), int(max(0, y0))
    x1, y1 = min(w, x0 + int(ew)), min(h, y0 + int(eh))
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return out


def _erasing_region(h: int, w: int, rng: np.random.Generator, area: tuple[float, float] = (0.02, 0.4),
                    aspect_min: float = 0.3) -> tuple[int, int, int, int] | None:
    for _ in range(100):
        target = rng.uniform(*area) * h * w
        aspect = rng.uniform(aspect_min, 1 / aspect_min)
        eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < ew < w and 0 < eh < h:
            return int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew
    return None


def soft_erasing(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend a random region with uniform noise by m ~ U(0.1, 0.9)."""
    region = _erasing_region(*img.shape[:2], rng)
    if region is None:
        return img
    y, x, eh, ew = region
    out = img.copy()
    m = rng.uniform(0.1, 0.9)
    noise = rng.random((eh, ew, 3)) * 255.0
    out[y:y + eh, x:x + ew] = ((1 - m) * img[y:y + eh, x:x + ew] + m * noise).astype(np.uint8)
    return out


def self_mixing(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend a random region with another region of the same image by m ~ U(0.1, 0.9)."""
    h, w = img.shape[:2]
    region = _erasing_region(h, w, rng)
    if region is None:
        return img
    y, x, eh, ew = region
    y2, x2 = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
    out = img.copy()
    m = rng.uniform(0.1, 0.9)
    out[y:y + eh, x:x + ew] = ((1 - m) * img[y:y + eh, x:x + ew] + m * img[y2:y2 + eh, x2:x2 + ew]).astype(np.uint8)
    return out


class OccluderBank:
    """RGBA occluder patches (uint8, alpha in the 4th channel).

    ``from_images`` cuts patches from any images: an image with an alpha channel is used
    whole; an RGB image gives ``per_image`` random elliptical cut-outs with soft edges.
    """

    def __init__(self, patches: Sequence[np.ndarray]):
        if not patches:
            raise HmrError("occluder bank is empty: give at least one occluder image")
        self.patches = [np.ascontiguousarray(p) for p in patches]

    @classmethod
    def from_images(cls, images: Sequence[np.ndarray | str | Path], rng: np.random.Generator,
                    per_image: int = 8, size_frac: tuple[float, float] = (0.15, 0.5)) -> "OccluderBank":
        patches = []
        for item in images:
            img = _read_rgba(item) if isinstance(item, (str, Path)) else np.asarray(item)
            if img.ndim == 3 and img.shape[2] == 4:
                patches.append(img)
                continue
            patches.extend(_cut_ellipses(img, rng, per_image, size_frac))
        return cls(patches)

    def choice(self, rng: np.random.Generator) -> np.ndarray:
        return self.patches[int(rng.integers(len(self.patches)))]


def _read_rgba(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise HmrError("cannot read occluder image", path=path)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(img, code)


def _cut_ellipses(img: np.ndarray, rng: np.random.Generator, count: int,
                  size_frac: tuple[float, float]) -> list[np.ndarray]:
    h, w = img.shape[:2]
    out = []
    for _ in range(count):
        ph = max(4, int(h * rng.uniform(*size_frac)))
        pw = max(4, int(w * rng.uniform(*size_frac)))
        y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        alpha = np.zeros((ph, pw), np.uint8)
        cv2.ellipse(alpha, (pw // 2, ph // 2), (pw // 2 - 1, ph // 2 - 1), float(rng.uniform(0, 180)),
                    0, 360, 255, -1)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, min(ph, pw) / 20))
        out.append(np.dstack([img[y:y + ph, x:x + pw, :3], alpha]))
    return out


def paste_rgba(dst: np.ndarray, patch: np.ndarray, center_xy: np.ndarray) -> None:
    """Alpha-blend an (h, w, 4) patch onto (H, W, 3) ``dst`` centred at (x, y), in place."""
    ph, pw = patch.shape[:2]
    h, w = dst.shape[:2]
    x0, y0 = int(round(center_xy[0])) - pw // 2, int(round(center_xy[1])) - ph // 2
    dx0, dy0, dx1, dy1 = max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph)
    if dx1 <= dx0 or dy1 <= dy0:
        return
    src = patch[dy0 - y0:dy1 - y0, dx0 - x0:dx1 - x0]
    alpha = src[..., 3:].astype(np.float32) / 255.0
    region = dst[dy0:dy1, dx0:dx1].astype(np.float32)
    dst[dy0:dy1, dx0:dx1] = (alpha * src[..., :3] + (1 - alpha) * region).astype(np.uint8)


def synthetic_occlusion(img: np.ndarray, rng: np.random.Generator, bank: OccluderBank,
                        centers_xy: np.ndarray | None = None) -> np.ndarray:
    """Paste 1–7 occluders, scaled by U(0.2, 1.0) × (S / 256), at random or given centres."""
    out = img.copy()
    h, w = img.shape[:2]
    base = min(h, w) / 256.0
    for i in range(int(rng.integers(1, 8))):
        patch = bank.choice(rng)
        factor = rng.uniform(0.2, 1.0) * base
        size = (max(1, int(round(patch.shape[1] * factor))), max(1, int(round(patch.shape[0] * factor))))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA)
        if centers_xy is None:
            center = rng.uniform([0, 0], [w, h])
        else:
            center = centers_xy[i % len(centers_xy)]
        paste_rgba(out, patch, center)
    return out


def keypoint_centres(keypoints2d_px: np.ndarray, box_side_px: float, rng: np.random.Generator,
                     count: int = 7) -> np.ndarray | None:
    """(count, 2) occluder centres near random labelled keypoints (jitter σ = 0.1 × box side)."""
    labelled = keypoints2d_px[keypoints2d_px[:, 2] > 0, :2]
    if len(labelled) == 0:
        return None
    picks = labelled[rng.integers(0, len(labelled), count)]
    return picks + rng.normal(0.0, 0.1 * box_side_px, (count, 2))


def apply_occlusions(img: np.ndarray, cfg: OcclusionConfig, rng: np.random.Generator, *,
                     keypoints2d_px: np.ndarray, box_center_px: np.ndarray, box_side_px: float,
                     bank: OccluderBank | None) -> np.ndarray:
    """Run each enabled occlusion-style augmentation with its probability, in a fixed order."""
    if cfg.coarse_dropout and rng.random() < cfg.coarse_dropout:
        img = coarse_dropout(img, rng)
    if cfg.grid_dropout and rng.random() < cfg.grid_dropout:
        img = grid_dropout(img, rng)
    if cfg.photometric_distortion and rng.random() < cfg.photometric_distortion:
        img = photometric_distortion(img, rng)
    if cfg.hard_erasing and rng.random() < cfg.hard_erasing:
        img = hard_erasing(img, rng, box_center_px, box_side_px)
    if cfg.soft_erasing and rng.random() < cfg.soft_erasing:
        img = soft_erasing(img, rng)
    if cfg.self_mixing and rng.random() < cfg.self_mixing:
        img = self_mixing(img, rng)
    needs_bank = (cfg.synthetic_occlusion or cfg.synthetic_occlusion_kp)
    if needs_bank and bank is None:
        raise HmrError("synthetic occlusion is enabled but no occluder images were given")
    if cfg.synthetic_occlusion and rng.random() < cfg.synthetic_occlusion:
        img = synthetic_occlusion(img, rng, bank)
    if cfg.synthetic_occlusion_kp and rng.random() < cfg.synthetic_occlusion_kp:
        centres = keypoint_centres(keypoints2d_px, box_side_px, rng)
        if centres is not None:
            img = synthetic_occlusion(img, rng, bank, centres)
    return img
