"""COCO-style person keypoint releases: the one reader behind every dataset that ships COCO's
JSON layout (COCO 2014 / 2017, CrowdPose and OCHuman's COCO-format files now; PoseTrack18,
COCO-WholeBody and AI Challenger's COCO-format files are each a :class:`CocoFormat` row
away). A converter is a small module::

    SOURCE = SOURCES["coco2017"]
    FORMAT = CocoFormat(annotations="annotations/person_keypoints_{split}2017.json",
                        images="{split}2017", convention="coco", visibility=(0, 1, 2))
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
  Where the format declares its ``visibility`` codes, any other code is a bad record; with
  ``keep_visibility`` the raw codes are kept, native order, as ``extra_visibility`` (K,)
  (int8 where the codes are declared, float32 otherwise), so occluded and visible joints
  stay apart.
- Box: the annotation's own ``bbox``, no enlargement; ``-o bbox=keypoints`` uses the
  labelled-keypoint extent x1.2 instead.
- ``image_hw`` comes from the JSON (``height``, ``width``); images are checked to exist
  (not decoded) unless ``--no-check-images``. A size that is written must be a whole
  number of pixels, positive and below :data:`MAX_IMAGE_SIDE`; an absent one is stored as
  0 for the format's ``hook`` to fill (PoseTrack's images carry no size).
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

Bad records (``BadRecord``: the driver stops, or skips and lists them with ``--skip-bad``)
---------------------------------------------------------------------------------------
- a person whose keypoints or box hold NaN / inf, whose keypoint list has the wrong length,
  or whose visibility code is outside the format's ``visibility`` (record: annotation id);
- a person annotation whose ``image_id`` is not among the file's ``images`` (record:
  annotation id; pycocotools' index keeps such orphans silently);
- an image whose ``height`` / ``width`` is not a positive whole number below
  :data:`MAX_IMAGE_SIDE`, whose ``file_name`` is empty or climbs out of the image folder
  (``..``, absolute), or whose file is missing (record: ``image_id=<id>``).
A file that is not JSON, is truncated, nests too deeply to parse, or lacks the keys
pycocotools indexes (``id``, ``image_id``, ``category_id``) raises ``DatasetFormatError``.
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

#: largest image side accepted from an annotation's ``height`` / ``width`` (px)
MAX_IMAGE_SIDE = 100_000

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
    #: the visibility codes the publisher documents; any other is a bad record (None: any)
    visibility: tuple[float, ...] | None = None
    #: keep the raw visibility codes as ``extra_visibility`` (K,), native order
    keep_visibility: bool = False
    #: other annotation path patterns, tried in order when ``annotations`` matches no file
    #: (layouts in which the same files are commonly unpacked)
    fallbacks: tuple[str, ...] = ()

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
        """The split's JSON files: the one path, or every match of a glob (sorted); the
        first of :attr:`fallbacks` that finds files when ``annotations`` finds none (the
        ``annotations`` path itself, to be reported missing, when none does)."""
        first = _matches(Path(root), self.annotations.format(split=split))
        if any(p.is_file() for p in first):
            return first
        for pattern in self.fallbacks:
            found = _matches(Path(root), pattern.format(split=split))
            if any(p.is_file() for p in found):
                return found
        return first

    def image_path(self, split: str, file_name: str) -> str:
        """An image's path relative to ROOT."""
        folder = self.images.format(split=split)
        return f"{folder}/{file_name}" if folder else file_name


def _matches(root: Path, pattern: str) -> list[Path]:
    if any(c in pattern for c in "*?["):
        return sorted(root.glob(pattern))
    return [root / pattern]


def read_json_safely(path: Path):
    """:func:`read_json`, with a nesting too deep for the parser reported as the file's
    error (Python's json raises RecursionError on e.g. 100,000 nested brackets)."""
    try:
        return read_json(path)
    except RecursionError:
        raise DatasetFormatError("JSON nested too deeply to parse", path=path) from None


