"""COCO-style person keypoint releases: the one reader behind every dataset that ships COCO's
JSON layout (COCO 2014 / 2017 now; CrowdPose, OCHuman, PoseTrack18, COCO-WholeBody and
AI Challenger's COCO-format files are each a :class:`CocoFormat` row away). A converter is
a small module::

    SOURCE = SOURCES["coco2017"]
    FORMAT = CocoFormat(annotations="annotations/person_keypoints_{split}2017.json",
                        images="{split}2017", convention="coco")
    raw_files, iter_samples = define(SOURCE, FORMAT)

The JSON, read through pycocotools' index (``COCO``): ``images[{id, file_name, height,
width}]``, ``annotations[{id, image_id, category_id, iscrowd, num_keypoints, keypoints (K x
[x, y, v], flat), bbox [x, y, w, h], area}]``, ``categories`` (person = ``name ==
"person"``). The JSON is parsed by :func:`read_json` first so a truncated file is reported
with its line and column.

Conventions applied
-------------------
- Keypoints: the format's ``keypoint_keys`` arrays, concatenated, in its ``convention``,
  mapped into the superset. Visibility ``v <= 0`` (and any value in ``unlabelled_v``) is not
  labelled, confidence 0; every other value is labelled, confidence 1 (COCO: 1 = occluded
  and 2 = visible both become 1). Coordinates are used as written (0-based pixels).
- Box: the annotation's own ``bbox``, no enlargement; ``-o bbox=keypoints`` uses the
  labelled-keypoint extent x1.2 instead.
- ``image_hw`` comes from the JSON (``height``, ``width``); images are checked to exist
  (not decoded) unless ``--no-check-images``.
- ``person_id`` is the person's index among the kept annotations of its image (COCO
  annotation ids of crowd regions overflow int32); the annotation id is in ``source_key``
  as ``<json name>:ann=<id>``.

Filtering rules (:data:`OPTIONS`, ``-o key=value``)
--------------------------------------------------
- ``keep_crowd=0`` (default): annotations with ``iscrowd = 1`` (crowd regions, no
  keypoints) are dropped.
- ``min_keypoints=1`` (default): drop persons with fewer labelled keypoints. COCO's own
  keypoint benchmark ignores persons with 0 keypoints.
- ``min_limb_keypoints=0`` (default): drop persons with fewer labelled limb joints (the
  format's ``limb_joints``: shoulders, elbows, wrists, hips, knees, ankles). SPIN and
  MMHuman3D use all 12 on COCO-2014; ``-o preset=spin`` sets that.
Dropped persons are not errors and are not listed in the skip report.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.keypoints import get_convention
from hmr.core.sources import Source

LIMB_JOINTS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
               "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
               "right_ankle")

OPTIONS = (
    Option("keep_crowd", False, bool, "keep crowd regions (iscrowd = 1; they have no keypoints)"),
    Option("min_keypoints", 1, int, "drop persons with fewer labelled keypoints (v > 0)"),
    Option("min_limb_keypoints", None, int, "drop persons with fewer labelled limb joints "
           "(shoulders .. ankles); default 0, all 12 with preset=spin (SPIN / MMHuman3D)"),
    Option("preset", "", str, "'spin': SPIN's selection (every limb joint labelled)", choices=("", "spin")),
    Option("bbox", "annotation", str, "box: the annotation's own bbox, or the labelled-keypoint "
           "extent x1.2", choices=("annotation", "keypoints")),
)


@dataclass(frozen=True)
class CocoFormat:
    """What differs between COCO-style releases. Paths are relative to ROOT; ``{split}`` in
    them is replaced by the split name."""

    #: the split's annotation JSON; a glob pattern reads every match (one JSON per video)
    annotations: str
    #: folder the images' ``file_name`` is relative to ("" : ROOT itself)
    images: str
    #: keypoint convention of the concatenated keypoints (``hmr conventions``); K follows
    convention: str
    #: annotation keys holding flat [x, y, v] lists, concatenated in this order
    #: (COCO-WholeBody: body, then feet, face and hands)
    keypoint_keys: tuple[str, ...] = ("keypoints",)
    #: visibility values meaning "not labelled" besides v <= 0 (AI Challenger's 3)
    unlabelled_v: tuple[int, ...] = ()
    #: joint names counted by ``min_limb_keypoints``
    limb_joints: tuple[str, ...] = LIMB_JOINTS
    #: annotation keys kept as ``extra_<key>`` columns (every annotation must have them)
    annotation_extras: tuple[str, ...] = ()
    #: image keys kept as ``extra_<key>`` columns (every image must have them)
    image_extras: tuple[str, ...] = ()
    #: last touches to a sample from its annotation and image: ``hook(sample, ann, img)``
    #: (e.g. a video's sequence name and frame index)
    hook: Callable[[dict, dict, dict], None] | None = None

    @property
    def num_keypoints(self) -> int:
        return len(get_convention(self.convention).joint_names)

    def limb_index(self) -> list[int]:
        """Positions of :attr:`limb_joints` in the format's keypoints."""
        names = get_convention(self.convention).joint_names
        missing = [n for n in self.limb_joints if n not in names]
        if missing:
            raise HmrError(f"limb joints {missing} are not in convention '{self.convention}'")
        return [names.index(n) for n in self.limb_joints]

    def annotation_files(self, root: Path, split: str) -> list[Path]:
        """The split's JSON files: the one path, or every match of a glob (sorted)."""
        pattern = self.annotations.format(split=split)
        if any(c in pattern for c in "*?["):
            return sorted(Path(root).glob(pattern))
        return [Path(root) / pattern]

    def image_path(self, split: str, file_name: str) -> str:
        """An image's path relative to ROOT."""
        folder = self.images.format(split=split)
        return f"{folder}/{file_name}" if folder else file_name


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


