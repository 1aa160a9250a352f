"""Schema v1: fields, validation, and the zarr / npz containers.

>>> from hmr.core.schema import StoreWriter, open_store
>>> with StoreWriter("out/coco_train.zarr", dataset="coco", split="train",
...                  converter="converters.coco", converter_version="1") as w:
...     w.add({"image_path": "train2014/x.jpg", "image_hw": (480, 640), ...})
>>> store = open_store("out/coco_train.zarr"); store[7]["keypoints2d"].shape   # (K, 3)
"""

from hmr.core.schema.fields import (
    EXTRA_PREFIX, FIELD_BY_NAME, FIELD_NAMES, FIELDS, GENDERS, SCHEMA_VERSION, SMPL_SOURCES, Field,
    default_value, empty_columns,
)
from hmr.core.schema.store import (
    DEFAULT_CHUNK_ROWS, SampleStore, StoreWriter, copy_store, open_store, store_format,
)
from hmr.core.schema.validate import validate_attrs, validate_columns

__all__ = [
    "EXTRA_PREFIX", "FIELD_BY_NAME", "FIELD_NAMES", "FIELDS", "GENDERS", "SCHEMA_VERSION",
    "SMPL_SOURCES", "Field", "default_value", "empty_columns", "DEFAULT_CHUNK_ROWS", "SampleStore",
    "StoreWriter", "copy_store", "open_store", "store_format", "validate_attrs", "validate_columns",
]
