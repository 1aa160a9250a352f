"""COCO person keypoints (2017 release; the 2014 release is :mod:`converters.coco2014`).

Raw layout (as downloaded from cocodataset.org and unzipped into ``ROOT``)::

    ROOT/annotations/person_keypoints_{train,val}2017.json
    ROOT/train2017/000000xxxxxx.jpg
    ROOT/val2017/000000xxxxxx.jpg

The JSON is the official COCO format, read through pycocotools' index (``COCO``):
``images[{id, file_name, height, width}]``, ``annotations[{id, image_id, category_id,
iscrowd, num_keypoints, keypoints (51 = 17 x [x, y, v]), bbox [x, y, w, h], area}]``,
``categories`` (person = ``name == "person"``). The JSON is parsed by :func:`read_json`
first so a truncated file is reported with its line and column.

Conventions applied
-------------------
- Keypoints: COCO-17 order (convention ``"coco"``), mapped into the superset. COCO's
  visibility ``v`` is 0 = not labelled, 1 = labelled but occluded, 2 = visible; both 1 and
  2 become confidence 1, 0 becomes confidence 0 (with x = y = 0 as in the file).
  Coordinates are used as written (COCO keypoints are 0-based pixel positions).
- Box: the annotation's own ``bbox`` (the publisher's box around the segmentation), no
  enlargement; ``-o bbox=keypoints`` uses the labelled-keypoint extent x1.2 instead.
- ``image_hw`` comes from the JSON (``height``, ``width``); images are checked to exist
  (not decoded) unless ``--no-check-images``.
- ``person_id`` is the person's index among the kept annotations of its image (COCO
  annotation ids of crowd regions overflow int32); the annotation id is in ``source_key``
  as ``<json name>:ann=<id>``.

Filtering rules (documented, configurable with ``-o key=value``)
----------------------------------------------------------------
- ``keep_crowd=0`` (default): annotations with ``iscrowd = 1`` (crowd regions, no
  keypoints) are dropped.
- ``min_keypoints=1`` (default): drop persons with fewer labelled keypoints (``v > 0``).
  COCO's own keypoint benchmark ignores persons with 0 keypoints.
- ``min_limb_keypoints=0`` (default): drop persons with fewer labelled limb joints
  (shoulders, elbows, wrists, hips, knees, ankles = COCO indices 5-16). SPIN and
  MMHuman3D use 12 (all limbs labelled): ``-o min_limb_keypoints=12`` reproduces their
  COCO-2014 training set (``-o preset=spin`` is a shortcut for that).
Dropped persons are not errors and are not listed in the skip report.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import bbox_from_keypoints, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["coco2017"]
VERSION = "1"

OPTIONS = (
    Option("keep_crowd", False, bool, "keep crowd regions (iscrowd = 1; they have no keypoints)"),
    Option("min_keypoints", 1, int, "drop persons with fewer labelled keypoints (v > 0)"),
    Option("min_limb_keypoints", None, int, "drop persons with fewer labelled limb joints "
           "(shoulders .. ankles); default 0, 12 with preset=spin (SPIN / MMHuman3D)"),
    Option("preset", "", str, "'spin': SPIN's selection (min_limb_keypoints=12)", choices=("", "spin")),
    Option("bbox", "annotation", str, "box: the annotation's own bbox, or the labelled-keypoint "
           "extent x1.2", choices=("annotation", "keypoints")),
)

NUM_COCO_KEYPOINTS = 17
LIMB_SLICE = slice(5, 17)  # shoulders .. ankles in COCO-17 order


def annotation_file(root: Path, split: str, year: int) -> Path:
    return root / "annotations" / f"person_keypoints_{split}{year}.json"


def raw_files(root: Path, split: str, year: int = 2017) -> list[Path]:
    path = annotation_file(Path(root), split, year)
    return [path] if path.is_file() else []


def load_coco(path: Path):
    """pycocotools index over an already-parsed JSON (clear errors for truncated files)."""
    from pycocotools.coco import COCO

    data = read_json(path)
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise DatasetFormatError("not a COCO annotation file (needs 'images' and 'annotations')",
                                 path=path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def coco_keypoints(ann: dict) -> np.ndarray:
    """(17, 3) x, y px and confidence in {0, 1} from an annotation's flat ``keypoints``."""
    raw = np.asarray(ann.get("keypoints", []), dtype=np.float64)
    if raw.size != NUM_COCO_KEYPOINTS * 3:
        raise ValueError(f"'keypoints' has {raw.size} numbers, expected {NUM_COCO_KEYPOINTS * 3}")
    kps = raw.reshape(NUM_COCO_KEYPOINTS, 3)
    kps[:, 2] = (kps[:, 2] > 0).astype(np.float64)
    return kps


