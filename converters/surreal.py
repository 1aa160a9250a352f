"""SURREAL (synthetic humans rendered from CMU MoSh sequences): clips of 320 x 240 video with
per-frame SMPL, 2D and 3D joints -> schema v1, one sample per kept frame.

Raw layout (the ``SURREAL/data/cmu`` folder is ROOT; gulvarol/surreal ``README.md``)::

    ROOT/{train,val,test}/run{0,1,2}/<seq>/<seq>_c%04d.mp4        # the clip, 320 x 240, h264
    ROOT/{train,val,test}/run{0,1,2}/<seq>/<seq>_c%04d_info.mat   # its annotations (MATLAB v5)
    (``_depth.mat``, ``_segm.mat``, ``_gtflow.mat`` beside them are not read)

``<seq>`` is a CMU sequence (``01_01``; some are ``ung_*``); ``val`` is a subset of ``test``;
the three runs cut the same sequences into clips with 50 / 30 / 70 % overlap, so they hold
near-duplicate frames: ``-o runs=0`` (the default, MMHuman3D's) converts run0 only.

``_info.mat`` keys read (checked on the publisher's own sample ``01_01_c0001_info.mat``,
gulvarol/surreal ``datageneration/misc/3Dto2D``, and the writer ``datageneration/main_part1.py``),
T frames (usually 100): ``joints2D`` (2, 24, T) px, integers (rounded by the renderer);
``joints3D`` (3, 24, T) metres, Blender **world** frame; ``pose`` (72, T) SMPL axis-angle;
``shape`` (10, T); ``zrot`` (T, 1) rad; ``gender`` (T, 1) 0 female / 1 male; ``camLoc``
(3, 1) the camera position (fixed for the whole clip: the writer keyframes it once, at
frame 0); ``camDist``, ``sequence``, ``clipNo``. Joint order: SMPL's 24 (``part_match`` in
``main_part1.py``: bone_00 Pelvis, bone_01 L_Hip, ...), convention ``smpl``.

Camera (``datageneration/misc/3Dto2D/getIntrinsicBlender.m``, ``getExtrinsicBlender.m``):
K = [[600, 0, 160], [0, 600, 120], [0, 0, 1]] (60 mm lens, 32 mm sensor, 320 px);
``x = R (X_world - camLoc)`` with R = diag(1, -1, -1) [[0, 0, -1], [0, -1, 0], [1, 0, 0]],
whose **determinant is -1**: the published "rotation" is a reflection. Checked on the real
sample: ``round(K (R X + T))`` equals ``joints2D`` exactly for all 2,400 joints (largest
unrounded difference 0.49996 px).

The frame rule (what this converter stores)
-------------------------------------------
Because R is a reflection, the image shows a *mirror image* of the posed world body: the
joint the files call ``L_Hand`` appears where the depicted person's right hand is (the
publisher's own ``smpl_relations.py`` notes that left and right are swapped in the drawing;
gulvarol/surreal issue #10). A proper body that projects onto ``joints2D`` is the reflected
body itself, with left and right renamed:

- ``keypoints3d`` = ``R joints3D + T`` (camera frame, metres), joint ``j`` stored in the slot
  of ``flip(j)`` (left <-> right, :func:`hmr.core.keypoints.convert.flip_permutation`);
- ``keypoints2d`` = ``joints2D`` renamed the same way (the pixels are not moved: they already
  lie on the image), so a joint in the left-wrist slot is the depicted person's left wrist;
- SMPL. The world root rotation is the publisher's (``smpl_relations.py``, ``rotateBody``):
  ``R_world = Rx(90 deg) Rz(zrot) R(pose[:3])``; checked on the real sample with hmrkit's
  mannequin: the bone directions of SMPL posed this way match ``joints3D`` (mean cosine
  0.992; without ``Rx(90)`` or without ``zrot``: 0.21 / 0.22). The reflected body is the SMPL
  body mirrored in its own x axis, D = diag(-1, 1, 1): ``global_orient = R R_world D``
  (a proper rotation: det R det D = +1), body pose flipped as for an image flip (joint
  ``k`` takes ``flip(k)``'s rotation with its y and z components negated, i.e. D R D),
  betas unchanged, and ``transl`` puts the model's pelvis on ``keypoints3d``'s pelvis:
  ``transl = pelvis_cam - J0(betas)`` (J0 from the gendered body model, ``--body-model``).
  This is exact for a left-right symmetric body model (the mannequin: checked to 1e-6 m);
  real SMPL is symmetric to a few millimetres, so its joints match ``keypoints3d`` to that
  plus the difference between SMPL's joint regressor and the renderer's bone heads.
- A frame whose ``joints2D`` lie more than :data:`MAX_REPROJECTION_PX` from the projection of
  its ``joints3D`` (the camera was not the published one) is a bad record.

Checked on the publisher's real sample (100 frames) with a label-free side test (up = pelvis
-> neck, forward = ankles -> toes of both feet, the body's left = up x forward): ``L_Hip``
lies on the body's left in the world frame in 100 of 100 frames, after ``R X + T`` in 0 of
100 (the mirror), and in the stored keypoints (renamed) in 100 of 100; the file converts to
100 samples whose 3D joints project onto the 2D ones within 0.5 px.

Public readers' bugs not repeated: MMHuman3D ``surreal.py`` stores the det = -1 matrix as a
camera rotation and flips the 3D joints and the SMPL pose left/right but not ``joints2D``
(the 2D labels then disagree with the 3D ones); older versions named extracted frames
1-based but indexed them 0-based (MMHuman3D issue #69).

Frames
------
The videos are decoded with OpenCV (``cv2.VideoCapture``, frames in order) and every kept
frame is written as JPEG (``-o jpeg_quality``, default 95) to
``ROOT/frames/<split>/run<r>/<seq>/<clip>/<frame:06d>.jpg`` (0-based, the row of the
``_info.mat``), one folder per clip written under a temporary name and renamed when
complete, rewritten by every run -- the same rule as :mod:`converters.instavariety`'s crops,
since a store's ``image_path`` is relative to the raw root (which must therefore be
writable). ``-o stride=N`` keeps frames whose index is divisible by N (default 1: all).
``-o decode=false`` writes no frames (annotations only; ``image_hw`` is then the nominal
240 x 320). A video that cannot be opened, or that ends before the annotations, makes the
frames it lacks bad records; frames past the annotations are ignored.

Other fields: ``bbox_xywh`` the 2D joints' box x1.2 (MMHuman3D's rule); confidences 1 (the
joints are exact, also outside the image); ``smpl_source`` ground-truth; ``gender`` per frame;
``cam_intrinsics`` K; no extrinsics (the world->camera map is not rigid); ``sequence``
``run<r>/<clip>``, ``frame_index`` the frame, ``person_id`` 0, ``source_key``
``<info.mat path>:<frame>``; extras ``extra_cam_loc`` (3,) m, ``extra_zrot`` rad (with
``keypoints3d`` and R they give back the world frame).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.pw3d import BodyModels, rest_pelvis
from converters.readers import read_mat
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.geometry import project_points
from hmr.core.keypoints.convert import flip_permutation
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES
from hmr.core.utils.atomic import atomic_path

SOURCE = SOURCES["surreal"]
VERSION = "1"

OPTIONS = (
    Option("runs", "0", str, "comma-separated runs to convert (0, 1, 2: clips cut with 50 / 30 / "
           "70 % overlap)"),
    Option("stride", 1, int, "keep frames whose index is divisible by stride"),
    Option("decode", True, bool, "decode the videos into ROOT/frames (false: annotations only)"),
    Option("jpeg_quality", 95, int, "JPEG quality of the decoded frames"),
)

FRAMES = "frames"  # folder under ROOT the decoded frames are written to
IMAGE_HW = (240, 320)
INTRINSICS = intrinsics_matrix(600.0, 600.0, 160.0, 120.0)
#: world -> OpenCV camera "rotation" of every clip (getExtrinsicBlender.m); det = -1
R_WORLD_TO_CV = np.diag([1.0, -1.0, -1.0]) @ np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
#: the mirror applied in the body's own frame (x: the body's left)
BODY_MIRROR = np.diag([-1.0, 1.0, 1.0])
MAX_REPROJECTION_PX = 1.0  # joints2D are rounded: 0.71 px at most when consistent
_GENDERS = {0: "female", 1: "male"}
_FLIP = flip_permutation("smpl")  # (24,) joint i of the mirrored body is joint _FLIP[i]


@dataclass
class Clip:
    """One ``_info.mat``; T = frames."""

    path: Path
    joints2d: np.ndarray   # (T, 24, 2) px
    joints3d: np.ndarray   # (T, 24, 3) m, world
    pose: np.ndarray       # (T, 72) world-frame SMPL (before zrot / Rx90)
    shape: np.ndarray      # (T, 10)
    zrot: np.ndarray       # (T,)
    gender: np.ndarray     # (T,) 0 female, 1 male
    cam_loc: np.ndarray    # (3,) m

    @property
    def num_frames(self) -> int:
        return len(self.pose)


def _array(data: dict, key: str, shape: tuple, path: Path) -> np.ndarray:
    if key not in data:
        raise DatasetFormatError(f"no '{key}' in the info file", path=path)
    arr = np.asarray(data[key])
    try:
        out = arr.astype(np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"'{key}' has shape {arr.shape}, expected {shape}", path=path,
                                 record=key) from None
    return out


def read_info(path: Path) -> Clip:
    """Read and check one ``_info.mat`` (layout in the module docstring)."""
    data = read_mat(path)
    pose = np.asarray(data.get("pose", np.zeros((0, 0))))
    if pose.ndim != 2 or pose.shape[0] != 72:
        raise DatasetFormatError(f"'pose' has shape {pose.shape}, expected (72, T)", path=path, record="pose")
    t = pose.shape[1]
    j2 = _array(data, "joints2D", (2, 24, t), path).transpose(2, 1, 0)
    j3 = _array(data, "joints3D", (3, 24, t), path).transpose(2, 1, 0)
    shape = _array(data, "shape", (10, t), path).T
    zrot = _array(data, "zrot", (t,), path)
    gender = _array(data, "gender", (t,), path)
    cam_loc = _array(data, "camLoc", (3,), path)
    if not np.isfinite(cam_loc).all():
        raise DatasetFormatError("'camLoc' holds NaN or inf", path=path, record="camLoc")
    return Clip(path, j2, j3, pose.astype(np.float64).T, shape, zrot, gender, cam_loc)


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------
def world_to_camera(cam_loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), T (3,)) with ``x_cv = R X_world + T``; det R = -1 (module docstring)."""
    return R_WORLD_TO_CV, -R_WORLD_TO_CV @ np.asarray(cam_loc, dtype=np.float64)


