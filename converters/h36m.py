"""Human3.6M: official pose files + extracted frames -> schema v1.

What is read (per subject ``S{n}`` under ``root``)
-------------------------------------------------
- ``S{n}/MyPoseFeatures/D3_Positions_mono/<Action>.<camera>.cdf``: NASA CDF, variable
  ``Pose`` of shape (1, T, 96): 32 joints x (x, y, z) in **millimetres, camera frame** of
  that camera (x right, y down, z forward). One file per sequence and camera; ``_ALL*``
  files are not sequences and are skipped. Read with cdflib.
- ``S{n}/MyPoseFeatures/D2_Positions/<same name>.cdf``: ``Pose`` (1, T, 64): the same 32
  joints projected into the image (px), *with* the camera's lens distortion.
- ``S{n}/MySegmentsMat/ground_truth_bb/<same name>.mat``: MATLAB 7.3 (HDF5); dataset
  ``Masks`` holds one object reference per frame to a (W, H) uint8 mask (transposed by
  MATLAB's column-major storage) that is 1 inside the person's box. The person box, as
  SPIN's ``datasets/preprocess/h36m.py`` (and MMHuman3D's H36M converter) read it.
- ``S{n}/MySegmentsMat/ground_truth_bs/<same name>.mat``: the same layout holding the
  foreground silhouettes; their box is used only when the subject has no ``ground_truth_bb``
  folder. Without either, the box comes from the 2D joints.
- Cameras, one of:
  * ``metadata.xml`` (the publisher's visualisation bundle): ``<dbcameras><index2id>`` gives
    the 4 camera ids, ``<w0>`` a bracketed list of 300 floats. Extrinsics of camera c
    (0-3), subject s (1-11) at ``w0[6*(11c + s-1) : +6]`` = 3 Euler angles (a, b, g) and the
    camera centre in world mm; world->camera rotation ``R = Rx(a) Ry(b) Rz(g)`` (standard
    right-handed elementary rotations); ``X_cam = R (X_world - centre)``. Intrinsics of
    camera c at ``w0[264 + 9c : +9]`` = fx, fy, cx, cy, k1, k2, k3, p1, p2.
  * ``cameras.pkl`` (MMPose's export of the same numbers; at ``root`` or
    ``root/annotation_body3d``): dict keyed by ``(subject, camera_id)`` with ``R`` (3, 3)
    **camera->world**, ``T`` (3, 1) camera centre in metres, ``f``, ``c``, ``k`` (3, 1),
    ``p`` (2, 1), ``w``, ``h``. Verified on the real file: ``R.T (X - T)`` is the camera
    frame (the joints of real frames project onto their official 2D positions to 3e-5 px).
  Pass ``-o cameras=PATH`` to name the file explicitly.
- Frames (extracted from ``Videos/*.mp4``; the release ships videos only), one of:
  * community layout (SPIN / MMHuman3D): ``S{n}/images/S{n}_{Action}.{cam}/S{n}_{Action}.{cam}_{frame+1:06d}.jpg``
  * MMPose layout: ``images/S{n}/S{n}_{Action}.{cam}/...`` (or that ``images`` folder as root)
  where ``{Action}`` is the CDF action name with spaces replaced by ``_``. Frame numbers
  in file names are 1-based.

Conventions applied
-------------------
- Every ``stride``-th frame (default 5: 50 -> 10 fps, as SPIN/MMHuman3D/MMPose).
- Splits: ``train`` = S1, S5, S6, S7, S8, all cameras; ``test_p1`` = S9, S11, all four
  cameras (protocol 1); ``test_p2`` = S9, S11, frontal camera 60457274 only (protocol 2 as
  HMR/SPIN define it). ``-o protocol=2`` restricts ``train`` to that camera too;
  ``-o subjects=S9,S11`` overrides a split's subjects.
- keypoints3d: the 32 mocap joints (``h36m_32`` convention; the 17 standard joints land in
  the slots the ``h36m`` convention reads), metres, camera frame, **not** root-centred
  (root-relative values are derived at evaluation time). ``-o joints=17`` stores only the
  17. keypoints2d: the official D2 positions (they include lens distortion, so they agree
  with the stored intrinsics + ``cam_distortion``, not with a pure pinhole projection).
- cam_distortion: H36M's tangential model is not OpenCV's (H36M: ``x' = x(radial + p1 y +
  p2 x) + p2 r^2``, OpenCV: ``x' = x radial + 2 p1 x y + p2 (r^2 + 2x^2)``). k1, k2, k3 are
  stored as given; (p1, p2) are the least-squares OpenCV equivalent over the image. On the
  44 real cameras the stored model stays within 0.32 px of H36M's own projection over the
  whole frame (0.98 px if p1, p2 were copied), far less near the centre where people are.
- bbox: tight box of the ``ground_truth_bb`` mask's pixels (``x_max + 1``; SPIN's rule), else
  of the ``ground_truth_bs`` silhouette (converter version 1 always used the silhouette),
  *not* shrunk (SPIN/MMHuman3D shrink it by 0.9 at crop time; that is a crop choice, not a
  property of the person). Frames whose mask is empty fall back to the 2D joints' box
  enlarged 1.2x.
- image_hw: read from the frame's header (the nominal sizes hard-coded by MMPose and
  MMHuman3D are wrong for some sequences: the real S7 / 55011271 frame is 1000 x 1002).
- MoSh SMPL (optional, ``-o mosh_dir=DIR``; not distributable, from the SPIN authors):
  ``DIR/S{n}/{Action}_cam{0-3}_aligned.pkl`` (python-2 latin1 pickles: ``new_poses`` (T/5,
  72) at 10 fps, ``betas`` (10,)), camera index = position of the id in ``index2id``.
  Global orient is right-multiplied by a 180-degree rotation about x, as SPIN's h36m
  preprocessing does; ``smpl_source = "mosh"``, ``smpl_transl`` unknown. A sequence without
  a MoSh file keeps its samples without SMPL (MMHuman3D drops the whole sequence).
- gender: neutral/unknown (the release files do not state it).

Options (``-o KEY=VALUE``): :data:`OPTIONS`, listed by ``hmr convert h36m --help``.
Not read: MMPose's preprocessed ``h36m_{train,test}.npz`` (derived from the same CDF files).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import open_h5, read_pickle, require_file
from hmr.core.boxes import bbox_from_keypoints, bbox_from_mask
from hmr.core.errors import DatasetFormatError
from hmr.core.schema import SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["h36m"]
VERSION = "2"  # 2: person box from ground_truth_bb (SPIN), the silhouettes only as a fallback

OPTIONS = (
    Option("stride", 5, int, "keep every stride-th frame (5: 50 -> 10 fps, as SPIN/MMHuman3D/MMPose)"),
    Option("protocol", 1, int, "2: the frontal camera 60457274 only, for train too", choices=(1, 2)),
    Option("subjects", "", str, "comma-separated subjects overriding the split's (e.g. S9,S11)"),
    Option("joints", 32, int, "32: all H36M joints; 17: the H36M-17 subset only", choices=(17, 32)),
    Option("cameras", "", str, "camera calibration file (default: found under ROOT)"),
    Option("mosh_dir", "", str, "folder of MoSh SMPL fits (optional; smpl_source 'mosh')"),
)

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
FRONTAL_CAMERA = "60457274"
SPLIT_SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test_p1": ("S9", "S11"),
                  "test_p2": ("S9", "S11")}
# Nominal frame sizes (h, w) per camera, used only when frames are not checked.
NOMINAL_HW = {"54138969": (1002, 1000), "55011271": (1000, 1000), "58860488": (1000, 1000),
              "60457274": (1002, 1000)}
MOSH_FPS_STRIDE = 5  # MoSh fits are given at 10 fps: row = frame // 5
_SEQ_NAME = re.compile(r"^(?P<action>.+)\.(?P<camera>\d{8})\.cdf$")


@dataclass(frozen=True)
class H36mCamera:
    """One calibrated camera of one subject; H36M's own distortion parameters."""

    subject: str
    camera_id: str
    index: int                   # position in metadata.xml's index2id (MoSh file names use it)
    rotation_w2c: np.ndarray     # (3, 3)
    centre_m: np.ndarray         # (3,) camera centre, world frame
    focal_px: np.ndarray         # (2,)
    principal_px: np.ndarray     # (2,)
    radial: np.ndarray           # (3,) k1, k2, k3
    tangential: np.ndarray       # (2,) p1, p2 in H36M's model
    size_hw: tuple[int, int] = (0, 0)

    def intrinsics(self) -> np.ndarray:
        return intrinsics_matrix(*self.focal_px, *self.principal_px)

    def extrinsics(self) -> np.ndarray:
        """World -> camera 4x4 (metres)."""
        out = np.eye(4, dtype=np.float64)
        out[:3, :3] = self.rotation_w2c
        out[:3, 3] = -self.rotation_w2c @ self.centre_m
        return out

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera metres."""
        return (points_world - self.centre_m) @ self.rotation_w2c.T

    def opencv_distortion(self) -> np.ndarray:
        """(5,) k1, k2, p1, p2, k3 in OpenCV's model (tangential terms re-fitted)."""
        p1, p2 = opencv_tangential_equivalent(self)
        k1, k2, k3 = self.radial
        return np.array([k1, k2, p1, p2, k3], dtype=np.float64)


