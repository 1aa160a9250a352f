"""MMHuman3D HumanData ``.npz`` files <-> schema v1.

A HumanData file is what ``HumanData.dump`` writes: ``np.savez_compressed`` of the dict's
items plus three attributes, one row per person crop (N rows):

========================== ===================== ==========================================
key                        stored as             meaning
========================== ===================== ==========================================
``__key_strict__``         0-d bool              writer setting (ignored)
``__data_len__``           0-d int               N (``__temporal_len__`` in releases before
                                                 the HumanData slicing rework; -1 = unset)
``__keypoints_compressed__`` 0-d bool            keypoints hold only the masked-in rows
``image_path``             (N,) str              relative to the dataset's image folder
``bbox_xywh``              (N, 5) float          x, y, w, h, confidence (old files: (N, 4))
``keypoints2d``            (N, 190|M, 3) float   ``human_data`` order; M = mask.sum() when
                                                 compressed
``keypoints2d_mask``       (190,) uint8          rows the file fills
``keypoints3d``            (N, 190|M, 4) float   metres; H36M's are pelvis-centred
``keypoints3d_mask``       (190,) uint8
``smpl``                   0-d object (pickle)   dict: ``global_orient`` (N, 3),
                                                 ``body_pose`` (N, 23, 3) or (N, 69),
                                                 ``betas`` (N, 10), optional ``transl`` (N, 3)
``has_smpl``               (N,) number           optional; all 1 when ``smpl`` is present
``meta``                   0-d object (pickle)   dict, e.g. ``gender`` (N,) 'm'/'f'
``misc``                   0-d object (pickle)   free-form dict
``cam_param``              object (pickle)       list of N per-sample camera dicts (3DPW:
                                                 ``in_mat``, ``rotation_mat``, ``translation``,
                                                 ``H``, ``W``, ``k1..k6``, ``p1``, ``p2``) or a
                                                 dict of cameras keyed by tuples (H36M)
``config``                 0-d str               source dataset name
========================== ===================== ==========================================

Object members are pickles: they are read through :class:`hmr.core.interop.safe_npz.SafeNpz`
(restricted unpickler), never ``np.load(allow_pickle=True)``.

Import conventions
------------------
- Keypoints: decompressed with their mask, then ``human_data`` -> superset by name
  (:mod:`hmr.core.keypoints.human_data`; rows outside the mask get confidence 0; ``limbs`` and the
  file's ``config`` choose what the rows named after SMPL joints mean).
- Box: ``bbox_xywh[:, :4]``; a row whose confidence column is 0 has no valid box, so the box
  is made from the 2D keypoints (x1.2, as MMHuman3D's converters do) or the row is a bad
  record when it has fewer than two.
- 3D: ``keypoints3d`` as stored; ``extra_keypoints3d_root_relative`` per sample (see
  :mod:`hmr.core.interop.common`; files exported by hmrkit carry it in ``misc``).
- SMPL: ``smpl`` dict -> ``smpl_*`` where ``has_smpl``; ``transl`` only with
  ``import_transl`` (HumanData does not say which frame it is in) or when ``misc`` says it is
  camera-frame (hmrkit exports); ``smpl_source`` from the option, or per sample from
  ``misc['smpl_source']`` (hmrkit exports). ``meta['gender']`` -> ``gender``. ``smplh``/
  ``smplx`` dicts, ``vertices`` and ``image_id`` are not imported.
- A file whose ``keypoints2d_convention``/``keypoints3d_convention`` is not ``human_data``
  (HumanData allows converting in place) is refused rather than misread.
- Cameras: a per-sample ``cam_param`` list gives ``cam_intrinsics`` (``in_mat``),
  ``cam_extrinsics`` (``rotation_mat``/``translation``, world to camera), ``cam_distortion``
  (k1, k2, p1, p2, k3) and ``image_hw`` (``H``, ``W``). A dict of cameras is matched to a
  sample when every part of its key appears among the image path's ``/ _ .`` tokens
  (H36M's ``('S9', '54138969')`` matches ``S9/.../S9_Walking_1.54138969_000001.jpg``).
- Reading streams: :func:`iter_humandata` yields blocks of 1,024 rows; plain members
  (image paths, boxes, keypoints) are read block by block, pickled ones whole (the ``smpl``
  dict and its pickle: about 1 KB per sample; benchmarks/interop_memory.py).

Export: :func:`export_humandata` (in :mod:`hmr.core.interop.humandata_export`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.interop.common import (
    ROOT_RELATIVE_COLUMN, gender_code, root_relative_rows, smpl_source_code,
)
from hmr.core.interop.safe_npz import SafeNpz
from hmr.core.keypoints.human_data import NUM_HUMAN_DATA_JOINTS, human_data_to_superset
from hmr.core.schema.fields import SMPL_SOURCES

LEN_KEYS = ("__data_len__", "__temporal_len__")


@dataclass
class Camera:
    """One camera of a ``cam_param`` entry, in schema-v1 terms."""

    intrinsics: np.ndarray  # (3, 3) px
    extrinsics: np.ndarray | None  # (4, 4) world -> camera, m; None when not a rotation
    distortion: np.ndarray  # (5,) k1, k2, p1, p2, k3
    image_hw: tuple[int, int] | None


@dataclass
class HumanDataFile:
    """Rows ``offset .. offset + N`` of a HumanData npz, validated and decompressed,
    keypoints in the superset."""

    path: Path
    config: str
    image_path: np.ndarray  # (N,) object str
    bbox_xywh: np.ndarray | None  # (N, 5) float64, last column = confidence
    keypoints2d: np.ndarray | None  # (N, K, 3) float32 superset
    keypoints3d: np.ndarray | None  # (N, K, 4) float32 superset
    smpl: dict[str, np.ndarray] = field(default_factory=dict)  # global_orient (N,3), body_pose (N,69), betas
    has_smpl: np.ndarray | None = None  # (N,) bool
    gender: np.ndarray | None = None  # (N,) uint8
    cameras: list[Camera | None] | None = None  # per sample
    root_relative: np.ndarray | None = None  # (N,) bool, from an hmrkit export's misc
    smpl_sources: np.ndarray | None = None  # (N,) uint8 SMPL_SOURCES codes, from an hmrkit export's misc
    transl_in_camera: bool = False  # misc says smpl['transl'] is camera-frame (hmrkit exports)
    offset: int = 0  # row of the file this block starts at

    def __len__(self) -> int:
        return len(self.image_path)


def _fail(npz: SafeNpz, key: str, message: str) -> DatasetFormatError:
    return DatasetFormatError(f"key '{key}': {message}", path=npz.path, record=key)


def _data_len(npz: SafeNpz, n: int) -> None:
    for key in LEN_KEYS:
        if key in npz:
            declared = int(np.asarray(npz[key]))
            if declared not in (-1, n):
                raise _fail(npz, key, f"declares {declared} rows but image_path has {n}")


def _keypoint_blocks(npz: SafeNpz, key: str, n: int, channels: int, compressed: bool,
                     rows: int) -> Iterator[np.ndarray]:
    """Validate ``key``'s header, then stream (B, 190, C) float32 blocks, mask applied."""
    mask_key = f"{key}_mask"
    mask = (np.asarray(npz[mask_key]).reshape(-1) > 0 if mask_key in npz
            else np.ones(NUM_HUMAN_DATA_JOINTS, dtype=bool))
    if mask.shape != (NUM_HUMAN_DATA_JOINTS,):
        raise _fail(npz, mask_key, f"has shape {mask.shape}, expected (190,)")
    shape, _ = npz.header(key)
    if len(shape) != 3 or shape[0] != n or shape[2] != channels:
        raise _fail(npz, key, f"has shape {shape}, expected ({n}, 190 or masked count, {channels})")
    if compressed and shape[1] != mask.sum():
        raise _fail(npz, key, f"is compressed to {shape[1]} rows but its mask keeps {mask.sum()}")
    if not compressed and shape[1] != NUM_HUMAN_DATA_JOINTS:
        raise _fail(npz, key, f"has {shape[1]} joints; uncompressed human_data has 190")
    for block in npz.blocks(key, rows):
        full = np.zeros((len(block), NUM_HUMAN_DATA_JOINTS, channels), dtype=np.float32)
        if compressed:
            full[:, mask] = block
        else:
            full[:] = np.where(mask[:, None], block, 0)
        yield full