def world_root_rotation(pose_root_aa: np.ndarray, zrot: np.ndarray) -> np.ndarray:
    """(B, 3, 3) SMPL root rotation in the world: Rx(90 deg) Rz(zrot) R(pose[:3])."""
    from scipy.spatial.transform import Rotation

    rx90 = Rotation.from_euler("x", np.pi / 2)
    rz = Rotation.from_euler("z", np.asarray(zrot, dtype=np.float64).reshape(-1, 1))
    return (rx90 * rz * Rotation.from_rotvec(pose_root_aa)).as_matrix()


def mirrored_camera_smpl(pose: np.ndarray, zrot: np.ndarray, cam_loc: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame SMPL of the reflected (depicted) body: (global_orient (B, 3), body_pose
    (B, 69)) axis-angle, from the world pose (B, 72) and zrot (B,)."""
    from scipy.spatial.transform import Rotation

    rot, _ = world_to_camera(cam_loc)
    orient = rot @ world_root_rotation(pose[:, :3], zrot) @ BODY_MIRROR  # (B, 3, 3), det +1
    body = pose[:, 3:].reshape(-1, 23, 3)[:, _FLIP[1:] - 1].copy()  # (B, 23, 3), joint k <- flip(k)
    body[..., 1:] *= -1.0  # D R(w) D = R((wx, -wy, -wz))
    return Rotation.from_matrix(orient).as_rotvec(), body.reshape(-1, 69)


def camera_keypoints(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints3d (T, 24, 3) m, keypoints2d (T, 24, 2) px) of the depicted body, SMPL order,
    left and right named as in the image."""
    rot, trans = world_to_camera(clip.cam_loc)
    cam = clip.joints3d @ rot.T + trans  # (T, 24, 3), the publisher's labels
    return cam[:, _FLIP], clip.joints2d[:, _FLIP]


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------
def decode_frames(video: Path, keep: set[int], folder: Path, quality: int) -> dict[int, tuple[int, int]]:
    """Decode ``video`` and write the frames in ``keep`` as ``folder/<frame:06d>.jpg`` (the
    folder renamed into place when complete). Returns {frame: (height, width)} of those
    written; an unreadable video writes none."""
    import cv2

    sizes: dict[int, tuple[int, int]] = {}
    if not video.is_file():
        return sizes
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            return sizes
        with atomic_path(folder, is_dir=True, overwrite=True) as tmp:
            index, last = 0, max(keep, default=-1)
            while index <= last:
                ok, frame = cap.read()
                if not ok:
                    break
                if index in keep:
                    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                    if not ok:
                        raise DatasetFormatError(f"cannot encode frame {index} as JPEG", path=video)
                    (tmp / f"{index:06d}.jpg").write_bytes(data.tobytes())
                    sizes[index] = frame.shape[:2]
                index += 1
    finally:
        cap.release()
    return sizes


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
def _runs(options: ConvertOptions) -> list[str]:
    raw = get_option(options, OPTIONS, "runs")
    runs = [r.strip().removeprefix("run") for r in str(raw).split(",") if r.strip()]
    bad = [r for r in runs if r not in ("0", "1", "2")]
    if bad or not runs:
        raise HmrError(f"option runs={raw!r}: runs are 0, 1 and 2")
    return [f"run{r}" for r in dict.fromkeys(runs)]


def info_files(root: Path, split: str, runs: list[str]) -> list[Path]:
    root = Path(root)
    if not (root / split).is_dir():
        nested = root / "cmu" / split
        hint = f" (found {nested}: pass --root {root / 'cmu'})" if nested.is_dir() else ""
        raise DatasetFormatError(f"no '{split}' folder{hint}", path=root / split)
    files = [p for run in runs for p in sorted((root / split / run).glob("*/*_info.mat"))]
    if not files:
        raise DatasetFormatError(f"no */*_info.mat under {split}/{','.join(runs)}", path=root / split)
    return files


def raw_files(root: Path, split: str) -> list[Path]:
    try:
        return info_files(root, split, _runs(ConvertOptions()))
    except DatasetFormatError:
        return []


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    stride = get_option(options, OPTIONS, "stride")
    quality = get_option(options, OPTIONS, "jpeg_quality")
    if stride < 1 or not 1 <= quality <= 100:
        raise HmrError(f"option stride must be >= 1 and jpeg_quality in 1..100 (got {stride}, {quality})")
    models = BodyModels(options.body_model)
    for path in info_files(root, split, _runs(options)):
        yield from _clip_samples(root, path, stride, quality, get_option(options, OPTIONS, "decode"), models)


def _clip_samples(root: Path, path: Path, stride: int, quality: int, decode: bool, models: BodyModels
                  ) -> Iterator[dict | BadRecord]:
    rel = path.relative_to(root)
    clip = read_info(path)
    name = path.name.removesuffix("_info.mat")
    video = path.with_name(f"{name}.mp4")
    frames = [i for i in range(0, clip.num_frames, stride)]
    image_dir = f"{FRAMES}/{rel.parent.as_posix()}/{name}"
    sizes = decode_frames(video, set(frames), root / image_dir, quality) if decode else {}
    kp3, kp2 = camera_keypoints(clip)
    orient, body_pose = mirrored_camera_smpl(clip.pose, clip.zrot, clip.cam_loc)
    reprojection = np.abs(project_points(kp3, INTRINSICS.astype(np.float64)) - kp2).max(axis=(1, 2))
    finite = np.isfinite(clip.pose).all(1) & np.isfinite(clip.shape).all(1) & np.isfinite(kp3).all((1, 2)) \
        & np.isfinite(kp2).all((1, 2)) & np.isfinite(clip.zrot)
    pelvis_cache: dict[tuple, np.ndarray] = {}  # (gender, betas): J0; betas are constant per clip
    for i in frames:
        key = f"{rel}:{i}"
        problem = _frame_problem(clip, i, finite[i], reprojection[i])
        if not problem and decode and i not in sizes:
            yield BadRecord(str(video), key, f"video is missing, unreadable or ends before frame {i}")
            continue
        if problem:
            yield BadRecord(str(path), key, problem)
            continue
        gender = _GENDERS[int(clip.gender[i])]
        betas = clip.shape[i]
        cache_key = (gender, betas.tobytes())
        if cache_key not in pelvis_cache:
            pelvis_cache[cache_key] = rest_pelvis(models.get(gender), betas)
        pelvis = pelvis_cache[cache_key]
        ones3 = np.ones((24, 1))
        k2 = to_superset(np.concatenate([kp2[i], ones3], axis=1), "smpl")
        yield {
            "image_path": f"{image_dir}/{i:06d}.jpg",
            "image_hw": np.asarray(sizes.get(i, IMAGE_HW), dtype=np.int32),
            "bbox_xywh": bbox_from_keypoints(k2, scale=1.2),
            "keypoints2d": k2,
            "keypoints3d": to_superset(np.concatenate([kp3[i], ones3], axis=1), "smpl"),
            "has_smpl": True, "smpl_source": SMPL_SOURCES.index("ground-truth"),
            "smpl_global_orient": orient[i], "smpl_body_pose": body_pose[i], "smpl_betas": betas,
            "has_smpl_transl": True, "smpl_transl": kp3[i, 0] - pelvis,
            "gender": GENDERS.index(gender),
            "has_intrinsics": True, "cam_intrinsics": INTRINSICS,
            "sequence": f"{rel.parts[1]}/{name}", "frame_index": i, "person_id": 0, "source_key": key,
            "extra_cam_loc": clip.cam_loc.astype(np.float32), "extra_zrot": np.float32(clip.zrot[i]),
        }


def _frame_problem(clip: Clip, i: int, finite: bool, reprojection: float) -> str:
    """Why frame ``i`` cannot be converted, or ''."""
    if not finite:
        return "NaN or inf in pose / shape / zrot / joints"
    if clip.gender[i] not in (0.0, 1.0):
        return f"gender code {clip.gender[i]:g} (expected 0 female / 1 male)"
    if reprojection > MAX_REPROJECTION_PX:
        return (f"joints2D lie {reprojection:.2f} px from the projection of joints3D with the published "
                f"camera (at most {MAX_REPROJECTION_PX} px expected)")
    return ""
