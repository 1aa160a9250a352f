"""Schema v1: the one record format every converter writes and every reader reads.

One sample = one person in one image. A store holds N samples as columns: one array per
field, first axis N. ``K`` is the number of joints of the keypoint convention the store
declares (the superset, see :mod:`hmr.core.keypoints`).

Coordinates and units
---------------------
- 2D keypoints and boxes are in **pixels of the original image**, x right, y down, pixel
  centres at integer coordinates (the top-left pixel's centre is (0, 0)).
- 3D keypoints and SMPL translation are in **metres, in the camera frame** (x right, y down,
  z forward: OpenCV's camera convention), *not* root-centred: root-relative values are
  derived at training/evaluation time, so the camera model stays usable.
- SMPL rotations are **axis-angle** (radians); ``smpl_global_orient`` is the root rotation
  in the camera frame.
- Confidence is in [0, 1]; 0 means "not annotated". It is the last column of the keypoint
  arrays.

Absent information is never NaN: every optional block has a ``has_*`` flag (or confidence
0) and holds zeros when absent, so NaN/inf anywhere is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 1

# Where SMPL parameters came from. Stored as uint8 codes; the names are written into the
# store's attributes too so a reader never needs this table to interpret a store.
SMPL_SOURCES: tuple[str, ...] = ("none", "ground-truth", "mosh", "eft", "spin-fit", "smplify", "smplx-transfer")
GENDERS: tuple[str, ...] = ("neutral", "male", "female")

# Per-sample shape placeholders resolved per store.
K = "K"


@dataclass(frozen=True)
class Field:
    """One column of a store: per-sample shape (``K`` = keypoint count), dtype, meaning."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    description: str
    unit: str = ""
    #: values must be finite (floats only)
    finite: bool = True

    def sample_shape(self, num_keypoints: int) -> tuple[int, ...]:
        return tuple(num_keypoints if s == K else int(s) for s in self.shape)

    @property
    def is_string(self) -> bool:
        return self.dtype == "str"


FIELDS: tuple[Field, ...] = (
    Field("image_path", (), "str", "image file, relative to the store's image_root"),
    Field("image_hw", (2,), "int32", "original image (height, width)", "px"),
    Field("bbox_xywh", (4,), "float32", "person box: top-left x, y, width, height", "px"),
    Field("keypoints2d", (K, 3), "float32", "2D keypoints: x, y, confidence", "px"),
    Field("keypoints3d", (K, 4), "float32", "3D keypoints in the camera frame: x, y, z, confidence", "m"),
    Field("has_smpl", (), "bool", "SMPL parameters present"),
    Field("smpl_source", (), "uint8", "origin of the SMPL parameters, index into SMPL_SOURCES"),
    Field("smpl_global_orient", (3,), "float32", "root rotation (axis-angle) in the camera frame", "rad"),
    Field("smpl_body_pose", (69,), "float32", "23 body-joint rotations (axis-angle)", "rad"),
    Field("smpl_betas", (10,), "float32", "shape coefficients"),
    Field("has_smpl_transl", (), "bool", "smpl_transl is known"),
    Field("smpl_transl", (3,), "float32", "SMPL translation in the camera frame", "m"),
    Field("gender", (), "uint8", "index into GENDERS (0 = neutral/unknown)"),
    Field("has_intrinsics", (), "bool", "cam_intrinsics is known"),
    Field("cam_intrinsics", (3, 3), "float32", "pinhole K (fx, fy, cx, cy)", "px"),
    Field("cam_distortion", (5,), "float32", "OpenCV distortion k1, k2, p1, p2, k3 (zeros: none)"),
    Field("has_extrinsics", (), "bool", "cam_extrinsics is known"),
    Field("cam_extrinsics", (4, 4), "float32", "world-to-camera rigid transform (translation in m)"),
    Field("subject_id", (), "str", "subject / actor identifier ('' if unknown)"),
    Field("sequence", (), "str", "sequence or video name ('' if none)"),
    Field("frame_index", (), "int32", "frame number in the sequence (-1 if none)"),
    Field("person_id", (), "int32", "person / track id in the image or sequence (-1 if unknown)"),
    Field("source_key", (), "str", "key of the raw record (annotation id, file:row, ...) for tracing"),
)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)

# Extra per-sample columns a converter may add (e.g. per-sample fit errors). Names start
# with this prefix, first axis N, numeric dtypes or str; they are stored and validated for
# length and finiteness only.
EXTRA_PREFIX = "extra_"


def default_value(field: Field, num_keypoints: int) -> np.ndarray | str | int | bool:
    """The value a field takes when the source does not provide it."""
    if field.is_string:
        return ""
    if field.name in ("frame_index", "person_id"):
        return np.int32(-1)
    return np.zeros(field.sample_shape(num_keypoints), dtype=field.dtype)


def numpy_dtype(field: Field) -> np.dtype:
    return np.dtype(object) if field.is_string else np.dtype(field.dtype)


def empty_columns(num_samples: int, num_keypoints: int) -> dict[str, np.ndarray]:
    """Columns of ``num_samples`` default samples (strings as ``str`` object arrays)."""
    cols: dict[str, np.ndarray] = {}
    for f in FIELDS:
        if f.is_string:
            cols[f.name] = np.full(num_samples, "", dtype=object)
        else:
            fill = -1 if f.name in ("frame_index", "person_id") else 0
            cols[f.name] = np.full((num_samples, *f.sample_shape(num_keypoints)), fill, dtype=f.dtype)
    return cols
