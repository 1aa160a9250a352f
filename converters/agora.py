"""AGORA: camera dataframes + SMPL / SMPL-X ground-truth fits -> schema v1.

What is read
------------
- ``camera_dataframe_smpl/{split}_<k>_withjv.pkl`` (SMPL) and ``camera_dataframe/{split}_<k>
  _withjv.pkl`` (SMPL-X): the published "camera dataframes with joints and vertices", pandas
  DataFrame pickles, one row per image (layout as MMHuman3D's docs/preprocess_dataset.md
  names the folders; the download calls them ``SMPL/`` and ``SMPLX/``, accepted too). Columns
  read (agora_evaluation docs/gt_dataframe.md): ``imgPath`` (the 3840 x 2160 file name),
  per person lists ``X, Y, Z`` (scene position, cm), ``Yaw`` (deg), ``gender``, ``kid``,
  ``occlusion`` (%), ``isValid``, ``age``, ``ethnicity``, ``gt_path_smpl``,
  ``gt_path_smplx`` (``.obj`` paths; the fit is the ``.pkl`` beside it), ``gt_joints_2d``
  (pixels of the 4K image), ``gt_joints_3d`` (camera frame, metres); per image ``camX,
  camY, camZ, camYaw``. ``gt_verts`` is not used (dropped while reading).
- ``smpl_gt/.../<id>.pkl``: plain ``pickle.dump`` of a dict of **torch tensors**
  ``root_pose, body_pose, betas, translation`` (the SMPL-X -> SMPL transfer tool's names;
  agora_evaluation get_joints_verts_from_dataframe.py renames them). Kids carry 11 betas.
- ``smplx_gt/.../<id>.pkl``: numpy arrays ``global_orient, body_pose, betas, transl,
  left_hand_pose, right_hand_pose`` (full 45-d axis-angle: no PCA), ``jaw_pose, leye_pose,
  reye_pose, expression``.
- ``images/{split}/<imgPath>`` (``_1280x720.png`` suffix at the low resolution), or the
  download's ``images/{split}_<k>/`` folders.

Nothing is unpickled freely (:mod:`converters.pickle_readers`). The DataFrame pickles name
pandas' classes; we never import pandas: a restricted unpickler maps exactly those names
(``DataFrame``, ``BlockManager``, ``_unpickle_block``, ``_new_Index`` and the index classes)
to inert stand-ins and rebuilds the columns from the block arrays. pandas >= 1.3 reduce a
manager to ``BlockManager(blocks, axes)`` (checked on pickles written by pandas 1.5.3 and 3.1); older pandas pickle its
``__getstate__`` tuple with the ``"0.14.1"`` block dicts (read per pandas' own
``__setstate__``; no such real pickle was at hand to check). The pickle is streamed and its
meshes (``gt_verts``) are dropped as they are read (:data:`converters.pickle_readers.MESH_MIN_ROWS`), so memory holds
one dataframe without them, one file (or SMPL + SMPL-X pair) at a time. The SMPL fits'
tensors go through torch's own rebuild functions with each storage read by
``torch.load(weights_only=True, map_location="cpu")`` (a pickled tensor's storage is a
nested ``torch.save`` blob); any other global is refused.

Conventions applied
-------------------
- ``-o fit=both`` (default) reads the SMPL and the SMPL-X dataframe of the same number and
  joins them by image and person index (the same persons in the same order; a row or person
  that does not match is a bad record); ``fit=smpl`` / ``fit=smplx`` read one.
- Camera (agora_evaluation projection.py, the code that produced the dataframes' joints):
  focal length by scene from the image name (``hdri`` 50 mm; ``cam00..cam03`` 18 mm with
  fixed position, yaw 135/-135/-45/45 deg and pitch 30 deg; ``ag2`` 28 mm, yaw 0, pitch 15;
  others 28 mm with the row's ``camX/Y/Z``, ``camYaw``, pitch 0 and ground offset -1.7 m),
  sensor 36 x 20.25 mm, principal point at the image centre: ``fx = f/36 W``, ``fy =
  f/20.25 H``, ``cx = W/2``, ``cy = H/2``. Positions are Unreal centimetres turned into
  OpenCV axes (``(x, y, z) -> (y, -z, x)`` / 100).
  The publisher's later dataframe_agora_smplx_release.py omits the ``ag2`` case; we follow
  projection.py because it made the dataframes' joints.
- Global orient into the camera frame (the publisher's rule, dataframe_agora_smplx_release.py
  ``c_global_orient``): ``R_cam = R_pitch R_y(Yaw - 90 - camYaw) diag(1, -1, -1) R_fit``.
  The translation follows from the same rigid map (p_cam = M p_fit + b): SMPL turns about its
  rest pelvis ``J0(betas)``, so ``transl_cam = M (J0 + transl) + b - J0``; ``J0 + transl`` is
  the fit's posed pelvis, and the dataframe gives the camera-frame pelvis
  ``gt_joints_3d[0] = M (J0 + transl) + b``, so ``J0`` comes out without a body model
  (also for kids, whose template we do not have). A ``J0`` over 0.5 m from the origin, or a
  camera-frame root whose left axis is over 30 deg from the joints' right-hip -> left-hip
  direction, means the row and the fit file disagree: a bad record.
- keypoints3d = ``gt_joints_3d`` (camera metres, confidence 1): SMPL's 45 (``smpl_45``), and
  with SMPL-X the 127 (``smplx``) filling the slots SMPL lacks (hands, face). keypoints2d =
  ``gt_joints_2d`` scaled by W/3840 (the publisher's ``* 720/2160``), confidence 1 also off
  the image (they are exact projections). bbox: all 2D joints x1.2. ``cam_extrinsics``:
  AGORA's scene (OpenCV axes, metres, after the ground offset) -> camera.
- SMPL: from the SMPL fits, ``smpl_source = "ground-truth"`` (AGORA's own SMPL fits to its
  scans), ``gender`` neutral (AGORA fitted SMPL with the neutral model); ``betas[:10]``.
  Kids: ``extra_agora_kid`` true and the 11th beta (the SMIL template weight) in
  ``extra_agora_smpl_kid_beta``: with 10 betas on the adult template the mesh is not the
  child's, so a kid's SMPL stays flagged rather than silently truncated.
- SMPL-X (``fit`` smplx/both): every parameter in ``extra_smplx_*`` columns, in the camera
  frame like SMPL (``global_orient``, ``transl``), the rest as fitted; ``extra_smplx_betas``
  (10) and ``extra_smplx_kid_beta``; ``extra_smplx_gender``; ``extra_smplx_use_pca`` false,
  ``extra_smplx_num_pca_comps`` 0 (hands are axis-angle). With ``fit=smplx`` the SMPL columns
  stay empty (``has_smpl`` false) for ``hmr smplx-to-smpl`` to fill.
- Persons with ``isValid`` false (over 90 % occluded) are skipped (``-o valid_only=false``
  keeps them); ``extra_agora_occlusion``, ``extra_agora_gender`` (the subject's), age and
  ethnicity are kept. ``source_key`` = ``<dataframe>:<row>:<person>``.
- Not verified on real files (no public sample exists): the dataframe dtypes, whether
  ``gt_path_*`` start with ``smpl_gt/`` (both are tried), and the pandas version that wrote
  the pickles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import merge_keypoints, rotmat_to_axis_angle, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.pickle_readers import read_dataframe, read_torch_pickle
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["agora"]
VERSION = "1"
OPTIONS = (
    Option("fit", "both", str, "which camera dataframes: smpl, smplx or both (joined by person)",
           choices=("smpl", "smplx", "both")),
    Option("resolution", "1280x720", str, "which image set", choices=("1280x720", "3840x2160")),
    Option("valid_only", True, bool, "skip persons AGORA marks isValid=false (over 90% occluded)"),
)

_FOLDERS = {"smpl": ("camera_dataframe_smpl", "SMPL"), "smplx": ("camera_dataframe", "SMPLX")}
_GT_FOLDERS = {"smpl": "smpl_gt", "smplx": "smplx_gt"}
_NUM_JOINTS = {"smpl": 45, "smplx": 127}
_CONVENTION = {"smpl": "smpl_45", "smplx": "smplx"}
#: a fit's rest pelvis is ~0.2-0.4 m from its origin; further means row and fit disagree
MAX_REST_PELVIS_M = 0.5
#: a camera-frame root more than this far from the joints' hip axis: row and fit disagree
MAX_HIP_AXIS_DEG = 30.0
SENSOR_MM = (36.0, 20.25)


# --------------------------------------------------------------------------------------
# Geometry (agora_evaluation projection.py)
# --------------------------------------------------------------------------------------
def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def unreal_to_opencv_m(points_cm: np.ndarray) -> np.ndarray:
    """Unreal scene centimetres -> OpenCV-axis metres: (x, y, z) -> (y, -z, x) / 100."""
    p = np.asarray(points_cm, dtype=np.float64) / 100.0
    return np.stack([p[..., 1], -p[..., 2], p[..., 0]], axis=-1)


@dataclass(frozen=True)
class SceneCamera:
    focal_mm: float
    position_cm: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float
    ground_m: tuple[float, float, float]


_FIXED_CAMERAS = {  # name fragment -> camera (projection.py)
    "hdri": SceneCamera(50, (0, 0, 170), 0, 0, (0, 0, 0)),
    "cam00": SceneCamera(18, (400, -275, 265), 135, 30, (0, 0, 0)),
    "cam01": SceneCamera(18, (400, 225, 265), -135, 30, (0, 0, 0)),
    "cam02": SceneCamera(18, (-490, 170, 265), -45, 30, (0, 0, 0)),
    "cam03": SceneCamera(18, (-490, -275, 265), 45, 30, (0, 0, 0)),
    "ag2": SceneCamera(28, (0, 0, 170), 0, 15, (0, 0, 0)),
}


def scene_camera(img_path: str, cam_xyz: tuple[float, float, float], cam_yaw: float) -> SceneCamera:
    for fragment, cam in _FIXED_CAMERAS.items():  # order matters: first match, as in projection.py
        if fragment in img_path:
            return cam
    return SceneCamera(28, cam_xyz, cam_yaw, 0, (0, -1.7, 0))


def intrinsics(cam: SceneCamera, width: int, height: int) -> np.ndarray:
    fx = cam.focal_mm / SENSOR_MM[0] * width
    fy = cam.focal_mm / SENSOR_MM[1] * height
    return np.array([[fx, 0, width / 2], [0, fy, height / 2], [0, 0, 1]])


def world_to_camera(cam: SceneCamera) -> np.ndarray:
    """(4, 4) AGORA world (OpenCV axes, metres) -> camera."""
    rot = _rot_x(cam.pitch_deg) @ _rot_y(-cam.yaw_deg)
    centre = unreal_to_opencv_m(np.array(cam.position_cm)) + np.array(cam.ground_m)
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, -rot @ centre
    return out


def fit_to_camera(cam: SceneCamera, person_cm: np.ndarray, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, b): a fit's own frame -> camera, p_cam = M p_fit + b (projection.py: SMPL axes
    flipped to OpenCV's, turned by Yaw - 90 about y, placed at the person's position)."""
    ext = world_to_camera(cam)
    flip = np.diag([1.0, -1.0, -1.0])
    m = ext[:3, :3] @ _rot_y(yaw_deg - 90.0) @ flip
    b = ext[:3, :3] @ unreal_to_opencv_m(person_cm) + ext[:3, 3]
    return m, b