def coco_keypoints(ann: dict, fmt: CocoFormat) -> np.ndarray:
    """(K, 3) x, y px and confidence in {0, 1} from an annotation's flat keypoint lists."""
    raw = np.concatenate([np.asarray(ann.get(key, []), dtype=np.float64).reshape(-1)
                          for key in fmt.keypoint_keys])
    k = fmt.num_keypoints
    if raw.size != k * 3:
        raise ValueError(f"'{'+'.join(fmt.keypoint_keys)}' has {raw.size} numbers, expected {k * 3}")
    kps = raw.reshape(k, 3)
    v = kps[:, 2].copy()
    kps[:, 2] = ((v > 0) & ~np.isin(v, fmt.unlabelled_v)).astype(np.float64)
    return kps


def filter_rules(options: ConvertOptions, fmt: CocoFormat) -> dict:
    min_limb = get_option(options, OPTIONS, "min_limb_keypoints")
    if min_limb is None:
        min_limb = len(fmt.limb_joints) if get_option(options, OPTIONS, "preset") == "spin" else 0
    return {
        "keep_crowd": get_option(options, OPTIONS, "keep_crowd"),
        "min_keypoints": get_option(options, OPTIONS, "min_keypoints"),
        "min_limb_keypoints": min_limb,
        "limb_index": fmt.limb_index(),
        "bbox": get_option(options, OPTIONS, "bbox"),
    }


def _keep(ann: dict, kps: np.ndarray, rules: dict) -> bool:
    if ann.get("iscrowd", 0) and not rules["keep_crowd"]:
        return False
    if kps[:, 2].sum() < rules["min_keypoints"]:
        return False
    return kps[rules["limb_index"], 2].sum() >= rules["min_limb_keypoints"]


def _sample(ann: dict, kps: np.ndarray, img: dict, rel_image: str, person: int, path: Path,
            bbox_mode: str, fmt: CocoFormat) -> dict | BadRecord:
    if bbox_mode == "keypoints":
        bbox = bbox_from_keypoints(kps)
        if bbox is None:
            return BadRecord(str(path), ann.get("id"), "fewer than two labelled keypoints: no box")
    else:
        bbox = np.asarray(ann.get("bbox", []), dtype=np.float32)
        if bbox.shape != (4,) or (bbox[2:] <= 0).any():
            return BadRecord(str(path), ann.get("id"), f"invalid 'bbox' {ann.get('bbox')!r}")
    sample = {
        "image_path": rel_image,
        "image_hw": np.array([img.get("height", 0), img.get("width", 0)], dtype=np.int32),
        "bbox_xywh": bbox,
        "keypoints2d": to_superset(kps, fmt.convention),
        "person_id": person,
        "frame_index": -1,
        "source_key": f"{path.name}:ann={ann.get('id')}",
    }
    for where, keys in ((ann, fmt.annotation_extras), (img, fmt.image_extras)):
        for key in keys:
            if key not in where:
                return BadRecord(str(path), ann.get("id"), f"missing '{key}' (kept as extra_{key})")
            sample[f"extra_{key}"] = where[key]
    if fmt.hook is not None:
        fmt.hook(sample, ann, img)
    return sample


def iter_coco(root: Path, split: str, options: ConvertOptions, fmt: CocoFormat
              ) -> Iterator[dict | BadRecord]:
    """Yield one sample per kept person annotation: files in order, images in id order."""
    root = Path(root)
    rules = filter_rules(options, fmt)
    for path in fmt.annotation_files(root, split):
        yield from _file_samples(root, split, path, options, fmt, rules)


def _file_samples(root: Path, split: str, path: Path, options: ConvertOptions, fmt: CocoFormat,
                  rules: dict) -> Iterator[dict | BadRecord]:
    coco = load_coco(path)
    person_cats = coco.getCatIds(catNms=["person"]) or [1]
    for image_id in sorted(coco.getImgIds()):
        img = coco.imgs[image_id]
        ann_ids = coco.getAnnIds(imgIds=[image_id], catIds=person_cats, iscrowd=None)
        rel_image = fmt.image_path(split, img.get("file_name", ""))
        kept = 0
        image_checked = False
        for ann in coco.loadAnns(sorted(ann_ids)):
            try:
                kps = coco_keypoints(ann, fmt)
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
            yield _sample(ann, kps, img, rel_image, kept, path, rules["bbox"], fmt)
            kept += 1


def define(source: Source, fmt: CocoFormat):
    """``raw_files, iter_samples`` of a COCO-style converter module reading ``fmt``."""
    if source.convention not in (None, fmt.convention):
        raise HmrError(f"source '{source.name}' has convention '{source.convention}', its COCO "
                       f"format '{fmt.convention}'")

    def raw_files(root: Path, split: str) -> list[Path]:
        return [p for p in fmt.annotation_files(Path(root), split) if p.is_file()]

    def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
        return iter_coco(root, split, options, fmt)

    return raw_files, iter_samples
