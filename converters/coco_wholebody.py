"""COCO-WholeBody v1.0: 133 whole-body keypoints per person over the COCO 2017 images.

Raw layout (``ROOT`` = MMHuman3D's ``data/datasets/coco``, the manifest's layout)::

    ROOT/annotations/coco_wholebody_{train,val}_v1.0.json
    ROOT/train_2017/{train,val}2017/000000xxxxxx.jpg     (MMHuman3D's nesting)

When ``ROOT/train_2017/<split>2017`` does not exist the images are read from
``ROOT/<split>2017/`` instead: the COCO / MMPose layout, where the two JSON files sit in the
``annotations/`` folder of an ordinary COCO 2017 download.

The JSON is COCO's person-keypoints file, read by :mod:`converters.coco_format` (filtering
rules and ``-o`` options there), with these additions per annotation (publisher's
``data_format.md``, jin-s13/COCO-WholeBody; every key checked on the publisher's real
``evaluation/example_gt.json``, 5 val2017 images, 26 persons):

- ``keypoints`` (17 x [x, y, v], COCO body), ``foot_kpts`` (6 x 3), ``face_kpts`` (68 x 3),
  ``lefthand_kpts`` (21 x 3), ``righthand_kpts`` (21 x 3): concatenated in this order they
  are the 133 joints of convention ``coco_wholebody`` (``hmr conventions coco_wholebody``):
  body 0-16 in COCO order; feet 17-22 = left big toe, left small toe, left heel, right big
  toe, right small toe, right heel; face 23-90 in the iBUG-300W 68-landmark order (jaw from
  the person's right, eyebrows, nose, eyes, outer then inner lips); left hand 91-111 and
  right hand 112-132 = root, then thumb, forefinger, middle, ring and pinky, 4 joints each
  from the palm out (order as in open-mmlab/mmpose ``configs/_base_/datasets/
  coco_wholebody.py``). Every joint goes to its own superset slot; the hand roots are
  slots of their own, distinct from the body's wrists.
  Checked by anatomy on the real file: each of the 21 labelled hand roots is nearer its own
  wrist (1-16 px) than the other; 17 of 18 big toes are nearer their own ankle; the mean of
  face points 36-41 (iBUG's right eye) is within 2 px of the body's right eye on every
  labelled face, and face point 0 lies by the right ear.
- Visibility / confidence: body ``v`` is COCO's 0 / 1 / 2 and feet 0 / 2 (ints or floats
  such as 2.0). Face and hand values are either 0 / 1 / 2 or, for whole hands, a float
  in (0, 1): 336 of the real file's 1,092 hand values are such floats (0.008 .. 0.68),
  whose meaning the publisher gives as "v > 0 means that the keypoint is reliable".
  Confidence = 0 for ``v <= 0`` (not labelled, x = y = 0), ``v`` itself for 0 < v < 1
  (kept, not binarised), 1 for ``v >= 1`` (labelled; COCO's occluded 1 and visible 2 alike).
  The raw value of every joint is kept in ``extra_visibility`` (133 float32), so occluded
  (1) and visible (2) body joints stay distinguishable.
- Part boxes ``face_box``, ``lefthand_box``, ``righthand_box`` (xywh, px) and the flags
  ``face_valid``, ``lefthand_valid``, ``righthand_valid``, ``foot_valid`` are kept as
  ``extra_<key>`` columns (float32 (4,) / bool). A part whose flag is false has all-zero
  keypoints and box in the file (checked on the real file), so its joints are confidence 0.

Box: the annotation's body ``bbox`` (COCO xywh), ``-o bbox=keypoints`` for the extent of the
labelled keypoints (all 133) x1.2. ``image_hw`` from the JSON. MMHuman3D's converter keeps
the float confidences too but drops persons with fewer than 12 labelled body joints 5-16:
``-o preset=spin`` (or ``min_limb_keypoints=12``) reproduces that selection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.coco_format import OPTIONS, CocoFormat, define  # noqa: F401  (OPTIONS: the reader's)
from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions
from hmr.core.sources import SOURCES

SOURCE = SOURCES["coco_wholebody"]
VERSION = "1"

#: the annotation keys holding [x, y, v] lists, in the order of convention ``coco_wholebody``
PART_KEYS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")
PART_BOXES = ("face_box", "lefthand_box", "righthand_box")
PART_FLAGS = ("face_valid", "lefthand_valid", "righthand_valid", "foot_valid")
IMAGES_MMHUMAN3D = "train_2017/{split}2017"
IMAGES_COCO = "{split}2017"


def wholebody_confidence(v: np.ndarray) -> np.ndarray:
    """Raw visibility values (K,) -> confidence in [0, 1]: 0 for v <= 0, v for 0 < v < 1
    (the publisher's float confidences), 1 for v >= 1 (COCO's labelled codes 1 and 2)."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v >= 1.0, 1.0, np.clip(v, 0.0, None))


def _keep_confidences(sample: dict, ann: dict, img: dict) -> None:
    """The reader binarises confidences; put back the publisher's floats and the raw codes."""
    raw = np.concatenate([np.asarray(ann[key], dtype=np.float64).reshape(-1, 3) for key in PART_KEYS])
    kps = np.concatenate([raw[:, :2], wholebody_confidence(raw[:, 2])[:, None]], axis=1)  # (133, 3)
    sample["keypoints2d"] = to_superset(kps, "coco_wholebody")
    sample["extra_visibility"] = raw[:, 2].astype(np.float32)
    for key in PART_BOXES:  # one dtype per column whatever the JSON's ints / floats
        sample[f"extra_{key}"] = np.asarray(sample[f"extra_{key}"], dtype=np.float32).reshape(4)
    for key in PART_FLAGS:
        sample[f"extra_{key}"] = np.bool_(sample[f"extra_{key}"])


def _format(images: str) -> CocoFormat:
    return CocoFormat(annotations="annotations/coco_wholebody_{split}_v1.0.json", images=images,
                      convention="coco_wholebody", keypoint_keys=PART_KEYS,
                      annotation_extras=PART_BOXES + PART_FLAGS, hook=_keep_confidences)


FORMAT = _format(IMAGES_MMHUMAN3D)
raw_files, _iter_mmhuman3d = define(SOURCE, FORMAT)
_, _iter_coco = define(SOURCE, _format(IMAGES_COCO))


def image_folder(root: Path, split: str) -> str:
    """The image folder pattern used for ``split``: MMHuman3D's nesting when it exists."""
    nested = Path(root) / IMAGES_MMHUMAN3D.format(split=split)
    flat = Path(root) / IMAGES_COCO.format(split=split)
    return IMAGES_COCO if not nested.is_dir() and flat.is_dir() else IMAGES_MMHUMAN3D


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    if image_folder(root, split) == IMAGES_COCO:
        return _iter_coco(root, split, options)
    return _iter_mmhuman3d(root, split, options)