def camera_frame_root(m: np.ndarray, b: np.ndarray, orient_fit: np.ndarray, transl_fit: np.ndarray,
                      pelvis_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root rotation and translation in the camera frame, and the rest pelvis J0.

    orient_fit (3,) axis-angle, transl_fit (3,), pelvis_cam (3,) the dataframe's camera-frame
    pelvis joint. SMPL's posed root joint is J0 + transl, so J0 = M^T (pelvis_cam - b) -
    transl_fit and transl_cam = pelvis_cam - J0.
    """
    from scipy.spatial.transform import Rotation

    orient = (Rotation.from_matrix(m) * Rotation.from_rotvec(orient_fit)).as_rotvec()
    rest_pelvis = m.T @ (pelvis_cam - b) - transl_fit
    return orient, pelvis_cam - rest_pelvis, rest_pelvis


def hip_axis_angle(orient_cam: np.ndarray, joints_cam: np.ndarray) -> float:
    """Degrees between the body's left axis (+x of the fit, turned by the camera-frame root)
    and the right-hip -> left-hip direction of the camera-frame joints (SMPL and SMPL-X order
    1 = left hip, 2 = right hip). The hips hang from the root alone, so a root that matches
    the joints leaves them within a few degrees (the rest hips are nearly level)."""
    from scipy.spatial.transform import Rotation

    axis = Rotation.from_rotvec(orient_cam).apply([1.0, 0.0, 0.0])
    hips = joints_cam[1] - joints_cam[2]
    cos = float(axis @ hips / max(np.linalg.norm(hips), 1e-9))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------
def dataframe_files(root: Path, split: str, fit: str) -> list[Path]:
    for folder in _FOLDERS[fit]:
        found = sorted((root / folder).glob(f"{split}_*.pkl"), key=_file_number)
        if found:
            return found
    raise DatasetFormatError(f"no {fit.upper()} camera dataframes {split}_<k>_withjv.pkl in "
                             f"{' or '.join(_FOLDERS[fit])} (-o fit=smpl / smplx reads one kind)",
                             path=root / _FOLDERS[fit][0])


def _file_number(path: Path) -> tuple[int, str]:
    m = re.match(r"[a-z]+_(\d+)", path.name)
    return (int(m.group(1)) if m else -1, path.name)


def raw_files(root: Path, split: str) -> list[Path]:
    files: list[Path] = []
    for fit in ("smpl", "smplx"):
        try:
            files += dataframe_files(root, split, fit)
        except DatasetFormatError:
            pass
    return files


def fit_file(root: Path, fit: str, obj_path: Any) -> Path | str:
    """The fit ``.pkl`` of a dataframe ``gt_path_*`` entry, or why not."""
    rel = str(obj_path).replace("\\", "/")
    if not rel or rel.startswith("/") or ".." in rel.split("/"):
        return f"gt_path_{fit} {obj_path!r} is not a relative path inside the dataset"
    rel = re.sub(r"\.obj$", ".pkl", rel)
    for cand in (root / rel, root / _GT_FOLDERS[fit] / rel):
        if cand.is_file():
            return cand
    return f"fit file {rel} not found (looked in the dataset root and {_GT_FOLDERS[fit]}/)"


_SMPL_KEYS = {"root_pose": "global_orient", "translation": "transl"}


def read_fit(path: Path, fit: str) -> dict[str, np.ndarray]:
    """A fit pickle -> float64 arrays keyed by smplx's parameter names, one person."""
    raw = read_torch_pickle(path)
    if not isinstance(raw, dict):
        raise DatasetFormatError("fit pickle is not a dict", path=path)
    params = {}
    for key, value in raw.items():
        key = _SMPL_KEYS.get(key, key)
        try:
            params[key] = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue  # strings and other metadata are not parameters
    return params


_SIZES = {"smpl": {"global_orient": 3, "body_pose": 69, "transl": 3},
          "smplx": {"global_orient": 3, "body_pose": 63, "transl": 3, "left_hand_pose": 45,
                    "right_hand_pose": 45, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
                    "expression": 10}}


def check_fit(params: dict[str, np.ndarray], fit: str) -> str | None:
    """Why a fit cannot be used, or None; rotation matrices (a pose stored with pose2rot off)
    are turned into axis-angle in place."""
    for key, size in _SIZES[fit].items():
        if key not in params:
            return f"fit lacks '{key}'"
        if key != "transl" and key != "expression" and params[key].size == size * 3:
            try:
                params[key] = rotmat_to_axis_angle(params[key].reshape(-1, 3, 3)).reshape(-1)
            except ValueError as exc:
                return f"fit '{key}': {exc}"
        if params[key].size != size:
            return f"fit '{key}' holds {params[key].size} values, expected {size}"
    if params.get("betas", np.zeros(0)).size not in (10, 11):
        return f"fit 'betas' holds {params.get('betas', np.zeros(0)).size} values, expected 10 or 11"
    if not all(np.isfinite(v).all() for v in params.values()):
        return "NaN or inf in the fit"
    return None


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
@dataclass
class Person:
    """One person of one dataframe row, for one body model."""

    fit: str
    params: dict[str, np.ndarray]
    joints2d: np.ndarray        # (J, 2) px of the chosen resolution
    joints3d: np.ndarray        # (J, 3) camera metres
    orient: np.ndarray          # (3,) camera frame
    transl: np.ndarray          # (3,) camera frame


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    fit = get_option(options, OPTIONS, "fit")
    width, height = (int(v) for v in get_option(options, OPTIONS, "resolution").split("x"))
    valid_only = get_option(options, OPTIONS, "valid_only")
    fits = ("smpl", "smplx") if fit == "both" else (fit,)
    files = {f: dataframe_files(root, split, f) for f in fits}
    if fit == "both" and [p.name for p in files["smpl"]] != [p.name for p in files["smplx"]]:
        raise DatasetFormatError("the SMPL and SMPL-X dataframes differ in number or names: "
                                 f"{[p.name for p in files['smpl']]} vs {[p.name for p in files['smplx']]}",
                                 path=root / _FOLDERS["smplx"][0])
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for k, first in enumerate(files[fits[0]]):
            frames = {f: read_dataframe(files[f][k]) for f in fits}
            yield from _dataframe_samples(root, split, frames, {f: files[f][k] for f in fits},
                                          (width, height), valid_only, probe, options)
            del frames


_ROW_COLUMNS = ("imgPath", "X", "Y", "Z", "Yaw", "camX", "camY", "camZ", "camYaw", "gender", "kid",
                "occlusion", "isValid", "gt_joints_2d", "gt_joints_3d")


def _dataframe_samples(root: Path, split: str, frames: dict[str, dict], paths: dict[str, Path],
                       size: tuple[int, int], valid_only: bool, probe: Any,
                       options: ConvertOptions) -> Iterator[dict | BadRecord]:
    for fit, cols in frames.items():
        missing = [c for c in (*_ROW_COLUMNS, f"gt_path_{fit}") if c not in cols]
        if missing:
            raise DatasetFormatError(f"dataframe lacks columns {missing} (the 'with joints and "
                                     "vertices' camera dataframes are needed)", path=paths[fit])
    first = next(iter(frames))
    main = frames[first]
    rel = paths[first].relative_to(root)
    number = _file_number(paths[first])[0]
    images = [_image_path(root, split, number, str(p), size) for p in main["imgPath"]]
    sizes = probe(images) if options.check_images else iter([None] * len(images))
    for row, (img, hw) in enumerate(zip(images, sizes)):
        key = f"{rel}:{row}"
        if isinstance(hw, str):
            yield BadRecord(str(img), key, hw)
            continue
        if hw is not None and tuple(hw) != (size[1], size[0]):
            yield BadRecord(str(img), key, f"image is {hw[1]}x{hw[0]}, expected {size[0]}x{size[1]}")
            continue
        yield from _row_samples(root, frames, paths, row, img, size, valid_only)


def _image_path(root: Path, split: str, number: int, name: str, size: tuple[int, int]) -> Path:
    name = name.replace("\\", "/").split("/")[-1]
    if size[0] != 3840 and not name.endswith(f"_{size[0]}x{size[1]}.png"):
        name = re.sub(r"\.png$", f"_{size[0]}x{size[1]}.png", name)
    first = root / "images" / split / name
    if first.exists():
        return first
    other = root / "images" / f"{split}_{number}" / name
    return other if other.exists() else first


def _row_samples(root: Path, frames: dict[str, dict], paths: dict[str, Path], row: int, img: Path,
                 size: tuple[int, int], valid_only: bool) -> Iterator[dict | BadRecord]:
    fits = list(frames)
    main = frames[fits[0]]
    key = f"{paths[fits[0]].relative_to(root)}:{row}"
    img_name = str(main["imgPath"][row])
    try:
        n = len(main["isValid"][row])
        for fit in fits:
            other = frames[fit]
            if str(other["imgPath"][row]) != img_name or len(other["isValid"][row]) != n:
                raise ValueError(f"the {fit.upper()} dataframe's row {row} is "
                                 f"{other['imgPath'][row]!r} with {len(other['isValid'][row])} persons")
            for c in ("X", "Y", "Z", "Yaw", "gender", "kid", "occlusion", f"gt_path_{fit}", "gt_joints_2d",
                      "gt_joints_3d"):
                if len(other[c][row]) != n:
                    raise ValueError(f"column {c} has {len(other[c][row])} entries for {n} persons")
        cam = scene_camera(img_name, tuple(float(main[c][row]) for c in ("camX", "camY", "camZ")),
                           float(main["camYaw"][row]))
    except (TypeError, ValueError) as exc:
        yield BadRecord(str(paths[fits[0]]), key, str(exc))
        return
    k_int = intrinsics(cam, *size)
    for p in range(n):
        if valid_only and not bool(main["isValid"][row][p]):
            continue
        persons = {}
        for fit in fits:
            person = _person(root, frames[fit], fit, row, p, cam, size)
            if isinstance(person, str):
                yield BadRecord(str(paths[fit]), f"{key}:{p}", person)
                break
            persons[fit] = person
        else:
            yield _sample(root, main, row, p, img, size, k_int, cam, persons, key)


def _person(root: Path, cols: dict, fit: str, row: int, p: int, cam: SceneCamera,
            size: tuple[int, int]) -> Person | str:
    path = fit_file(root, fit, cols[f"gt_path_{fit}"][row][p])
    if isinstance(path, str):
        return path
    try:
        params = read_fit(path, fit)
    except (DatasetFormatError, UnsafePickleError) as exc:
        return str(exc)
    why = check_fit(params, fit)
    if why:
        return f"{path.relative_to(root)}: {why}"
    try:
        j2d = np.asarray(cols["gt_joints_2d"][row][p], np.float64).reshape(-1, 2) * (size[0] / 3840.0)
        j3d = np.asarray(cols["gt_joints_3d"][row][p], np.float64).reshape(-1, 3)
        person_cm = np.array([float(cols[c][row][p]) for c in ("X", "Y", "Z")])
        yaw = float(cols["Yaw"][row][p])
    except (TypeError, ValueError) as exc:
        return f"joints or position not numbers: {exc}"
    if len(j2d) != _NUM_JOINTS[fit] or len(j3d) != _NUM_JOINTS[fit]:
        return f"gt_joints_2d/3d hold {len(j2d)}/{len(j3d)} joints, expected {_NUM_JOINTS[fit]}"
    if not (np.isfinite(j2d).all() and np.isfinite(j3d).all() and np.isfinite(person_cm).all()):
        return "NaN or inf in the joints or the position"
    m, b = fit_to_camera(cam, person_cm, yaw)
    orient, transl, rest_pelvis = camera_frame_root(m, b, params["global_orient"], params["transl"], j3d[0])
    if np.linalg.norm(rest_pelvis) > MAX_REST_PELVIS_M:
        return (f"the dataframe's pelvis and {path.relative_to(root)} disagree (rest pelvis "
                f"{np.linalg.norm(rest_pelvis):.2f} m from the fit's origin): wrong fit file or row")
    angle = hip_axis_angle(orient, j3d)
    if angle > MAX_HIP_AXIS_DEG:
        return (f"the dataframe's hips and {path.relative_to(root)} disagree: the camera-frame root "
                f"turns the body's left-right axis {angle:.0f} deg away from the joints' (wrong fit "
                "file or row)")
    return Person(fit, params, j2d, j3d, orient, transl)


def _gender(value: Any) -> int:
    text = str(value).strip().lower()
    return GENDERS.index(text) if text in GENDERS else 0


def _smplx_gender(subject: int, kid: bool) -> int:
    """The SMPL-X model a fit goes with: the subject's, except female kids, which AGORA fits
    with the neutral kid model (agora_evaluation docs/kid_model.md)."""
    return GENDERS.index("neutral") if kid and subject == GENDERS.index("female") else subject


def _sample(root: Path, main: dict, row: int, p: int, img: Path, size: tuple[int, int], k_int: np.ndarray,
            cam: SceneCamera, persons: dict[str, Person], key: str) -> dict:
    ones = lambda a: np.concatenate([a, np.ones((len(a), 1))], axis=1)
    order = [persons[f] for f in ("smpl", "smplx") if f in persons]
    kp2d = merge_keypoints(*(to_superset(ones(q.joints2d), _CONVENTION[q.fit]) for q in order))
    kp3d = merge_keypoints(*(to_superset(ones(q.joints3d), _CONVENTION[q.fit]) for q in order))
    kid = bool(main["kid"][row][p])
    sample = {
        "image_path": str(img.relative_to(root)), "image_hw": np.array([size[1], size[0]], np.int32),
        "bbox_xywh": bbox_from_keypoints(kp2d, scale=1.2), "keypoints2d": kp2d, "keypoints3d": kp3d,
        "has_intrinsics": True, "cam_intrinsics": k_int, "has_extrinsics": True,
        "cam_extrinsics": world_to_camera(cam), "person_id": p,
        "source_key": f"{key}:{p}", "extra_agora_kid": kid,
        "extra_agora_occlusion": float(main["occlusion"][row][p]),
        "extra_agora_is_valid": bool(main["isValid"][row][p]),
        "extra_agora_gender": _gender(main["gender"][row][p]),
        "extra_agora_age": str(main["age"][row][p]) if "age" in main else "",
        "extra_agora_ethnicity": str(main["ethnicity"][row][p]) if "ethnicity" in main else "",
    }
    smpl = persons.get("smpl")
    if smpl is not None:
        betas = smpl.params["betas"]
        sample.update({
            "has_smpl": True, "smpl_source": SMPL_SOURCES.index("ground-truth"),
            "smpl_global_orient": smpl.orient, "smpl_body_pose": smpl.params["body_pose"],
            "smpl_betas": betas[:10], "has_smpl_transl": True, "smpl_transl": smpl.transl,
            "gender": GENDERS.index("neutral"),
            "extra_agora_smpl_kid_beta": float(betas[10]) if betas.size > 10 else 0.0,
        })
    smplx = persons.get("smplx")
    if smplx is not None:
        prm = smplx.params
        sample.update({f"extra_smplx_{k}": prm[k] for k in ("body_pose", "left_hand_pose", "right_hand_pose",
                                                             "jaw_pose", "leye_pose", "reye_pose", "expression")})
        sample.update({
            "extra_smplx_global_orient": smplx.orient, "extra_smplx_transl": smplx.transl,
            "extra_smplx_betas": prm["betas"][:10],
            "extra_smplx_kid_beta": float(prm["betas"][10]) if prm["betas"].size > 10 else 0.0,
            "extra_smplx_gender": _smplx_gender(sample["extra_agora_gender"], kid), "extra_smplx_use_pca": False,
            "extra_smplx_num_pca_comps": np.int32(0),
        })
    return sample
