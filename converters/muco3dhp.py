"""MuCo-3DHP (the 3DMPPE / I2L-MeshNet pre-composited release) -> schema v1.

MuCo-3DHP's authors publish compositing scripts over MPI-INF-3DHP, not images. The copy
everyone trains on is the one the 3DMPPE authors composited and released with their code
(github.com/mks0601/3DMPPE_POSENET_RELEASE, README "MuCo"): images plus a COCO-style JSON,
and the SMPL fits that github.com/mks0601/I2L-MeshNet_RELEASE added (``smpl_param.json``).

Raw layout (root = the release's ``data`` folder; the same files one level down in ``data/``,
or MMHuman3D's ``extras/MuCo-3DHP.json`` + ``SMPLX/smpl_param.json``, are found too)::

    MuCo-3DHP.json
    smpl_param.json
    augmented_set/*.jpg        (file_name "augmented_set/...": background-augmented composites)
    unaugmented_set/*.jpg      (plain composites)

Keys read (3DMPPE ``data/MuCo/MuCo.py``, I2L-MeshNet ``data/MuCo/MuCo.py``, MMHuman3D-based
hmr-benchmarks ``muco3dhp.py``; no real file was available to check):

- ``images[]``: ``id``, ``file_name`` (relative to the data folder), ``width``, ``height``,
  ``f`` [fx, fy] and ``c`` [cx, cy] px (per-image pinhole intrinsics), and in later copies
  ``R`` (3 x 3) and ``T`` (3). ``keypoints_cam`` is already in the camera frame: every
  publisher loader projects it (and the SMPL fits) with ``f``, ``c`` alone and never applies
  ``R``/``T`` (hmr-benchmarks copies them into its camera record unexamined). Their
  meaning (presumably the source 3DHP camera's world->camera pose, units unstated) is not
  documented, so they are kept raw in ``extra_cam_R`` / ``extra_cam_T`` (zeros when
  absent) and ``cam_extrinsics`` is not set.
- ``annotations[]``: ``id``, ``image_id``, ``keypoints_img`` (21, 2) px, ``keypoints_cam``
  (21, 3) **millimetres, camera frame** (I2L-MeshNet divides by 1000 "millimetre to metre"
  and its SMPL fitting threshold is 25 mm), ``keypoints_vis`` (21), ``bbox`` [x, y, w, h] px
  (a tight person box; 3DMPPE's ``process_bbox`` reads it as xywh).
- ``smpl_param.json``: ``{str(annotation id): {"pose": 72 axis-angle, "shape": 10,
  "trans": 3}}``. I2L-MeshNet runs them through the **neutral** SMPL with ``trans`` as the
  translation and projects the result (metres x 1000 -> mm) with the image's ``f``, ``c``:
  the fits are camera-frame, metres. Annotations without an entry, or with NaN values (which
  hmr-benchmarks drops), get ``has_smpl = False``.

Joint order: ``muco_3dhp`` (21, 3DMPPE's names: Head_top, Thorax, R_Shoulder, R_Elbow,
R_Wrist, L_Shoulder, L_Elbow, L_Wrist, R_Hip, R_Knee, R_Ankle, L_Hip, L_Knee, L_Ankle,
Pelvis (root, 14), Spine, Head, R_Hand, L_Hand, R_Toe, L_Toe) = the 17 MPI-INF-3DHP
"relevant" joints then hands and toes, in the same superset slots as ``mpi_inf_3dhp``
('Thorax' is 3DHP's neck).

Consistency: the composites come from MPI-INF-3DHP frames, whose ``annot2`` is the
distortion-free pinhole projection of ``annot3``, and 3DMPPE's loader pairs
``keypoints_img`` x, y with ``keypoints_cam`` depth as one point; so the stored 3-D joints
should project onto the 2-D joints with ``f``, ``c`` (the tests check this within a pixel on
a fixture written that way; no real file was available to confirm it).

What is written
---------------
- One sample per annotation (every composited person; 3DMPPE trains on the closest and
  well-separated persons, I2L-MeshNet on the closest only, MMHuman3D on all with a visible
  pelvis). ``-o image_sets=augmented`` keeps one set (hmr-benchmarks' ``muco3dhp.py`` uses
  the augmented set only); ``-o smpl_only=true`` keeps persons with a fit; ``-o
  keypoints3d=false`` leaves the 3-D joints out (the benchmark's ``muco3dhp_no3dkp``).
- keypoints2d ``keypoints_img``, keypoints3d ``keypoints_cam`` / 1000 (metres, camera frame,
  not root-centred); every joint has confidence 1: positions come from the mocap of each
  composited subject, so occluded joints are still known. ``keypoints_vis`` is kept in
  ``extra_keypoints_vis`` (3DMPPE and I2L-MeshNet ignore it; MMHuman3D uses it as the 2-D
  confidence: ``-o vis_confidence=true`` does the same).
- ``bbox_xywh`` = the annotation's box; ``image_hw`` from the JSON; ``cam_intrinsics`` from
  ``f``, ``c``.
- SMPL: ``pose[:3]`` global orient, ``pose[3:]`` body pose, ``shape`` betas, ``trans``
  (``has_smpl_transl``), gender neutral, ``smpl_source = "smplify"`` (an optimisation fit to
  the 3-D joints, not ground truth).
- ``source_key`` = ``MuCo-3DHP.json:ann=<id>``; ``person_id`` the annotation's index in its
  image, ``extra_image_id`` the image id, ``sequence`` the image set.

Bad input: a missing or unparsable JSON raises ``DatasetFormatError``; an annotation with the
wrong number of joints, NaN/inf values, a non-positive box or depth, an image id no image
has, or a missing image (``--check-images``) is a ``BadRecord`` naming the annotation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["muco3dhp"]
VERSION = "1"

NUM_JOINTS = 21
IMAGE_SETS = ("augmented_set", "unaugmented_set")
ANNOTATION_CANDIDATES = ("MuCo-3DHP.json", "data/MuCo-3DHP.json", "extras/MuCo-3DHP.json")
SMPL_CANDIDATES = ("smpl_param.json", "data/smpl_param.json", "SMPLX/smpl_param.json")

OPTIONS = (
    Option("image_sets", "augmented,unaugmented", str,
           "comma-separated image sets to keep: augmented, unaugmented"),
    Option("smpl", True, bool, "read smpl_param.json (false: no SMPL, the file may be absent)"),
    Option("smpl_only", False, bool, "keep only persons with a finite SMPL fit"),
    Option("keypoints3d", True, bool, "store the 3-D joints (false: the benchmark's no3dkp variant)"),
    Option("vis_confidence", False, bool, "2-D confidence = keypoints_vis (MMHuman3D) instead of 1"),
)


def _first_file(root: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((root / c for c in candidates if (root / c).is_file()), None)


def annotation_file(root: Path) -> Path:
    path = _first_file(root, ANNOTATION_CANDIDATES)
    if path is None:
        raise DatasetFormatError("MuCo-3DHP.json is missing (looked for "
                                 + ", ".join(ANNOTATION_CANDIDATES) + ")", path=root / ANNOTATION_CANDIDATES[0])
    return path


def _image_sets(options: ConvertOptions) -> tuple[str, ...]:
    names = [s.strip() for s in get_option(options, OPTIONS, "image_sets").split(",") if s.strip()]
    sets = tuple(n if n.endswith("_set") else f"{n}_set" for n in names)
    unknown = [s for s in sets if s not in IMAGE_SETS]
    if unknown or not sets:
        raise HmrError(f"option image_sets: expected augmented and/or unaugmented, got {names}")
    return sets


def _image_root(root: Path, ann_path: Path) -> Path:
    """Folder that ``file_name`` is relative to: the JSON's folder (3DMPPE), else the root."""
    for base in (ann_path.parent, root, root / "data", root / "images"):
        if any((base / s).is_dir() for s in IMAGE_SETS):
            return base
    return ann_path.parent


