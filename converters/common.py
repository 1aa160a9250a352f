"""What every converter shares: the converter contract, the conversion driver, and small
helpers (boxes from keypoints, projection, safe readers for JSON / MATLAB / pickle).

The contract
------------
A converter is one module in :mod:`converters` that declares, at the top::

    NAME = "coco2017"                    # hmr convert NAME
    VERSION = "1"                        # bump when the output changes
    MANIFEST = "coco2017"                # the source manifest in manifests/ it reads
    SPLITS = ("train", "val")
    DESCRIPTION = "COCO 2017 person keypoints (official JSON)"

and one generator::

    def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]

that reads the raw dataset under ``root`` and yields schema-v1 samples (dicts keyed by
:data:`hmr.schema.FIELD_NAMES`; absent fields take their defaults; keypoints already in
the superset convention, ``image_path`` relative to ``root``). A record that cannot be
converted is yielded as a :class:`BadRecord` (file + record + reason): the driver stops
on it, or with ``--skip-bad`` skips it and lists it in a report. A file that cannot be read
at all raises :class:`~hmr.errors.DatasetFormatError`. Optionally
``raw_files(root, split) -> list[Path]`` lists the files read (for the output manifest).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hmr.errors import DatasetFormatError, HmrError, SchemaError
from hmr.schema import FIELD_BY_NAME, StoreWriter
from hmr.utils.atomic import atomic_write_text


@dataclass(frozen=True)
class BadRecord:
    """A raw record that cannot be converted: where it is and why."""

    path: str
    record: object
    message: str

    def error(self) -> DatasetFormatError:
        return DatasetFormatError(self.message, path=self.path, record=self.record)


@dataclass
class ConvertOptions:
    """Options every converter understands; converter-specific ones go in ``extra``."""

    #: worker processes for per-image work (None: all cores)
    workers: int | None = None
    #: check that every image file exists (and read its size where the annotation lacks it)
    check_images: bool = True
    #: body model folder (SMPL files) for converters that regress joints from SMPL
    body_model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConversionResult:
    store: Path
    num_samples: int
    skipped: list[BadRecord]
    skipped_report: Path | None
    output_manifest: Path | None


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def output_path(out: str | os.PathLike, name: str, split: str, fmt: str | None) -> Path:
    """``out`` is a store path (``*.zarr``/``*.npz``) or a folder to put ``NAME_SPLIT.zarr`` in."""
    out = Path(out)
    if out.suffix in (".zarr", ".npz"):
        return out
    return out / f"{name}_{split}.{fmt or 'zarr'}"


def _sample_problem(sample: Mapping[str, Any]) -> str | None:
    """Cheap per-sample check so a bad value is reported with its source record."""
    for name, value in sample.items():
        spec = FIELD_BY_NAME.get(name)
        if spec is None or spec.is_string:
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            return f"field '{name}' contains NaN or inf"
        if name in ("keypoints2d", "keypoints3d") and arr.size:
            conf = arr[..., -1]
            if (conf < 0).any() or (conf > 1).any():
                return f"field '{name}' has confidence outside [0, 1]"
    if "image_path" in sample and not sample["image_path"]:
        return "empty image path"
    return None


def run_conversion(name: str, root: str | os.PathLike, out: str | os.PathLike, *, split: str,
                   fmt: str | None = None, skip_bad: bool = False, overwrite: bool = False,
                   options: ConvertOptions | None = None, argv: list[str] | None = None,
                   progress: bool = True) -> ConversionResult:
    """Convert one split of one dataset into a schema store (+ output manifest)."""
    from converters import get_converter

    module = get_converter(name)
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetFormatError("raw dataset folder does not exist", path=root)
    splits = getattr(module, "SPLITS", ())
    if splits and split not in splits:
        raise HmrError(f"converter '{module.NAME}' has splits {', '.join(splits)}, not '{split}'")
    options = options or ConvertOptions()
    store_path = output_path(out, module.NAME, split, fmt)
    skipped: list[BadRecord] = []
    report_path = store_path.with_name(store_path.name + ".skipped.json")
    added = 0
    with StoreWriter(store_path, dataset=module.NAME, split=split, converter=module.__name__,
                     converter_version=str(module.VERSION), image_root=str(root),
                     overwrite=overwrite) as writer:
        for item in _progress(module.iter_samples(root, split, options), progress, module.NAME, split):
            if not isinstance(item, BadRecord):
                problem = _sample_problem(item)
                if problem is not None:
                    item = BadRecord(str(item.get("source_key", "")) or "?", writer.num_samples, problem)
            if isinstance(item, BadRecord):
                if not skip_bad:
                    raise item.error()
                skipped.append(item)
                continue
            try:
                writer.add(item)
                added += 1
            except SchemaError as exc:
                key = item.get("source_key", "")
                raise DatasetFormatError(f"sample does not fit schema v1: {exc.message}",
                                         path=key or None) from None
        if added == 0:
            raise DatasetFormatError(f"no samples found for split '{split}'", path=root)
    if skipped:
        atomic_write_text(report_path, json.dumps([asdict(b) for b in skipped], indent=1, default=str))
    else:
        report_path.unlink(missing_ok=True)
    manifest_path = _write_output_manifest(module, root, store_path, split, writer.num_samples, argv)
    return ConversionResult(store_path, writer.num_samples, skipped, report_path if skipped else None,
                            manifest_path)


def _progress(items: Iterable[Any], enabled: bool, name: str, split: str) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"convert {name}/{split}", unit=" samples", disable=not enabled,
                file=sys.stderr, mininterval=0.5)


def _write_output_manifest(module: ModuleType, root: Path, store: Path, split: str, count: int,
                           argv: list[str] | None) -> Path | None:
    try:
        from manifests import write_output_manifest
    except ImportError:  # manifests package not installed: the store is still complete
        return None
    raw = list(module.raw_files(root, split)) if hasattr(module, "raw_files") else []
    from hmr.schema import SCHEMA_VERSION

    return write_output_manifest(
        store, converter=module.__name__, converter_version=str(module.VERSION),
        schema_version=SCHEMA_VERSION, source_manifest=getattr(module, "MANIFEST", None),
        raw_files=[Path(p).resolve().relative_to(root) if Path(p).is_absolute() else Path(p) for p in raw],
        raw_root=root, counts={split: count}, argv=argv if argv is not None else sys.argv)


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------
def bbox_from_keypoints(keypoints2d: np.ndarray, *, scale: float = 1.2, min_conf: float = 0.0
                        ) -> np.ndarray | None:
    """Box around the labelled keypoints, enlarged ``scale`` times about its centre.

    keypoints2d: (K, 3) px with confidence. Returns (4,) xywh, or None if fewer than two
    keypoints are labelled (no box can be made).
    """
    valid = keypoints2d[:, 2] > min_conf
    if valid.sum() < 2:
        return None
    xy = keypoints2d[valid, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, size = (lo + hi) / 2, np.maximum(hi - lo, 1.0) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)


def bbox_from_center_scale(center: np.ndarray, scale: float, *, pixel_std: float = 200.0) -> np.ndarray:
    """SPIN/HMR boxes: a square of side ``scale * 200`` px centred at ``center``."""
    side = float(scale) * pixel_std
    return np.array([center[0] - side / 2, center[1] - side / 2, side, side], dtype=np.float32)


def bbox_from_mask(mask: np.ndarray, *, scale: float = 1.0) -> np.ndarray | None:
    """Box around the non-zero pixels of ``mask`` (H, W), scaled about its centre."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    lo = np.array([xs.min(), ys.min()], dtype=np.float64)
    hi = np.array([xs.max() + 1, ys.max() + 1], dtype=np.float64)
    centre, size = (lo + hi) / 2, (hi - lo) * scale
    return np.array([*(centre - size / 2), *size], dtype=np.float32)


