"""PROX (Hassan et al., ICCV 2019): recordings, OpenPose keypoints and SMPL-X fits -> schema v1.

Splits
------
- ``train``: the qualitative set (60 recordings) with the PROXD fits as pseudo-ground-truth:
  ``PROXD/<recording>/results/<frame>/000.pkl``.
- ``test``: the quantitative set (``vicon_03301_01``, 180 frames) with its MoSh++ fits:
  ``fittings/mosh/<recording>/results/<frame>/000.pkl``. Point ``--root`` at that download.
PROX publishes no split; this is how the benchmarks use the two sets (PROXD for training,
MoSh++ for evaluation).

What is read (layout from mohamedhassanmus/prox @4bc254ac: README, ``prox/data_parser.py``,
``prox/viz/viz_fitting.py``, ``prox/viz/viz_mosh.py``, ``prox/renderer.py``,
``cfg_files/PROXD.yaml``)
-----------------------------------------------------------------------------------------
- ``recordings/<Scene>_<SubjectID>_<Seq>/Color/<frame>.jpg`` (1920 x 1080), frame stems like
  ``s001_frame_00001__00.00.00.029``.
- ``keypoints/<recording>/<frame>_keypoints.json``: OpenPose output, ``people[i]`` with
  ``pose_keypoints_2d`` (BODY_25, 75 numbers), ``hand_left_keypoints_2d`` /
  ``hand_right_keypoints_2d`` (21 x 3), ``face_keypoints_2d`` (70 x 3). Person 0 is the one
  the fit ``000.pkl`` belongs to (the fitting code names fits by person index).
- The fits: pickles of a dict of float arrays (read with the restricted unpickler):
  ``global_orient`` (1, 3), ``body_pose`` (1, 63), ``betas`` (1, 10), ``left_hand_pose`` /
  ``right_hand_pose`` (1, 12: **PCA coefficients**, ``num_pca_comps: 12``, ``flat_hand_mean``
  False, in every PROX config), ``jaw_pose``, ``leye_pose``, ``reye_pose`` (1, 3),
  ``expression`` (1, 10), ``transl`` (1, 3); PROXD also ``pose_embedding`` (1, 32: VPoser),
  ``camera_rotation`` (1, 3, 3), ``camera_translation`` (1, 3).
- ``cam2world/<Scene>.json`` (4 x 4 camera -> scene); test also ``vicon2scene.json``.

The one frame: colour frames are stored mirrored
------------------------------------------------
Every PROX config sets ``flip: True``: the fitting reads a Color frame and flips it
left-right (``cv2.flip(img, 1)``) before using it with the keypoints (which it does not flip),
and the overlay renderer flips the frame before drawing the fitted body with the
intrinsics ``fx 1060.53, fy 1060.38, cx 951.30, cy 536.77`` (``PROXD.yaml``). So OpenPose ran
on the un-mirrored frame, and keypoints, fits and intrinsics all live in it. A converter that
only references the raw JPEGs could not show that frame; mirroring the labels instead would
need mirrored SMPL-X hand PCA coefficients, which do not exist. So the converter **writes the
un-mirrored frames** (``cv2.flip``, JPEG quality 95) to
``ROOT/unmirrored/<recording>/Color/<frame>.jpg``, one folder per recording written under a
temporary name and renamed when complete (rewritten by every run), and every ``image_path``
points there. Keypoints, fits and intrinsics are stored unchanged: a left wrist lands on the
person's left in the stored image.

Conventions applied
-------------------
- keypoints2d: OpenPose body, hands and face (``openpose_135``: the face's 68 iBUG points; its
  two pupils have no slot) with their confidences, clipped to [0, 1]; 0 = not detected.
  keypoints3d: none (the fits are SMPL-X; the step that derives SMPL also gives joints).
- SMPL-X kept losslessly in ``extra_smplx_*``: ``global_orient``, ``body_pose``, ``betas``,
  ``left_hand_pose``, ``right_hand_pose`` (as published: PCA coefficients), ``jaw_pose``,
  ``leye_pose``, ``reye_pose``, ``expression``, ``transl``; ``extra_smplx_hand_pca`` (number of
  PCA components, 0 when the hand poses are 45 axis-angle values), ``extra_smplx_flat_hand_mean``
  (0), ``extra_smplx_pose_embedding`` (PROXD only), ``extra_smplx_camera_rotation`` /
  ``extra_smplx_camera_translation`` (PROXD only: the fit's camera, identity / zero in its
  fixed camera mode), ``extra_smplx_in_camera_frame``: 1 for PROXD (the renderer draws the fit
  with an identity camera: the parameters are in the camera frame), 0 for MoSh++ (Vicon
  frame: ``cam_extrinsics`` = vicon -> camera = inverse(cam2world[vicon]) @ vicon2scene, has
  to be applied to the body; rotating an SMPL-X body needs its pelvis, so it is not done
  here). For PROXD ``cam_extrinsics`` = inverse(cam2world[scene]) (scene -> camera).
  SMPL columns stay empty (``has_smpl`` False): ``hmr smplx-to-smpl`` fills them.
- gender per subject: subjects 00159, 00162, 03403, 03452 are female, every other male
  (``viz_fitting.py``'s list; the quantitative subject 03301 is male as its README command says).
- bbox: the detected keypoints' box enlarged 1.2x. Samples are the fitted frames (a frame
  without a fit is not a sample); a fit without a keypoint file, with nobody detected,
  without its colour frame, or with unreadable values is a bad record.
- ``-o stride=N`` keeps every N-th fitted frame of each recording (default 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_json, read_pickle
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema import GENDERS
from hmr.core.sources import SOURCES
from hmr.core.utils.atomic import atomic_path

SOURCE = SOURCES["prox"]
VERSION = "1"
OPTIONS = (Option("stride", 1, int, "keep every stride-th fitted frame of each recording"),)

INTRINSICS = (1060.53, 1060.38, 951.30, 536.77)  # fx, fy, cx, cy: cfg_files/PROXD.yaml
FEMALE_SUBJECTS = (159, 162, 3403, 3452)
UNMIRRORED = "unmirrored"  # folder under ROOT the un-mirrored colour frames are written to
JPEG_QUALITY = 95
_FIT_SIZES = {"global_orient": 3, "body_pose": 63, "betas": 10, "jaw_pose": 3, "leye_pose": 3,
              "reye_pose": 3, "expression": 10, "transl": 3}


def fits_dir(root: Path, split: str) -> Path:
    if split not in SOURCE.splits:
        raise HmrError(f"prox has splits {SOURCE.splits}, not '{split}'")
    return root / "PROXD" if split == "train" else root / "fittings" / "mosh"


def recordings(root: Path, split: str) -> list[Path]:
    folder = fits_dir(root, split)
    if not folder.is_dir():
        raise DatasetFormatError(f"missing fits folder ({'PROXD' if split == 'train' else 'MoSh++'})",
                                 path=folder)
    return sorted(p for p in folder.iterdir() if (p / "results").is_dir())


def raw_files(root: Path, split: str) -> list[Path]:
    try:
        recs = recordings(root, split)
    except DatasetFormatError:
        return []
    return [p / "000.pkl" for r in recs for p in sorted((r / "results").iterdir()) if (p / "000.pkl").is_file()]


def gender_of(recording: str) -> str:
    """``BasementSittingBooth_00142_01`` -> 'male'; subject ids from the recording name."""
    parts = recording.split("_")
    try:
        subject = int(parts[1])
    except (IndexError, ValueError):
        return "neutral"
    return "female" if subject in FEMALE_SUBJECTS else "male"


def read_fit(path: Path, proxd: bool = True) -> dict[str, np.ndarray] | str:
    """The SMPL-X parameters of one fit pickle, flattened, or why they cannot be used.
    ``proxd``: also PROXD's VPoser embedding and fit camera (MoSh++ fits have neither)."""
    data = read_pickle(path, encoding="latin1")
    if not isinstance(data, dict):
        return "fit pickle is not a dict"
    out: dict[str, np.ndarray] = {}
    for key, size in _FIT_SIZES.items():
        if key not in data:
            return f"fit lacks '{key}'"
        arr = np.asarray(data[key], dtype=np.float64).reshape(-1)
        if arr.size != size:
            return f"'{key}' holds {arr.size} values, expected {size}"
        out[key] = arr
    hands = [np.asarray(data.get(k, np.zeros(0)), dtype=np.float64).reshape(-1)
             for k in ("left_hand_pose", "right_hand_pose")]
    if hands[0].size != hands[1].size or not 1 <= hands[0].size <= 45:
        return f"hand poses hold {hands[0].size} / {hands[1].size} values (PCA coefficients or 45)"
    out["left_hand_pose"], out["right_hand_pose"] = hands
    if proxd:
        try:
            out["pose_embedding"] = np.asarray(data["pose_embedding"], np.float64).reshape(32)
            out["camera_rotation"] = np.asarray(data["camera_rotation"], np.float64).reshape(3, 3)
            out["camera_translation"] = np.asarray(data["camera_translation"], np.float64).reshape(3)
        except KeyError as exc:
            return f"PROXD fit lacks {exc}"
        except ValueError as exc:
            return f"PROXD fit's pose_embedding / camera has the wrong size ({exc})"
    if not all(np.isfinite(v).all() for v in out.values()):
        return "fit holds NaN or inf"
    return out


