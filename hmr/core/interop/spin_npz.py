"""SPIN-style ``.npz`` files <-> schema v1.

The format (SPIN ``datasets/preprocess/*.py`` writes it with plain ``np.savez``;
``datasets/base_dataset.py`` reads it; CLIFF, VIBE and MMHuman3D's ``spin``/``vibe``
converters read the same keys). One row per person crop, N rows:

=============  ==============  ===========================================================
key            shape, dtype    meaning
=============  ==============  ===========================================================
``imgname``    (N,) str        image path, relative to the dataset's image folder
``center``     (N, 2) float    box centre, px
``scale``      (N,) float      box side / 200 (square box; SPIN's crops are scale * 200 px)
``part``       (N, 24, 3)      J24 ground-truth 2D (x, y, visibility), convention ``spin_24``
``openpose``   (N, 25, 3)      OpenPose BODY_25 detections (zeros when absent), optional
``S``          (N, 24, 4)      J24 3D (x, y, z, visibility) in metres, optional
``pose``       (N, 72)         SMPL axis-angle, root first, optional (with ``shape``)
``shape``      (N, 10)         SMPL betas
``has_smpl``   (N,)            1 where ``pose``/``shape`` are valid; all 1 when absent
``gender``     (N,) str        'm' / 'f' (3DPW test), optional
=============  ==============  ===========================================================

``maskname``/``partname`` (LSP/UP-3D segmentation files) are not imported.

Import conventions
------------------
- 2D: ``part`` -> superset via ``spin_24``, ``openpose`` via ``openpose_25`` (separate
  superset slots: SPIN's 49 keeps both). Pixel values are copied unchanged (SPIN adds +1
  only when it crops, not in the file).
- Box: the square ``scale * 200`` px about ``center`` (SPIN's box; the same rule as
  ``hmr.core.boxes.bbox_from_center_scale``).
- 3D: ``S`` -> ``keypoints3d`` via ``spin_24``. SPIN's H36M ``S`` is pelvis-centred (its
  preprocessor subtracts joint 0), its 3DHP ``S`` is camera-frame: the per-sample flag
  ``extra_keypoints3d_root_relative`` says which (see :mod:`hmr.core.interop.common`;
  ``keypoints3d=auto|root_relative|camera``). Root-relative means schema v1's camera-frame
  promise does not hold for that sample: the joints' positions relative to the root are
  known, the root's position in the camera is not.
- SMPL: ``pose[:3]`` -> ``smpl_global_orient``, ``pose[3:]`` -> ``smpl_body_pose``, ``shape`` ->
  ``smpl_betas`` where ``has_smpl``; ``smpl_source`` is an option (SPIN's npz does not say;
  H36M's are MoSh fits, so a file whose name contains ``h36m`` defaults to ``mosh``).
- No intrinsics, extrinsics, translation, image size or subject/sequence: the schema's
  defaults (``has_intrinsics`` False ...).
- Reading streams: :func:`iter_spin_npz` validates every key from its header, then yields
  blocks of 1,024 rows read sequentially from the zip members.

Export (:func:`export_spin_npz`) writes the same keys with plain arrays (``np.load(f)``
opens it, as SPIN does). What SPIN's format cannot hold is lost: intrinsics, extrinsics,
SMPL translation, image size, every superset joint outside J24 + OpenPose-25, non-square
boxes (exported as the square of side max(w, h) about the box centre), subject/sequence/
frame ids and the SMPL source. ``S`` is written root-centred (the pelvis, else the hips'
mid-point, subtracted) unless the store marks the sample root-relative already.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.boxes import PIXEL_STD, bbox_from_center_scale
from hmr.core.errors import DatasetFormatError
from hmr.core.interop.common import (
    ROOT_RELATIVE_COLUMN, gender_code, open_for_export, root_of, root_relative_rows, smpl_source_code,
)
from hmr.core.interop.npz_writer import NpzBlockWriter
from hmr.core.interop.safe_npz import SafeNpz
from hmr.core.keypoints import convert_keypoints
from hmr.core.schema.fields import GENDERS

REQUIRED_KEYS = ("imgname", "center", "scale", "part")


# per-row shape and whether the key holds numbers (else strings)
KEY_LAYOUT: dict[str, tuple[tuple[int, ...], bool]] = {
    "imgname": ((), False), "center": ((2,), True), "scale": ((), True), "part": ((24, 3), True),
    "openpose": ((25, 3), True), "S": ((24, 4), True), "pose": ((72,), True), "shape": ((10,), True),
    "has_smpl": ((), True), "gender": ((), False),
}
DEFAULT_BLOCK_ROWS = 1024  # rows read and converted at a time (= the store writer's chunk)


@dataclass
class SpinNpzData:
    """Rows ``offset .. offset + N`` of a SPIN npz, validated, keypoints in the superset."""

    path: Path
    imgname: np.ndarray  # (N,) object str
    center: np.ndarray  # (N, 2) float64 px
    scale: np.ndarray  # (N,) float64, box side / 200
    keypoints2d: np.ndarray  # (N, K, 3) float32 superset
    keypoints3d: np.ndarray | None  # (N, K, 4) float32 superset, m
    pose: np.ndarray | None  # (N, 72) float64 axis-angle
    betas: np.ndarray | None  # (N, 10) float64
    has_smpl: np.ndarray  # (N,) bool
    gender: np.ndarray | None  # (N,) uint8 codes into GENDERS
    offset: int = 0

    def __len__(self) -> int:
        return len(self.imgname)


def _check_layout(npz: SafeNpz) -> tuple[int, list[str]]:
    """Validate every known key's header against SPIN's layout; returns (N, keys present)."""
    missing = [k for k in REQUIRED_KEYS if k not in npz]
    if missing:
        raise DatasetFormatError(f"not a SPIN npz: missing keys {missing} (has {npz.keys()})", path=npz.path)
    if "pose" in npz and "shape" not in npz:
        raise DatasetFormatError("has 'pose' but no 'shape'", path=npz.path, record="shape")
    n = npz.header("imgname")[0][0] if npz.header("imgname")[0] else 0
    keys = [k for k in KEY_LAYOUT if k in npz]
    for key in keys:
        shape, dtype = npz.header(key)
        row, numeric = KEY_LAYOUT[key]
        if tuple(shape) != (n, *row):
            want = ("N", *row)
            raise DatasetFormatError(f"key '{key}' has shape {tuple(shape)}, expected {want} with N = {n}",
                                     path=npz.path, record=key)
        if numeric and dtype.kind not in "fiub":
            raise DatasetFormatError(f"key '{key}' has dtype {dtype}, expected numbers",
                                     path=npz.path, record=key)
    return n, keys


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)],
                    dtype=object)


def _block(path: Path, raw: dict[str, np.ndarray], offset: int) -> SpinNpzData:
    """Raw arrays of one block -> SpinNpzData (superset keypoints)."""
    n = len(raw["imgname"])
    kps2d, _ = convert_keypoints(raw["part"].astype(np.float32), "spin_24", "superset")  # (B, K, 3)
    if "openpose" in raw:
        op_sup, op_mask = convert_keypoints(raw["openpose"].astype(np.float32), "openpose_25", "superset")
        kps2d[:, op_mask] = op_sup[:, op_mask]
    kps3d = convert_keypoints(raw["S"].astype(np.float32), "spin_24", "superset")[0] if "S" in raw else None
    has_smpl = np.zeros(n, dtype=bool)
    if "pose" in raw:
        has_smpl = raw["has_smpl"] > 0 if "has_smpl" in raw else np.ones(n, dtype=bool)
    gender = None
    if "gender" in raw:
        try:
            gender = np.array([gender_code(g) for g in _strings(raw["gender"])], dtype=np.uint8)
        except ValueError as exc:
            raise DatasetFormatError(str(exc), path=path, record="gender") from None
    return SpinNpzData(path, _strings(raw["imgname"]), raw["center"].astype(np.float64),
                       raw["scale"].astype(np.float64), kps2d, kps3d,
                       raw["pose"].astype(np.float64) if "pose" in raw else None,
                       raw["shape"].astype(np.float64) if "pose" in raw else None, has_smpl, gender, offset)


def iter_spin_npz(path: str | os.PathLike, rows: int = DEFAULT_BLOCK_ROWS) -> Iterator[SpinNpzData]:
    """Validate a SPIN npz, then stream it in blocks of ``rows`` rows (pickle-safe: object
    members go through the restricted unpickler)."""
    with SafeNpz(path) as npz:
        n, keys = _check_layout(npz)
        streams = {k: npz.blocks(k, rows) for k in keys if k != "shape" or "pose" in keys}
        for offset in range(0, n, rows):
            yield _block(npz.path, {k: next(it) for k, it in streams.items()}, offset)


def read_spin_npz(path: str | os.PathLike) -> SpinNpzData:
    """The whole file as one block (small files, tests); converters stream with
    :func:`iter_spin_npz`."""
    blocks = list(iter_spin_npz(path))
    if not blocks:
        return _block(Path(path), {k: np.zeros((0, *KEY_LAYOUT[k][0])) for k in REQUIRED_KEYS}, 0)
    if len(blocks) == 1:
        return blocks[0]
    fields = [f.name for f in dataclasses.fields(SpinNpzData) if f.name not in ("path", "offset")]
    parts = {f: [getattr(b, f) for b in blocks] for f in fields}
    return SpinNpzData(blocks[0].path, **{f: None if v[0] is None else np.concatenate(v)
                                          for f, v in parts.items()})


def default_smpl_source(path: Path) -> str:
    return "mosh" if "h36m" in path.name.lower() else "ground-truth"


def spin_samples(blocks: Iterable[SpinNpzData], *, smpl_source: str | None = None,
                 keypoints3d: str = "auto") -> Iterator[tuple[dict[str, Any], str | None]]:
    """Schema-v1 sample dicts (without ``image_hw``), one per row, with a problem message
    (or None) for rows that cannot be converted (NaN pose, non-positive scale)."""
    for data in blocks:
        yield from _block_samples(data, smpl_source=smpl_source, keypoints3d=keypoints3d)


def _block_samples(data: SpinNpzData, *, smpl_source: str | None, keypoints3d: str
                   ) -> Iterator[tuple[dict[str, Any], str | None]]:
    source = smpl_source_code(smpl_source or default_smpl_source(data.path))
    n = len(data)
    rel = (root_relative_rows(data.keypoints3d, keypoints3d) if data.keypoints3d is not None
           else np.zeros(n, dtype=bool))
    side = data.scale * PIXEL_STD  # (N,) px
    boxes = bbox_from_center_scale(data.center, data.scale)  # (N, 4) xywh
    for i in range(n):
        sample: dict[str, Any] = {
            "image_path": data.imgname[i], "bbox_xywh": boxes[i],
            "keypoints2d": data.keypoints2d[i], "source_key": f"{data.path.name}:{data.offset + i}",
            ROOT_RELATIVE_COLUMN: bool(rel[i]),
        }
        problem = None if side[i] > 0 and np.isfinite(side[i]) else f"scale {data.scale[i]} is not positive"
        if data.keypoints3d is not None:
            sample["keypoints3d"] = data.keypoints3d[i]
        if data.pose is not None and data.has_smpl[i]:
            if not (np.isfinite(data.pose[i]).all() and np.isfinite(data.betas[i]).all()):
                problem = "SMPL pose or shape contains NaN or inf"
            sample.update(has_smpl=True, smpl_source=source, smpl_global_orient=data.pose[i, :3],
                          smpl_body_pose=data.pose[i, 3:], smpl_betas=data.betas[i])
        if data.gender is not None:
            sample["gender"] = data.gender[i]
        yield sample, problem


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------
EXPORT_FIELDS = ("image_path", "bbox_xywh", "keypoints2d", "keypoints3d", "has_smpl",
                 "smpl_global_orient", "smpl_body_pose", "smpl_betas", "gender")


def _spin_block(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One block of store columns -> SPIN arrays (all keys; which to keep is decided per file)."""
    box = cols["bbox_xywh"].astype(np.float64)  # (B, 4)
    kps3d = cols["keypoints3d"]  # (B, K, 4)
    rel = cols.get(ROOT_RELATIVE_COLUMN, np.zeros(len(box), dtype=bool)).astype(bool)
    centred = kps3d.copy()
    shift = np.where(rel[:, None], 0.0, root_of(kps3d))  # (B, 3)
    centred[..., :3] = np.where(kps3d[..., 3:] > 0, kps3d[..., :3] - shift[:, None, :], 0.0)
    part, _ = convert_keypoints(cols["keypoints2d"], "superset", "spin_24")  # (B, 24, 3)
    openpose, _ = convert_keypoints(cols["keypoints2d"], "superset", "openpose_25")  # (B, 25, 3)
    s24, _ = convert_keypoints(centred, "superset", "spin_24")  # (B, 24, 4)
    gender = np.array([{"male": "m", "female": "f"}.get(GENDERS[g], "") for g in cols["gender"]])
    return {
        "imgname": np.asarray(cols["image_path"], dtype=str),
        "center": box[:, :2] + box[:, 2:] / 2, "scale": box[:, 2:].max(axis=1) / PIXEL_STD,
        "part": part, "openpose": openpose, "S": s24,
        "pose": np.concatenate([cols["smpl_global_orient"], cols["smpl_body_pose"]], axis=1),
        "shape": cols["smpl_betas"], "has_smpl": cols["has_smpl"], "gender": gender.astype("<U1"),
    }