def load_coco(path: Path):
    """pycocotools index over an already-parsed JSON (clear errors for truncated files)."""
    from pycocotools.coco import COCO

    data = read_json_safely(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise DatasetFormatError("not a COCO annotation file (needs 'images' and 'annotations' "
                                 "lists)", path=path)
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            coco.createIndex()
    except (KeyError, TypeError, AttributeError) as exc:
        raise DatasetFormatError(f"malformed COCO file: an image, annotation or category lacks "
                                 f"a key pycocotools indexes ({type(exc).__name__}: {exc})",
                                 path=path) from None
    return coco


def raw_keypoints(ann: dict, fmt: CocoFormat) -> np.ndarray:
    """(K, 3) x, y px and the raw visibility code from an annotation's flat keypoint lists;
    ValueError for a wrong length, NaN / inf or a code outside ``fmt.visibility``."""
    try:
        raw = np.concatenate([np.asarray(ann.get(key, []), dtype=np.float64).reshape(-1)
                              for key in fmt.keypoint_keys])
    except (TypeError, ValueError):
        raise ValueError(f"'{'+'.join(fmt.keypoint_keys)}' is not a list of numbers") from None
    k = fmt.num_keypoints
    if raw.size != k * 3:
        raise ValueError(f"'{'+'.join(fmt.keypoint_keys)}' has {raw.size} numbers, expected {k * 3}")
    kps = raw.reshape(k, 3)
    if not np.isfinite(kps).all():
        bad = np.flatnonzero(~np.isfinite(kps).all(axis=1))
        raise ValueError(f"keypoints hold NaN or inf (joints {bad.tolist()})")
    if fmt.visibility is not None:
        odd = ~np.isin(kps[:, 2], fmt.visibility)
        if odd.any():
            j = int(np.argmax(odd))
            raise ValueError(f"visibility {kps[j, 2]:g} at joint {j} is not one of the documented "
                             f"codes {list(fmt.visibility)}")
    return kps


def coco_keypoints(ann: dict, fmt: CocoFormat) -> np.ndarray:
    """(K, 3) x, y px and confidence in {0, 1} from an annotation's flat keypoint lists."""
    return _with_confidence(raw_keypoints(ann, fmt), fmt)


def _with_confidence(raw: np.ndarray, fmt: CocoFormat) -> np.ndarray:
    kps = raw.copy()
    v = raw[:, 2]
    kps[:, 2] = ((v > 0) & ~np.isin(v, fmt.unlabelled_v)).astype(np.float64)
    return kps


def file_name_problem(img: dict) -> str | None:
    """Why an image entry's ``file_name`` cannot name a file under the image folder."""
    name = img.get("file_name")
    if not isinstance(name, str) or not name.strip():
        return f"image 'file_name' {name!r} is not a file name"
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
        return f"image 'file_name' {name!r} leaves the image folder"
    return None


def image_size_problem(img: dict) -> str | None:
    """Why an image entry's ``height`` / ``width`` cannot be used (None: fine or absent)."""
    for key in ("height", "width"):
        if key not in img:
            continue
        value = img[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            ok = bool(np.isfinite(value)) and value == int(value) and 0 < value < MAX_IMAGE_SIDE
        if not ok:
            return (f"image {key} {value!r} is not a whole number of pixels in 1..{MAX_IMAGE_SIDE - 1}")
    return None


def image_record_problem(img: dict, root: Path, rel_image: str, path: Path, image_id,
                         options: ConvertOptions) -> BadRecord | None:
    """The BadRecord of an image entry whose name or size is unusable, or whose file is
    missing when ``options.check_images``; checked once per image, at its first kept person."""
    problem = file_name_problem(img) or image_size_problem(img)
    if problem is not None:
        return BadRecord(str(path), f"image_id={image_id}", problem)
    if options.check_images and not (root / rel_image).is_file():
        return BadRecord(str(root / rel_image), f"image_id={image_id}", "image file is missing")
    return None


def visibility_column(codes: np.ndarray, fmt: CocoFormat) -> np.ndarray:
    """The raw visibility codes as stored in ``extra_visibility``."""
    integral = fmt.visibility is not None and all(float(c).is_integer() for c in fmt.visibility)
    return codes.astype(np.int8 if integral else np.float32)


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


def keep_person(ann: dict, kps: np.ndarray, rules: dict) -> bool:
    """Whether a person passes the filtering rules (crowd, min_keypoints, min_limb_keypoints)."""
    if ann.get("iscrowd", 0) and not rules["keep_crowd"]:
        return False
    if kps[:, 2].sum() < rules["min_keypoints"]:
        return False
    return kps[rules["limb_index"], 2].sum() >= rules["min_limb_keypoints"]


def _sample(ann: dict, kps: np.ndarray, img: dict, rel_image: str, person: int, path: Path,
            bbox_mode: str, fmt: CocoFormat, codes: np.ndarray | None = None) -> dict | BadRecord:
    if bbox_mode == "keypoints":
        bbox = bbox_from_keypoints(kps)
        if bbox is None:
            return BadRecord(str(path), ann.get("id"), "fewer than two labelled keypoints: no box")
    else:
        try:
            bbox = np.asarray(ann.get("bbox", []), dtype=np.float32)
        except (TypeError, ValueError):
            bbox = np.zeros(0, dtype=np.float32)
        if bbox.shape != (4,) or not np.isfinite(bbox).all() or (bbox[2:] <= 0).any():
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
    if fmt.keep_visibility and codes is not None:
        sample["extra_visibility"] = visibility_column(codes, fmt)
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


def id_order(value) -> tuple:
    """Sort key for ids: numbers in order, then strings (a file may mix them)."""
    return (isinstance(value, str), value if isinstance(value, (int, float, str)) else str(value))


def _file_samples(root: Path, split: str, path: Path, options: ConvertOptions, fmt: CocoFormat,
                  rules: dict) -> Iterator[dict | BadRecord]:
    coco = load_coco(path)
    person_cats = coco.getCatIds(catNms=["person"]) or [1]
    for ann in coco.loadAnns(sorted(coco.getAnnIds(catIds=person_cats, iscrowd=None), key=id_order)):
        if ann["image_id"] not in coco.imgs:
            yield BadRecord(str(path), ann.get("id"),
                            f"annotation's image_id {ann['image_id']!r} is not in the file's 'images'")
    for image_id in sorted(coco.getImgIds(), key=id_order):
        img = coco.imgs[image_id]
        ann_ids = coco.getAnnIds(imgIds=[image_id], catIds=person_cats, iscrowd=None)
        rel_image = fmt.image_path(split, img.get("file_name", ""))
        kept = 0
        image_checked = False
        for ann in coco.loadAnns(sorted(ann_ids, key=id_order)):
            try:
                raw = raw_keypoints(ann, fmt)
            except ValueError as exc:
                yield BadRecord(str(path), ann.get("id"), str(exc))
                continue
            kps = _with_confidence(raw, fmt)
            if not keep_person(ann, kps, rules):
                continue
            if not image_checked:
                image_checked = True
                bad = image_record_problem(img, root, rel_image, path, image_id, options)
                if bad is not None:
                    yield bad
                    break
            yield _sample(ann, kps, img, rel_image, kept, path, rules["bbox"], fmt, raw[:, 2])
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
