"""OCHuman (Zhang et al., "Pose2Seg", CVPR 2019): heavily occluded people, val and test only.

Raw layout (the download behind the form linked from github.com/liruilong940607/OCHumanApi;
the layout MMPose's and Pose2Seg's docs use)::

    ROOT/images/NNNNNN.jpg                                        (e.g. 000001.jpg)
    ROOT/annotations/ochuman_coco_format_{val,test}_range_0.00_1.00.json   (COCO format)
    ROOT/annotations/ochuman.json                                 (the original file)

The same files directly under ``ROOT`` are read when ``annotations/`` has none.

Which file (``-o annotations=...``)
-----------------------------------
- ``coco`` (default): the COCO-format val / test files. They are what MMPose and most
  evaluation code read, what every copy of the dataset carries, and they define the
  benchmark's persons. Read by the COCO-style reader :mod:`converters.coco_format` (options
  and bad records described there): 17 COCO joints, ``bbox`` x, y, width, height.
- ``original``: ``ochuman.json``, which keeps what the export loses: four visibility levels
  and each person's ``max_iou``. The split is the publisher's own, recomputed as
  OCHumanApi's ``toCocoFormart`` makes it: the images having at least one person with both
  keypoints and a mask, sorted by ``image_id``; the first :data:`VAL_IMAGES` (2,500) are
  val, the remaining 2,231 test.

The original file (keys read in OCHumanApi ``ochumanApi/ochuman.py`` and checked on the
10-image sample of the real file shipped in airctic/icevision ``samples/ochuman``):
``keypoint_names`` (19, below), ``keypoint_visible`` ({missing: 0, vis: 1, self_occluded: 2,
others_occluded: 3}), ``images[{image_id (a string, "000010"), file_name, width, height,
annotations[{bbox [x1, y1, x2, y2], keypoints (57 = 19 x [x, y, v]) or null, segms {outer,
inner, width, height} or null, max_iou, links}]}]``. Joint order (the file's own
``keypoint_names``; convention ``ochuman_19``): right shoulder, elbow, wrist, left shoulder,
elbow, wrist, right hip, knee, ankle, left hip, knee, ankle, ``head`` (top of the head:
superset ``head_top``), ``neck``, right ear, left ear, nose, right eye, left eye. The reader
maps joints by these names, so a file listing them in another order still lands right; a
file with other names or other visibility codes is refused.

Conventions applied
-------------------
- Visibility. Original file: 0 = missing (confidence 0, x = y = 0 in the file), 1 = visible,
  2 = occluded by the person's own body, 3 = occluded by another person; 1-3 are labelled
  (confidence 1), positions kept. COCO files: ``toCocoFormart`` maps 1 and 2 to COCO's 2 and
  3 to COCO's 1, so there 2 = visible or self-occluded and 1 = occluded by someone else. The
  raw codes are kept in ``extra_visibility`` (int8, native order: 19 or 17 joints). A code
  outside the documented set is a bad record.
- Box: the person's own box. The original ``bbox`` is x1, y1, x2, y2 and is converted to
  x, y, width, height (hmr-benchmarks' reader takes it for x, y, w, h); the COCO files'
  ``bbox`` is already x, y, w, h. ``-o bbox=keypoints`` uses the labelled-keypoint extent
  x1.2 instead.
- Persons. People here are heavily occluded, so few labelled joints are normal: every
  person with at least ``min_keypoints`` (default 1) labelled joint is kept; there is no
  crowd region. Original file, ``-o persons=official`` (default): the benchmark's persons,
  those with keypoints and a mask and ``0 <= max_iou < 1`` (the export's range
  [0.00, 1.00)), the same persons as the COCO files; ``-o persons=keypoints`` keeps every
  person with keypoints in the split's images (masks not required; refused with the COCO
  files, which hold only the benchmark's persons). Persons whose
  ``keypoints`` is null are not labelled and are dropped without a report.
- ``max_iou`` (original file: the largest IoU of the person with anyone else in the image,
  the dataset's occlusion measure) is kept as ``extra_max_iou``.
- ``source_key``: COCO files ``<json name>:ann=<id>`` (ids renumbered from 1 per file by the
  export, as are image ids); original file ``ochuman.json:image_id=<id>:ann=<index in the
  image's list>``. ``person_id`` is the person's index among the kept persons of its image.
- Image sizes come from the JSON; images are checked to exist unless ``--no-check-images``.

Public readers' bugs avoided: hmr-benchmarks' ``ochuman.py`` treats the original x1y1x2y2
box as xywh, iterates ``img['annotations']`` of the COCO files (which have none: an empty
output) and binarises visibility (self / other occlusion lost); EFT's
``db_processing/ochuman.py`` skips every record (a ``continue`` right after a print).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters import coco_format
from converters.coco_format import (
    CocoFormat,
    filter_rules,
    image_record_problem,
    keep_person,
    read_json_safely,
)
from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["ochuman"]
VERSION = "1"
OPTIONS = coco_format.OPTIONS + (
    Option("annotations", "coco", str, "which annotation file to read: the COCO-format val/test "
           "files, or the original ochuman.json (4 visibility levels, max_iou)",
           choices=("coco", "original")),
    Option("persons", "official", str, "original file only: the benchmark's persons (keypoints "
           "and mask, as the COCO files), or every person with keypoints",
           choices=("official", "keypoints")),
)
FORMAT = CocoFormat(annotations="annotations/ochuman_coco_format_{split}_range_0.00_1.00.json",
                    images="images", convention="coco", visibility=(0, 1, 2), keep_visibility=True,
                    fallbacks=("ochuman_coco_format_{split}_range_0.00_1.00.json",))
ORIGINAL = ("annotations/ochuman.json", "ochuman.json")
ORIGINAL_CONVENTION = "ochuman_19"
#: the 19 joint names of the original file, in the convention's order
ORIGINAL_NAMES = ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                  "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
                  "left_ankle", "head", "neck", "right_ear", "left_ear", "nose", "right_eye",
                  "left_eye")
ORIGINAL_VISIBILITY = {"missing": 0, "vis": 1, "self_occluded": 2, "others_occluded": 3}
#: OCHumanApi toCocoFormart: val = the first 2,500 images of the sorted keypoint & mask list
VAL_IMAGES = 2500

_coco_raw_files, _coco_samples = coco_format.define(SOURCE, FORMAT)
_ORIGINAL_FORMAT = CocoFormat(annotations="", images="images", convention=ORIGINAL_CONVENTION)


def original_file(root: Path) -> Path:
    """``annotations/ochuman.json``, else ``ochuman.json`` (the first path when neither is)."""
    for rel in ORIGINAL:
        if (Path(root) / rel).is_file():
            return Path(root) / rel
    return Path(root) / ORIGINAL[0]


def raw_files(root: Path, split: str, options: ConvertOptions | None = None) -> list[Path]:
    """The annotation file the conversion reads; without options, every one present."""
    coco = _coco_raw_files(root, split)
    original = [p for p in [original_file(root)] if p.is_file()]
    if options is None:
        return coco + original
    return original if get_option(options, OPTIONS, "annotations") == "original" else coco


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    if get_option(options, OPTIONS, "annotations") == "original":
        return _original_samples(Path(root), split, options)
    if get_option(options, OPTIONS, "persons") != "official":
        raise HmrError("-o persons=keypoints reads the original file: add -o annotations=original "
                       "(the COCO-format files hold only the benchmark's persons)")
    return _coco_samples(root, split, options)


# --------------------------------------------------------------------------- original file
def _load_original(path: Path) -> tuple[dict, list[int]]:
    """The parsed file and the positions of :data:`ORIGINAL_NAMES` in its keypoint lists."""
    data = read_json_safely(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetFormatError("not OCHuman's ochuman.json (needs an 'images' list)", path=path)
    names = data.get("keypoint_names")
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(ORIGINAL_NAMES):
        raise DatasetFormatError(f"'keypoint_names' {names!r} are not OCHuman's 19 joints "
                                 f"{list(ORIGINAL_NAMES)}", path=path)
    if data.get("keypoint_visible") != ORIGINAL_VISIBILITY:
        raise DatasetFormatError(f"'keypoint_visible' {data.get('keypoint_visible')!r} is not "
                                 f"OCHuman's {ORIGINAL_VISIBILITY}", path=path)
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "image_id" not in img or "file_name" not in img \
                or not isinstance(img.get("annotations"), list) \
                or not all(isinstance(a, dict) for a in img["annotations"]):
            raise DatasetFormatError("image entry lacks 'image_id', 'file_name' or an "
                                     "'annotations' list of objects", path=path, record=f"images[{i}]")
    return data, [names.index(n) for n in ORIGINAL_NAMES]


def _benchmark_person(ann: dict) -> bool:
    """A person of the benchmark's list: keypoints and a mask (OCHumanApi's 'kpt&segm')."""
    return bool(ann.get("keypoints")) and bool(ann.get("segms"))


def split_images(images: list[dict], split: str, path: Path) -> list[dict]:
    """The split's image entries: the images with a benchmark person, sorted by image_id;
    val the first :data:`VAL_IMAGES`, test the rest."""
    listed = [img for img in images if any(_benchmark_person(a) for a in img["annotations"])]
    ids = [img["image_id"] for img in listed]
    if len(set(map(repr, ids))) != len(ids):
        raise DatasetFormatError("duplicate 'image_id' among the images", path=path)
    listed.sort(key=lambda img: coco_format.id_order(img["image_id"]))
    return listed[:VAL_IMAGES] if split == "val" else listed[VAL_IMAGES:]


def _original_keypoints(ann: dict, order: list[int]) -> np.ndarray:
    """(19, 3) x, y, raw code in the convention's order; ValueError when unusable."""
    try:
        raw = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError("'keypoints' is not a list of numbers") from None
    if raw.size != 19 * 3:
        raise ValueError(f"'keypoints' has {raw.size} numbers, expected 57")
    kps = raw.reshape(19, 3)[order]
    if not np.isfinite(kps).all():
        raise ValueError(f"keypoints hold NaN or inf (joints {np.flatnonzero(~np.isfinite(kps).all(1)).tolist()})")
    odd = ~np.isin(kps[:, 2], list(ORIGINAL_VISIBILITY.values()))
    if odd.any():
        raise ValueError(f"visibility {kps[np.argmax(odd), 2]:g} is not one of OCHuman's codes "
                         f"{sorted(ORIGINAL_VISIBILITY.values())}")
    return kps


