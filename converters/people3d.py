"""3DPeople (Pumarola et al., ICCV 2019): per-frame skeleton text files and rgb frames -> schema v1.

What is read
------------
Layout (albertpumarola/3DPeople-Dataset @7f29040e ``vis_dataset.ipynb`` and README):

- ``skeleton/<woman|man><NN>/<action>/camera0{1..4}/<frame:04d>.txt``: one file per frame, 67
  rows (the Mixamo joints of ``skeleton_joints_ids_order.txt``), 2-D = the first two columns
  (u, v px), 3-D = the last three (x, y, z). ``0000.txt`` is a rest frame (no image; the
  notebook drops it) and is skipped. Rows of 5 or more numbers are accepted (the exact width
  is not documented); a non-numeric first line is taken as a header.
- ``rgb/<subject>/<action>/camera0N/<render folder>/<frame:04d>.jpg`` (640 x 480): every
  render folder holding the frame gives one sample (the notebook globs ``cameraNN/*/*.jpg``).
- Split (README): train = woman01-33 and man01-33, test = woman34-40 and man34-40.

Frames and units: what the release says and what was measured
--------------------------------------------------------------
No camera parameters ship with the skeletons that we could find, and the 3-D columns are not
camera coordinates: the notebook's plotted sample (woman17/02_04_jump, camera01, frame 0001,
the only real values published) is a z-up world frame with the toes at z ~ 0 and the highest
point at z ~ 17.2, limbs of 2.5-4.5 units (upper arm 2.5, forearm 2.8, thigh 4.5, shin 4.3):
decimetres. So, per camera
folder (the camera is fixed over a sequence), the converter fits the 3 x 4 projection from all
its frames' 2-D/3-D pairs (normalised DLT), splits it into K [R | t] (RQ decomposition, depth
positive), and stores camera-frame joints ``(R X + t) * unit_m`` (``-o unit_m``, default 0.1)
with K (skew dropped) as ``cam_intrinsics``. A folder whose reprojection error exceeds
``-o max_reprojection_px`` (default 3) is a bad record: its 2-D and 3-D disagree. ``R`` has
det -1 when the world frame is mirrored w.r.t. the image (the physical geometry is still what
the camera sees); then ``has_extrinsics`` is False and the 3 x 4 world -> camera map is only
in ``extra_people3d_world_to_camera``, ``extra_people3d_world_mirrored`` = 1.

Joint identities: the published list contradicts the published sample
---------------------------------------------------------------------
In that same sample frame the rows named ``Left{Shoulder,Arm,ForeArm,Hand}`` and those named
``Right{UpLeg,Leg,Foot,...}`` lie on the same side of the body (x ~ 6.5-8.0, the others at
4.3-5.6; the person faces -y: eyes and toes point that way): in any handedness, either the arm or the leg rows carry the wrong side.
The rows named ``HeadTop_End`` / ``RightEye`` are two eye-level points 6.5 cm apart in front of
the head and ``LeftEye`` is the point above the head; the rows named ``LeftHandMiddle1-4`` start
3.9 cm from the wrist like a thumb's base, the other left chains 9 cm away in a row (the right
hand shows the same pattern in another order). So:

- the eyes, head top and fingers keep no slot (``people3d`` convention: 22 body joints, see
  ``hmr conventions people3d``); all 67 rows are kept in ``extra_people3d_keypoints2d_67``
  (px) and ``extra_people3d_keypoints3d_67`` (camera frame, m), in file order;
- sides are decided by anatomy, per camera folder, in the fitted camera frame (which is the
  image's, whatever the world's handedness): with up = neck - hips and forward = the mean
  foot-to-toe direction, the person's left is up x forward; the arm chains and the leg chains
  are each assigned to the side where the majority of frames put them. A swap is recorded in
  ``extra_people3d_arms_swapped`` / ``extra_people3d_legs_swapped``.

Other conventions: confidence 1 for every stored joint (rendered, so all are known, occluded
or not); bbox = the 2-D body joints' box enlarged 1.2x (hmr-benchmarks uses all 67); gender
from the subject folder (woman / man); hmr-benchmarks' 3-D bug (``[..., :3]``, i.e. u, v and
x) is not repeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.keypoints.tables import PEOPLE3D67_NATIVE, PEOPLE3D_NATIVE
from hmr.core.schema import GENDERS
from hmr.core.sources import SOURCES

SOURCE = SOURCES["people3d"]
VERSION = "1"
OPTIONS = (
    Option("unit_m", 0.1, float, "metres per unit of the skeleton files' 3-D columns"),
    Option("max_reprojection_px", 3.0, float, "largest RMS error of a camera folder's fitted projection"),
)
NUM_JOINTS = 67
TRAIN_IDS, TEST_IDS = range(1, 34), range(34, 41)
SUBJECT = re.compile(r"(woman|man)(\d\d)")
_ROW = {n: i for i, n in enumerate(PEOPLE3D67_NATIVE)}
_BODY_ROWS = np.array([_ROW[n] for n in PEOPLE3D_NATIVE])
_ARM = ("Shoulder", "Arm", "ForeArm", "Hand")
_LEG = ("UpLeg", "Leg", "Foot", "ToeBase", "Toe_End")


def split_subjects(root: Path, split: str) -> list[Path]:
    if split not in SOURCE.splits:
        raise HmrError(f"people3d has splits {SOURCE.splits}, not '{split}'")
    folder = root / "skeleton"
    if not folder.is_dir():
        raise DatasetFormatError("missing skeleton folder", path=folder)
    ids = TRAIN_IDS if split == "train" else TEST_IDS
    out = []
    for p in sorted(folder.iterdir()):
        m = SUBJECT.fullmatch(p.name)
        if p.is_dir() and m and int(m.group(2)) in ids:
            out.append(p)
    return out


def camera_folders(root: Path, split: str) -> list[Path]:
    return [cam for subj in split_subjects(root, split) for action in sorted(subj.iterdir()) if action.is_dir()
            for cam in sorted(action.iterdir()) if cam.is_dir() and cam.name.startswith("camera")]


def raw_files(root: Path, split: str) -> list[Path]:
    """Not listed: the release has one small text file per frame and camera (about 1.5 million
    for the train split), too many to hash into an output manifest; the source manifest's
    tree digest of ``skeleton/`` (``hmr manifest lock``) identifies them instead."""
    return []


def read_skeleton(path: Path) -> tuple[np.ndarray, np.ndarray] | str:
    """(67, 2) px and (67, 3) world units of one frame file, or why it cannot be read."""
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines()):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            if number == 0 and not rows:
                continue  # a header line
            return f"line {number + 1} is not numbers"
    if len(rows) != NUM_JOINTS or any(len(r) != len(rows[0]) for r in rows) or len(rows[0]) < 5:
        return (f"expected {NUM_JOINTS} rows of the same width (>= 5 numbers), got {len(rows)} rows"
                + (f" of {sorted({len(r) for r in rows})} numbers" if rows else ""))
    arr = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(arr).all():
        return "NaN or inf in the file"
    return arr[:, :2], arr[:, -3:]


@dataclass(frozen=True)
class Camera:
    intrinsics: np.ndarray      # (3, 3), zero skew
    rotation: np.ndarray        # (3, 3) world -> camera, det +1 or -1 (mirrored world)
    translation: np.ndarray     # (3,) world units
    rms_px: float


def _normaliser(points: np.ndarray) -> np.ndarray:
    """Similarity that moves ``points`` (N, D) to zero mean and RMS distance sqrt(D)."""
    d = points.shape[1]
    mean = points.mean(0)
    scale = np.sqrt(d) / max(np.sqrt(((points - mean) ** 2).sum(1).mean()), 1e-12)
    t = np.eye(d + 1)
    t[:d, :d] *= scale
    t[:d, d] = -scale * mean
    return t


def fit_camera(world: np.ndarray, pixels: np.ndarray) -> Camera:
    """Pinhole camera from (N, 3) world points and their (N, 2) pixels: normalised DLT, then
    K [R | t] by RQ decomposition with positive focal lengths and positive depths."""
    from scipy.linalg import rq

    t3, t2 = _normaliser(world), _normaliser(pixels)
    xw = (np.c_[world, np.ones(len(world))] @ t3.T)
    xp = (np.c_[pixels, np.ones(len(pixels))] @ t2.T)
    rows = np.zeros((2 * len(world), 12))
    rows[0::2, 0:4], rows[0::2, 8:12] = xw, -xp[:, :1] * xw
    rows[1::2, 4:8], rows[1::2, 8:12] = xw, -xp[:, 1:2] * xw
    proj = np.linalg.inv(t2) @ np.linalg.svd(rows)[2][-1].reshape(3, 4) @ t3
    k, rot = rq(proj[:, :3])
    signs = np.diag(np.sign(np.diag(k)))
    k, rot = k @ signs, signs @ rot
    scale = k[2, 2]
    k = k / scale
    t = np.linalg.solve(k, proj[:, 3] / scale)
    if np.median(world @ rot[2] + t[2]) < 0:  # P and -P project alike: keep the points in front
        rot, t = -rot, -t
    k[0, 1] = 0.0
    cam = (world @ rot.T + t) @ k.T
    rms = float(np.sqrt(((cam[:, :2] / cam[:, 2:] - pixels) ** 2).sum(1).mean()))
    return Camera(k, rot, t, rms)


def side_swaps(joints_cam: np.ndarray) -> tuple[bool, bool]:
    """(arms swapped, legs swapped): whether the rows named Left* of each limb group lie on
    the person's right in most frames. joints_cam (T, 67, 3), a right-handed camera frame."""
    j = {n: joints_cam[:, i] for n, i in _ROW.items()}
    up = j["Neck"] - j["Hips"]
    forward = ((j["LeftToeBase"] - j["LeftFoot"]) + (j["RightToeBase"] - j["RightFoot"])) / 2
    left = np.cross(up, forward)  # (T, 3)

    def swapped(part: str) -> bool:
        side = ((j[f"Left{part}"] - j[f"Right{part}"]) * left).sum(1)
        return bool((side < 0).sum() > (side > 0).sum())

    return swapped("Arm"), swapped("UpLeg")


