"""MTP (Mimic-The-Pose, TUCH): images + OpenPose keypoints + SMPLify-XMC fits -> schema v1.

What is read (layout as TUCH's tuch/datasets/preprocess/mtp.py and SMPLify-XMC's
lib/dataextra/preprocess_mtp_mturk_dataset.py read it)
------------------------------------------------------------------------------------------
- ``train_val_split.json``: ``{"train": [image stems], "val": [...]}``, the published split.
- ``images/<relpath>/<stem>.png``, stem ``<imgid>_<ppsubset>_<ppid>_<subjectid>`` (the
  relpath is the presented-pose subset); found by stem anywhere under ``images/``.
- ``keypoints/openpose/<relpath>/<stem>.json``: OpenPose output (``people[]`` with
  ``pose_keypoints_2d`` BODY_25, ``hand_left_keypoints_2d`` / ``hand_right_keypoints_2d``
  21 each, ``face_keypoints_2d`` 70: iBUG 68 then the two pupils), flat x, y, c lists.
- ``smplify-xmc/smplx/params/<relpath>/<stem>.pkl``: SMPLify-XMC's result dict
  (lib/utils/save_results.py, ``pickle.dump(protocol=2)``): the SMPL-X parameters
  (``global_orient, body_pose, betas, left_hand_pose, right_hand_pose`` as 12 PCA
  coefficients (configs/fit_smplx_singleview_mtp_dataset.yaml: ``use_pca``, 12 comps,
  ``flat_hand_mean`` false), ``jaw_pose, leye_pose, reye_pose, expression, transl``), the
  camera's parameters ``camera_rotation`` (1, 3, 3), ``camera_translation``, ``camera_pitch /
  yaw / roll``, ``camera_focal_length_x/y``, ``camera_center`` and ``focal_length_x/y``
  (these last are torch tensors in that code: read through torch's rebuild functions,
  weights-only, see :func:`converters.agora.read_torch_pickle`), ``vertices``.
- ``smplify-xmc/smpl/params/<relpath>/<stem>.pkl``: SMPL ``pose`` (72) and ``betas`` (10).
- ``subject_meta.json``: ``{stem: {SubjectGender, SubjectHeightMeter, SubjectWeightKg}}``.

Conventions applied
-------------------
- One sample per image of the split. The person is the OpenPose detection TUCH picks: the
  smallest sum over the 12 limb joints of (distance to the image centre) x (1 - confidence);
  SMPLify-XMC's own script takes the centre as (h/2, w/2), swapped; TUCH's (w/2, h/2) is
  right. hmr-benchmarks takes ``people[0]``. An image without a detection is a bad record.
- keypoints2d: the detection's 135 points in convention ``mtp`` (BODY_25, left hand, right
  hand, face 68) with OpenPose's confidences (detections, not ground truth; 0 = not found);
  the pupils (face 68-69) have no superset slot and go to ``extra_mtp_pupils`` (2, 3).
  bbox: BODY_25 points with confidence > 0.2 (TUCH's threshold) x1.2, else every point found.
- SMPLify-XMC's camera is p = K (R_c X + t) with R_c = ``camera_rotation``: the fits' root
  is turned into the camera frame as ``R_c R_root`` (what TUCH does). SMPL: ``-o smpl_root=own``
  (default) folds R_c into the SMPL fit's own root; ``smpl_root=smplx`` replaces it by the
  SMPL-X fit's root, as TUCH's preprocessing does. ``smpl_source = "smplify"``, ``gender`` =
  the subject's (the release does not say which SMPL model the SMPL fits used).
  The SMPL pickle has no translation: ``has_smpl_transl`` false.
- Camera: ``cam_intrinsics`` from the fit's focal lengths and centre (default image centre),
  ``cam_extrinsics`` = [R_c | t] (the fits' own frame -> camera).
- SMPL-X in ``extra_smplx_*``: ``global_orient`` in the camera frame (R_c folded in), the rest
  as fitted; ``extra_smplx_transl`` is zero with ``extra_smplx_has_transl`` false (the camera
  translation is applied after the root: the camera-frame translation needs SMPL-X's rest
  pelvis), the fit's own ``transl`` in ``extra_smplx_fit_transl``; ``extra_smplx_use_pca``
  true, ``extra_smplx_num_pca_comps`` = the hand vectors' length, ``extra_smplx_flat_hand_mean``
  false, ``extra_smplx_gender`` the subject's.
- ``subject_id`` = the stem's subject id, ``extra_mtp_presented_pose`` = ``<ppsubset>/<ppid>``,
  ``extra_mtp_height_m`` / ``extra_mtp_weight_kg`` from the metadata (0 when absent).
- Checked on a real OpenPose file of the same kind (SMPLify-XMC's data/example_input, an
  MTP-style capture): 25 / 21 / 21 / 70 points, and each hand's root (index 0) lands on the
  BODY_25 wrist of its side, so the hand order and sides above hold. Not verified on real files
  (no MTP file is public): the pickle types of the released fits (numpy or torch: both read)
  and whether the SMPL pickles hold anything beyond pose/betas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converters.agora import read_torch_pickle
from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import image_size_hw, read_json
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["mtp"]
VERSION = "1"
OPTIONS = (
    Option("smpl_root", "own", str, "SMPL root: the SMPL fit's own (own) or the SMPL-X fit's, as TUCH "
           "(smplx); either turned into the camera frame", choices=("own", "smplx")),
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: TUCH's limb joints for the person choice (BODY_25 indices: legs then arms)
LIMB_JOINTS = (11, 10, 9, 12, 13, 14, 4, 3, 2, 5, 6, 7)
BOX_MIN_CONF = 0.2
_PARTS = (("pose_keypoints_2d", 25), ("hand_left_keypoints_2d", 21), ("hand_right_keypoints_2d", 21),
          ("face_keypoints_2d", 70))
_SMPLX_SIZES = {"global_orient": 3, "body_pose": 63, "betas": 10, "jaw_pose": 3, "leye_pose": 3,
                "reye_pose": 3, "expression": 10}


def raw_files(root: Path, split: str) -> list[Path]:
    return [p for p in (root / "train_val_split.json", root / "subject_meta.json") if p.is_file()]


def split_stems(root: Path, split: str) -> list[str]:
    path = root / "train_val_split.json"
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get(split), list):
        raise DatasetFormatError(f"no '{split}' list in the split file", path=path)
    return [str(s) for s in data[split]]


def image_index(root: Path) -> dict[str, Path]:
    folder = root / "images"
    if not folder.is_dir():
        raise DatasetFormatError("missing image folder", path=folder)
    return {p.stem: p for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}


# --------------------------------------------------------------------------------------
# OpenPose
# --------------------------------------------------------------------------------------
def read_people(path: Path) -> list[np.ndarray]:
    """Every detection of an OpenPose JSON as (137, 3): body 25, hands 21 + 21, face 70
    (a part OpenPose did not run is zeros)."""
    data = read_json(path)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise DatasetFormatError("OpenPose JSON without a 'people' list", path=path)
    out = []
    for i, person in enumerate(people):
        if not isinstance(person, dict):
            raise DatasetFormatError(f"person {i} is not a JSON object", path=path)
        parts = []
        for key, count in _PARTS:
            values = person.get(key) or []
            try:
                arr = np.asarray(values, dtype=np.float64).reshape(-1, 3) if len(values) else np.zeros((count, 3))
            except (TypeError, ValueError):
                raise DatasetFormatError(f"person {i}: '{key}' is not x, y, c numbers", path=path) from None
            if arr.shape != (count, 3) or not np.isfinite(arr).all():
                raise DatasetFormatError(f"person {i}: '{key}' holds {arr.size} values, expected {count * 3} "
                                         "finite numbers", path=path)
            parts.append(arr)
        out.append(np.concatenate(parts))
    return out


def choose_person(people: list[np.ndarray], hw: tuple[int, int]) -> int:
    """TUCH's choice: least sum of (distance of a limb joint to the image centre) x
    (1 - its confidence)."""
    centre = np.array([hw[1], hw[0]], dtype=np.float64) / 2
    scores = []
    for person in people:
        limbs = person[list(LIMB_JOINTS)]
        scores.append(float(np.linalg.norm(limbs[:, :2] - centre, axis=1) @ (1.0 - limbs[:, 2])))
    return int(np.argmin(scores))


# --------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------
def _flat(params: dict, key: str) -> np.ndarray | None:
    if key not in params:
        return None
    try:
        return np.asarray(params[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None


def read_smplx_fit(path: Path) -> dict[str, np.ndarray] | str:
    raw = read_torch_pickle(path)
    if not isinstance(raw, dict):
        return "fit pickle is not a dict"
    fit = {}
    for key, size in _SMPLX_SIZES.items():
        value = _flat(raw, key)
        if value is None or value.size != size:
            return f"fit '{key}' missing or not {size} numbers"
        fit[key] = value
    for key in ("left_hand_pose", "right_hand_pose"):
        value = _flat(raw, key)
        if value is None or value.size not in (6, 12, 45) or (key == "right_hand_pose" and
                                                               value.size != fit["left_hand_pose"].size):
            return f"fit '{key}' missing or not PCA coefficients / 45 angles"
        fit[key] = value
    rot = _flat(raw, "camera_rotation")
    if rot is None or rot.size != 9:
        return "fit lacks 'camera_rotation' (3, 3)"
    fit["camera_rotation"] = rot.reshape(3, 3)
    for key, size in (("camera_translation", 3), ("transl", 3)):
        value = _flat(raw, key)
        fit[key] = value if value is not None and value.size == size else np.zeros(size)
    for axis in ("x", "y"):
        value = _flat(raw, f"focal_length_{axis}")
        value = _flat(raw, f"camera_focal_length_{axis}") if value is None else value
        if value is not None and value.size == 1:
            fit[f"focal_{axis}"] = value
    centre = _flat(raw, "camera_center")
    if centre is not None and centre.size == 2:
        fit["centre"] = centre
    if not all(np.isfinite(v).all() for v in fit.values()):
        return "NaN or inf in the fit"
    if np.abs(fit["camera_rotation"] @ fit["camera_rotation"].T - np.eye(3)).max() > 1e-3 or \
            abs(np.linalg.det(fit["camera_rotation"]) - 1) > 1e-3:
        return "'camera_rotation' is not a rotation"
    return fit


def read_smpl_fit(path: Path) -> dict[str, np.ndarray] | str:
    raw = read_torch_pickle(path)
    if not isinstance(raw, dict):
        return "fit pickle is not a dict"
    pose = _flat(raw, "pose")
    if pose is None and "global_orient" in raw:
        parts = [_flat(raw, "global_orient"), _flat(raw, "body_pose")]
        pose = None if any(p is None for p in parts) else np.concatenate(parts)
    betas = _flat(raw, "betas")
    if pose is None or pose.size != 72:
        return "fit 'pose' missing or not 72 numbers"
    if betas is None or betas.size < 10:
        return "fit 'betas' missing or under 10 numbers"
    if not (np.isfinite(pose).all() and np.isfinite(betas).all()):
        return "NaN or inf in the fit"
    return {"pose": pose, "betas": betas[:10]}


def fold_camera(rotation: np.ndarray, orient_aa: np.ndarray) -> np.ndarray:
    """Camera rotation (3, 3) folded into a root (3,) axis-angle: R_c R_root."""
    from scipy.spatial.transform import Rotation

    return (Rotation.from_matrix(rotation) * Rotation.from_rotvec(orient_aa)).as_rotvec()


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    stems = split_stems(root, split)
    images = image_index(root)
    meta_path = root / "subject_meta.json"
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise DatasetFormatError("subject metadata is not a dict keyed by image", path=meta_path)
    smpl_root = get_option(options, OPTIONS, "smpl_root")
    for stem in stems:
        image = images.get(stem)
        if image is None:
            yield BadRecord("train_val_split.json", stem, f"no image {stem}.png under images/")
            continue
        yield _sample(root, stem, image, meta.get(stem), smpl_root)


def _subject(meta: Any) -> tuple[int, float, float]:
    if not isinstance(meta, dict):
        return 0, 0.0, 0.0
    gender = str(meta.get("SubjectGender", "")).strip().lower()
    numbers = []
    for key in ("SubjectHeightMeter", "SubjectWeightKg"):
        try:
            value = float(meta.get(key, 0.0))
        except (TypeError, ValueError):
            value = 0.0
        numbers.append(value if np.isfinite(value) else 0.0)
    return (GENDERS.index(gender) if gender in GENDERS else 0), numbers[0], numbers[1]


def _sample(root: Path, stem: str, image: Path, meta: Any, smpl_root: str) -> dict | BadRecord:
    rel = image.parent.relative_to(root / "images")
    key = str(image.relative_to(root))
    kp_path = root / "keypoints" / "openpose" / rel / f"{stem}.json"
    fit_paths = {m: root / "smplify-xmc" / m / "params" / rel / f"{stem}.pkl" for m in ("smplx", "smpl")}
    for path in (kp_path, *fit_paths.values()):
        if not path.is_file():
            return BadRecord(str(path), key, "file missing")
    try:
        hw = image_size_hw(image)
        people = read_people(kp_path)
        smplx = read_smplx_fit(fit_paths["smplx"])
        smpl = read_smpl_fit(fit_paths["smpl"])
    except (DatasetFormatError, UnsafePickleError) as exc:
        return BadRecord(str(getattr(exc, "path", "") or image), key, str(exc))
    for path, fit in ((fit_paths["smplx"], smplx), (fit_paths["smpl"], smpl)):
        if isinstance(fit, str):
            return BadRecord(str(path), key, fit)
    if not people:
        return BadRecord(str(kp_path), key, "OpenPose found nobody in the image")
    chosen = choose_person(people, hw)
    points = people[chosen]
    kp2d = to_superset(points[:135], "mtp")
    bbox = bbox_from_keypoints(points[:25], scale=1.2, min_conf=BOX_MIN_CONF)
    if bbox is None:
        bbox = bbox_from_keypoints(kp2d, scale=1.2)
    if bbox is None:
        return BadRecord(str(kp_path), f"{key}:person {chosen}", "fewer than two keypoints found: no box")
    kp2d[..., 2] = np.clip(kp2d[..., 2], 0.0, 1.0)
    rot = smplx["camera_rotation"]
    gender, height, weight = _subject(meta)
    parts = stem.split("_")
    k_int = None
    if "focal_x" in smplx:
        centre = smplx.get("centre", np.array([hw[1] / 2, hw[0] / 2]))
        fy = smplx.get("focal_y", smplx["focal_x"])
        k_int = np.array([[smplx["focal_x"][0], 0, centre[0]], [0, fy[0], centre[1]], [0, 0, 1]])
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = rot, smplx["camera_translation"]
    pca = smplx["left_hand_pose"].size != 45  # 45 = full axis-angle hands
    root_aa = smpl["pose"][:3] if smpl_root == "own" else smplx["global_orient"]
    sample = {
        "image_path": key, "image_hw": np.array(hw, np.int32), "bbox_xywh": bbox, "keypoints2d": kp2d,
        "has_smpl": True, "smpl_source": SMPL_SOURCES.index("smplify"),
        "smpl_global_orient": fold_camera(rot, root_aa), "smpl_body_pose": smpl["pose"][3:],
        "smpl_betas": smpl["betas"], "gender": gender,
        "has_intrinsics": k_int is not None, "cam_intrinsics": k_int if k_int is not None else np.zeros((3, 3)),
        "has_extrinsics": True, "cam_extrinsics": ext,
        "subject_id": parts[3] if len(parts) == 4 else "", "person_id": chosen,
        "source_key": f"{key}:person {chosen}",
        "extra_mtp_presented_pose": f"{parts[1]}/{parts[2]}" if len(parts) == 4 else "",
        "extra_mtp_height_m": height, "extra_mtp_weight_kg": weight,
        "extra_mtp_pupils": np.clip(points[135:137], [-np.inf, -np.inf, 0], [np.inf, np.inf, 1]),
        "extra_smplx_global_orient": fold_camera(rot, smplx["global_orient"]),
        "extra_smplx_transl": np.zeros(3), "extra_smplx_has_transl": False,
        "extra_smplx_fit_transl": smplx["transl"], "extra_smplx_use_pca": pca,
        "extra_smplx_num_pca_comps": np.int32(smplx["left_hand_pose"].size if pca else 0),
        "extra_smplx_flat_hand_mean": False, "extra_smplx_gender": gender,
    }
    for name in ("body_pose", "betas", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose",
                 "reye_pose", "expression"):
        sample[f"extra_smplx_{name}"] = smplx[name]
    return sample

