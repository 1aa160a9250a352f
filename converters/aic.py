"""AI Challenger human keypoints (2017 keypoint track): train and validation, official JSON.

Raw layout (the two release archives unzipped side by side in ``ROOT``)::

    ROOT/ai_challenger_keypoint_train_20170909/
        keypoint_train_annotations_20170909.json
        keypoint_train_images_20170902/<image_id>.jpg
    ROOT/ai_challenger_keypoint_validation_20170911/
        keypoint_validation_annotations_20170911.json
        keypoint_validation_images_20170911/<image_id>.jpg

Split ``train`` reads the ``train`` release, ``val`` the ``validation`` one. The dates are
matched by pattern (``ai_challenger_keypoint_<release>_*/keypoint_<release>_annotations_*.json``
and the ``keypoint_<release>_images_*`` folder next to it), so a re-dated copy is read too;
two matches are an error (which one to read would be a guess). Test A/B have no public labels.

The JSON is a list of image records::

    {"url": str, "image_id": "<40 hex digits>",
     "keypoint_annotations": {"human1": [x, y, v] * 14, "human2": ...},
     "human_annotations":    {"human1": [x1, y1, x2, y2], ...}}

``keypoint_annotations[k]`` pairs with ``human_annotations[k]`` (the person's box); the
image file is ``<image_id>.jpg``. Read in the publisher's own baseline
(AIChallenger/AI_Challenger_2017, ``Baselines/keypoint_baseline/prepro.py``: box width
``bbox[2] - bbox[0]``, image ``image_id + '.jpg'``) and checked on the publisher's real
sample (``Evaluation/keypoint_eval/keypoint_annotations_example.json``, 1,000 images, 2,761
persons): every box has x2 > x1 and y2 > y1, every ``humanN`` key is in both dicts,
coordinates are non-negative integers.

Joint order (convention ``"aic"``), from the competition page (challenger.ai, keypoint
task): right shoulder, right elbow, right wrist, left shoulder, left elbow, left wrist,
right hip, right knee, right ankle, left hip, left knee, left ankle, top of the head, neck.
On the real sample the right shoulder (index 0) lies left of the left shoulder (index 3) in
the image for 80% of the 2,604 persons with both labelled (most people face the camera),
and the head top is above the neck for 99% of 2,643.

Visibility (publisher: "labeled and visible, labeled but not visible, or not labeled"): v = 1
visible, 2 occluded, 3 not labelled. On the real sample 24,158 / 8,578 / 5,918 joints; every
v = 3 joint sits at (0, 0). Here v = 1 and 2 get confidence 1 at their position; v = 3 gets
confidence 0 and position (0, 0) (never a labelled joint at the origin). The raw code is
kept in ``extra_visibility`` (14,) int8, native order, so visible and occluded stay apart
(the official OKS evaluation scores only v = 1). Any other code is a bad record.

Box: the person's own ``human_annotations`` box, corners (x1, y1, x2, y2) ->
``bbox_xywh`` (x1, y1, x2 - x1, y2 - y1); a box with x2 <= x1 or y2 <= y1 is a bad record.
Coordinates are used as written (0-based pixels; no shift is documented).

``image_hw`` is read from each image's header (the JSON has no sizes), so the images must be
present even with ``--no-check-images``. ``person_id`` is N of ``humanN``; ``source_key`` is
``<json name>:<image_id>:humanN``. Persons with fewer than ``min_keypoints`` labelled joints
(default 1) are dropped, not reported.

Public readers' mistakes avoided: smplbody/hmr-benchmarks' ``aic.py`` stores the xyxy boxes
as xywh and counts v = 3 (unlabelled, at (0, 0)) as annotated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import with_image_sizes
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json
from hmr.core.boxes import bbox_from_xyxy
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["aic"]
VERSION = "1"

OPTIONS = (
    Option("min_keypoints", 1, int, "drop persons with fewer labelled joints (v = 1 or 2)"),
)

NUM_JOINTS = 14
VISIBLE, OCCLUDED, UNLABELLED = 1, 2, 3
RELEASE = {"train": "train", "val": "validation"}  # split -> the archives' word
_HUMAN_KEY = re.compile(r"human(\d+)")


def release_paths(root: Path, split: str) -> tuple[Path, Path]:
    """(annotation JSON, image folder) of a split's release under ``root``."""
    word = RELEASE[split]
    found = sorted(Path(root).glob(f"ai_challenger_keypoint_{word}_*/keypoint_{word}_annotations_*.json"))
    if not found:
        raise DatasetFormatError(
            f"no AI Challenger {word} annotations: expected "
            f"ai_challenger_keypoint_{word}_<date>/keypoint_{word}_annotations_<date>.json", path=root)
    if len(found) > 1:
        raise DatasetFormatError(f"several {word} annotation files ({', '.join(str(p) for p in found)}): "
                                 "keep one release", path=root)
    folders = sorted(p for p in found[0].parent.glob(f"keypoint_{word}_images_*") if p.is_dir())
    if len(folders) != 1:
        what = "no" if not folders else "several"
        raise DatasetFormatError(f"{what} keypoint_{word}_images_<date> folder next to "
                                 f"{found[0].name}", path=found[0].parent)
    return found[0], folders[0]


