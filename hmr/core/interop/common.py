"""Pieces both interop formats share: genders, SMPL sources, root-relative 3D, image sizes.

Two facts the foreign formats do not carry, recorded per sample in ``extra_`` columns of
the imported store (schema v1 keeps extra columns next to its fields):

``extra_keypoints3d_root_relative`` (bool)
    True where ``keypoints3d`` holds **root-relative** metres (the camera's axes, the body's
    root at or near the origin) instead of schema v1's camera-frame positions. SPIN's H36M
    ``S`` and MMHuman3D's H36M ``keypoints3d`` are pelvis-centred (their preprocessors
    subtract joint 0), while SPIN's MPI-INF-3DHP ``S`` is in the camera frame (annot3 / 1000).
    Neither file says which, so by default we decide per sample (:func:`root_relative_rows`):
    the pelvis at the origin, or every labelled joint within 0.5 m of the camera centre
    along z (no camera-frame body is that close), means root-relative. Such samples have no
    intrinsics, so nothing projects them; training and evaluation root-align 3D anyway.
``extra_image_hw_known`` (bool)
    False where ``image_hw`` is a placeholder: neither format stores image sizes (except
    HumanData's ``cam_param``), so without the images (``--no-check-images``) the importer
    uses the smallest size that holds the box and keypoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import HmrError
from hmr.core.keypoints.superset import SUPERSET_INDEX
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES

ROOT_RELATIVE_COLUMN = "extra_keypoints3d_root_relative"
HW_KNOWN_COLUMN = "extra_image_hw_known"
KEYPOINTS3D_MODES = ("auto", "root_relative", "camera")

_GENDER_WORDS = {"m": "male", "male": "male", "f": "female", "female": "female",
                 "n": "neutral", "neutral": "neutral", "": "neutral"}


def gender_code(value: object) -> int:
    """'m'/'male'/'f'/'female'/'n'/'neutral' (any case, bytes or str) -> index into GENDERS."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    word = _GENDER_WORDS.get(text.strip().lower())
    if word is None:
        raise ValueError(f"unknown gender {value!r}")
    return GENDERS.index(word)


def smpl_source_code(name: str) -> int:
    if name not in SMPL_SOURCES or name == "none":
        raise HmrError(f"smpl_source must be one of {', '.join(SMPL_SOURCES[1:])}, not {name!r}")
    return SMPL_SOURCES.index(name)


def root_relative_rows(keypoints3d: np.ndarray, mode: str = "auto") -> np.ndarray:
    """Which samples' 3D keypoints are root-relative. keypoints3d (N, K, 4) superset, m.

    Returns (N,) bool; False where a sample has no labelled 3D joint.
    """
    if mode not in KEYPOINTS3D_MODES:
        raise HmrError(f"keypoints3d must be one of {', '.join(KEYPOINTS3D_MODES)}, not {mode!r}")
    labelled = keypoints3d[..., 3] > 0  # (N, K)
    has_3d = labelled.any(axis=1)
    if mode != "auto":
        return has_3d & (mode == "root_relative")
    pelvis = keypoints3d[:, SUPERSET_INDEX["pelvis"]]  # (N, 4)
    at_origin = (pelvis[:, 3] > 0) & (np.abs(pelvis[:, :3]).max(axis=1) < 1e-4)
    near = np.where(labelled, np.abs(keypoints3d[..., 2]) < 0.5, True).all(axis=1)
    return has_3d & (at_origin | near)


def root_of(keypoints3d: np.ndarray) -> np.ndarray:
    """Root position per sample: the pelvis, else the mid-point of the hips. (N, K, 4) -> (N, 3).

    Samples with neither get the origin (nothing to centre).
    """
    pelvis = keypoints3d[:, SUPERSET_INDEX["pelvis"]]
    left, right = keypoints3d[:, SUPERSET_INDEX["left_hip"]], keypoints3d[:, SUPERSET_INDEX["right_hip"]]
    mid_hip = (left[:, :3] + right[:, :3]) / 2
    hips_ok = ((left[:, 3] > 0) & (right[:, 3] > 0))[:, None]
    root = np.where(hips_ok, mid_hip, 0.0)
    return np.where((pelvis[:, 3] > 0)[:, None], pelvis[:, :3], root).astype(np.float32)


def placeholder_image_hw(bbox_xywh: np.ndarray, keypoints2d: np.ndarray | None) -> np.ndarray:
    """Smallest (height, width) holding the box and the labelled keypoints. -> (N, 2) int32.

    bbox_xywh (N, 4) px; keypoints2d (N, K, 3) px or None.
    """
    far = np.maximum(bbox_xywh[:, :2] + bbox_xywh[:, 2:], 1.0)  # (N, 2) x, y
    if keypoints2d is not None and keypoints2d.shape[1]:
        kp = np.where(keypoints2d[..., 2:3] > 0, keypoints2d[..., :2], 0.0).max(axis=1)  # (N, 2)
        far = np.maximum(far, kp)
    return np.ceil(far[:, ::-1] + 1).astype(np.int32)


def open_for_export(store: Any, out: str | os.PathLike, overwrite: bool, extra: Sequence[str] = ()
                    ) -> tuple[Any, list[str]]:
    """Check the output (an ``.npz``; existing only with ``overwrite``) before any work, open
    ``store`` (a path or an opened store) and refuse an empty one. Returns the store and the
    fields to read: ``extra`` plus the root-relative flag column when the store has it."""
    from hmr.core.schema import open_store

    out = Path(out)
    if out.suffix != ".npz":
        raise HmrError("output must be an .npz file", path=out)
    if out.exists() and not overwrite:
        raise HmrError("output exists (overwrite not allowed)", path=out)
    store = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    if len(store) == 0:
        raise HmrError("store is empty: nothing to export", path=store.path)
    return store, [*extra, *([ROOT_RELATIVE_COLUMN] if ROOT_RELATIVE_COLUMN in store.fields else [])]


def parse_hw(text: str) -> tuple[int, int]:
    """'H,W' -> (H, W), both positive."""
    try:
        h, w = (int(v) for v in str(text).split(","))
    except ValueError:
        raise HmrError(f"image_hw={text!r}: expected H,W in pixels") from None
    if h <= 0 or w <= 0:
        raise HmrError(f"image_hw={text!r}: height and width must be positive")
    return h, w