def read_openpose(path: Path) -> np.ndarray | None:
    """Person 0 of an OpenPose file as (135, 3) ``openpose_135`` keypoints; None: nobody."""
    data = read_json(path)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise DatasetFormatError("OpenPose file has no 'people' list", path=path)
    if not people:
        return None
    person = people[0]
    if not isinstance(person, dict):
        raise DatasetFormatError("people[0] is not an object", path=path)
    parts = []
    for key, count, keep in (("pose_keypoints_2d", 25, 25), ("hand_left_keypoints_2d", 21, 21),
                             ("hand_right_keypoints_2d", 21, 21), ("face_keypoints_2d", 70, 68)):
        values = person.get(key) or [0.0] * (3 * count)  # hands / face absent: not detected
        try:
            arr = np.asarray(values, dtype=np.float64).reshape(count, 3)[:keep]
        except ValueError:
            raise DatasetFormatError(f"'{key}' of person 0 does not hold {count} x 3 numbers",
                                     path=path) from None
        parts.append(arr)
    kps = np.concatenate(parts)
    if not np.isfinite(kps).all():
        raise DatasetFormatError("keypoints hold NaN or inf", path=path)
    kps[:, 2] = np.clip(kps[:, 2], 0.0, 1.0)
    kps[kps[:, 2] <= 0] = 0.0
    return kps


