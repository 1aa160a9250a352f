"""3DOH50K (Object-Occluded Human, Zhang et al. CVPR 2020): ``annots.json`` -> schema v1.

What is read
------------
- ``{trainset,testset}/annots.json``: one JSON object keyed by a zero-padded frame id
  (``"00000"``), one person per frame. Keys read per frame: ``img_path`` (relative to the
  split folder, written with Windows backslashes: ``images\\00000.jpg``), ``bbox``
  (``[[x1, y1], [x2, y2]]`` px), ``intri`` (3x3 K), ``extri`` (4x4 world -> camera), ``betas``
  (10), ``pose`` (72 SMPL axis-angle; the root rotation is in the **world** frame), ``trans``
  (3), ``scale`` (1), ``smpl_joints_2d`` (24x2 px), ``smpl_joints_3d`` (24x3),
  ``lsp_joints_2d`` (14x2 px), ``lsp_joints_3d`` (14x3). ``mask_path`` is not read.
- Images ``<split>set/images/<id>.jpg``: sizes from their headers, read even with
  ``--no-check-images`` (an unreadable image then gets twice K's principal point).

Where the facts come from (the publisher's own reader is not public; no real file was
available to check): the key list and shapes from a reader in a third-party training repo
(``oh3d_train_extract``, which rotates the root by ``extri[:3, :3]`` exactly like
hmr-benchmarks' ``oh50k3d.py`` at commit 8795b53), the backslash paths from hmr-benchmarks, the
LSP order and "``lsp_joints_3d`` are camera coordinates, ``x 1000 / 7`` = millimetres" from
isarandi/posepile ``datasets3d/tdoh.py``. ``trans`` and ``scale`` are the publisher's fitting
variables in an unstated frame and unit: they are kept raw, not interpreted.

Conventions applied
-------------------
- SMPL root rotation into the camera: ``R_extri @ R_root`` (the rule the readers above apply).
- Units are not stated and posepile divides by 7: so the file's 3-D joints are treated as
  camera-frame points in an unknown unit and the unit is *measured*: the body model (neutral;
  ``--body-model`` / ``$HMR_BODY_MODEL`` / the mannequin) posed with the camera-frame
  parameters gives joints ``J`` (24, zero translation); ``smpl_joints_3d ~= s J + u`` is
  solved by least squares for the scale ``s`` and offset ``u``; keypoints3d are the file's
  joints divided by ``s`` (metres), ``smpl_transl = u / s``. A record whose joints do not fit
  (residual over :data:`MAX_FIT_RESIDUAL` of the body's extent, or ``s`` outside 0.1 .. 100)
  is a bad record: its fit and its joints disagree, so neither can be trusted. The measured
  ``s`` is ``extra_oh50k3d_unit_scale``; the file's ``scale``, ``trans`` and ``extri`` are
  ``extra_oh50k3d_scale`` / ``extra_oh50k3d_trans`` / ``extra_oh50k3d_extri`` (``extri``'s
  translation is in the unknown world unit, so ``has_extrinsics`` stays False). With the
  mannequin instead of SMPL the measured scale is only approximate: convert real data with
  the real model.
- Keypoints: both layouts, in their own slots: SMPL's 24 joints (``smpl``) and the 14 LSP
  joints (``lsp``: right ankle, right knee, right hip, left hip, left knee, left ankle, right
  wrist, right elbow, right shoulder, left shoulder, left elbow, left wrist, neck, head top),
  2-D and 3-D, confidence 1: the release has no visibility flags, occluded joints included
  (occlusion is the point of the dataset). 2-D arrays of (x, y, v) rows, as the same lab's
  later annotation files write them, are accepted too: v (clipped to [0, 1]) is the confidence.
- bbox: the file's box enlarged 1.2x about its centre (as MMHuman3D treats it); the raw box
  is ``extra_bbox_xyxy``.
- ``smpl_source = "ground-truth"`` (the publisher's fits), gender neutral (not given).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PureWindowsPath

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import merge_keypoints, rotmat_to_axis_angle, to_superset
from converters.options import ConvertOptions
from converters.readers import read_json
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["oh50k3d"]
VERSION = "1"

#: largest RMS distance between the file's 3-D joints and the scaled body-model joints, as a
#: fraction of the joints' extent (a consistent record fits to float precision)
MAX_FIT_RESIDUAL = 0.05
_SHAPES = {"intri": (3, 3), "extri": (4, 4), "betas": (10,), "pose": (72,), "trans": (3,),
           "smpl_joints_2d": (24, 2), "smpl_joints_3d": (24, 3), "lsp_joints_2d": (14, 2),
           "lsp_joints_3d": (14, 3), "bbox": (2, 2)}


def annotation_file(root: Path, split: str) -> Path:
    if split not in SOURCE.splits:
        raise HmrError(f"oh50k3d has splits {SOURCE.splits}, not '{split}'")
    return root / f"{split}set" / "annots.json"


def raw_files(root: Path, split: str) -> list[Path]:
    path = annotation_file(root, split)
    return [path] if path.is_file() else []


def parse_record(record: object) -> dict[str, np.ndarray] | str:
    """The arrays of one frame record, or why they cannot be read."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    out: dict[str, np.ndarray] = {}
    for key, shape in _SHAPES.items():
        if key not in record:
            return f"missing key '{key}'"
        try:
            arr = np.asarray(record[key], dtype=np.float64)
            if key.endswith("_2d") and arr.shape == (shape[0], 3):
                pass  # (x, y, visibility) rows, as the same lab's later releases write them
            else:
                arr = arr.reshape(shape)
        except (TypeError, ValueError):
            return f"'{key}' is not {int(np.prod(shape))} numbers"
        if not np.isfinite(arr).all():
            return f"'{key}' holds NaN or inf"
        out[key] = arr
    try:
        out["scale"] = np.asarray(record.get("scale", 1.0), dtype=np.float64).reshape(-1)[:1]
    except (TypeError, ValueError):
        return "'scale' is not a number"
    if not isinstance(record.get("img_path"), str) or not record["img_path"]:
        return "missing or empty 'img_path'"
    return out