def _smpl(npz: SafeNpz, n: int) -> dict[str, np.ndarray]:
    smpl = npz["smpl"]
    if not isinstance(smpl, Mapping):
        raise _fail(npz, "smpl", f"is a {type(smpl).__name__}, expected a dict")
    want = {"global_orient": 3, "body_pose": 69, "betas": 10, "transl": 3}
    out = {}
    for name, width in want.items():
        if name not in smpl:
            if name in ("global_orient", "body_pose"):
                raise _fail(npz, "smpl", f"has no '{name}' (keys: {sorted(smpl)})")
            continue
        arr = np.asarray(smpl[name], dtype=np.float64).reshape(n, -1) if np.size(smpl[name]) else None
        if arr is None or (arr.shape[1] < width if name == "betas" else arr.shape[1] != width):
            raise _fail(npz, "smpl", f"'{name}' has shape {np.shape(smpl[name])}, expected ({n}, {width})")
        out[name] = arr[:, :width]  # betas beyond 10 (SMPL-X files) are not schema-v1 fields
    out.setdefault("betas", np.zeros((n, 10)))
    return out


def _as_matrix(value: Any, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(shape)


def _camera(d: Mapping[str, Any]) -> Camera | None:
    """A CameraParameter dict -> Camera; None when its focal lengths are not positive
    (MMHuman3D initialises ``in_mat``/``rotation_mat`` to zeros until set)."""
    K = _as_matrix(d["in_mat"], (3, 3))
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.isfinite(K).all():
        return None
    extr: np.ndarray | None = np.eye(4)
    R = _as_matrix(d.get("rotation_mat", np.eye(3)), (3, 3))
    if abs(np.linalg.det(R) - 1) > 1e-3 or np.abs(R @ R.T - np.eye(3)).max() > 1e-3:
        extr = None  # unset (zeros) or not a rotation: no usable extrinsics
    else:
        extr[:3, :3] = R
        extr[:3, 3] = np.asarray(d.get("translation", (0, 0, 0)), dtype=np.float64).reshape(3)
    dist = np.array([float(d.get(k, 0.0)) for k in ("k1", "k2", "p1", "p2", "k3")])
    hw = (int(d["H"]), int(d["W"])) if "H" in d and "W" in d else None
    return Camera(K, extr, dist, hw)


def _tokens(path: str) -> set[str]:
    return {t for t in re.split(r"[/_.\\]", path) if t}


def _camera_source(npz: SafeNpz, n: int) -> Any:
    """``cam_param`` as a list of per-sample entries or a (key parts -> Camera) table."""
    cams = npz["cam_param"]
    try:
        if isinstance(cams, Mapping):  # dict of cameras keyed by (subject, camera id) or name
            return [(set(map(str, k if isinstance(k, tuple) else (k,))), _camera(v))
                    for k, v in cams.items() if isinstance(v, Mapping) and "in_mat" in v]
        entries = list(np.asarray(cams, dtype=object).reshape(-1))
        if len(entries) != n:
            raise _fail(npz, "cam_param", f"has {len(entries)} entries for {n} samples")
        for e in entries:  # parse once up front so a bad entry names the key
            if isinstance(e, Mapping) and "in_mat" in e:
                _camera(e)
        return entries
    except (KeyError, ValueError, TypeError) as exc:
        raise _fail(npz, "cam_param", f"unexpected camera entry ({type(exc).__name__}: {exc})") from None


def _cameras_for(source: Any, image_path: np.ndarray, offset: int) -> list[Camera | None]:
    if source and isinstance(source[0], tuple):  # table: match key parts to path tokens
        out: list[Camera | None] = []
        for p in image_path:
            tokens = _tokens(p)
            hits = [c for parts, c in source if parts <= tokens]
            out.append(hits[0] if len(hits) == 1 else None)
        return out
    entries = source[offset:offset + len(image_path)]
    return [_camera(e) if isinstance(e, Mapping) and "in_mat" in e else None for e in entries]


def _bbox_blocks(npz: SafeNpz, n: int, rows: int) -> Iterator[np.ndarray]:
    """(B, 5) float64 blocks; old files' (N, 4) boxes get confidence 1, as ``HumanData.load``
    does."""
    shape, _ = npz.header("bbox_xywh")
    if len(shape) != 2 or shape[0] != n or shape[1] not in (4, 5):
        raise _fail(npz, "bbox_xywh", f"has shape {shape}, expected ({n}, 5)")
    for box in npz.blocks("bbox_xywh", rows):
        box = box.astype(np.float64)
        yield box if box.shape[1] == 5 else np.column_stack([box, np.ones(len(box))])


def _gender(npz: SafeNpz, meta: Any, n: int) -> np.ndarray | None:
    if not isinstance(meta, Mapping) or "gender" not in meta:
        return None
    try:
        codes = np.array([gender_code(g) for g in np.asarray(meta["gender"]).reshape(-1)], dtype=np.uint8)
    except ValueError as exc:
        raise _fail(npz, "meta", f"gender: {exc}") from None
    if len(codes) != n:
        raise _fail(npz, "meta", f"gender has {len(codes)} entries for {n} samples")
    return codes


DEFAULT_BLOCK_ROWS = 1024  # rows read and converted at a time (= the store writer's chunk)


def _whole_file_items(npz: SafeNpz, hd: HumanDataFile, n: int) -> None:
    """The pickled (object) members, read whole: SMPL, has_smpl, gender, misc flags."""
    if "smpl" in npz:
        hd.smpl = _smpl(npz, n)
        has = np.asarray(npz["has_smpl"]).reshape(-1) > 0 if "has_smpl" in npz else np.ones(n, bool)
        if has.shape != (n,):
            raise _fail(npz, "has_smpl", f"has shape {has.shape}, expected ({n},)")
        hd.has_smpl = has
    hd.gender = _gender(npz, npz.get("meta"), n)
    misc = npz.get("misc")
    if not isinstance(misc, Mapping):
        return
    if ROOT_RELATIVE_COLUMN in misc:
        hd.root_relative = np.asarray(misc[ROOT_RELATIVE_COLUMN]).reshape(-1).astype(bool)
    names = [str(v) for v in np.asarray(misc.get("smpl_source", [])).reshape(-1)]
    if len(names) == n and all(v in SMPL_SOURCES for v in names):
        hd.smpl_sources = np.array([SMPL_SOURCES.index(v) for v in names], dtype=np.uint8)
    hd.transl_in_camera = str(misc.get("smpl_transl_frame", "")) == "camera"


def _streams(npz: SafeNpz, n: int, rows: int) -> dict[str, Iterator[np.ndarray]]:
    """Row-block iterators over the plain members (validated from their headers first)."""
    compressed = bool(np.asarray(npz.get("__keypoints_compressed__", False)))
    streams = {"image_path": npz.blocks("image_path", rows)}
    if "bbox_xywh" in npz:
        streams["bbox_xywh"] = _bbox_blocks(npz, n, rows)
    for key, channels in (("keypoints2d", 3), ("keypoints3d", 4)):
        declared = str(npz[f"{key}_convention"]) if f"{key}_convention" in npz else "human_data"
        if declared != "human_data":
            raise _fail(npz, f"{key}_convention", f"is '{declared}'; only 'human_data' is read")
        if key in npz:
            streams[key] = _keypoint_blocks(npz, key, n, channels, compressed, rows)
    return streams


def iter_humandata(path: str | os.PathLike, *, limbs: str = "annotated", rows: int = DEFAULT_BLOCK_ROWS
                   ) -> Iterator[HumanDataFile]:
    """Validate a HumanData npz, then stream it in blocks of ``rows`` samples. Plain members
    are read block by block; pickled ones (``smpl``, ``meta``, ``misc``, ``cam_param``) whole,
    through the restricted unpickler."""
    with SafeNpz(path) as npz:
        if "image_path" not in npz:
            raise DatasetFormatError(f"not a HumanData npz: no 'image_path' (keys: {npz.keys()})",
                                     path=npz.path)
        shape, _ = npz.header("image_path")
        n = int(shape[0]) if shape else 0
        _data_len(npz, n)
        whole = HumanDataFile(npz.path, str(npz.get("config", "")), np.zeros(0, object), None, None, None)
        _whole_file_items(npz, whole, n)
        cams = _camera_source(npz, n) if "cam_param" in npz else None
        streams = _streams(npz, n, rows)
        for offset in range(0, n, rows):
            yield _assemble(whole, {k: next(it) for k, it in streams.items()}, cams, offset, limbs)


def _rows(values: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    return None if values is None else values[start:stop]


def _assemble(whole: HumanDataFile, raw: dict[str, np.ndarray], cams: Any, offset: int, limbs: str
              ) -> HumanDataFile:
    """One block of plain members + the whole-file items -> a HumanDataFile block."""
    paths = np.array([str(p) for p in np.asarray(raw["image_path"], dtype=object)], dtype=object)
    stop = offset + len(paths)
    kps = {k: human_data_to_superset(raw[k], limbs=limbs, config=whole.config) if k in raw else None
           for k in ("keypoints2d", "keypoints3d")}  # (B, K, C) superset
    return HumanDataFile(
        whole.path, whole.config, paths, raw.get("bbox_xywh"), kps["keypoints2d"], kps["keypoints3d"],
        smpl={k: v[offset:stop] for k, v in whole.smpl.items()},
        has_smpl=_rows(whole.has_smpl, offset, stop), gender=_rows(whole.gender, offset, stop),
        cameras=None if cams is None else _cameras_for(cams, paths, offset),
        root_relative=_rows(whole.root_relative, offset, stop),
        smpl_sources=_rows(whole.smpl_sources, offset, stop), transl_in_camera=whole.transl_in_camera,
        offset=offset)


def read_humandata(path: str | os.PathLike, *, limbs: str = "annotated") -> HumanDataFile:
    """The whole file as one block (small files, tests); converters stream with
    :func:`iter_humandata`."""
    blocks = list(iter_humandata(path, limbs=limbs, rows=1 << 62))
    if not blocks:
        raise DatasetFormatError("HumanData file has no samples", path=path)
    return blocks[0]


def humandata_samples(blocks: Iterable[HumanDataFile], *, smpl_source: str = "ground-truth",
                      keypoints3d: str = "auto", import_transl: bool = False
                      ) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Schema-v1 sample dicts, one per row, each with a problem message or None.

    ``image_hw`` is set only where a camera gives it (``H``, ``W``).
    """
    for hd in blocks:
        yield from _block_samples(hd, smpl_source=smpl_source, keypoints3d=keypoints3d,
                                  import_transl=import_transl)


def _block_samples(hd: HumanDataFile, *, smpl_source: str, keypoints3d: str, import_transl: bool
                   ) -> Iterator[tuple[dict[str, Any], str | None]]:
    source = smpl_source_code(smpl_source)
    n = len(hd)
    if hd.root_relative is not None and len(hd.root_relative) == n:
        rel = hd.root_relative
    else:
        rel = (root_relative_rows(hd.keypoints3d, keypoints3d) if hd.keypoints3d is not None
               else np.zeros(n, bool))
    for i in range(n):
        s: dict[str, Any] = {"image_path": hd.image_path[i], "source_key": f"{hd.path.name}:{hd.offset + i}",
                             ROOT_RELATIVE_COLUMN: bool(rel[i])}
        problem = None
        if hd.keypoints2d is not None:
            s["keypoints2d"] = hd.keypoints2d[i]
        if hd.keypoints3d is not None:
            s["keypoints3d"] = hd.keypoints3d[i]
        box = None
        if hd.bbox_xywh is not None and hd.bbox_xywh[i, 4] > 0:
            box = hd.bbox_xywh[i, :4]
        elif hd.keypoints2d is not None:
            box = bbox_from_keypoints(hd.keypoints2d[i])
        if box is None or not (np.asarray(box)[2:] > 0).all():
            problem = "no valid box (bbox_xywh confidence 0 or missing) and fewer than two 2D keypoints"
            box = np.array([0, 0, 1, 1], dtype=np.float32)
        s["bbox_xywh"] = np.asarray(box, dtype=np.float32)
        if hd.has_smpl is not None and hd.has_smpl[i]:
            params = [hd.smpl[k][i] for k in ("global_orient", "body_pose", "betas")]
            if not all(np.isfinite(p).all() for p in params):
                problem = "SMPL parameters contain NaN or inf"
            own = hd.smpl_sources[i] if hd.smpl_sources is not None else 0
            s.update(has_smpl=True, smpl_source=own or source, smpl_global_orient=params[0],
                     smpl_body_pose=params[1], smpl_betas=params[2])
            if (import_transl or hd.transl_in_camera) and "transl" in hd.smpl:
                s.update(has_smpl_transl=True, smpl_transl=hd.smpl["transl"][i])
        if hd.gender is not None:
            s["gender"] = hd.gender[i]
        cam = hd.cameras[i] if hd.cameras is not None else None
        if cam is not None:
            s.update(has_intrinsics=True, cam_intrinsics=cam.intrinsics, cam_distortion=cam.distortion)
            if cam.extrinsics is not None:
                s.update(has_extrinsics=True, cam_extrinsics=cam.extrinsics)
            if cam.image_hw is not None and min(cam.image_hw) > 0:
                s["image_hw"] = np.asarray(cam.image_hw, dtype=np.int32)
        yield s, problem


# Export lives next door (hmr.core.interop.humandata_export); re-exported here.
from hmr.core.interop.humandata_export import export_humandata  # noqa: E402

__all__ = ["Camera", "HumanDataFile", "export_humandata",
           "humandata_samples", "iter_humandata", "read_humandata"]