def _spin_shapes(n: int, width: int) -> dict[str, tuple[tuple[int, ...], str]]:
    shapes = {k: ((n, *row), "float64") for k, (row, numeric) in KEY_LAYOUT.items() if numeric}
    return {**shapes, "imgname": ((n,), f"<U{width}"), "gender": ((n,), "<U1")}


def export_spin_npz(store: Any, out_npz: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write a schema store (path or opened store) as a SPIN-style npz; returns the path.

    Optional keys are written only when the store has them: ``openpose`` if any OpenPose
    slot is labelled, ``S`` if any 3D joint is, ``pose``/``shape``/``has_smpl`` if any
    sample has SMPL, ``gender`` only if every sample's gender is known (SPIN reads any
    value other than 'm' as female). Streams block by block (:class:`NpzBlockWriter`): memory
    holds one block of the store plus the image paths.
    """
    store, fields = open_for_export(store, out_npz, overwrite, EXPORT_FIELDS)
    n = len(store)
    width = max(len(p) for _, c in store.blocks(fields=["image_path"]) for p in c["image_path"])
    labelled = {"openpose": False, "S": False, "has_smpl": False, "gender": True}
    with NpzBlockWriter(out_npz, overwrite=overwrite) as writer:
        for key, (shape, dtype) in _spin_shapes(n, width).items():
            writer.create(key, shape, dtype)
        for start, cols in store.blocks(fields=fields):
            block = _spin_block(cols)
            for key, values in block.items():
                writer.write(key, start, values)
            labelled["openpose"] |= bool((block["openpose"][..., 2] > 0).any())
            labelled["S"] |= bool((block["S"][..., 3] > 0).any())
            labelled["has_smpl"] |= bool(block["has_smpl"].any())
            labelled["gender"] &= bool((block["gender"] != "").all())
        drop = [k for k in ("openpose", "S", "gender") if not labelled[k]]
        drop += ["pose", "shape", "has_smpl"] if not labelled["has_smpl"] else []
        for key in drop:
            writer.drop(key)
    return Path(out_npz)