def _original_box(ann: dict) -> np.ndarray | None:
    """The annotation's x1, y1, x2, y2 box as x, y, w, h (None when unusable)."""
    try:
        x1, y1, x2, y2 = (float(v) for v in ann.get("bbox"))
    except (TypeError, ValueError):
        return None
    box = np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32)
    return box if np.isfinite(box).all() and (box[2:] > 0).all() else None


def _original_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    path = original_file(root)
    data, order = _load_original(path)
    rules = filter_rules(options, _ORIGINAL_FORMAT)
    official = get_option(options, OPTIONS, "persons") == "official"
    for img in split_images(data["images"], split, path):
        image_id = img["image_id"]
        rel_image = _ORIGINAL_FORMAT.image_path(split, str(img["file_name"]))
        kept, checked = 0, False
        for index, ann in enumerate(img["annotations"]):
            if not ann.get("keypoints"):
                continue  # not labelled
            record = f"image_id={image_id}:ann={index}"
            iou = ann.get("max_iou")
            if not isinstance(iou, (int, float)) or isinstance(iou, bool) or not np.isfinite(iou):
                yield BadRecord(str(path), record, f"'max_iou' {iou!r} is not a number")
                continue
            if official and not (_benchmark_person(ann) and 0 <= iou < 1):
                continue
            try:
                raw = _original_keypoints(ann, order)
            except ValueError as exc:
                yield BadRecord(str(path), record, str(exc))
                continue
            kps = raw.copy()
            kps[:, 2] = (raw[:, 2] > 0).astype(np.float64)
            if not keep_person(ann, kps, rules):
                continue
            if not checked:
                checked = True
                bad = image_record_problem(img, root, rel_image, path, image_id, options)
                if bad is not None:
                    yield bad
                    break
            box = bbox_from_keypoints(kps) if rules["bbox"] == "keypoints" else _original_box(ann)
            if box is None:
                why = ("fewer than two labelled keypoints: no box" if rules["bbox"] == "keypoints"
                       else f"invalid 'bbox' {ann.get('bbox')!r} (x1, y1, x2, y2 with x2 > x1, y2 > y1)")
                yield BadRecord(str(path), record, why)
                continue
            yield {
                "image_path": rel_image,
                "image_hw": np.array([img.get("height", 0), img.get("width", 0)], dtype=np.int32),
                "bbox_xywh": box,
                "keypoints2d": to_superset(kps, ORIGINAL_CONVENTION),
                "person_id": kept,
                "frame_index": -1,
                "source_key": f"{path.name}:{record}",
                "extra_visibility": raw[:, 2].astype(np.int8),
                "extra_max_iou": np.float32(iou),
            }
            kept += 1