def distort_h36m(xy: np.ndarray, radial: np.ndarray, tangential: np.ndarray) -> np.ndarray:
    """H36M's lens model on normalised coordinates (..., 2) -> distorted (..., 2)."""
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    k1, k2, k3 = radial
    p1, p2 = tangential
    scale = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3 + p1 * y + p2 * x
    return np.stack([x * scale + p2 * r2, y * scale + p1 * r2], axis=-1)


def project_h36m(points_cam: np.ndarray, cam: H36mCamera) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) px with H36M's own distortion model."""
    xy = points_cam[..., :2] / points_cam[..., 2:3]
    return distort_h36m(xy, cam.radial, cam.tangential) * cam.focal_px + cam.principal_px


def opencv_tangential_equivalent(cam: H36mCamera, grid: int = 41) -> tuple[float, float]:
    """OpenCV (p1, p2) closest (least squares over the image) to H36M's tangential model.

    Both models share the radial term, and OpenCV's tangential term is linear in (p1, p2):
    dx = 2 p1 x y + p2 (r^2 + 2 x^2), dy = p1 (r^2 + 2 y^2) + 2 p2 x y.
    """
    h, w = cam.size_hw if cam.size_hw != (0, 0) else NOMINAL_HW.get(cam.camera_id, (1000, 1000))
    u, v = np.meshgrid(np.linspace(0, w, grid), np.linspace(0, h, grid))
    xy = np.stack([(u.ravel() - cam.principal_px[0]) / cam.focal_px[0],
                   (v.ravel() - cam.principal_px[1]) / cam.focal_px[1]], axis=-1)  # (G, 2)
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1 + cam.radial[0] * r2 + cam.radial[1] * r2**2 + cam.radial[2] * r2**3
    target = distort_h36m(xy, cam.radial, cam.tangential) - xy * radial[:, None]  # (G, 2)
    rows = np.concatenate([np.stack([2 * x * y, r2 + 2 * x * x], -1),
                           np.stack([r2 + 2 * y * y, 2 * x * y], -1)])  # (2G, 2)
    sol, *_ = np.linalg.lstsq(rows, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)
    return float(sol[0]), float(sol[1])