def _swap_rows(arms: bool, legs: bool) -> np.ndarray:
    """Row order (67,) that puts each limb chain under the name of the side it is on."""
    order = np.arange(NUM_JOINTS)
    for flag, parts in ((arms, _ARM), (legs, _LEG)):
        if flag:
            for p in parts:
                a, b = _ROW[f"Left{p}"], _ROW[f"Right{p}"]
                order[a], order[b] = b, a
    return order


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    unit = get_option(options, OPTIONS, "unit_m")
    if not unit > 0:
        raise HmrError(f"option unit_m={unit}: must be > 0")
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for cam_dir in camera_folders(root, split):
            yield from _camera_samples(root, cam_dir, unit, get_option(options, OPTIONS, "max_reprojection_px"),
                                       probe, options.check_images)


def _camera_samples(root: Path, cam_dir: Path, unit: float, max_px: float, probe, check: bool
                    ) -> Iterator[dict | BadRecord]:
    rel = cam_dir.relative_to(root)
    frames, px, world = [], [], []
    for f in sorted(cam_dir.glob("*.txt")):
        if f.stem == "0000" or not f.stem.isdigit():
            continue  # the rest frame, no image
        got = read_skeleton(f)
        if isinstance(got, str):
            yield BadRecord(str(f.relative_to(root)), f"frame {f.stem}", got)
            continue
        frames.append(f.stem)
        px.append(got[0])
        world.append(got[1])
    if not frames:
        return
    px_a, world_a = np.stack(px), np.stack(world)  # (T, 67, 2), (T, 67, 3)
    try:
        with np.errstate(all="ignore"):
            cam = fit_camera(world_a.reshape(-1, 3), px_a.reshape(-1, 2))
    except (np.linalg.LinAlgError, ValueError) as exc:
        yield BadRecord(str(rel), f"{len(frames)} frames", f"no pinhole camera fits the 2-D/3-D pairs ({exc})")
        return
    if not cam.rms_px <= max_px:
        yield BadRecord(str(rel), f"{len(frames)} frames",
                        f"2-D and 3-D disagree: the best pinhole camera reprojects with {cam.rms_px:.1f} px "
                        f"RMS error (limit {max_px} px)")
        return
    joints = (world_a @ cam.rotation.T + cam.translation) * unit  # (T, 67, 3) m, camera frame
    arms, legs = side_swaps(joints)
    order = _swap_rows(arms, legs)
    proper = np.linalg.det(cam.rotation) > 0
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = cam.rotation, cam.translation * unit
    fixed = {"has_intrinsics": True, "cam_intrinsics": cam.intrinsics, "has_extrinsics": bool(proper),
             "cam_extrinsics": ext if proper else np.zeros((4, 4)),
             "extra_people3d_world_to_camera": np.c_[cam.rotation, cam.translation * unit].astype(np.float32),
             "extra_people3d_world_mirrored": np.uint8(not proper),
             "extra_people3d_arms_swapped": np.uint8(arms), "extra_people3d_legs_swapped": np.uint8(legs),
             "extra_people3d_reprojection_rms_px": np.float32(cam.rms_px),
             "subject_id": cam_dir.parents[1].name, "sequence": str(rel.relative_to("skeleton")),
             "gender": GENDERS.index("female" if cam_dir.parents[1].name.startswith("woman") else "male"),
             "person_id": 0}
    image_dir = root / "rgb" / rel.relative_to("skeleton")
    renders = sorted(p for p in image_dir.iterdir() if p.is_dir()) if image_dir.is_dir() else []
    items = []
    for i, frame in enumerate(frames):
        images = [r / f"{frame}.jpg" for r in renders if (r / f"{frame}.jpg").is_file()]
        if not images:
            yield BadRecord(str(image_dir.relative_to(root)), f"frame {frame}", "no rgb frame in any render folder")
        items += [(i, frame, image) for image in images]
    sizes = probe([img for *_, img in items]) if check else iter([(480, 640)] * len(items))
    for (i, frame, image), hw in zip(items, sizes):
        key = f"{rel}/{frame}.txt"
        if isinstance(hw, str):
            yield BadRecord(str(image), key, hw)
            continue
        ones = np.ones((len(_BODY_ROWS), 1))
        rows = order[_BODY_ROWS]
        kp2d = to_superset(np.c_[px_a[i, rows], ones], "people3d")
        kp3d = to_superset(np.c_[joints[i, rows], ones], "people3d")
        yield {**fixed, "image_path": str(image.relative_to(root)), "image_hw": np.array(hw, np.int32),
               "bbox_xywh": bbox_from_keypoints(kp2d, scale=1.2), "keypoints2d": kp2d, "keypoints3d": kp3d,
               "frame_index": int(frame), "source_key": f"{key}:{image.parent.name}",
               "extra_people3d_keypoints2d_67": px_a[i].astype(np.float32),
               "extra_people3d_keypoints3d_67": joints[i].astype(np.float32)}