def project_points(points_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection. points_cam (..., 3) metres camera frame, intrinsics (3, 3) -> (..., 2) px."""
    uvw = points_cam @ intrinsics.T  # (..., 3)
    return uvw[..., :2] / uvw[..., 2:3]


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)


def to_superset(keypoints: np.ndarray, convention: str) -> np.ndarray:
    """Native keypoints (..., K_src, C) -> superset (..., K, C); missing joints get zeros."""
    from hmr.keypoints import convert_keypoints

    out, _ = convert_keypoints(np.asarray(keypoints, dtype=np.float32), convention, "superset")
    return out


# --------------------------------------------------------------------------------------
# Readers that fail with the file's name
# --------------------------------------------------------------------------------------
def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DatasetFormatError("expected file is missing", path=path)
    return path


def read_json(path: Path) -> Any:
    require_file(path)
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"invalid or truncated JSON at line {exc.lineno} column {exc.colno}: "
                                 f"{exc.msg}", path=path) from None
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"not UTF-8 JSON: {exc}", path=path) from None


def read_mat(path: Path) -> dict[str, Any]:
    """MATLAB files up to v7.2 through scipy. v7.3 files are HDF5: use :func:`open_h5`."""
    import scipy.io

    require_file(path)
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DatasetFormatError("MATLAB v7.3 (HDF5) file: read it with h5py", path=path) from None
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetFormatError(f"unreadable or truncated .mat file: {exc}", path=path) from None


def open_h5(path: Path):
    import h5py

    require_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"unreadable or truncated HDF5 file: {exc}", path=path) from None


def read_pickle(path: Path, **kwargs: Any) -> Any:
    """Dataset pickles through the restricted unpickler (numpy arrays, plain containers)."""
    from hmr.utils.safe_pickle import load

    require_file(path)
    return load(path, **kwargs)


def image_size_hw(path: Path) -> tuple[int, int]:
    """(height, width) of an image from its header (no full decode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DatasetFormatError("image file is missing", path=path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetFormatError(f"unreadable image: {exc}", path=path) from None
    return height, width


def parallel_imap(fn: Callable[[Any], Any], items: Iterable[Any], workers: int | None = None,
                  chunksize: int = 16) -> Iterator[Any]:
    """Ordered map over processes for per-image work (``workers=1``: in this process)."""
    workers = os.cpu_count() if workers is None else workers
    if workers <= 1:
        yield from map(fn, items)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(fn, items, chunksize=chunksize)
