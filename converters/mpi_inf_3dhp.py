"""MPI-INF-3DHP: training sequences (S1-S8) and test set (TS1-TS6) -> schema v1.

Training set (``split="train"``)
--------------------------------
- ``S{1..8}/Seq{1,2}/annot.mat`` (MATLAB v5, scipy): cell arrays (one cell per camera,
  14 cameras) ``annot2`` (T, 56) = 28 joints x (u, v) px, ``annot3`` (T, 84) = 28 joints x
  (x, y, z) **mm in that camera's frame**, ``univ_annot3`` (same, height-normalised
  skeleton), plus ``cameras`` and ``frames``. Joint order: the 28-joint ``mpi_inf_3dhp``
  convention (``mpii_get_joint_set.m``).
- ``S{n}/Seq{k}/camera.calibration`` (text, "Skeletool Camera Calibration File V1.0"):
  per camera a ``name`` line then ``sensor``, ``size W H``, ``animated``, ``intrinsic``
  (16 numbers, row-major 4x4 with fx, cx / fy, cy), ``extrinsic`` (16 numbers, row-major
  4x4 world->camera, translation in mm), ``radial`` (0: no distortion; ``annot2`` is the
  pinhole projection of ``annot3``). MMPose's ``cameras_train.pkl`` (keys
  ``S{n}_Seq{k}_Cam{c}``: ``R`` world->camera, ``T`` metres, ``f``, ``c``) is read instead
  when a sequence has no calibration file. Its ``h`` is 204 (a truncation of 2048 in
  MMPose's export): sizes come from the calibration file or the frames.
- Frames, extracted from ``imageSequence/video_{c}.avi``, 1-based, any of:
  ``S{n}/Seq{k}/imageFrames/video_{c}/frame_{i:06d}.jpg`` (SPIN),
  ``S{n}/Seq{k}/video_{c}/{i:06d}.jpg`` (MMHuman3D), ``images/S{n}_Seq{k}_Cam{c}_{i:06d}.jpg``
  (MMPose; also with that ``images`` folder as root). ``S{n}`` may sit under ``train/``.
- Cameras 0, 1, 2, 4, 5, 6, 7, 8 (the ones SPIN, MMHuman3D and MMPose train on; ``-o
  cameras=...`` to change; ``-o subjects=S1,S2`` or ``-o sequences=S4/Seq2,S8/Seq1`` to pick
  sequences), every ``stride``-th frame (default 10), and only frames whose 28
  joints all lie inside the image (SPIN's and MMHuman3D's rule; ``-o require_inside=false``
  keeps every frame). MMHuman3D counts the stride over kept frames across sequences; we
  take frame numbers divisible by the stride, so a sample's identity does not depend on
  the other sequences. Rows of ``annot.mat`` past the end of the video
  (:data:`VIDEO_FRAMES`, the counts MMPose truncates to) have no frame and are ignored.

Test set (``split="test"``)
---------------------------
- ``mpi_inf_3dhp_test_set/TS{1..6}/annot_data.mat`` (MATLAB 7.3 = HDF5, h5py; shapes as
  h5py shows them): ``annot2`` (N, 1, 17, 2) px, ``annot3`` (N, 1, 17, 3) mm camera frame,
  ``univ_annot3`` (N, 1, 17, 3) (the skeleton rescaled to a universal height: the official
  PCK/AUC evaluation uses it), ``valid_frame`` (N, 1), ``activity_annotation`` (N, 1).
  Joint order: ``mpi_inf_3dhp_test`` (17, pelvis = 14).
- Frames ``TS{n}/imageSequence/img_{i:06d}.jpg`` (1-based; ``.png`` accepted) or MMPose's
  ``images/TS{n}_{i:06d}.jpg``.
- Only ``valid_frame == 1`` frames by default (the official evaluation's set); ``-o
  valid_only=false`` keeps all. Extra columns: ``extra_valid_frame`` (uint8),
  ``extra_activity`` (int32), ``extra_univ_keypoints3d`` (17, 3) m, raw test order.
- The test set ships no calibration file. Intrinsics are fitted per sequence by least
  squares from ``annot2``/``annot3`` (u z = fx x + cx z; the publisher's own projection), and
  checked against the known cameras: TS1-TS4 studio camera (2048 x 2048, f ~ 1500 px, c ~
  (1017, 1043)), TS5-TS6 outdoor camera (1920 x 1080, f ~ 1683 px, c ~ (940, 560)) --
  :data:`TEST_INTRINSICS`, the values in MMPose's ``cameras_test.pkl``, used as the fallback.

Both splits: keypoints3d in metres, camera frame, **not** root-centred; 2D/3D confidence 1;
bbox = 2D joints' box enlarged 1.2x (the datasets ship no boxes); no SMPL.

Options (``-o KEY=VALUE``): :data:`OPTIONS`, listed by ``hmr convert mpi_inf_3dhp --help``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import open_h5, read_pickle, require_file
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["mpi_inf_3dhp"]
VERSION = "1"

TRAIN_SUBJECTS = tuple(f"S{i}" for i in range(1, 9))
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
TEST_SEQUENCES = tuple(f"TS{i}" for i in range(1, 7))

OPTIONS = (
    Option("stride", 10, int, "train: keep every stride-th frame"),
    Option("cameras", ",".join(map(str, TRAIN_CAMERAS)), str, "train: comma-separated camera ids"),
    Option("subjects", None, str, "comma-separated subjects (train, default S1..S8) or test "
           "sequences (test, default TS1..TS6)"),
    Option("sequences", "", str, "train: S<n>/Seq<k>[,...] instead of all sequences of the subjects"),
    Option("require_inside", True, bool, "train: drop frames whose joints leave the image (SPIN, MMHuman3D)"),
    Option("valid_only", True, bool, "test: only the frames the benchmark marks valid"),
)
# Frames in each training video: annot.mat has rows past the end of some videos, which have
# no image (SPIN only reaches the extracted frames; MMPose truncates to these counts).
VIDEO_FRAMES = {
    ("S1", "Seq1"): 6416, ("S1", "Seq2"): 12430, ("S2", "Seq1"): 6502, ("S2", "Seq2"): 6081,
    ("S3", "Seq1"): 12488, ("S3", "Seq2"): 12283, ("S4", "Seq1"): 6171, ("S4", "Seq2"): 6675,
    ("S5", "Seq1"): 12820, ("S5", "Seq2"): 12312, ("S6", "Seq1"): 6188, ("S6", "Seq2"): 6145,
    ("S7", "Seq1"): 6239, ("S7", "Seq2"): 6320, ("S8", "Seq1"): 6468, ("S8", "Seq2"): 6054,
}
# (fx, fy, cx, cy, height, width) of the test cameras (MMPose cameras_test.pkl).
TEST_INTRINSICS = {
    "TS1": (1500.0686, 1500.6591, 1017.3795, 1043.0628, 2048, 2048),
    "TS2": (1503.7797, 1501.2691, 1015.2348, 1038.6791, 2048, 2048),
    "TS3": (1500.0407, 1500.5895, 1017.3923, 1043.0464, 2048, 2048),
    "TS4": (1499.9260, 1500.7572, 1017.3680, 1042.9888, 2048, 2048),
    "TS5": (1683.4826, 1671.9272, 939.9278, 560.2072, 1080, 1920),
    "TS6": (1683.9754, 1672.6748, 939.8483, 560.1158, 1080, 1920),
}


@dataclass(frozen=True)
class Camera3dhp:
    intrinsics: np.ndarray          # (3, 3)
    extrinsics: np.ndarray | None   # (4, 4) world->camera, metres; None if unknown
    size_hw: tuple[int, int]


# --------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------
def parse_calibration(path: Path) -> dict[int, Camera3dhp]:
    """``camera.calibration`` -> {camera index: Camera3dhp}."""
    text = require_file(path).read_text(errors="replace").splitlines()
    cams: dict[int, dict[str, list[float]]] = {}
    current: dict[str, list[float]] | None = None
    for line in text:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "name":
            current = cams.setdefault(int(parts[1]), {})
        elif current is not None and parts[0] in ("size", "intrinsic", "extrinsic"):
            try:
                current[parts[0]] = [float(v) for v in parts[1:]]
            except ValueError:
                raise DatasetFormatError(f"bad numbers on line {line!r}", path=path) from None
    out = {}
    for index, fields in cams.items():
        if len(fields.get("intrinsic", ())) != 16 or len(fields.get("extrinsic", ())) != 16:
            raise DatasetFormatError("camera lacks 16-number intrinsic/extrinsic lines",
                                     path=path, record=f"camera {index}")
        k = np.array(fields["intrinsic"]).reshape(4, 4)
        ext = np.array(fields["extrinsic"]).reshape(4, 4)
        ext[:3, 3] /= 1000.0
        w, h = (int(v) for v in fields.get("size", (2048, 2048))[:2])
        out[index] = Camera3dhp(intrinsics_matrix(k[0, 0], k[1, 1], k[0, 2], k[1, 2]), ext, (h, w))
    return out


def read_mmpose_cameras(path: Path, subject: str, seq: str) -> dict[int, Camera3dhp]:
    """MMPose ``cameras_train.pkl`` entries of one sequence."""
    data = read_pickle(path)
    out = {}
    for key, p in data.items():
        parts = str(key).split("_")
        if len(parts) != 3 or parts[0] != subject or parts[1] != seq:
            continue
        ext = np.eye(4)
        ext[:3, :3] = np.asarray(p["R"], np.float64)
        ext[:3, 3] = np.asarray(p["T"], np.float64).reshape(3)
        f, c = np.asarray(p["f"]).reshape(2), np.asarray(p["c"]).reshape(2)
        out[int(parts[2][3:])] = Camera3dhp(intrinsics_matrix(f[0], f[1], c[0], c[1]), ext, (2048, 2048))
    return out


def fit_intrinsics(joints2d_px: np.ndarray, joints3d: np.ndarray) -> tuple[float, float, float, float] | None:
    """Least-squares (fx, fy, cx, cy) with u z = fx x + cx z. joints2d (N, 2), joints3d (N, 3)."""
    if len(joints3d) < 2 or (joints3d[:, 2] <= 0).any():
        return None
    z = joints3d[:, 2]
    out = []
    for axis in (0, 1):
        a = np.stack([joints3d[:, axis], z], axis=1)
        sol, *_ = np.linalg.lstsq(a, joints2d_px[:, axis] * z, rcond=None)
        out.append(sol)
    return float(out[0][0]), float(out[1][0]), float(out[0][1]), float(out[1][1])


# --------------------------------------------------------------------------------------
# Training set
# --------------------------------------------------------------------------------------
def find_dir(root: Path, *cands: str) -> Path | None:
    return next((root / c for c in cands if (root / c).is_dir()), None)


def train_frame_path(root: Path, seq_dir: Path, subject: str, seq: str, cam: int, frame: int) -> Path:
    """First existing layout for a (1-based named) frame; the SPIN layout if none exists."""
    i = frame + 1
    cands = (seq_dir / "imageFrames" / f"video_{cam}" / f"frame_{i:06d}.jpg",
             seq_dir / f"video_{cam}" / f"{i:06d}.jpg",
             root / "images" / f"{subject}_{seq}_Cam{cam}_{i:06d}.jpg",
             root / f"{subject}_{seq}_Cam{cam}_{i:06d}.jpg")
    return next((c for c in cands if c.is_file()), cands[0])


def read_train_annotations(path: Path) -> dict:
    """``annot2`` / ``annot3`` of an annot.mat; ``univ_annot3`` is not loaded (a third of a
    file that reaches ~300 MB for the longest sequences)."""
    import scipy.io

    require_file(path)
    try:
        return scipy.io.loadmat(str(path), variable_names=("annot2", "annot3"))
    except NotImplementedError:
        raise DatasetFormatError("annot.mat is MATLAB v7.3; expected v5 (as released)", path=path) from None
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetFormatError(f"unreadable or truncated .mat file: {exc}", path=path) from None


def _cell(annot: dict, key: str, cam: int, path: Path, dims: int) -> np.ndarray:
    cells = annot.get(key)
    if cells is None:
        raise DatasetFormatError(f"annot.mat has no '{key}'", path=path)
    try:
        arr = np.asarray(np.asarray(cells).reshape(-1)[cam], dtype=np.float64)
    except (IndexError, ValueError, TypeError):
        raise DatasetFormatError(f"'{key}' has no cell for camera {cam}", path=path) from None
    if arr.ndim != 2 or arr.shape[1] != 28 * dims:
        raise DatasetFormatError(f"'{key}'{{{cam}}} has shape {arr.shape}, expected (T, {28 * dims})", path=path)
    return arr.reshape(len(arr), 28, dims)


def _train_cameras(root: Path, seq_dir: Path, subject: str, seq: str) -> dict[int, Camera3dhp]:
    calib = seq_dir / "camera.calibration"
    if calib.is_file():
        return parse_calibration(calib)
    for pkl in (root / "cameras_train.pkl", root / "annotations" / "cameras_train.pkl"):
        if pkl.is_file():
            return read_mmpose_cameras(pkl, subject, seq)
    raise DatasetFormatError("no camera.calibration (nor MMPose cameras_train.pkl)", path=calib)


def train_sequences(options: ConvertOptions) -> list[tuple[str, str]]:
    """(subject, sequence) pairs: ``-o sequences=S4/Seq2,S8/Seq1`` or all of ``-o subjects``."""
    explicit = get_option(options, OPTIONS, "sequences")
    if explicit:
        pairs = [tuple(s.strip().split("/")) for s in explicit.split(",") if s.strip()]
        if any(len(p) != 2 for p in pairs):
            raise HmrError(f"option sequences={explicit!r}: expected S<n>/Seq<k>[,...]")
        return pairs  # type: ignore[return-value]
    subjects = get_option(options, OPTIONS, "subjects") or ",".join(TRAIN_SUBJECTS)
    subjects = [s.strip() for s in subjects.split(",")]
    return [(s, q) for s in subjects for q in ("Seq1", "Seq2")]


def iter_train(root: Path, options: ConvertOptions, probe: Callable) -> Iterator[dict | BadRecord]:
    stride = get_option(options, OPTIONS, "stride")
    inside = get_option(options, OPTIONS, "require_inside")
    cams = tuple(int(c) for c in get_option(options, OPTIONS, "cameras").split(","))
    for subject, seq in train_sequences(options):
        seq_dir = find_dir(root, f"{subject}/{seq}", f"train/{subject}/{seq}")
        if seq_dir is None:
            raise DatasetFormatError("training sequence folder is missing", path=root / subject / seq)
        annot_path = seq_dir / "annot.mat"
        annot = read_train_annotations(annot_path)
        cameras = _train_cameras(root, seq_dir, subject, seq)
        for cam in cams:
            if cam not in cameras:
                yield BadRecord(str(seq_dir / "camera.calibration"), f"camera {cam}", "camera not calibrated")
                continue
            yield from _train_camera_samples(root, seq_dir, subject, seq, cam, cameras[cam],
                                             annot, annot_path, stride, inside, probe, options)


def _train_camera_samples(root: Path, seq_dir: Path, subject: str, seq: str, cam: int,
                          camera: Camera3dhp, annot: dict, annot_path: Path, stride: int,
                          inside: bool, probe: Callable, options: ConvertOptions
                          ) -> Iterator[dict | BadRecord]:
    j2d = _cell(annot, "annot2", cam, annot_path, 2)            # (T, 28, 2) px
    j3d = _cell(annot, "annot3", cam, annot_path, 3) / 1000.0   # (T, 28, 3) m
    h, w = camera.size_hw
    num_frames = min(len(j2d), VIDEO_FRAMES.get((subject, seq), len(j2d)))
    frames = [f for f in range(0, num_frames, stride)
              if not inside or ((j2d[f] >= 0).all() and (j2d[f, :, 0] < w).all() and (j2d[f, :, 1] < h).all())]
    paths = [train_frame_path(root, seq_dir, subject, seq, cam, f) for f in frames]
    sizes = probe(paths) if options.check_images else iter([camera.size_hw] * len(frames))
    fixed = {"has_intrinsics": True, "cam_intrinsics": camera.intrinsics,
             "has_extrinsics": camera.extrinsics is not None,
             "cam_extrinsics": camera.extrinsics if camera.extrinsics is not None else np.zeros((4, 4))}
    for frame, path, hw in zip(frames, paths, sizes):
        key = f"{subject}/{seq}/annot.mat:camera {cam}:frame {frame}"
        if isinstance(hw, str):
            yield BadRecord(str(path), key, hw)
            continue
        yield {**fixed, **_keypoint_fields(j2d[frame], j3d[frame], "mpi_inf_3dhp"),
               "image_path": str(path.relative_to(root)), "image_hw": np.array(hw, np.int32),
               "subject_id": subject, "sequence": f"{subject}_{seq}_Cam{cam}", "frame_index": frame,
               "person_id": 0, "source_key": key}


def _keypoint_fields(j2d: np.ndarray, j3d: np.ndarray, convention: str) -> dict:
    """j2d (J, 2) px, j3d (J, 3) m -> superset keypoints and box."""
    ones = np.ones((len(j2d), 1))
    kp2d = to_superset(np.concatenate([j2d, ones], 1), convention)
    kp3d = to_superset(np.concatenate([j3d, ones], 1), convention)
    return {"keypoints2d": kp2d, "keypoints3d": kp3d, "bbox_xywh": bbox_from_keypoints(kp2d, scale=1.2)}


# --------------------------------------------------------------------------------------
# Test set
# --------------------------------------------------------------------------------------
@dataclass
class AnnotData:
    joints2d_px: np.ndarray     # (N, 17, 2)
    joints3d_m: np.ndarray      # (N, 17, 3)
    univ3d_m: np.ndarray        # (N, 17, 3)
    valid: np.ndarray           # (N,) bool
    activity: np.ndarray        # (N,) int


def read_test_annotations(path: Path) -> AnnotData:
    with open_h5(path) as f:
        try:
            n = int(np.prod(f["valid_frame"].shape))
            out = AnnotData(
                np.asarray(f["annot2"], np.float64).reshape(n, 17, 2),
                np.asarray(f["annot3"], np.float64).reshape(n, 17, 3) / 1000.0,
                np.asarray(f["univ_annot3"], np.float64).reshape(n, 17, 3) / 1000.0,
                np.asarray(f["valid_frame"]).reshape(n) > 0,
                (np.asarray(f["activity_annotation"]).reshape(n) if "activity_annotation" in f
                 else np.zeros(n)).astype(np.int32),
            )
        except KeyError as exc:
            raise DatasetFormatError(f"annot_data.mat lacks {exc}", path=path) from None
        except (ValueError, OSError) as exc:
            raise DatasetFormatError(f"annot_data.mat arrays are inconsistent or truncated: {exc}",
                                     path=path) from None
    return out


def camera_for_test_sequence(name: str, ann: AnnotData, path: Path) -> Camera3dhp:
    """Intrinsics fitted from the sequence's own annotations, checked against the table."""
    fx, fy, cx, cy, h, w = TEST_INTRINSICS.get(name, TEST_INTRINSICS["TS1"])
    # NaN / inf annotations (a broken file) must not reach the least-squares SVD: they would
    # stop the conversion there ("SVD did not converge"); their frames are bad records later
    finite = np.isfinite(ann.joints3d_m).all(axis=(1, 2)) & np.isfinite(ann.joints2d_px).all(axis=(1, 2))
    sel = ann.valid & finite & (ann.joints3d_m[..., 2] > 0).all(axis=1)
    fit = fit_intrinsics(ann.joints2d_px[sel].reshape(-1, 2), ann.joints3d_m[sel].reshape(-1, 3))
    if fit is not None:
        if name in TEST_INTRINSICS and abs(fit[0] - fx) > 0.05 * fx:
            raise DatasetFormatError(f"fitted focal length {fit[0]:.1f} px is far from {name}'s "
                                     f"known {fx:.1f} px: annotations and camera disagree", path=path)
        fx, fy, cx, cy = fit
    return Camera3dhp(intrinsics_matrix(fx, fy, cx, cy), None, (h, w))