def _keep(ann: dict, kps: np.ndarray, rules: dict) -> bool:
    if ann.get("iscrowd", 0) and not rules["keep_crowd"]:
        return False
    if kps[:, 2].sum() < rules["min_keypoints"]:
        return False
    return kps[LIMB_SLICE, 2].sum() >= rules["min_limb_keypoints"]


def filter_rules(options: ConvertOptions) -> dict:
    min_limb = get_option(options, OPTIONS, "min_limb_keypoints")
    if min_limb is None:
        min_limb = 12 if get_option(options, OPTIONS, "preset") == "spin" else 0
    return {
        "keep_crowd": get_option(options, OPTIONS, "keep_crowd"),
        "min_keypoints": get_option(options, OPTIONS, "min_keypoints"),
        "min_limb_keypoints": min_limb,
        "bbox": get_option(options, OPTIONS, "bbox"),
    }


def _sample(ann: dict, kps: np.ndarray, img: dict, rel_image: str, person: int,
            path: Path, bbox_mode: str) -> dict | BadRecord:
    if bbox_mode == "keypoints":
        bbox = bbox_from_keypoints(kps)
        if bbox is None:
            return BadRecord(str(path), ann.get("id"), "fewer than two labelled keypoints: no box")
    else:
        bbox = np.asarray(ann.get("bbox", []), dtype=np.float32)
        if bbox.shape != (4,) or (bbox[2:] <= 0).any():
            return BadRecord(str(path), ann.get("id"), f"invalid 'bbox' {ann.get('bbox')!r}")
    return {
        "image_path": rel_image,
        "image_hw": np.array([img.get("height", 0), img.get("width", 0)], dtype=np.int32),
        "bbox_xywh": bbox,
        "keypoints2d": to_superset(kps, "coco"),
        "person_id": person,
        "frame_index": -1,
        "source_key": f"{path.name}:ann={ann.get('id')}",
    }


def iter_coco(root: Path, split: str, options: ConvertOptions, year: int) -> Iterator[dict | BadRecord]:
    """Yield one sample per kept person annotation, images in id order."""
    root = Path(root)
    path = annotation_file(root, split, year)
    coco = load_coco(path)
    rules = filter_rules(options)
    image_dir = f"{split}{year}"
    person_cats = coco.getCatIds(catNms=["person"]) or [1]
    for image_id in sorted(coco.getImgIds()):
        img = coco.imgs[image_id]
        ann_ids = coco.getAnnIds(imgIds=[image_id], catIds=person_cats, iscrowd=None)
        rel_image = f"{image_dir}/{img.get('file_name', '')}"
        kept = 0
        image_checked = False
        for ann in coco.loadAnns(sorted(ann_ids)):
            try:
                kps = coco_keypoints(ann)
            except ValueError as exc:
                yield BadRecord(str(path), ann.get("id"), str(exc))
                continue
            if not _keep(ann, kps, rules):
                continue
            if not image_checked and options.check_images:
                image_checked = True
                if not (root / rel_image).is_file():
                    yield BadRecord(str(root / rel_image), f"image_id={image_id}", "image file is missing")
                    break
            yield _sample(ann, kps, img, rel_image, kept, path, rules["bbox"])
            kept += 1


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    return iter_coco(root, split, options, 2017)
