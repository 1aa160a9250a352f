"""Backgrounds for synthetic images: procedural textures and cluttered scenes, or crops of
your own photos.

By default every background is generated from the render's random generator alone, so
``hmr synth`` and ``make demo`` give the same images on every machine, with nothing to download
and no licence to check. Half are plain textures (gradient, checks, stripes, smooth noise or
blobs), half cluttered scenes (:data:`PLAIN_FRACTION`). A scene is such a texture, sometimes
split at a horizon into "wall" and "floor", with 4-16 flat or textured shapes drawn over it
(boxes, ellipses, polygons, poles and skin- or cloth-coloured limb-like capsules) and camera
grain. The clutter is there so that the network has to find the body: on a plain texture it
can key on the only object in the picture.

Photo crops are used only when the caller names folders of images (``hmr synth --photos DIR``);
where a COCO-style JSON in such a folder lists person boxes, crops avoid every box, so a
synthetic body is never composited over a real person.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROCEDURAL = ("gradient", "checker", "stripes", "noise", "blobs")


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 texture of one kind, two random colours, no grain. The pattern
    is computed on a grid of at most 64 px and enlarged (edges of checks and stripes soften a
    little at larger sizes; four times cheaper at 128 px)."""
    import cv2

    n = min(size, 64)
    x = (np.arange(n, dtype=np.float32) / n)[None, :]  # (1, n)
    y = (np.arange(n, dtype=np.float32) / n)[:, None]  # (n, 1)
    c1, c2 = rng.uniform(0, 1, 3).astype(np.float32), rng.uniform(0, 1, 3).astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * x + np.sin(angle) * y  # (n, n)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == "checker":
        cells = rng.integers(3, 12)
        t = (np.floor(x * cells) + np.floor(y * cells)) % 2
    elif kind == "stripes":
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 15)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * x + np.sin(angle) * y))
    elif kind == "noise":
        coarse = rng.uniform(0, 1, (rng.integers(4, 12),) * 2).astype(np.float32)
        t = cv2.resize(coarse, (n, n), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    elif kind == "blobs":
        t = np.zeros((n, n), np.float32)
        for _ in range(rng.integers(3, 9)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            t = np.maximum(t, np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))
    else:
        raise ValueError(f"unknown procedural background '{kind}' (known: {', '.join(PROCEDURAL)})")
    t8 = (np.asarray(t, np.float32) * 255 + 0.5).astype(np.uint8)  # (n, n)
    if n != size:
        t8 = cv2.resize(t8, (size, size), interpolation=cv2.INTER_LINEAR)
    # colour through a 256-entry table: cheaper than blending three float channels
    ramp = np.linspace(0, 1, 256, dtype=np.float32)[:, None]
    lut = np.round((c1 + ramp * (c2 - c1)) * 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.merge([t8, t8, t8]), lut)  # (size, size, 3)


def _grain(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor-like grain: the same noise on the three channels (uint8 in, uint8 out)."""
    import cv2

    noise = rng.standard_normal(img.shape[:2], dtype=np.float32) * np.float32(sigma * 255)
    return cv2.add(img, cv2.merge([noise] * img.shape[2]), dtype=cv2.CV_8U)  # saturating


def procedural(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) uint8 texture of the given kind with random colours and scales."""
    return _grain(_texture(kind, size, rng), 0.02, rng)


#: shapes drawn over a scene's base texture
SHAPES = ("box", "ellipse", "polygon", "pole", "limb")
_SKIN_TONES = np.array([(0.95, 0.80, 0.69), (0.87, 0.72, 0.60), (0.68, 0.50, 0.38), (0.45, 0.31, 0.22)])


def _draw_shape(canvas: np.ndarray, shape: str, colour: tuple, rng: np.random.Generator) -> None:
    """Draw one random shape, anywhere in the frame (partly outside is fine), onto ``canvas``
    (uint8, (S, S) or (S, S, 3)) in ``colour``."""
    import cv2

    size = canvas.shape[0]
    cx, cy = rng.uniform(-0.1, 1.1, 2) * size
    aa = cv2.LINE_AA
    if shape == "box":
        w, h = rng.uniform(0.08, 0.6, 2) * size
        box = ((float(cx), float(cy)), (float(w), float(h)), float(rng.uniform(-30, 30)))
        cv2.fillPoly(canvas, [cv2.boxPoints(box).round().astype(np.int32)], colour, aa)
    elif shape == "ellipse":
        axes = tuple(max(1, int(a)) for a in rng.uniform(0.04, 0.35, 2) * size)
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, aa)
    elif shape == "polygon":
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.05, 0.35, n) * size
        pts = np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]
        cv2.fillPoly(canvas, [pts.round().astype(np.int32)], colour, aa)
    elif shape in ("pole", "limb"):
        # pole: long straight edges (door frames, posts, table legs); limb: a capsule about a
        # forearm's size, a body-like distractor
        long = shape == "pole"
        a = rng.uniform(0, 2 * np.pi)
        half = size * (1.0 if long else rng.uniform(0.06, 0.18))
        d = np.array([np.cos(a), np.sin(a)]) * half
        p0, p1 = (np.array([cx, cy]) - d).astype(int), (np.array([cx, cy]) + d).astype(int)
        width = max(2, int((rng.uniform(0.01, 0.08) if long else rng.uniform(0.03, 0.07)) * size))
        cv2.line(canvas, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), colour, width, aa)
    else:
        raise ValueError(f"unknown shape '{shape}' (known: {', '.join(SHAPES)})")


