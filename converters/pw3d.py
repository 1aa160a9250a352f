"""3DPW (3D Poses in the Wild): sequence pickles + image folders -> schema v1.

What is read
------------
- ``sequenceFiles/{train,validation,test}/<sequence>.pkl``: python-2 pickles (read with the
  restricted unpickler, ``encoding='latin1'``), one dict per sequence (3DPW README):
  ``sequence`` (name), ``genders`` (per person 'm' / 'f'), ``betas`` (per person, first 10
  used), ``poses`` (per person (T, 72) SMPL axis-angle, **world frame**, aligned with the
  image frames), ``trans`` (per person (T, 3) world translation), ``poses2d`` (per person
  (T, 3, 18): OpenPose COCO-18 x, y, confidence), ``jointPositions`` (per person (T, 72):
  the 24 SMPL joints in the world frame; not used, the body model regenerates them),
  ``cam_poses`` (T, 4, 4) world->camera, ``cam_intrinsics`` (3, 3), ``campose_valid``
  (per person (T,): the camera pose is aligned with the image for that person).
- ``imageFiles/<sequence>/image_{t:05d}.jpg``: frame t of the sequence (0-based).

Conventions applied
-------------------
- One sample per person and frame where ``campose_valid`` is true (elsewhere the pose does
  not match the image). A frame whose ``cam_poses`` is not a rigid transform (rotation part
  orthonormal with det +1 within 1e-3, last row 0 0 0 1, finite) is a bad record: a scaled
  or NaN camera would otherwise be stored, or stop the conversion inside an SVD.
- SMPL in the camera frame: with (R, t) = ``cam_poses[t]``, global orient ``R @ R_root``.
  SMPL rotates the body about its pelvis joint ``J0(betas)``, not the origin, so the
  translation that keeps the camera-frame mesh equal to ``R (world mesh) + t`` is
  ``transl = R (trans + J0) + t - J0`` (``smpl_transl``, ``has_smpl_transl``).
  ``smpl_source = "ground-truth"``, ``gender`` from ``genders``.
- keypoints3d: the gendered body model's joints in the camera frame: SMPL's 24 kinematic
  joints (``smpl`` slots) and, when the model folder has ``J_regressor_h36m.npy``, the 17
  H36M-regressed joints the standard 3DPW evaluation uses (``h36m`` slots).
- keypoints2d: those same joints projected with ``cam_intrinsics`` (so 3D and 2D agree
  exactly: the supervision target) **plus** ``poses2d`` in the OpenPose slots
  (``openpose_18``; they are detections refined by the authors, not projections of the
  mocap, so they keep their own slots and confidences, clipped to [0, 1]).
- bbox: the published evaluations' box (SPIN ``datasets/preprocess/pw3d.py``, MMHuman3D's
  3DPW converter): the box of the ``poses2d`` points with confidence > 0, enlarged 1.2x about
  its centre (SPIN: ``scale = 1.2 max(w, h) / 200``; our crop scale 1.0 cuts the same square).
  A frame with fewer than two such points falls back to the box of all labelled 2D points.
  ``extra_bbox_xywh_all_points``: that box of every labelled point (projected SMPL joints +
  detections) enlarged 1.2x, the box before converter version 2 — tighter on the whole
  body when the detections miss limbs, so possibly useful for training crops.
- image_hw from each frame's header (the pickles do not state it; frames are 1080 x 1920,
  portrait or landscape). The headers are read even with ``--no-check-images``; a frame
  that is then missing gets the nominal portrait size instead of an error.
- The body model is ``--body-model`` / ``$HMR_BODY_MODEL`` / the licence-free mannequin
  (joints then follow the mannequin, not real SMPL: fine for tests, not for research).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import merge_keypoints, to_superset
from converters.options import ConvertOptions
from converters.readers import read_pickle
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import project_points
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["pw3d"]
VERSION = "2"  # 2: bbox_xywh from poses2d (SPIN/MMHuman3D), the old box in extra_bbox_xywh_all_points

BATCH = 256
NOMINAL_HW = (1920, 1080)  # portrait phone video; used only for unchecked, missing frames
_GENDER_CODES = {"m": "male", "f": "female", "male": "male", "female": "female"}


@dataclass
class Person:
    """One actor of one sequence; T = frames of the sequence."""

    index: int
    gender: str                 # 'male' / 'female'
    betas: np.ndarray           # (10,)
    poses: np.ndarray           # (T, 72) world frame
    trans: np.ndarray           # (T, 3) world frame, m
    poses2d: np.ndarray         # (T, 18, 3) px + confidence
    valid: np.ndarray           # (T,) bool


@dataclass
class SequenceFile:
    path: Path
    name: str
    cam_poses: np.ndarray       # (T, 4, 4) world -> camera
    intrinsics: np.ndarray      # (3, 3)
    people: list[Person]
    rigid: np.ndarray           # (T,) bool: cam_poses[t] is a rigid transform


def sequence_files(root: Path, split: str) -> list[Path]:
    folder = root / "sequenceFiles" / split
    if not folder.is_dir():
        raise DatasetFormatError("missing sequence folder", path=folder)
    return sorted(folder.glob("*.pkl"))


def _per_person(data: dict, key: str, count: int, path: Path) -> list:
    value = data.get(key)
    if isinstance(value, np.ndarray) and value.dtype != object and value.ndim >= 1:
        value = list(value)  # (persons, ...) stacked instead of a list
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise DatasetFormatError(f"'{key}' is not a list with one entry per person ({count})", path=path)
    return list(value)


def read_sequence(path: Path) -> SequenceFile:
    """Read and check one 3DPW sequence pickle."""
    data = read_pickle(path)
    if not isinstance(data, dict):
        raise DatasetFormatError("sequence pickle is not a dict", path=path)
    try:
        cam_poses = np.asarray(data["cam_poses"], dtype=np.float64)
        intrinsics = np.asarray(data["cam_intrinsics"], dtype=np.float64).reshape(3, 3)
        genders = list(data["genders"] if "genders" in data else data["gender"])  # README says 'gender'
    except (KeyError, ValueError, TypeError) as exc:
        raise DatasetFormatError(f"sequence pickle lacks cam_poses / cam_intrinsics / genders: {exc!r}",
                                 path=path) from None
    if cam_poses.ndim != 3 or cam_poses.shape[1:] != (4, 4):
        raise DatasetFormatError(f"cam_poses has shape {cam_poses.shape}, expected (T, 4, 4)", path=path,
                                 record="cam_poses")
    frames = len(cam_poses)
    n = len(genders)
    if "poses2d" not in data and "poses2D" in data:  # the README's spelling
        data["poses2d"] = data["poses2D"]
    lists = {k: _per_person(data, k, n, path) for k in ("betas", "poses", "trans", "poses2d", "campose_valid")}
    people = []
    for p, g in enumerate(genders):
        try:
            betas = np.asarray(lists["betas"][p], np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise DatasetFormatError(f"'betas' is not numbers ({exc})", path=path, record=f"person {p}") from None
        if betas.size < 10:
            raise DatasetFormatError(f"'betas' holds {betas.size} values, expected 10",
                                     path=path, record=f"person {p}")
        try:
            person = Person(
                p, _GENDER_CODES[str(g).strip().lower()],
                betas[:10],
                np.asarray(lists["poses"][p], np.float64).reshape(frames, 72),
                np.asarray(lists["trans"][p], np.float64).reshape(frames, 3),
                np.asarray(lists["poses2d"][p], np.float64).reshape(frames, 3, 18).transpose(0, 2, 1),
                np.asarray(lists["campose_valid"][p]).reshape(frames).astype(bool))
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetFormatError(f"person {p}: arrays do not match {frames} frames ({exc})",
                                     path=path, record=f"person {p}") from None
        people.append(person)
    name = str(data.get("sequence", path.stem))
    if not np.isfinite(intrinsics).all():
        raise DatasetFormatError("cam_intrinsics holds NaN or inf", path=path, record="cam_intrinsics")
    return SequenceFile(path, name, cam_poses, intrinsics, people, rigid_transforms(cam_poses))


#: how far a camera pose's rotation part may be from orthonormal with det +1 (float32 storage
#: is ~1e-7 away; a scaled, sheared or mirrored matrix is far more)
RIGID_TOLERANCE = 1e-3


def rigid_transforms(poses: np.ndarray, tol: float = RIGID_TOLERANCE) -> np.ndarray:
    """(T,) bool: which (T, 4, 4) poses are rigid transforms: finite, rotation part R with
    |R Rᵀ - I| and |det R - 1| within ``tol``, last row (0, 0, 0, 1)."""
    finite = np.isfinite(poses).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], poses, np.eye(4))  # det / matmul never see NaN
    rot = safe[:, :3, :3]
    orthonormal = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2)) <= tol
    proper = np.abs(np.linalg.det(rot) - 1.0) <= tol
    last_row = np.abs(safe[:, 3] - [0.0, 0.0, 0.0, 1.0]).max(axis=1) <= tol
    return finite & orthonormal & proper & last_row


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------
def world_to_camera_smpl(global_orient_w: np.ndarray, trans_w: np.ndarray, pelvis_rest: np.ndarray,
                         cam_poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL root rotation and translation from the world into each frame's camera.

    global_orient_w (B, 3) axis-angle, trans_w (B, 3), pelvis_rest (3,) = J0(betas) with zero
    pose, cam_poses (B, 4, 4). Returns (global_orient_cam (B, 3), transl_cam (B, 3)) with
    SMPL(orient_cam, transl_cam) = R SMPL(orient_w, trans_w) + t for every vertex.
    """
    from scipy.spatial.transform import Rotation

    rot, t = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
    orient = Rotation.from_matrix(rot) * Rotation.from_rotvec(global_orient_w)
    transl = np.einsum("bij,bj->bi", rot, trans_w + pelvis_rest) + t - pelvis_rest  # (B, 3)
    return orient.as_rotvec(), transl