def _smpl_entry(params: dict | None, ann_id: object) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(pose (72,), shape (10,), trans (3,)) of a finite fit, else None."""
    entry = None if params is None else params.get(str(ann_id))
    if not isinstance(entry, dict):
        return None
    try:
        pose = np.asarray(entry["pose"], np.float64).reshape(72)
        shape = np.asarray(entry["shape"], np.float64).reshape(-1)[:10]
        trans = np.asarray(entry["trans"], np.float64).reshape(3)
    except (KeyError, ValueError, TypeError):
        return None
    if shape.size != 10 or not all(np.isfinite(a).all() for a in (pose, shape, trans)):
        return None
    return pose, shape, trans


def _camera(img: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """(K (3, 3), R (3, 3), T (3,)) of an image record; R/T zeros when absent; or a problem."""
    try:
        f = np.asarray(img["f"], np.float64).reshape(2)
        c = np.asarray(img["c"], np.float64).reshape(2)
    except (KeyError, ValueError, TypeError):
        return "image record lacks 'f' [fx, fy] / 'c' [cx, cy]"
    if not (np.isfinite(f).all() and np.isfinite(c).all()) or (f <= 0).any():
        return f"bad intrinsics f={f.tolist()} c={c.tolist()}"
    try:
        rot = np.asarray(img["R"], np.float32).reshape(3, 3) if "R" in img else np.zeros((3, 3), np.float32)
        tra = np.asarray(img["T"], np.float32).reshape(3) if "T" in img else np.zeros(3, np.float32)
    except (ValueError, TypeError):
        return "image 'R' / 'T' are not a 3 x 3 matrix and a 3-vector"
    if not (np.isfinite(rot).all() and np.isfinite(tra).all()):
        return "NaN or inf in image 'R' / 'T'"
    return intrinsics_matrix(f[0], f[1], c[0], c[1]), rot, tra


def _person(ann: dict, with_3d: bool, vis_conf: bool) -> dict | str:
    try:
        j2d = np.asarray(ann["keypoints_img"], np.float64).reshape(NUM_JOINTS, 2)
        j3d = np.asarray(ann["keypoints_cam"], np.float64).reshape(NUM_JOINTS, 3) / 1000.0
        vis = np.asarray(ann.get("keypoints_vis", np.ones(NUM_JOINTS)), np.float64).reshape(NUM_JOINTS)
        box = np.asarray(ann["bbox"], np.float64).reshape(4)
    except KeyError as exc:
        return f"annotation lacks {exc}"
    except (ValueError, TypeError):
        return f"keypoints_img / keypoints_cam / keypoints_vis / bbox are not ({NUM_JOINTS}, 2) / " \
               f"({NUM_JOINTS}, 3) / ({NUM_JOINTS},) / (4,)"
    if not all(np.isfinite(a).all() for a in (j2d, j3d, vis, box)):
        return "NaN or inf in keypoints or box"
    if box[2] <= 0 or box[3] <= 0:
        return f"bbox {box.tolist()} has no area"
    if (j3d[:, 2] <= 0).any():
        return "a 3-D joint is not in front of the camera (depth <= 0)"
    conf2d = np.clip(vis, 0, 1) if vis_conf else np.ones(NUM_JOINTS)
    out = {"keypoints2d": to_superset(np.concatenate([j2d, conf2d[:, None]], 1), "muco_3dhp"),
           "bbox_xywh": box.astype(np.float32),
           "extra_keypoints_vis": vis.astype(np.uint8)}
    if with_3d:
        out["keypoints3d"] = to_superset(np.concatenate([j3d, np.ones((NUM_JOINTS, 1))], 1), "muco_3dhp")
    return out


def _smpl_fields(fit: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> dict:
    if fit is None:
        return {"has_smpl": False}
    pose, shape, trans = fit
    return {"has_smpl": True, "smpl_source": np.uint8(SMPL_SOURCES.index("smplify")),
            "smpl_global_orient": pose[:3], "smpl_body_pose": pose[3:], "smpl_betas": shape,
            "has_smpl_transl": True, "smpl_transl": trans, "gender": np.uint8(GENDERS.index("neutral"))}


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    if split not in SOURCE.splits:
        raise HmrError(f"muco3dhp has splits {SOURCE.splits}, not '{split}'")
    sets = _image_sets(options)
    with_3d = get_option(options, OPTIONS, "keypoints3d")
    vis_conf = get_option(options, OPTIONS, "vis_confidence")
    smpl_only = get_option(options, OPTIONS, "smpl_only")
    ann_path = annotation_file(root)
    data = read_json(ann_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DatasetFormatError("not a COCO-style file with 'images' and 'annotations' lists", path=ann_path)
    params = None
    if get_option(options, OPTIONS, "smpl"):
        smpl_path = _first_file(root, SMPL_CANDIDATES)
        if smpl_path is None:
            raise DatasetFormatError("smpl_param.json is missing (-o smpl=false converts without SMPL)",
                                     path=root / SMPL_CANDIDATES[0])
        params = read_json(smpl_path)
        if not isinstance(params, dict):
            raise DatasetFormatError("smpl_param.json is not an object keyed by annotation id", path=smpl_path)
    by_image: dict[object, list[dict]] = defaultdict(list)
    for ann in data.pop("annotations"):
        by_image[ann.get("image_id") if isinstance(ann, dict) else None].append(ann)
    image_root = _image_root(root, ann_path)
    for img in data["images"]:
        if not isinstance(img, dict):
            yield BadRecord(str(ann_path), "images[]", "image record is not an object")
            continue
        anns = by_image.pop(img.get("id"), [])  # each image's records freed once converted
        if str(img.get("file_name", "")).replace("\\", "/").split("/")[0] not in sets:
            continue
        yield from _image_samples(root, image_root, ann_path, img, anns, params, options,
                                  with_3d, vis_conf, smpl_only)
    for image_id, anns in by_image.items():
        for ann in anns:
            key = f"{ann_path.name}:ann={ann.get('id') if isinstance(ann, dict) else '?'}"
            yield BadRecord(str(ann_path), key, f"annotation of image_id={image_id}, which no image has")


def _image_samples(root: Path, image_root: Path, ann_path: Path, img: dict, anns: list[dict],
                   params: dict | None, options: ConvertOptions, with_3d: bool, vis_conf: bool,
                   smpl_only: bool) -> Iterator[dict | BadRecord]:
    image_id = img.get("id")
    camera = _camera(img)
    image_path = image_root / str(img["file_name"])
    try:
        hw = np.array([int(img["height"]), int(img["width"])], np.int32)
    except (KeyError, ValueError, TypeError):
        hw = None
    for index, ann in enumerate(anns):
        key = f"{ann_path.name}:ann={ann.get('id')}"
        if isinstance(camera, str) or hw is None:
            yield BadRecord(str(ann_path), f"image_id={image_id}",
                            camera if isinstance(camera, str) else "image record lacks width / height")
            return
        fit = _smpl_entry(params, ann.get("id"))
        if smpl_only and fit is None:
            continue
        person = _person(ann, with_3d, vis_conf)
        if isinstance(person, str):
            yield BadRecord(str(ann_path), key, person)
            continue
        if options.check_images and not image_path.is_file():
            yield BadRecord(str(image_path), key, "image file is missing")
            continue
        k, rot, tra = camera
        yield {**person, **_smpl_fields(fit),
               "image_path": str(image_path.relative_to(root)), "image_hw": hw,
               "has_intrinsics": True, "cam_intrinsics": k,
               "extra_cam_R": rot, "extra_cam_T": tra,
               "sequence": str(img["file_name"]).split("/")[0],
               "extra_image_id": np.int64(image_id if isinstance(image_id, int) else -1),
               "person_id": index, "source_key": key}


def raw_files(root: Path, split: str) -> list[Path]:
    return [p for p in (_first_file(root, ANNOTATION_CANDIDATES), _first_file(root, SMPL_CANDIDATES))
            if p is not None]
