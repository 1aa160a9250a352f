"""PoseTrack 2018 (annotation release v0.45): multi-person poses with track ids in videos.

Raw layout (``ROOT`` = the folder the image tar parts and the label tarball were extracted
into; MMHuman3D's ``data/datasets/posetrack``)::

    ROOT/posetrack_data/annotations/{train,val}/<video>.json   e.g. 009473_mpii_test.json
    ROOT/images/{train,val}/<video>/NNNNNN.jpg

One COCO-style JSON per video (``<video>`` = ``<6-digit id>_<mpii|bonn|mpiinew>_<train|test>``;
the val videos end in ``_test``), read with :func:`converters.coco_format.load_coco`
(pycocotools' index over a JSON that fails with its line and column):

- ``images[]``: ``file_name`` (relative to ``ROOT``: ``images/val/<video>/000000.jpg``), ``id``
  = ``frame_id`` = T * 10^10 + video * 10^4 + frame (T: 1 mpii, 2 bonn, 3 mpiinew;
  leonid-pishchulin/poseval ``py/posetrack18_id2fname.py``), ``vid_id``, ``nframes``,
  ``is_labeled``, ``ignore_regions_x`` / ``ignore_regions_y`` (one list of x and one of y
  per polygon). Every frame of the video is listed; only some are labelled.
- ``annotations[]``: ``image_id``, ``id`` (= image id * 100 + person index: beyond int32),
  ``track_id``, ``keypoints`` (17 x [x, y, v]), ``scores`` (empty), ``bbox_head`` (xywh),
  ``bbox`` (xywh; optional: poseval's ``py/convert.py`` writes it only when a person box is
  known), ``category_id``.
- ``categories[0].keypoints``: nose, head_bottom, head_top, left_ear, right_ear, then COCO's
  shoulders .. ankles (poseval ``py/convert.py``: head_bottom and head_top take COCO's eye
  slots, the ears are placeholders "left zeroed out"). Convention ``posetrack``
  (``hmr conventions posetrack``): ``head_bottom`` is MPII's upper neck (superset ``neck``),
  ``head_top`` the top of the head; the ears are never labelled, so their slots are
  confidence 0.
- ``v`` is 0 (not labelled, x = y = 0) or 1 (labelled): PoseTrack18 does not mark
  occlusion. Confidence = 1 for v > 0, else 0; the raw ``v`` is kept in
  ``extra_visibility`` (17 float32).

Checked against the publisher's converter (poseval, above) and by converting MMPose's
copies of three real val videos (open-mmlab/mmpose ``tests/data/posetrack18/``, one labelled
frame each, 14 persons): every ``bbox`` is the labelled joints' extent x1.3 to 1e-12 px,
``head_top`` lies above ``head_bottom`` for all 14, the ears are (0, 0, 0) throughout.
MMPose adds ``width``, ``height``, ``iscrowd``, ``num_keypoints`` and ``mask_file``, which
the raw files lack, so none of them is required here.

What is written
---------------
- One sample per person of a frame with ``is_labeled`` true (persons of other frames are
  dropped: the release lists no persons there, this only makes the rule explicit). The
  ``-o`` filters of :mod:`converters.coco_format` apply: ``min_keypoints`` (default 1: a
  person with no labelled joint is dropped), ``min_limb_keypoints`` / ``preset=spin``
  (MMHuman3D and VIBE keep persons with at least 12 of joints 5-16 labelled).
- ``sequence`` = the video name (the JSON's stem, unique across sources, unlike ``vid_id``),
  ``frame_index`` = ``frame_id`` mod 10^4 (the frame's index in the video), ``person_id`` =
  ``track_id`` (the same person keeps it across the video's frames), ``source_key`` =
  ``<video>.json:ann=<id>``.
- Box: the annotation's ``bbox``. Where it is absent, the extent of the labelled joints x1.3:
  the factor poseval used to make PoseTrack18's person boxes from PoseTrack17's joints (the
  boxes of MMPose's real samples are exactly that extent x1.3). ``-o bbox=keypoints``: the
  extent x1.2 for every person, as for the other COCO-style sources.
- ``image_hw``: the image's ``height`` / ``width`` when the JSON has them, else the image
  header (read through :func:`converters.images.attach_image_sizes`); images are checked to
  exist unless ``--no-check-images`` (then sizes the JSON lacks stay 0).
- ``extra_bbox_head`` (xywh float32, zeros where absent) and ``extra_ignore_regions``: the
  frame's ignore polygons as a JSON string ``[[[x, y], ...], ...]`` (``[]`` for none):
  regions with unlabelled people, to be masked when training on the whole frame.

Public readers' problems avoided: VIBE's reader fails on annotations without ``bbox`` and
its intended skip of one train video never fires (wrong path); an old MMHuman3D bug paired
images with the wrong annotations (its PR #69); none of them keeps the track id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters import coco_format
from converters.coco_format import CocoFormat, coco_keypoints, filter_rules, load_coco
from converters.driver import BadRecord
from converters.images import attach_image_sizes
from converters.labels import to_superset
from converters.options import ConvertOptions
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["posetrack18"]
VERSION = "1"
# the COCO-style reader's options; PoseTrack has no crowd regions
OPTIONS = tuple(o for o in coco_format.OPTIONS if o.name != "keep_crowd")
FORMAT = CocoFormat(annotations="posetrack_data/annotations/{split}/*.json", images="",
                    convention="posetrack")
#: poseval's person box: the labelled joints' extent x1.3 (0.65 on each side of the centre)
MISSING_BBOX_SCALE = 1.3
FRAMES_PER_VIDEO_ID = 10_000  # image id = T * 10^10 + video * 10^4 + frame


def raw_files(root: Path, split: str) -> list[Path]:
    return FORMAT.annotation_files(Path(root), split)


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    """Frames in file order (videos sorted by name, frames by id), persons by annotation id."""
    root = Path(root)
    files = raw_files(root, split)
    if not files:
        raise DatasetFormatError("no per-video annotation JSON files (*.json)",
                                 path=root / "posetrack_data" / "annotations" / split)
    rules = filter_rules(options, FORMAT)
    frames = (frame for path in files for frame in _labelled_frames(path, rules))

    def path_of(frame):  # headers: to check the image exists, or for a size the JSON lacks
        if isinstance(frame, BadRecord) or not (options.check_images or frame["image_hw"] is None):
            return None
        return str(root / frame["image_path"])

    for frame, size in attach_image_sizes(frames, path_of, workers=options.workers):
        if isinstance(frame, BadRecord):
            yield frame
            continue
        if isinstance(size, str):  # missing or unreadable image: one record for the frame
            yield BadRecord(str(root / frame["image_path"]), f"image_id={frame['image_id']}", size)
            yield from (p for p in frame["persons"] if isinstance(p, BadRecord))
            continue
        hw = frame["image_hw"] or size or (0, 0)
        for sample in frame["persons"]:
            if isinstance(sample, dict):
                sample["image_hw"] = np.array(hw, dtype=np.int32)
            yield sample


def _labelled_frames(path: Path, rules: dict) -> Iterator[dict | BadRecord]:
    """One dict per labelled frame of one video with persons kept: its image and samples."""
    coco = load_coco(path)
    for image_id in sorted(coco.getImgIds()):
        img = coco.imgs[image_id]
        if not img.get("is_labeled", True):
            continue
        if not img.get("file_name"):
            yield BadRecord(str(path), f"image_id={image_id}", "image has no 'file_name'")
            continue
        anns = coco.loadAnns(sorted(coco.getAnnIds(imgIds=[image_id])))
        try:
            regions = ignore_regions(img)
        except ValueError as exc:
            yield BadRecord(str(path), f"image_id={image_id}", str(exc))
            continue
        persons = []
        for ann in anns:
            try:
                kps = coco_keypoints(ann, FORMAT)
            except ValueError as exc:
                persons.append(BadRecord(str(path), ann.get("id"), str(exc)))
                continue
            if _kept(kps, rules):
                persons.append(_sample(path, img, ann, kps, regions, rules["bbox"]))
        if not persons:
            continue
        hw = json_image_hw(img)
        if isinstance(hw, str):
            yield BadRecord(str(path), f"image_id={image_id}", hw)
            continue
        yield {"image_id": image_id, "image_path": img["file_name"], "image_hw": hw, "persons": persons}


def json_image_hw(img: dict) -> tuple[int, int] | None | str:
    """(height, width) where the JSON gives them (MMPose's copies do, the release does not),
    None where it does not, or why they cannot be used."""
    if "height" not in img and "width" not in img:
        return None
    hw = (img.get("height"), img.get("width"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw):
        return f"image height / width {hw!r} are not positive integers"
    return hw


def _kept(kps: np.ndarray, rules: dict) -> bool:
    return (kps[:, 2].sum() >= rules["min_keypoints"]
            and kps[rules["limb_index"], 2].sum() >= rules["min_limb_keypoints"])


def ignore_regions(img: dict) -> list[list[list[float]]]:
    """The frame's ignore polygons ``[[[x, y], ...], ...]`` from its x and y lists."""
    xs, ys = img.get("ignore_regions_x") or [], img.get("ignore_regions_y") or []
    if len(xs) != len(ys) or any(len(x) != len(y) for x, y in zip(xs, ys)):
        raise ValueError("'ignore_regions_x' and 'ignore_regions_y' differ in shape")
    return [[[float(a), float(b)] for a, b in zip(x, y)] for x, y in zip(xs, ys)]


def _box(ann: dict, kps: np.ndarray, mode: str) -> np.ndarray | str:
    if mode == "keypoints" or "bbox" not in ann:
        box = bbox_from_keypoints(kps, scale=1.2 if mode == "keypoints" else MISSING_BBOX_SCALE)
        return "fewer than two labelled keypoints: no box" if box is None else box
    box = np.asarray(ann["bbox"], dtype=np.float32)
    if box.shape != (4,) or not np.isfinite(box).all() or (box[2:] <= 0).any():
        return f"invalid 'bbox' {ann['bbox']!r}"
    return box


def _sample(path: Path, img: dict, ann: dict, kps: np.ndarray, regions: list, bbox_mode: str
            ) -> dict | BadRecord:
    record = ann.get("id")
    box = _box(ann, kps, bbox_mode)
    if isinstance(box, str):
        return BadRecord(str(path), record, box)
    if not isinstance(ann.get("track_id"), int):
        return BadRecord(str(path), record, f"'track_id' is {ann.get('track_id')!r}, not an integer")
    head = np.asarray(ann.get("bbox_head", [0, 0, 0, 0]), dtype=np.float32)
    if head.shape != (4,):
        return BadRecord(str(path), record, f"invalid 'bbox_head' {ann.get('bbox_head')!r}")
    frame_id = int(img.get("frame_id", img["id"]))
    raw_v = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)[:, 2]
    return {
        "image_path": img["file_name"],
        "bbox_xywh": box,
        "keypoints2d": to_superset(kps, FORMAT.convention),
        "sequence": path.stem,
        "frame_index": frame_id % FRAMES_PER_VIDEO_ID,
        "person_id": ann["track_id"],
        "source_key": f"{path.name}:ann={record}",
        "extra_visibility": raw_v,
        "extra_bbox_head": head,
        "extra_ignore_regions": json.dumps(regions, separators=(",", ":")),
    }
