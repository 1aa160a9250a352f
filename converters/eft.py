"""EFT pseudo-ground-truth SMPL fits (Joo et al., "Exemplar Fine-Tuning", 3DV 2021) joined
to the images of the dataset each fit file annotates: the shared reader behind the
converters ``eft_coco``, ``eft_coco_part``, ``eft_lspet``, ``eft_mpii``, ``eft_ochuman``
and ``eft_posetrack`` (one small module each, one manifest each).

Raw layout (MMHuman3D's ``data/datasets/`` tree; ``ROOT`` = ``data/datasets/eft``; fit files
from ``scripts/download_eft.sh``, images from each dataset's own site, in sibling folders)::

    ROOT/coco_2014_train_fit/COCO2014-All-ver01.json  COCO2014-Part-ver01.json
                             COCO2014-Val-ver10.json
    ROOT/LSPet_fit/LSPet_train_ver10.json  LSPet_test_ver10.json  (LSPet_ver01.json)
    ROOT/MPII_fit/MPII_ver01.json
    ROOT/OCHuman_fit/OCHuman_train_ver10.json  OCHuman_test_ver10.json
    ROOT/PoseTrack_fit/PoseTrack_ver01.json
    ROOT/../coco/train2014/  ../coco/val2014/  ../lspet/  ../mpii/images/
    ROOT/../ochuman/images/  ../posetrack/

``-o fits=FILE`` and ``-o images=DIR`` override the fit file and the image folder (relative
to ROOT or absolute). Image paths are stored relative to ROOT (so ``../coco/...``).

JSON (docs/README_dataformat.md of facebookresearch/eft): ``{"ver", "data": [...]}``, each
entry with ``parm_pose`` (24 x 3 x 3 rotation matrices: root then the 23 body joints),
``parm_shape`` (10 betas), ``parm_cam`` (weak perspective [s, tx, ty] of the 224 px crop),
``bbox_scale`` (box side / 200 px), ``bbox_center`` ([x, y] px), ``imageName`` (basename;
joined to the image folder, a relative path is tried first), ``joint_validity_openpose18``,
``smpltype``, ``annotId`` (COCO only), optional ``subjectId`` and ``gt_keypoint_2d``
(49 x 3, SPIN order: 25 OpenPose + 24 ground-truth joints, 3rd column = validity; not
listed in EFT's format notes but present in the released files and read by MMHuman3D).

Conventions applied
-------------------
- SMPL: ``parm_pose`` -> axis-angle (radians); entry 0 is ``smpl_global_orient`` (the
  root in the crop camera frame: x right, y down, z forward, as SPIN's regressor), 1-23 are
  ``smpl_body_pose``; matrices that are not rotations are bad records. ``smpl_source`` =
  ``"eft"``, gender neutral (EFT fits with the neutral model). No translation or
  intrinsics: ``parm_cam`` is a weak-perspective crop camera, kept as ``extra_weak_cam``.
- Box: square of side ``bbox_scale * 200`` px centred at ``bbox_center`` (the crop EFT fit).
  With ``extra_weak_cam`` it reproduces EFT's projection (:func:`weak_perspective_to_pixels`):
  ``px = box centre + side / 2 * (s * [X, Y] + [tx, ty])`` (EFT ``imutils``: scale, then
  translate, in the 224 px crop's [-1, 1] units).
- ``image_hw`` from the image headers (EFT stores no sizes): the images must be present.
- Keypoints: ``gt_keypoint_2d`` through convention ``"spin_49"``; where a file has none,
  confidence 0 everywhere. No 3D keypoints (the fits *are* the 3D label; evaluation
  regresses joints from them).
- The EFT README's table swaps the descriptions of COCO-All (79,051 samples, >= 6 joints)
  and COCO-Part (28,344, all 12 limb joints); the counts in docs/datasets.md follow the files.

Test sets (no public evaluation code; hmrkit defines the protocol): **EFT-COCO-val** =
``eft_coco`` split ``val``, **EFT-LSPET-test** = ``eft_lspet`` ``test``, **EFT-OCHuman-test**
= ``eft_ochuman`` ``test`` (see :data:`BENCHMARKS`): neutral SMPL from the stored fit, 14 LSP joints
from ``J_regressor_h36m``, pelvis-rooted, PA-MPJPE, like 3DPW.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import attach_image_sizes
from converters.labels import rotmat_to_axis_angle, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json
from hmr.core.boxes import bbox_from_center_scale
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema.fields import SMPL_SOURCES
from hmr.core.sources import Source

OPTIONS = (
    Option("fits", None, str, "the EFT fit file (relative to ROOT or absolute); default: the split's"),
    Option("images", None, str, "the image folder the fits annotate (relative to ROOT or absolute); "
           "default: the split's"),
)

EXPECTED_KEYS = ("parm_pose", "parm_shape", "bbox_scale", "bbox_center", "imageName")
SMPL_SOURCE_EFT = SMPL_SOURCES.index("eft")
# The three EFT test sets: benchmark name -> (source name, split).
BENCHMARKS = {"EFT-COCO-val": ("eft_coco", "val"), "EFT-LSPET-test": ("eft_lspet", "test"),
              "EFT-OCHuman-test": ("eft_ochuman", "test")}


@dataclass(frozen=True)
class Subset:
    """One EFT fit file and the image folder it annotates (both relative to ROOT)."""

    fits: str
    images: str
    expected: int | None = None  # sample count in the EFT README (None: not published)


def _resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def eft_raw_files(root: Path, subset: Subset) -> list[Path]:
    path = Path(root) / subset.fits
    return [path] if path.is_file() else []


def load_entries(path: Path) -> list:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DatasetFormatError("not an EFT fit file: expected {'ver', 'data': [...]}", path=path)
    return data["data"]


def parse_entry(entry: dict) -> dict:
    """One EFT entry -> SMPL / box / keypoint fields (ValueError with a reason if bad)."""
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    missing = [k for k in EXPECTED_KEYS if k not in entry]
    if missing:
        raise ValueError(f"missing keys {missing}")
    rotmats = np.asarray(entry["parm_pose"], dtype=np.float64)
    if rotmats.shape != (24, 3, 3):
        raise ValueError(f"parm_pose has shape {rotmats.shape}, expected (24, 3, 3)")
    if not np.isfinite(rotmats).all():
        raise ValueError("parm_pose contains NaN or inf")
    pose_aa = rotmat_to_axis_angle(rotmats)  # (24, 3)
    betas = np.asarray(entry["parm_shape"], dtype=np.float64).reshape(-1)
    cam = np.asarray(entry.get("parm_cam", [0, 0, 0]), dtype=np.float64).reshape(-1)
    center = np.asarray(entry["bbox_center"], dtype=np.float64).reshape(-1)
    scale = float(entry["bbox_scale"])
    if betas.shape != (10,) or cam.shape != (3,) or center.shape != (2,):
        raise ValueError("parm_shape must have 10 values, parm_cam 3, bbox_center 2")
    if not (np.isfinite(betas).all() and np.isfinite(cam).all() and np.isfinite(center).all()
            and np.isfinite(scale) and scale > 0):
        raise ValueError("parm_shape, parm_cam or the box contains NaN/inf or a scale <= 0")
    kps = np.zeros((49, 3))
    if entry.get("gt_keypoint_2d") is not None:
        kps = np.asarray(entry["gt_keypoint_2d"], dtype=np.float64).reshape(49, 3)
        if not np.isfinite(kps).all():
            raise ValueError("gt_keypoint_2d contains NaN or inf")
        kps[:, 2] = (kps[:, 2] > 0).astype(np.float64)
    return {
        "smpl_global_orient": pose_aa[0],
        "smpl_body_pose": pose_aa[1:].reshape(69),
        "smpl_betas": betas,
        "bbox_xywh": bbox_from_center_scale(center, scale),
        "keypoints2d": to_superset(kps, "spin_49"),
        "extra_weak_cam": cam.astype(np.float32),
    }


def weak_perspective_to_pixels(points: np.ndarray, cam: np.ndarray, bbox_xywh: np.ndarray) -> np.ndarray:
    """EFT's crop camera. points (..., J, 3) SMPL model space, cam (..., 3) = [s, tx, ty],
    bbox_xywh (..., 4) square crop box -> (..., J, 2) image px."""
    cam = np.asarray(cam, dtype=np.float64)[..., None, :]  # (..., 1, 3)
    box = np.asarray(bbox_xywh, dtype=np.float64)[..., None, :]  # (..., 1, 4)
    centre = box[..., :2] + box[..., 2:] / 2  # (..., 1, 2)
    crop_xy = cam[..., :1] * np.asarray(points)[..., :2] + cam[..., 1:]  # (..., J, 2) in [-1, 1]
    return centre + box[..., 2:] / 2 * crop_xy


def image_relpath(image_dir: Path, root: Path, name: str) -> str:
    """Image path relative to ROOT: ``imageName`` as given under the folder, else its basename
    (EFT's own viewer joins the basename)."""
    candidate = image_dir / name
    if not candidate.is_file():
        candidate = image_dir / Path(name).name
    return Path(os.path.relpath(candidate, root)).as_posix()


def eft_samples(root: Path, subset: Subset, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    """Samples of one EFT fit file; ``-o fits=FILE`` / ``-o images=DIR`` override the subset's."""
    root = Path(root)
    path = _resolve(root, get_option(options, OPTIONS, "fits") or subset.fits)
    image_dir = _resolve(root, get_option(options, OPTIONS, "images") or subset.images)
    entries = load_entries(path)

    def parsed() -> Iterator[tuple[int, dict | BadRecord]]:
        for i, entry in enumerate(entries):
            try:
                fields = parse_entry(entry)
                fields["image_path"] = image_relpath(image_dir, root, str(entry["imageName"]))
            except (ValueError, TypeError) as exc:
                yield i, BadRecord(str(path), i, str(exc))
                continue
            fields["source_key"] = f"{path.name}[{i}]" + (
                f":ann={entry['annotId']}" if entry.get("annotId") is not None else "")
            fields["subject_id"] = str(entry.get("subjectId", ""))
            yield i, fields

    def path_of(item):
        _, fields = item
        # EFT files carry no image size: every header is read (so images are required)
        return str(root / fields["image_path"]) if isinstance(fields, dict) else None

    for (i, fields), size in attach_image_sizes(parsed(), path_of, workers=options.workers):
        if isinstance(fields, BadRecord):
            yield fields
        elif isinstance(size, str):
            yield BadRecord(str(root / fields["image_path"]), f"{path.name}[{i}]", size)
        else:
            yield {**fields, "image_hw": np.asarray(size, dtype=np.int32),
                   "has_smpl": True, "smpl_source": SMPL_SOURCE_EFT, "gender": 0}


def define(source: Source, subsets: dict[str, Subset]):
    """``raw_files, iter_samples`` of a per-dataset EFT converter module; ``subsets`` has
    one entry per split of ``source``."""
    if tuple(subsets) != source.splits:
        raise HmrError(f"EFT subsets {tuple(subsets)} are not the splits {source.splits} of "
                       f"source '{source.name}'")

    def raw_files(root: Path, split: str) -> list[Path]:
        return eft_raw_files(root, subsets[split])

    def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
        return eft_samples(root, subsets[split], options)

    return raw_files, iter_samples
