"""Backgrounds for synthetic images: procedural textures and person-free photo crops.

Photo crops come from folders of real images the user chooses (by default the real sample
photos in ``../shared/fixtures`` when the repository sits next to them). Where a COCO-style
JSON lists person boxes for an image, crops avoid every person box, so a synthetic body is
never composited over a real one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROCEDURAL = ("gradient", "checker", "stripes", "noise", "blobs")


def procedural(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) uint8 texture of the given kind with random colours and scales."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
    elif kind == "checker":
        cells = rng.integers(3, 12)
        t = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(float)
    elif kind == "stripes":
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 15)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    elif kind == "noise":
        coarse = rng.uniform(0, 1, (rng.integers(4, 12),) * 2)
        import cv2

        t = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    elif kind == "blobs":
        t = np.zeros((size, size))
        for _ in range(rng.integers(3, 9)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            t = np.maximum(t, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    else:
        raise ValueError(f"unknown procedural background '{kind}' (known: {', '.join(PROCEDURAL)})")
    img = (1 - t)[..., None] * c1 + t[..., None] * c2
    img += rng.normal(0, 0.02, img.shape)  # sensor-like grain
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@dataclass
class Photo:
    path: Path
    person_boxes: list[tuple[float, float, float, float]]  # xywh


def default_photo_dirs() -> list[Path]:
    """``$HMR_BACKGROUNDS`` (os.pathsep-separated), else the shared real-sample photos."""
    env = os.environ.get("HMR_BACKGROUNDS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "mmpose-samples"
    # MPII photos are left out: their JSON boxes only the annotated people, and crowds
    # in the background would end up behind a synthetic body.
    return [shared / "coco"] if shared.is_dir() else []


def _person_boxes_from_json(folder: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """Person boxes per image file name, from COCO-style (images/annotations) or MMPose
    MPII-style (center/scale) JSON files in ``folder``."""
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for js in folder.glob("*.json"):
        try:
            data = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            names = {im["id"]: im["file_name"] for im in data["images"]}
            for ann in data["annotations"]:
                if ann.get("image_id") in names and "bbox" in ann:
                    boxes.setdefault(names[ann["image_id"]], []).append(tuple(ann["bbox"]))
        elif isinstance(data, list):
            for rec in data:
                if isinstance(rec, dict) and {"image", "center", "scale"} <= set(rec):
                    side = float(rec["scale"]) * 200 * 1.25
                    cx, cy = rec["center"]
                    boxes.setdefault(rec["image"], []).append((cx - side / 2, cy - side / 2, side, side))
    return boxes


def find_photos(dirs: list[Path]) -> list[Photo]:
    photos = []
    for folder in dirs:
        if not folder.is_dir():
            continue
        boxes = _person_boxes_from_json(folder)
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                photos.append(Photo(path, boxes.get(path.name, [])))
    return photos


def photo_crop(photo: Photo, size: int, rng: np.random.Generator, tries: int = 50,
               image: np.ndarray | None = None) -> np.ndarray | None:
    """A random square crop that overlaps no person box, resized to (size, size, 3) RGB.
    ``image``: the photo already decoded (BGR), else it is read from ``photo.path``."""
    import cv2

    img = cv2.imread(str(photo.path), cv2.IMREAD_COLOR) if image is None else image
    if img is None:
        return None
    h, w = img.shape[:2]
    for _ in range(tries):
        side = int(rng.uniform(0.2, 0.6) * min(h, w))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        clear = all(x0 >= bx + bw or x0 + side <= bx or y0 >= by + bh or y0 + side <= by
                    for bx, by, bw, bh in photo.person_boxes)
        if clear:
            crop = cv2.resize(img[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)
            return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    return None


class BackgroundSource:
    """Draws backgrounds: a photo crop with probability ``photo_fraction`` (when photos
    exist), else a procedural texture. Returns (image, description)."""

    def __init__(self, photo_dirs: list[Path] | None = None, photo_fraction: float = 0.5):
        self.photos = find_photos(default_photo_dirs() if photo_dirs is None else photo_dirs)
        self.photo_fraction = photo_fraction if self.photos else 0.0
        self._decoded: dict[Path, np.ndarray | None] = {}  # a few photos, decoded once per process

    def draw(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        if rng.uniform() < self.photo_fraction:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            if photo.path not in self._decoded:
                import cv2

                self._decoded[photo.path] = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
            crop = photo_crop(photo, size, rng, image=self._decoded[photo.path])
            if crop is not None:
                return crop, f"photo:{photo.path.name}"
        kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]
        return procedural(kind, size, rng), kind
