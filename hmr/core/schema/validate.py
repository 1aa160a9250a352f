"""Checks a block of samples against schema v1.

Every error names the field and the (global) sample index of the first offending sample,
so a converter bug or a bad raw record can be found in one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hmr.core.errors import ConventionError, SchemaError
from hmr.core.schema.fields import (
    EXTRA_PREFIX, FIELD_BY_NAME, FIELDS, GENDERS, SCHEMA_VERSION, SMPL_SOURCES, Field,
)

REQUIRED_ATTRS = ("schema_version", "dataset", "split", "keypoint_convention", "num_keypoints",
                  "converter", "converter_version", "image_root")


def _first_bad(mask: np.ndarray) -> int:
    """Index of the first sample for which ``mask`` (N, ...) has a True anywhere."""
    per_sample = mask.reshape(mask.shape[0], -1).any(axis=1)
    return int(np.argmax(per_sample))


def validate_attrs(attrs: Mapping[str, Any], *, path: object | None = None) -> None:
    """Store-level attributes: present, known schema version, known convention."""
    for key in REQUIRED_ATTRS:
        if key not in attrs:
            raise SchemaError(f"missing store attribute '{key}'", path=path)
    if int(attrs["schema_version"]) != SCHEMA_VERSION:
        raise SchemaError(f"schema version {attrs['schema_version']} is not supported "
                          f"(this hmrkit reads version {SCHEMA_VERSION})", path=path)
    from hmr.core.keypoints import get_convention  # local: keypoints is a sibling foundation module

    try:
        conv = get_convention(str(attrs["keypoint_convention"]))
    except ConventionError as exc:
        raise SchemaError(f"unknown keypoint convention: {exc.message}", field="keypoint_convention",
                          path=path) from None
    if conv.num_joints != int(attrs["num_keypoints"]):
        raise SchemaError(f"convention '{conv.name}' has {conv.num_joints} joints but the store "
                          f"declares {attrs['num_keypoints']}", field="num_keypoints", path=path)


def _check_field(field: Field, values: np.ndarray, n: int, num_keypoints: int, offset: int,
                 path: object | None) -> None:
    if len(values) != n:
        raise SchemaError(f"has {len(values)} rows, expected {n}", field=field.name, path=path)
    if field.is_string:
        if values.dtype.kind not in ("U", "O", "T"):
            raise SchemaError(f"dtype {values.dtype} is not a string dtype", field=field.name, path=path)
        if values.dtype.kind == "O":
            bad = np.array([not isinstance(v, str) for v in values], dtype=bool)
            if bad.any():
                i = int(np.argmax(bad))
                raise SchemaError(f"value {values[i]!r} is not a str", field=field.name,
                                  index=offset + i, path=path)
        return
    expected = (n, *field.sample_shape(num_keypoints))
    if values.shape != expected:
        raise SchemaError(f"shape {values.shape} != expected {expected}", field=field.name, path=path)
    if values.dtype != np.dtype(field.dtype):
        raise SchemaError(f"dtype {values.dtype} != expected {field.dtype}", field=field.name, path=path)
    if values.dtype.kind == "f" and n:
        bad = ~np.isfinite(values)
        if bad.any():
            raise SchemaError("contains NaN or inf", field=field.name, index=offset + _first_bad(bad),
                              path=path)


def _check_values(cols: Mapping[str, np.ndarray], offset: int, path: object | None) -> None:
    def fail(name: str, mask: np.ndarray, message: str) -> None:
        if mask.any():
            raise SchemaError(message, field=name, index=offset + _first_bad(mask), path=path)

    for name in ("keypoints2d", "keypoints3d"):
        conf = cols[name][..., -1]
        fail(name, (conf < 0) | (conf > 1), "confidence outside [0, 1]")
    fail("smpl_source", cols["smpl_source"] >= len(SMPL_SOURCES),
         f"code outside 0..{len(SMPL_SOURCES) - 1} ({', '.join(SMPL_SOURCES)})")
    fail("smpl_source", cols["has_smpl"] != (cols["smpl_source"] > 0),
         "has_smpl and smpl_source disagree (source 'none' iff no SMPL)")
    fail("gender", cols["gender"] >= len(GENDERS), f"code outside 0..{len(GENDERS) - 1}")
    fail("image_hw", cols["image_hw"] <= 0, "image height/width must be positive")
    fail("bbox_xywh", cols["bbox_xywh"][:, 2:] <= 0, "box width/height must be positive")
    empty_path = np.array([len(p) == 0 for p in cols["image_path"]], dtype=bool)
    fail("image_path", empty_path, "empty image path")
    K = cols["cam_intrinsics"]
    fail("cam_intrinsics", cols["has_intrinsics"] & ((K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0)),
         "focal lengths must be positive where has_intrinsics")
    E = cols["cam_extrinsics"]
    fail("cam_extrinsics", cols["has_extrinsics"] & (np.abs(E[:, 3] - [0, 0, 0, 1]).max(axis=1) > 1e-6),
         "last row must be [0, 0, 0, 1] where has_extrinsics")


def validate_columns(cols: Mapping[str, np.ndarray], num_keypoints: int, *, offset: int = 0,
                     path: object | None = None) -> int:
    """Validate a block of samples given as columns; returns its sample count.

    ``offset`` is the global index of the block's first sample (used in error messages).
    """
    missing = [f.name for f in FIELDS if f.name not in cols]
    if missing:
        raise SchemaError(f"missing fields: {', '.join(missing)}", path=path)
    unknown = [k for k in cols if k not in FIELD_BY_NAME and not k.startswith(EXTRA_PREFIX)]
    if unknown:
        raise SchemaError(f"unknown fields: {', '.join(sorted(unknown))} "
                          f"(extra columns must start with '{EXTRA_PREFIX}')", path=path)
    n = len(cols["image_path"])
    for field in FIELDS:
        _check_field(field, np.asarray(cols[field.name]), n, num_keypoints, offset, path)
    for name, values in cols.items():
        if name.startswith(EXTRA_PREFIX):
            values = np.asarray(values)
            if len(values) != n:
                raise SchemaError(f"has {len(values)} rows, expected {n}", field=name, path=path)
            if values.dtype.kind == "f" and n and not np.isfinite(values).all():
                raise SchemaError("contains NaN or inf", field=name,
                                  index=offset + _first_bad(~np.isfinite(values)), path=path)
    if n:
        _check_values(cols, offset, path)
    return n
