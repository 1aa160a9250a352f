"""Synthetic humans written by ``hmr synth`` (our own raw layout, read like any dataset).

Reads ``annotations/<split>.json`` and ``images/<split>/*.jpg`` under the root (layout and
keys: :mod:`hmr.synth.generate`). Every sample has exact ground truth:

- SMPL parameters (neutral body; ``smpl_source`` = ground-truth) with the translation that
  places the body in the camera frame, ``has_smpl_transl``;
- 3D keypoints: SMPL-24 joints and H36M-17 regressed joints (metres, camera frame);
- 2D keypoints: their projections (SMPL-24 from the file with its in-image flag as
  confidence, H36M-17 projected here with the same camera);
- intrinsics K; no distortion; the box is the tight box of the rendered silhouette.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions
from converters.readers import read_json
from hmr.core.geometry import project_points
from hmr.core.sources import SOURCES

SOURCE = SOURCES["synth"]
VERSION = "1"


def raw_files(root: Path, split: str) -> list[Path]:
    ann = root / "annotations" / f"{split}.json"
    return [ann] + sorted((root / "images" / split).glob("*.jpg"))


def _keypoints(ann: dict, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Superset 2D (K, 3) px and 3D (K, 4) m from the SMPL-24 and H36M-17 joints."""
    j24 = np.asarray(ann["joints3d_smpl24"], dtype=np.float64)  # (24, 3)
    j17 = np.asarray(ann["joints3d_h36m17"], dtype=np.float64)  # (17, 3)
    uv24 = np.asarray(ann["joints2d_smpl24"], dtype=np.float64)  # (24, 3) x, y, in-image
    uv17 = project_points(j17, K)
    size = np.array([K[0, 2], K[1, 2]]) * 2 + 1
    in17 = ((uv17 > -0.5) & (uv17 < size - 0.5)).all(axis=1).astype(np.float64)
    # H36M first, SMPL second: where both conventions name the same landmark, SMPL wins.
    kp2d = to_superset(np.c_[uv17, in17], "h36m")
    kp3d = to_superset(np.c_[j17, np.ones(17)], "h36m")
    s2d, s3d = to_superset(uv24, "smpl"), to_superset(np.c_[j24, np.ones(24)], "smpl")
    kp2d = np.where(s2d[:, 2:] > 0, s2d, kp2d)
    kp3d = np.where(s3d[:, 3:] > 0, s3d, kp3d)
    return kp2d, kp3d


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    ann_path = root / "annotations" / f"{split}.json"
    data = read_json(ann_path)
    images = {im["id"]: im for im in data.get("images", [])}
    for ann in data.get("annotations", []):
        image = images.get(ann.get("image_id"))
        if image is None:
            yield BadRecord(str(ann_path), ann.get("id"), f"image_id {ann.get('image_id')} not in images")
            continue
        if options.check_images and not (root / image["file_name"]).is_file():
            yield BadRecord(str(ann_path), ann.get("id"), f"image file {image['file_name']} does not exist")
            continue
        try:
            K = np.asarray(image["K"], dtype=np.float64)
            smpl = ann["smpl"]
            kp2d, kp3d = _keypoints(ann, K)
            sample = {
                "image_path": image["file_name"], "image_hw": (image["height"], image["width"]),
                "bbox_xywh": ann["bbox"], "keypoints2d": kp2d, "keypoints3d": kp3d,
                "has_smpl": True, "smpl_source": 1, "smpl_global_orient": smpl["global_orient"],
                "smpl_body_pose": smpl["body_pose"], "smpl_betas": smpl["betas"],
                "has_smpl_transl": True, "smpl_transl": smpl["transl"], "gender": 0,
                "has_intrinsics": True, "cam_intrinsics": K, "frame_index": int(image["id"]),
                "person_id": 0, "source_key": f"annotations/{split}.json:{ann['id']}",
                "extra_pose_rarity": float(ann.get("pose_rarity", 0.0)),
            }
        except (KeyError, TypeError, ValueError) as exc:
            yield BadRecord(str(ann_path), ann.get("id"), f"malformed annotation: {type(exc).__name__}: {exc}")
            continue
        yield sample