class BodyModels:
    """Gendered body models, loaded on first use."""

    def __init__(self, path: str | None):
        self.path = path
        self._models: dict[str, object] = {}

    def get(self, gender: str):
        if gender not in self._models:
            from hmr.core.body import load_body_model

            self._models[gender] = load_body_model(self.path, gender=gender)
        return self._models[gender]


def camera_frame_joints(model, betas: np.ndarray, orient: np.ndarray, body_pose: np.ndarray,
                        transl: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Body-model joints in the camera frame with their conventions: SMPL's 24 (B, 24, 3)
    and, if the model has J_regressor_h36m, the H36M 17 (B, 17, 3)."""
    import torch

    b = len(orient)
    with torch.no_grad():
        out = model(global_orient=torch.as_tensor(orient, dtype=torch.float32),
                    body_pose=torch.as_tensor(body_pose, dtype=torch.float32),
                    betas=torch.as_tensor(np.tile(betas, (b, 1)), dtype=torch.float32),
                    transl=torch.as_tensor(transl, dtype=torch.float32))
    joints = [(out.joints_smpl24.numpy().astype(np.float64), "smpl")]
    if out.joints_h36m17 is not None:
        joints.append((out.joints_h36m17.numpy().astype(np.float64), "h36m"))
    return joints


def rest_pelvis(model, betas: np.ndarray) -> np.ndarray:
    """J0(betas): the pelvis joint with zero pose and no translation, (3,)."""
    import torch

    with torch.no_grad():
        out = model(global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 69),
                    betas=torch.as_tensor(betas[None], dtype=torch.float32))
    return out.joints_smpl24[0, 0].numpy().astype(np.float64)


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    models = BodyModels(options.body_model)
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for path in sequence_files(root, split):
            seq = read_sequence(path)
            for person in seq.people:
                yield from _person_samples(root, seq, person, models, probe, options)


def _person_samples(root: Path, seq: SequenceFile, person: Person, models: BodyModels,
                    probe: Callable, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    rel = seq.path.relative_to(root)
    frames = np.flatnonzero(person.valid)
    finite = np.isfinite(person.poses[frames]).all(1) & np.isfinite(person.trans[frames]).all(1)
    for f in frames[~finite]:
        yield BadRecord(str(rel), f"person {person.index} frame {f}", "NaN or inf in poses / trans")
    frames = frames[finite]
    for f in frames[~seq.rigid[frames]]:
        yield BadRecord(str(rel), f"person {person.index} frame {f}",
                        f"cam_poses[{f}] is not a rigid transform (rotation part not orthonormal with "
                        f"det +1 within {RIGID_TOLERANCE}, or NaN)")
    frames = frames[seq.rigid[frames]]
    if not np.isfinite(person.betas).all():
        yield BadRecord(str(rel), f"person {person.index}", "NaN or inf in betas")
        return
    model = models.get(person.gender)
    pelvis = rest_pelvis(model, person.betas)
    for start in range(0, len(frames), BATCH):
        chunk = frames[start:start + BATCH]
        orient, transl = world_to_camera_smpl(person.poses[chunk, :3], person.trans[chunk], pelvis,
                                              seq.cam_poses[chunk])
        joints = camera_frame_joints(model, person.betas, orient, person.poses[chunk, 3:], transl)
        kp3d, kp2d = batch_keypoints(joints, seq.intrinsics, person.poses2d[chunk])
        paths = [root / "imageFiles" / seq.name / f"image_{f:05d}.jpg" for f in chunk]
        for i, (frame, img, hw) in enumerate(zip(chunk, paths, probe(paths))):
            key = f"{rel}:person {person.index}:frame {frame}"
            if isinstance(hw, str) and options.check_images:
                yield BadRecord(str(img), key, hw)
                continue
            hw = NOMINAL_HW if isinstance(hw, str) else hw
            yield {
                "image_path": str(img.relative_to(root)), "image_hw": np.array(hw, np.int32),
                "bbox_xywh": openpose_box(person.poses2d[frame], kp2d[i]), "keypoints2d": kp2d[i],
                "extra_bbox_xywh_all_points": bbox_from_keypoints(kp2d[i], scale=1.2),
                "keypoints3d": kp3d[i], "has_smpl": True, "smpl_source": SMPL_SOURCES.index("ground-truth"),
                "smpl_global_orient": orient[i], "smpl_body_pose": person.poses[frame, 3:],
                "smpl_betas": person.betas, "has_smpl_transl": True, "smpl_transl": transl[i],
                "gender": GENDERS.index(person.gender), "has_intrinsics": True,
                "cam_intrinsics": seq.intrinsics, "has_extrinsics": True,
                "cam_extrinsics": seq.cam_poses[frame], "sequence": seq.name, "frame_index": int(frame),
                "person_id": person.index, "source_key": key,
            }


def openpose_box(poses2d: np.ndarray, keypoints2d: np.ndarray) -> np.ndarray:
    """SPIN's 3DPW test box: the ``poses2d`` points (18, 3) with confidence > 0, box enlarged
    1.2x; the box of all labelled ``keypoints2d`` when fewer than two points are confident."""
    box = bbox_from_keypoints(np.asarray(poses2d, np.float64), scale=1.2, min_conf=0.0)
    return box if box is not None else bbox_from_keypoints(keypoints2d, scale=1.2)


def batch_keypoints(joints: list[tuple[np.ndarray, str]], intrinsics: np.ndarray, poses2d: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Superset keypoints of a batch: joints [(B, J, 3) camera frame, convention], poses2d
    (B, 18, 3) -> keypoints3d (B, K, 4), keypoints2d (B, K, 3)."""
    kp3d = merge_keypoints(*(to_superset(np.concatenate([j, np.ones((*j.shape[:2], 1))], -1), c)
                             for j, c in joints))
    kp2d_model = merge_keypoints(*(to_superset(np.concatenate(
        [project_points(j, intrinsics), (j[..., 2:3] > 0).astype(np.float64)], -1), c) for j, c in joints))
    detections = poses2d.copy()
    detections[..., 2] = np.clip(detections[..., 2], 0.0, 1.0)
    detections[detections[..., 2] <= 0] = 0.0
    return kp3d, merge_keypoints(kp2d_model, to_superset(detections, "openpose_18"))


def raw_files(root: Path, split: str) -> list[Path]:
    try:
        return sequence_files(root, split)
    except DatasetFormatError:
        return []