def raw_files(root: Path, split: str) -> list[Path]:
    try:
        return [release_paths(root, split)[0]]
    except DatasetFormatError:
        return []


def person_sample(keypoints: object, corners: object) -> dict | str:
    """Schema fields of one person from its raw keypoint list and box, or why not."""
    try:
        raw = np.asarray(keypoints, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return "keypoints are not a list of numbers"
    if raw.size != NUM_JOINTS * 3:
        return f"keypoints have {raw.size} numbers, expected {NUM_JOINTS * 3} (14 x [x, y, v])"
    kps = raw.reshape(NUM_JOINTS, 3)  # (14, 3) x, y, v
    if not np.isfinite(kps).all():
        return "keypoints hold NaN or inf"
    codes = kps[:, 2]
    odd = ~np.isin(codes, (VISIBLE, OCCLUDED, UNLABELLED))
    if odd.any():
        j = int(np.argmax(odd))
        return f"visibility {codes[j]:g} at joint {j} is not 1 (visible), 2 (occluded) or 3 (not labelled)"
    box = bbox_from_xyxy(corners)
    if isinstance(box, str):
        return box
    labelled = codes != UNLABELLED
    native = np.zeros((NUM_JOINTS, 3))
    native[labelled, :2] = kps[labelled, :2]
    native[labelled, 2] = 1.0
    return {"bbox_xywh": box, "keypoints2d": to_superset(native, "aic"),
            "extra_visibility": codes.astype(np.int8)}


def _persons(record: object, path: Path, index: int) -> Iterator[tuple[str, int, object, object] | BadRecord]:
    """(image_id, N, keypoints, box) per ``humanN`` of one image record, in N order."""
    if not isinstance(record, dict):
        yield BadRecord(str(path), f"record {index}", "not a JSON object")
        return
    image_id = record.get("image_id")
    if not isinstance(image_id, str) or not image_id or any(c in image_id for c in "/\\") \
            or image_id.startswith("."):
        yield BadRecord(str(path), f"record {index}", f"image_id {image_id!r} is not a file stem")
        return
    keypoints, boxes = record.get("keypoint_annotations"), record.get("human_annotations")
    if not isinstance(keypoints, dict) or not isinstance(boxes, dict):
        yield BadRecord(str(path), image_id, "needs 'keypoint_annotations' and 'human_annotations' objects")
        return
    numbered = []
    for key in keypoints:
        match = _HUMAN_KEY.fullmatch(str(key))
        if match is None:
            yield BadRecord(str(path), f"{image_id}:{key}", "person key is not humanN")
            continue
        numbered.append((int(match.group(1)), key))
    for number, key in sorted(numbered):
        if key not in boxes:
            yield BadRecord(str(path), f"{image_id}:{key}", "no box in 'human_annotations'")
            continue
        yield image_id, number, keypoints[key], boxes[key]


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    json_path, image_dir = release_paths(root, split)
    records = read_json(json_path)
    if not isinstance(records, list):
        raise DatasetFormatError("expected a JSON list of image records", path=json_path)
    min_keypoints = get_option(options, OPTIONS, "min_keypoints")
    folder = image_dir.relative_to(root).as_posix()

    def people() -> Iterator[dict | BadRecord]:
        for index, record in enumerate(records):
            records[index] = None  # free each record once read (the train JSON is large)
            for person in _persons(record, json_path, index):
                if isinstance(person, BadRecord):
                    yield person
                    continue
                image_id, number, keypoints, corners = person
                key = f"{json_path.name}:{image_id}:human{number}"
                sample = person_sample(keypoints, corners)
                if isinstance(sample, str):
                    yield BadRecord(str(json_path), key, sample)
                    continue
                if (sample["extra_visibility"] != UNLABELLED).sum() < min_keypoints:
                    continue
                sample.update(image_path=f"{folder}/{image_id}.jpg", person_id=number, source_key=key)
                yield sample

    # the JSON has no image sizes: every image header is read (so images are required)
    yield from with_image_sizes(people(), root, workers=options.workers)
