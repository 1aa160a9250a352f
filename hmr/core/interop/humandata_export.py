"""Schema v1 -> MMHuman3D HumanData npz (the layout is described in
:mod:`hmr.core.interop.humandata`).

The file is what ``HumanData.dump`` writes: ``np.savez_compressed`` of ``__key_strict__``,
``__data_len__``, ``__keypoints_compressed__`` and the items, keypoints compressed by their
masks, dict-valued items as 0-d object arrays (MMHuman3D reads them with
``HumanData.fromfile``, i.e. ``allow_pickle=True``, as it does its own files).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.interop.common import ROOT_RELATIVE_COLUMN, open_for_export

EXPORT_FIELDS = ("image_path", "bbox_xywh", "keypoints2d", "keypoints3d", "has_smpl", "smpl_source",
                 "smpl_global_orient", "smpl_body_pose", "smpl_betas", "has_smpl_transl", "smpl_transl",
                 "gender", "has_intrinsics", "cam_intrinsics", "cam_distortion", "has_extrinsics",
                 "cam_extrinsics", "image_hw")


def _camera_dict(K: np.ndarray, E: np.ndarray, has_e: bool, dist: np.ndarray, hw: np.ndarray) -> dict:
    """One MMHuman3D ``CameraParameter.to_dict()``-shaped entry (lists and python scalars)."""
    R, T = (E[:3, :3], E[:3, 3]) if has_e else (np.eye(3), np.zeros(3))
    k1, k2, p1, p2, k3 = (float(v) for v in dist)
    return {"in_mat": K.astype(float).tolist(), "k1": k1, "k2": k2, "k3": k3, "k4": 0.0, "k5": 0.0,
            "k6": 0.0, "p1": p1, "p2": p2, "H": int(hw[0]), "W": int(hw[1]),
            "rotation_mat": R.astype(float).tolist(), "translation": T.astype(float).tolist(),
            "name": "default"}


# per-sample columns that end up inside pickled members (whole-file dicts/lists)
SMALL_FIELDS = tuple(f for f in EXPORT_FIELDS if f not in ("image_path", "bbox_xywh", "keypoints2d",
                                                          "keypoints3d"))
KEYPOINTS = (("keypoints2d", 3), ("keypoints3d", 4))


def _labelled_rows(store: Any) -> dict[str, np.ndarray]:
    """Pass 1: the (190,) uint8 mask of human_data rows labelled in any sample, per key."""
    from hmr.core.keypoints.human_data import superset_to_human_data

    masks = {key: np.zeros(190, dtype=np.uint8) for key, _ in KEYPOINTS}
    for _, cols in store.blocks(fields=[k for k, _ in KEYPOINTS]):
        for key, _ in KEYPOINTS:
            masks[key] |= superset_to_human_data(cols[key])[1]
    return masks


def _pickled_items(store: Any, cols: dict[str, np.ndarray]) -> dict[str, Any]:
    """smpl/has_smpl, meta, cam_param, config, misc from whole-file per-sample columns."""
    from hmr.core.schema.fields import GENDERS, SMPL_SOURCES

    n = len(cols["has_smpl"])
    items: dict[str, Any] = {}
    has = cols["has_smpl"].astype(bool)
    if has.any():
        smpl = {"global_orient": cols["smpl_global_orient"].astype(np.float64),
                "body_pose": cols["smpl_body_pose"].astype(np.float64).reshape(n, 23, 3),
                "betas": cols["smpl_betas"].astype(np.float64)}
        if cols["has_smpl_transl"][has].all():
            smpl["transl"] = cols["smpl_transl"].astype(np.float64)
        items["smpl"], items["has_smpl"] = smpl, has.astype(np.float64)
    if (cols["gender"] > 0).any():
        items["meta"] = {"gender": np.array([GENDERS[g][0] for g in cols["gender"]])}
    if cols["has_intrinsics"].all():
        items["cam_param"] = [_camera_dict(*row) for row in zip(
            cols["cam_intrinsics"], cols["cam_extrinsics"], cols["has_extrinsics"],
            cols["cam_distortion"], cols["image_hw"])]
    items["config"] = str(store.dataset)
    items["misc"] = {"exported_by": "hmrkit", "dataset": str(store.dataset), "split": str(store.split),
                     "smpl_source": np.array([SMPL_SOURCES[c] for c in cols["smpl_source"]]),
                     ROOT_RELATIVE_COLUMN: cols.get(ROOT_RELATIVE_COLUMN, np.zeros(n, bool)).astype(bool)}
    if "transl" in items.get("smpl", {}):
        items["misc"]["smpl_transl_frame"] = "camera"  # schema v1's smpl_transl is camera-frame
    return items


def export_humandata(store: Any, out_npz: str | os.PathLike, *, overwrite: bool = True,
                     len_key: str = "__data_len__") -> Path:
    """Write a schema store (path or opened store) as an MMHuman3D HumanData npz.

    Written: image_path, bbox_xywh (confidence 1), keypoints2d (+ mask, compressed),
    keypoints3d (+ mask) if any 3D joint is labelled, ``smpl`` + ``has_smpl`` if any sample
    has SMPL (``transl`` if every SMPL sample has it), ``meta['gender']`` ('m'/'f'/'n') if any
    gender is known, per-sample ``cam_param`` if every sample has intrinsics, ``config`` (the
    store's dataset) and ``misc`` (provenance, per-sample SMPL sources, the root-relative
    flags, the frame of ``transl``: what the importer reads back for a lossless round trip).

    Lost on the way: superset joints with no ``human_data`` row (see
    :mod:`hmr.core.keypoints.human_data`), cameras unless every sample has intrinsics, SMPL
    translation unless every SMPL sample has it, subject/sequence/frame/person ids; the
    image size survives only inside ``cam_param``. Keypoints and boxes stream block by block;
    the pickled members (SMPL, cameras, image paths) are built whole, as HumanData needs them:
    peak memory about 2 KB per sample (benchmarks/interop_memory.py: +190 MB at 100k).
    """
    from hmr.core.interop.npz_writer import NpzBlockWriter
    from hmr.core.keypoints.human_data import superset_to_human_data

    store, small = open_for_export(store, out_npz, overwrite, SMALL_FIELDS)
    n = len(store)
    masks = _labelled_rows(store)
    keys = [(k, c) for k, c in KEYPOINTS if k == "keypoints2d" or masks[k].any()]
    with NpzBlockWriter(out_npz, compress=True, overwrite=overwrite) as writer:
        for name, value in (("__key_strict__", False), (len_key, n), ("__keypoints_compressed__", True)):
            writer.put(name, value)
        writer.create("bbox_xywh", (n, 5), np.float64)
        for key, channels in keys:
            writer.create(key, (n, int(masks[key].sum()), channels), np.float64)
            writer.put(f"{key}_mask", masks[key])
        paths: list[str] = []
        parts: dict[str, list[np.ndarray]] = {k: [] for k in small}
        for start, cols in store.blocks(fields=["image_path", "bbox_xywh", *(k for k, _ in keys), *small]):
            paths += [str(p) for p in cols["image_path"]]
            box = cols["bbox_xywh"].astype(np.float64)  # (B, 4)
            writer.write("bbox_xywh", start, np.column_stack([box, np.ones(len(box))]))
            for key, _ in keys:
                full, _ = superset_to_human_data(cols[key])  # (B, 190, C)
                writer.write(key, start, full[:, masks[key] > 0])
            for k in small:
                parts[k].append(cols[k])
        writer.put("image_path", paths)
        items = _pickled_items(store, {k: np.concatenate(v) for k, v in parts.items()})
        for name, value in items.items():
            writer.put(name, value)
    return Path(out_npz)