# --------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------
def euler_xyz_to_matrix(angles: np.ndarray) -> np.ndarray:
    """R = Rx(a) Ry(b) Rz(g), right-handed elementary rotations (radians)."""
    a, b, g = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return rx @ ry @ rz


def parse_metadata_xml(path: Path) -> dict[tuple[str, str], H36mCamera]:
    """Cameras of S1-S11 x 4 from the publisher's ``metadata.xml``."""
    require_file(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetFormatError(f"invalid or truncated XML: {exc}", path=path) from None
    ids_node, w0_node = root.find("dbcameras/index2id"), root.find("w0")
    if ids_node is None or w0_node is None or not w0_node.text:
        raise DatasetFormatError("metadata.xml lacks <dbcameras><index2id> or <w0>", path=path)
    camera_ids = [e.text.strip() for e in ids_node if e.text]
    try:
        w0 = np.array([float(t) for t in w0_node.text.strip().strip("[]").split()])
    except ValueError as exc:
        raise DatasetFormatError(f"<w0> is not a list of numbers: {exc}", path=path) from None
    if len(camera_ids) != 4 or len(w0) < 300:
        raise DatasetFormatError(f"expected 4 cameras and 300 numbers in <w0>, got "
                                 f"{len(camera_ids)} and {len(w0)}", path=path)
    cams = {}
    for c, cam_id in enumerate(camera_ids):
        intr = w0[264 + 9 * c: 264 + 9 * (c + 1)]
        for s in range(1, 12):
            ext = w0[6 * (11 * c + s - 1): 6 * (11 * c + s)]
            cams[(f"S{s}", cam_id)] = H36mCamera(
                f"S{s}", cam_id, c, euler_xyz_to_matrix(ext[:3]), ext[3:6] / 1000.0,
                intr[0:2].copy(), intr[2:4].copy(), intr[4:7].copy(), intr[7:9].copy(),
                NOMINAL_HW.get(cam_id, (0, 0)))
    return cams


def read_cameras_pkl(path: Path) -> dict[tuple[str, str], H36mCamera]:
    """Cameras from MMPose's ``cameras.pkl`` (restricted unpickler)."""
    data = read_pickle(path)
    if not isinstance(data, dict):
        raise DatasetFormatError("cameras.pkl is not a dict keyed by (subject, camera id)", path=path)
    cams = {}
    for key, p in data.items():
        try:
            subject, cam_id = str(key[0]), str(key[1])
            cams[(subject, cam_id)] = H36mCamera(
                subject, cam_id, CAMERA_IDS.index(cam_id) if cam_id in CAMERA_IDS else -1,
                np.asarray(p["R"], np.float64).T, np.asarray(p["T"], np.float64).reshape(3),
                np.asarray(p["f"], np.float64).reshape(2), np.asarray(p["c"], np.float64).reshape(2),
                np.asarray(p["k"], np.float64).reshape(3), np.asarray(p["p"], np.float64).reshape(2),
                (int(p["h"]), int(p["w"])))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetFormatError(f"camera entry has an unexpected layout: {exc!r}",
                                     path=path, record=key) from None
    return cams


def find_camera_file(root: Path, options: ConvertOptions) -> Path:
    explicit = get_option(options, OPTIONS, "cameras")
    if explicit:
        return require_file(Path(explicit))
    for cand in (root / "metadata.xml", root / "cameras.pkl", root / "annotation_body3d" / "cameras.pkl"):
        if cand.is_file():
            return cand
    raise DatasetFormatError("no camera file: expected metadata.xml or cameras.pkl "
                             "(or pass -o cameras=PATH)", path=root)


def load_cameras(path: Path) -> dict[tuple[str, str], H36mCamera]:
    cams = parse_metadata_xml(path) if path.suffix == ".xml" else read_cameras_pkl(path)
    for key, cam in cams.items():
        problem = camera_problem(cam)
        if problem:
            raise DatasetFormatError(f"camera {key[0]}/{key[1]}: {problem}", path=path, record=key)
    return cams


def camera_problem(cam: H36mCamera) -> str | None:
    """Why a calibration cannot be used (NaN/inf values, focal <= 0, a rotation that is not
    orthonormal with det +1 within 1e-3), or None. A NaN camera otherwise stops the
    conversion later inside an SVD ("SVD did not converge"), naming nothing."""
    values = (cam.rotation_w2c, cam.centre_m, cam.focal_px, cam.principal_px, cam.radial, cam.tangential)
    if not all(np.isfinite(v).all() for v in values):
        return "NaN or inf in the calibration"
    if (cam.focal_px <= 0).any():
        return f"focal length {cam.focal_px.tolist()} px is not positive"
    rot = cam.rotation_w2c
    if np.abs(rot @ rot.T - np.eye(3)).max() > 1e-3 or abs(np.linalg.det(rot) - 1.0) > 1e-3:
        return "rotation is not orthonormal with det +1"
    return None


# --------------------------------------------------------------------------------------
# Raw files
# --------------------------------------------------------------------------------------
def read_cdf_pose(path: Path, dims: int) -> np.ndarray:
    """``Pose`` of an H36M CDF file -> (T, J, dims) float64."""
    import cdflib

    require_file(path)
    try:
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"), dtype=np.float64)
    except Exception as exc:  # cdflib raises bare Exceptions/ValueErrors on corrupt files
        raise DatasetFormatError(f"unreadable or truncated CDF file: {exc}", path=path) from None
    pose = pose[0] if pose.ndim == 3 else pose
    if pose.ndim != 2 or pose.shape[1] % dims:
        raise DatasetFormatError(f"'Pose' has shape {pose.shape}, expected (1, T, 32*{dims})", path=path)
    return pose.reshape(len(pose), -1, dims)


class MaskBoxes:
    """Person boxes from a ``ground_truth_bb`` (or ``ground_truth_bs``) mask file, opened lazily,
    one frame at a time."""

    def __init__(self, path: Path):
        self.path = path
        self._h5 = open_h5(path)
        refs = self._h5.get("Masks")
        if refs is None:
            self._h5.close()
            raise DatasetFormatError("no 'Masks' dataset in mask file", path=path)
        self._refs = np.asarray(refs).reshape(-1)

    def __len__(self) -> int:
        return len(self._refs)

    def box(self, frame: int) -> np.ndarray | None:
        try:
            mask = np.asarray(self._h5[self._refs[frame]]).T  # stored (W, H)
        except Exception as exc:  # dangling reference / truncated file
            raise DatasetFormatError(f"cannot read mask of frame {frame}: {exc}", path=self.path,
                                     record=frame) from None
        return bbox_from_mask(mask > 0)

    def close(self) -> None:
        self._h5.close()


@dataclass(frozen=True)
class Sequence:
    subject: str
    action: str       # as in the file name, may contain spaces
    camera_id: str
    d3_path: Path

    @property
    def folder(self) -> str:
        return f"{self.subject}_{self.action.replace(' ', '_')}.{self.camera_id}"

    def file(self, root: Path, kind: str) -> Path:
        sub = {"d2": "MyPoseFeatures/D2_Positions", "bb": "MySegmentsMat/ground_truth_bb",
               "mask": "MySegmentsMat/ground_truth_bs"}[kind]
        name = self.d3_path.name if kind == "d2" else self.d3_path.with_suffix(".mat").name
        return root / self.subject / sub / name


def list_sequences(root: Path, subject: str, cameras: tuple[str, ...]) -> list[Sequence]:
    folder = root / subject / "MyPoseFeatures" / "D3_Positions_mono"
    if not folder.is_dir():
        raise DatasetFormatError("missing pose folder of subject", path=folder)
    out = []
    for path in sorted(folder.glob("*.cdf")):
        m = _SEQ_NAME.match(path.name)
        if m is None or m["action"].startswith("_ALL") or m["camera"] not in cameras:
            continue
        out.append(Sequence(subject, m["action"], m["camera"], path))
    return out


def image_dir(root: Path, seq: Sequence) -> Path:
    """Frame folder of a sequence in the first layout that exists (community layout if none)."""
    cands = (root / seq.subject / "images" / seq.folder, root / "images" / seq.subject / seq.folder,
             root / seq.subject / seq.folder)
    return next((c for c in cands if c.is_dir()), cands[0])


def load_mosh(mosh_dir: Path, seq: Sequence, cam: H36mCamera) -> tuple[np.ndarray, np.ndarray] | None:
    """(poses (F, 72), betas (10,)) of a sequence, global orient already rotated; None if absent."""
    from scipy.spatial.transform import Rotation

    path = mosh_dir / seq.subject / f"{seq.action}_cam{cam.index}_aligned.pkl"
    if not path.is_file():
        return None
    data = read_pickle(path)
    try:
        poses = np.array(data["new_poses"], dtype=np.float64).reshape(-1, 72)
        betas = np.asarray(data["betas"], dtype=np.float64).reshape(-1)[:10]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetFormatError(f"MoSh file lacks new_poses (F, 72) / betas: {exc!r}", path=path) from None
    flip_x = Rotation.from_rotvec([np.pi, 0.0, 0.0])
    poses[:, :3] = (Rotation.from_rotvec(poses[:, :3]) * flip_x).as_rotvec()
    return poses, betas


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    stride: int
    cameras: tuple[str, ...]
    subjects: tuple[str, ...]
    convention: str          # "h36m_32" or "h36m"
    mosh_dir: Path | None


# Raw 32 -> the 17 of the 'h36m' convention (J_regressor_h36m order, SPIN's index list).
H36M17_FROM_32 = (11, 6, 7, 8, 1, 2, 3, 12, 24, 14, 15, 17, 18, 19, 25, 26, 27)


def settings_for(split: str, options: ConvertOptions) -> Settings:
    protocol = get_option(options, OPTIONS, "protocol")
    frontal_only = split == "test_p2" or protocol == 2
    subjects = get_option(options, OPTIONS, "subjects")
    joints = get_option(options, OPTIONS, "joints")
    mosh = get_option(options, OPTIONS, "mosh_dir")
    if mosh and not Path(mosh).is_dir():
        raise DatasetFormatError("MoSh folder does not exist", path=mosh)
    return Settings(
        stride=get_option(options, OPTIONS, "stride"),
        cameras=(FRONTAL_CAMERA,) if frontal_only else CAMERA_IDS,
        subjects=tuple(s.strip() for s in subjects.split(",") if s.strip()) or SPLIT_SUBJECTS[split],
        convention="h36m_32" if joints == 32 else "h36m",
        mosh_dir=Path(mosh) if mosh else None,
    )


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    cfg = settings_for(split, options)
    cameras = load_cameras(find_camera_file(root, options))
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for subject in cfg.subjects:
            for seq in list_sequences(root, subject, cfg.cameras):
                cam = cameras.get((subject, seq.camera_id))
                if cam is None:
                    yield BadRecord(str(seq.d3_path), seq.folder, "no camera calibration for this subject/camera")
                    continue
                yield from _sequence_samples(root, seq, cam, cfg, options, probe)


def _sequence_samples(root: Path, seq: Sequence, cam: H36mCamera, cfg: Settings,
                      options: ConvertOptions, probe: Callable) -> Iterator[dict | BadRecord]:
    joints3d_m = read_cdf_pose(seq.d3_path, 3) / 1000.0          # (T, 32, 3)
    d2_path = seq.file(root, "d2")
    joints2d_px = read_cdf_pose(d2_path, 2)                        # (T, 32, 2)
    if joints2d_px.shape[:2] != joints3d_m.shape[:2]:
        yield BadRecord(str(d2_path), seq.folder, f"D2 has {joints2d_px.shape[:2]} (frames, joints), "
                        f"D3 has {joints3d_m.shape[:2]}")
        return
    masks = None
    mask_path = seq.file(root, "bb")  # SPIN's boxes; the silhouettes only without them
    if not mask_path.parent.is_dir():
        mask_path = seq.file(root, "mask")
    if mask_path.parent.is_dir():
        if not mask_path.is_file():
            yield BadRecord(str(mask_path), seq.folder, "mask file of the sequence is missing")
            return
        masks = MaskBoxes(mask_path)
    mosh = load_mosh(cfg.mosh_dir, seq, cam) if cfg.mosh_dir else None
    frames = list(range(0, len(joints3d_m), cfg.stride))
    folder = image_dir(root, seq)
    paths = [folder / f"{seq.folder}_{f + 1:06d}.jpg" for f in frames]
    sizes = probe(paths) if options.check_images else iter([cam.size_hw] * len(frames))
    static = _camera_fields(cam)
    try:
        for frame, path, hw in zip(frames, paths, sizes):
            key = f"{seq.subject}/{seq.action}.{seq.camera_id}:{frame}"
            if isinstance(hw, str):
                yield BadRecord(str(path), key, hw)
                continue
            sample = _frame_sample(root, seq, frame, path, hw, joints3d_m[frame], joints2d_px[frame],
                                   masks, mosh, cfg)
            if isinstance(sample, BadRecord):
                yield sample
                continue
            sample.update(static, source_key=key)
            yield sample
    finally:
        if masks is not None:
            masks.close()


def _camera_fields(cam: H36mCamera) -> dict:
    return {"has_intrinsics": True, "cam_intrinsics": cam.intrinsics(),
            "cam_distortion": cam.opencv_distortion(), "has_extrinsics": True,
            "cam_extrinsics": cam.extrinsics()}


def _frame_sample(root: Path, seq: Sequence, frame: int, path: Path, hw: tuple[int, int],
                  j3d: np.ndarray, j2d: np.ndarray, masks: MaskBoxes | None,
                  mosh: tuple[np.ndarray, np.ndarray] | None, cfg: Settings) -> dict | BadRecord:
    """One frame: j3d (32, 3) m camera frame, j2d (32, 2) px."""
    if cfg.convention == "h36m":
        j3d, j2d = j3d[list(H36M17_FROM_32)], j2d[list(H36M17_FROM_32)]
    ones = np.ones((len(j3d), 1))
    kp2d = to_superset(np.concatenate([j2d, ones], 1), cfg.convention)
    kp3d = to_superset(np.concatenate([j3d, ones], 1), cfg.convention)
    box = None
    if masks is not None:
        if frame >= len(masks):
            return BadRecord(str(masks.path), frame, f"mask file has {len(masks)} frames, pose file more")
        try:
            box = masks.box(frame)
        except DatasetFormatError as exc:
            return BadRecord(str(masks.path), frame, exc.message)
    if box is None:
        box = bbox_from_keypoints(kp2d, scale=1.2)
    sample = {
        "image_path": str(path.relative_to(root)), "image_hw": np.array(hw, np.int32),
        "bbox_xywh": box, "keypoints2d": kp2d, "keypoints3d": kp3d,
        "subject_id": seq.subject, "sequence": seq.folder, "frame_index": frame, "person_id": 0,
    }
    if mosh is not None and frame % MOSH_FPS_STRIDE == 0 and frame // MOSH_FPS_STRIDE < len(mosh[0]):
        pose = mosh[0][frame // MOSH_FPS_STRIDE]
        sample.update(has_smpl=True, smpl_source=SMPL_SOURCES.index("mosh"),
                      smpl_global_orient=pose[:3], smpl_body_pose=pose[3:], smpl_betas=mosh[1])
    return sample


def raw_files(root: Path, split: str) -> list[Path]:
    cfg = settings_for(split, ConvertOptions())
    files = [p for p in (root / "metadata.xml", root / "cameras.pkl") if p.is_file()]
    for subject in cfg.subjects:
        try:
            seqs = list_sequences(root, subject, cfg.cameras)
        except DatasetFormatError:
            continue
        for seq in seqs:
            files += [p for p in (seq.d3_path, seq.file(root, "d2"), seq.file(root, "bb"), seq.file(root, "mask"))
                      if p.is_file()]
    return files