def testset_frame_path(root: Path, seq_dir: Path, name: str, frame: int) -> Path:
    i = frame + 1
    cands = (seq_dir / "imageSequence" / f"img_{i:06d}.jpg", seq_dir / "imageSequence" / f"img_{i:06d}.png",
             root / "images" / f"{name}_{i:06d}.jpg", root / f"{name}_{i:06d}.jpg")
    return next((c for c in cands if c.is_file()), cands[0])


def iter_test(root: Path, options: ConvertOptions, probe: Callable) -> Iterator[dict | BadRecord]:
    valid_only = get_option(options, OPTIONS, "valid_only")
    names = get_option(options, OPTIONS, "subjects") or ",".join(TEST_SEQUENCES)
    names = [s.strip() for s in names.split(",")]
    for name in names:
        seq_dir = find_dir(root, f"mpi_inf_3dhp_test_set/{name}", name, f"test/{name}")
        if seq_dir is None:
            raise DatasetFormatError("test sequence folder is missing", path=root / "mpi_inf_3dhp_test_set" / name)
        annot_path = seq_dir / "annot_data.mat"
        ann = read_test_annotations(annot_path)
        camera = camera_for_test_sequence(name, ann, annot_path)
        frames = np.flatnonzero(ann.valid) if valid_only else np.arange(len(ann.valid))
        paths = [testset_frame_path(root, seq_dir, name, int(f)) for f in frames]
        sizes = probe(paths) if options.check_images else iter([camera.size_hw] * len(frames))
        for frame, path, hw in zip(frames, paths, sizes):
            key = f"{name}/annot_data.mat:frame {frame}"
            if isinstance(hw, str):
                yield BadRecord(str(path), key, hw)
                continue
            yield {**_keypoint_fields(ann.joints2d_px[frame], ann.joints3d_m[frame], "mpi_inf_3dhp_test"),
                   "image_path": str(path.relative_to(root)), "image_hw": np.array(hw, np.int32),
                   "has_intrinsics": True, "cam_intrinsics": camera.intrinsics,
                   "subject_id": name, "sequence": name, "frame_index": int(frame), "person_id": 0,
                   "source_key": key, "extra_valid_frame": np.uint8(ann.valid[frame]),
                   "extra_activity": np.int32(ann.activity[frame]),
                   "extra_univ_keypoints3d": ann.univ3d_m[frame].astype(np.float32)}


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    if split not in SOURCE.splits:
        raise HmrError(f"mpi_inf_3dhp has splits {SOURCE.splits}, not '{split}'")
    with ImageProber(options.workers if options.check_images else 1) as probe:
        yield from (iter_train if split == "train" else iter_test)(root, options, probe)


def raw_files(root: Path, split: str) -> list[Path]:
    if split == "train":
        files = []
        for s in TRAIN_SUBJECTS:
            for q in ("Seq1", "Seq2"):
                d = find_dir(root, f"{s}/{q}", f"train/{s}/{q}")
                if d is not None:
                    files += [p for p in (d / "annot.mat", d / "camera.calibration") if p.is_file()]
        return files
    out = []
    for n in TEST_SEQUENCES:
        d = find_dir(root, f"mpi_inf_3dhp_test_set/{n}", n, f"test/{n}")
        if d is not None and (d / "annot_data.mat").is_file():
            out.append(d / "annot_data.mat")
    return out