def image_relpath(img_path: str, split: str) -> str | None:
    """``images\\00000.jpg`` -> ``trainset/images/00000.jpg``; None if it climbs out."""
    parts = PureWindowsPath(img_path.replace("/", "\\")).parts
    if not parts or any(p in ("..", "") for p in parts) or PureWindowsPath(img_path).anchor:
        return None
    return "/".join((f"{split}set", *parts))


def camera_orient(pose: np.ndarray, extri: np.ndarray) -> np.ndarray:
    """World-frame root axis-angle (3,) -> camera frame with ``extri``'s rotation (3,)."""
    from scipy.spatial.transform import Rotation

    rot = extri[:3, :3]
    rotmat_to_axis_angle(rot)  # raises ValueError for a scaled / mirrored / sheared matrix
    return (Rotation.from_matrix(rot) * Rotation.from_rotvec(pose[:3])).as_rotvec()


def fit_scale_offset(model_joints: np.ndarray, file_joints: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Least squares ``file ~= s * model + u``: (s, u (3,), RMS residual / extent)."""
    mc = model_joints - model_joints.mean(0)
    fc = file_joints - file_joints.mean(0)
    s = float((mc * fc).sum() / max((mc * mc).sum(), 1e-12))
    u = file_joints.mean(0) - s * model_joints.mean(0)
    rms = float(np.sqrt(((s * model_joints + u - file_joints) ** 2).sum(1).mean()))
    extent = float(np.ptp(file_joints, axis=0).max()) or 1.0
    return s, u, rms / extent


def _model_joints(model, betas: np.ndarray, orient: np.ndarray, body_pose: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(global_orient=torch.as_tensor(orient[None], dtype=torch.float32),
                    body_pose=torch.as_tensor(body_pose[None], dtype=torch.float32),
                    betas=torch.as_tensor(betas[None], dtype=torch.float32))
    return out.joints_smpl24[0].numpy().astype(np.float64)


def _with_conf(points: np.ndarray) -> np.ndarray:
    """(J, D) -> (J, D + 1) with confidence 1."""
    return np.concatenate([points, np.ones((len(points), 1))], axis=1)


def _with_conf_2d(points: np.ndarray) -> np.ndarray:
    """2-D joints (J, 2) -> confidence 1; (J, 3) rows keep their visibility, clipped to [0, 1]."""
    if points.shape[1] == 3:
        out = points.copy()
        out[:, 2] = np.clip(out[:, 2], 0.0, 1.0)
        out[out[:, 2] <= 0] = 0.0
        return out
    return np.concatenate([points, np.ones((len(points), 1))], axis=1)


def sample_from_record(rec: dict[str, np.ndarray], model) -> dict | str:
    """Schema fields (without image) of one parsed record, or why it is bad."""
    try:
        orient = camera_orient(rec["pose"], rec["extri"])
    except ValueError as exc:
        return f"extri[:3, :3] is not a rotation ({exc})"
    joints = _model_joints(model, rec["betas"], orient, rec["pose"][3:])
    s, u, residual = fit_scale_offset(joints, rec["smpl_joints_3d"])
    if not 0.1 <= s <= 100.0 or residual > MAX_FIT_RESIDUAL:
        return (f"smpl_joints_3d do not match the SMPL fit posed in the camera frame (scale "
                f"{s:.3g}, residual {residual:.1%} of the body's extent): fit and joints disagree")
    smpl3d, lsp3d = rec["smpl_joints_3d"] / s, rec["lsp_joints_3d"] / s
    if (smpl3d[:, 2] <= 0).any() or (lsp3d[:, 2] <= 0).any():
        return "3-D joints behind the camera (z <= 0)"
    kp2d = merge_keypoints(to_superset(_with_conf_2d(rec["smpl_joints_2d"]), "smpl"),
                           to_superset(_with_conf_2d(rec["lsp_joints_2d"]), "lsp"))
    kp3d = merge_keypoints(to_superset(_with_conf(smpl3d), "smpl"), to_superset(_with_conf(lsp3d), "lsp"))
    (x1, y1), (x2, y2) = rec["bbox"]
    w, h = (x2 - x1) * 1.2, (y2 - y1) * 1.2
    if w <= 0 or h <= 0:
        return f"bbox {rec['bbox'].tolist()} is empty or inverted"
    return {
        "bbox_xywh": np.array([(x1 + x2 - w) / 2, (y1 + y2 - h) / 2, w, h], np.float32),
        "keypoints2d": kp2d, "keypoints3d": kp3d, "has_smpl": True,
        "smpl_source": SMPL_SOURCES.index("ground-truth"), "smpl_global_orient": orient,
        "smpl_body_pose": rec["pose"][3:], "smpl_betas": rec["betas"], "has_smpl_transl": True,
        "smpl_transl": u / s, "gender": GENDERS.index("neutral"), "has_intrinsics": True,
        "cam_intrinsics": rec["intri"], "has_extrinsics": False,
        "extra_oh50k3d_unit_scale": np.float32(s), "extra_oh50k3d_scale": np.float32(rec["scale"][0]),
        "extra_oh50k3d_trans": rec["trans"].astype(np.float32),
        "extra_oh50k3d_extri": rec["extri"].astype(np.float32),
        "extra_bbox_xyxy": rec["bbox"].reshape(4).astype(np.float32),
    }


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    from hmr.core.body import load_body_model

    path = annotation_file(root, split)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetFormatError("annots.json is not an object keyed by frame id", path=path)
    rel = str(path.relative_to(root))
    model = load_body_model(options.body_model, gender="neutral")
    keys = sorted(data)
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for start in range(0, len(keys), 512):
            chunk = keys[start:start + 512]
            pending = []
            for key in chunk:
                rec = parse_record(data[key])
                image = image_relpath(data[key].get("img_path", ""), split) if isinstance(rec, dict) else None
                if isinstance(rec, dict) and image is None:
                    rec = f"img_path {data[key]['img_path']!r} leaves the split folder"
                if isinstance(rec, str):
                    yield BadRecord(rel, f"frame {key}", rec)
                    continue
                sample = sample_from_record(rec, model)
                if isinstance(sample, str):
                    yield BadRecord(rel, f"frame {key}", sample)
                    continue
                pending.append((key, image, sample))
            sizes = probe([root / p for _, p, _ in pending])
            for key, image, sample in pending:
                hw = next(sizes)
                if isinstance(hw, str) and options.check_images:
                    yield BadRecord(str(root / image), f"frame {key}", hw)
                    continue
                if isinstance(hw, str):  # unchecked and unreadable: the size K's centre implies
                    k = sample["cam_intrinsics"]
                    hw = (max(1, round(2 * k[1, 2])), max(1, round(2 * k[0, 2])))
                yield {**sample, "image_path": image, "image_hw": np.array(hw, np.int32),
                       "frame_index": int(key) if key.isdigit() else -1, "person_id": 0,
                       "source_key": f"{rel}:{key}"}
            for key in chunk:
                data[key] = None  # free each record once read