def write_unmirrored(root: Path, recording: str, frames: list[str]) -> dict[str, tuple[int, int] | str]:
    """Un-mirror the recording's colour frames into ``ROOT/unmirrored/<recording>/Color``;
    returns each frame's (height, width), or why it could not be written (missing, unreadable)."""
    import cv2

    sizes: dict[str, tuple[int, int] | str] = {}
    target = root / UNMIRRORED / recording / "Color"
    with atomic_path(target, is_dir=True, overwrite=True) as tmp:
        for frame in frames:
            src = root / "recordings" / recording / "Color" / f"{frame}.jpg"
            img = cv2.imread(str(src), cv2.IMREAD_COLOR) if src.is_file() else None
            if img is None:
                sizes[frame] = "colour frame is missing" if not src.is_file() else "unreadable colour frame"
                continue
            sizes[frame] = img.shape[:2]
            if not cv2.imwrite(str(tmp / f"{frame}.jpg"), cv2.flip(img, 1),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise DatasetFormatError("cannot write the un-mirrored frame", path=tmp / f"{frame}.jpg")
    return sizes


def _cam2world(root: Path, scene: str) -> np.ndarray | None:
    path = root / "cam2world" / f"{scene}.json"
    if not path.is_file():
        return None
    try:
        mat = np.asarray(read_json(path), dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFormatError("expected a 4 x 4 matrix of numbers", path=path) from None
    if mat.shape != (4, 4) or not np.isfinite(mat).all() or abs(np.linalg.det(mat[:3, :3])) < 1e-6:
        raise DatasetFormatError(f"expected an invertible 4 x 4 transform of finite numbers, got shape "
                                 f"{mat.shape}", path=path)
    return mat


def world_to_camera(root: Path, split: str, recording: str) -> np.ndarray | None:
    """PROXD: scene -> camera; MoSh++: Vicon -> camera. None if a file is missing."""
    cam2world = _cam2world(root, recording.split("_")[0])
    if cam2world is None:
        return None
    ext = np.linalg.inv(cam2world)
    if split == "test":
        path = root / "vicon2scene.json"
        if not path.is_file():
            return None
        try:
            ext = ext @ np.asarray(read_json(path), dtype=np.float64).reshape(4, 4)
        except (TypeError, ValueError):
            raise DatasetFormatError("expected a 4 x 4 matrix", path=path) from None
    return ext


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    stride = get_option(options, OPTIONS, "stride")
    if stride < 1:
        raise HmrError(f"option stride={stride}: must be >= 1")
    k = intrinsics_matrix(*INTRINSICS)
    for rec_dir in recordings(root, split):
        yield from _recording_samples(root, split, rec_dir, stride, k)


def _recording_samples(root: Path, split: str, rec_dir: Path, stride: int, k: np.ndarray
                       ) -> Iterator[dict | BadRecord]:
    recording = rec_dir.name
    frames = sorted(p.name for p in (rec_dir / "results").iterdir() if (p / "000.pkl").is_file())[::stride]
    kept = []
    for frame in frames:
        kp_path = root / "keypoints" / recording / f"{frame}_keypoints.json"
        fit_path = rec_dir / "results" / frame / "000.pkl"
        if not kp_path.is_file():
            yield BadRecord(str(kp_path.relative_to(root)), f"{recording}/{frame}",
                            "the frame has a fit but no OpenPose keypoint file")
            continue
        kps = read_openpose(kp_path)
        if kps is None or (kps[:, 2] > 0).sum() < 2:
            yield BadRecord(str(kp_path.relative_to(root)), f"{recording}/{frame}",
                            "the frame has a fit but OpenPose detected nobody (fewer than 2 keypoints)")
            continue
        fit = read_fit(fit_path, proxd=split == "train")
        if isinstance(fit, str):
            yield BadRecord(str(fit_path.relative_to(root)), f"{recording}/{frame}", fit)
            continue
        kept.append((frame, kps, fit, fit_path))
    sizes = write_unmirrored(root, recording, [f for f, *_ in kept])
    ext = world_to_camera(root, split, recording)
    fixed = {"has_intrinsics": True, "cam_intrinsics": k, "has_extrinsics": ext is not None,
             "cam_extrinsics": ext if ext is not None else np.zeros((4, 4)),
             "gender": GENDERS.index(gender_of(recording)), "subject_id": recording.split("_")[1]
             if recording.count("_") >= 2 else "", "sequence": recording, "person_id": 0}
    for index, (frame, kps, fit, fit_path) in enumerate(kept):
        key = f"{recording}/{frame}"
        if isinstance(sizes[frame], str):
            yield BadRecord(str(root / "recordings" / recording / "Color" / f"{frame}.jpg"), key, sizes[frame])
            continue
        kp2d = to_superset(kps, "openpose_135")
        yield {**fixed, **smplx_columns(fit, split),
               "image_path": f"{UNMIRRORED}/{recording}/Color/{frame}.jpg",
               "image_hw": np.array(sizes[frame], np.int32),
               "bbox_xywh": bbox_from_keypoints(kp2d, scale=1.2), "keypoints2d": kp2d,
               "frame_index": _frame_number(frame, index), "source_key": f"{fit_path.relative_to(root)}"}


def _frame_number(frame: str, fallback: int) -> int:
    """``s001_frame_00042__00.00.01.383`` -> 42."""
    parts = frame.split("_")
    try:
        return int(parts[parts.index("frame") + 1])
    except (ValueError, IndexError):
        return fallback


def smplx_columns(fit: dict[str, np.ndarray], split: str) -> dict:
    pca = fit["left_hand_pose"].size
    cols = {f"extra_smplx_{k}": v.astype(np.float32) for k, v in fit.items()}
    cols["extra_smplx_hand_pca"] = np.int32(0 if pca == 45 else pca)
    cols["extra_smplx_flat_hand_mean"] = np.uint8(0)
    cols["extra_smplx_in_camera_frame"] = np.uint8(split == "train")
    return cols