def clutter(size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A (size, size, 3) uint8 cluttered scene and its description (``clutter:<base>``).

    A base texture, half the time a second one below a horizon ("floor"), then 4-16 shapes:
    flat-coloured (limbs often in skin tones) or filled with a texture of their own; now and
    then the picture so far is blurred, so that later shapes stand in front of an
    out-of-focus background. Last, grain. Deterministic given ``rng``; ~0.3 ms at 128 px."""
    import cv2

    kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]
    img = _texture(kind, size, rng)
    if rng.uniform() < 0.5:  # wall and floor
        floor = _texture(PROCEDURAL[int(rng.integers(len(PROCEDURAL)))], size, rng)
        horizon = int(rng.uniform(0.35, 0.85) * size)
        img[horizon:] = floor[horizon:]
    for _ in range(int(rng.integers(4, 17))):
        if rng.uniform() < 0.15:  # depth of field: what is drawn so far goes out of focus
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 2.0)))
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if rng.uniform() < 0.25:  # textured shape: draw a mask, copy a texture through it
            mask = np.zeros((size, size), np.uint8)
            _draw_shape(mask, shape, 255, rng)
            tex = _texture(PROCEDURAL[int(rng.integers(len(PROCEDURAL)))], size, rng)
            np.copyto(img, tex, where=mask[..., None] > 127)
            continue
        if shape == "limb" and rng.uniform() < 0.5:
            rgb = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))] * rng.uniform(0.8, 1.1)
        else:
            rgb = rng.uniform(0, 1, 3)
        _draw_shape(img, shape, tuple(int(v) for v in np.clip(rgb * 255, 0, 255)), rng)
    return _grain(img, rng.uniform(0.01, 0.04), rng), f"clutter:{kind}"


@dataclass
class Photo:
    path: Path
    person_boxes: list[tuple[float, float, float, float]]  # xywh


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


#: share of plain textures among the procedural backgrounds; the rest are cluttered scenes.
#: Half and half mirrors the demo's earlier mix of plain textures and photo crops: all-clutter
#: backgrounds made the demo's task harder (PA-MPJPE 29% below the mean-pose baseline with the
#: demo's budget, 30% asked; docs/dev/demo-history.md).
PLAIN_FRACTION = 0.5


class BackgroundSource:
    """Draws backgrounds: a crop of one of the photos in ``photo_dirs`` with probability
    ``photo_fraction``, else a procedural one (always, when no folder is named): a plain
    texture (:func:`procedural`) with probability ``plain_fraction``, else a cluttered scene
    (:func:`clutter`). Returns (image, description)."""

    def __init__(self, photo_dirs: list[Path] | None = None, photo_fraction: float = 0.5,
                 plain_fraction: float = PLAIN_FRACTION):
        self.photos = find_photos(list(photo_dirs or []))
        self.photo_fraction = photo_fraction if self.photos else 0.0
        self.plain_fraction = plain_fraction
        self._decoded: dict[Path, np.ndarray | None] = {}  # a few photos, decoded once per process

    def draw(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        # no draw from rng for the photo choice when there are no photos: the procedural
        # scenes then depend on the seed alone
        if self.photos and rng.uniform() < self.photo_fraction:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            if photo.path not in self._decoded:
                import cv2

                self._decoded[photo.path] = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
            crop = photo_crop(photo, size, rng, image=self._decoded[photo.path])
            if crop is not None:
                return crop, f"photo:{photo.path.name}"
        if rng.uniform() < self.plain_fraction:
            kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]
            return procedural(kind, size, rng), f"texture:{kind}"
        return clutter(size, rng)
