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
:data:`hmr.core.schema.FIELD_NAMES`; absent fields take their defaults; keypoints already in
the superset convention, ``image_path`` relative to ``root``). A record that cannot be
converted is yielded as a :class:`BadRecord` (file + record + reason): the driver stops
on it, or with ``--skip-bad`` skips it and lists it in a report. A file that cannot be read
at all raises :class:`~hmr.core.errors.DatasetFormatError`. Optionally
``raw_files(root, split) -> list[Path]`` lists the files read (for the output manifest).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hmr.core.errors import DatasetFormatError, HmrError, SchemaError
from hmr.core.schema import FIELD_BY_NAME, StoreWriter
from hmr.core.utils.atomic import atomic_write_text


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
    _check_manifest_exists(module)
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
            if skipped:
                atomic_write_text(report_path, json.dumps([asdict(b) for b in skipped], indent=1, default=str))
            raise DatasetFormatError(f"no samples found for split '{split}'"
                                     + (f" ({len(skipped)} skipped, see {report_path})" if skipped else ""),
                                     path=root)
    if skipped:
        atomic_write_text(report_path, json.dumps([asdict(b) for b in skipped], indent=1, default=str))
    else:
        report_path.unlink(missing_ok=True)
    manifest_path = _write_output_manifest(module, root, store_path, split, writer.num_samples, argv)
    return ConversionResult(store_path, writer.num_samples, skipped, report_path if skipped else None,
                            manifest_path)


def _check_manifest_exists(module: ModuleType) -> None:
    """Fail before converting when the converter names a source manifest we do not have
    (the output manifest records its digest, so it must exist)."""
    name = getattr(module, "MANIFEST", None)
    if not name:
        return
    try:
        from manifests import manifest_location
    except ImportError:
        return
    try:
        manifest_location(name)
    except FileNotFoundError as exc:
        raise HmrError(f"converter '{module.NAME}' reads manifest '{name}', which is missing: {exc}") from None


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
    from hmr.core.schema import SCHEMA_VERSION

    return write_output_manifest(
        store, converter=module.__name__, converter_version=str(module.VERSION),
        schema_version=SCHEMA_VERSION, source_manifest=getattr(module, "MANIFEST", None),
        raw_files=[_relative_to_root(Path(p), root) for p in raw],
        raw_root=root, counts={split: count}, argv=argv if argv is not None else sys.argv)


def _relative_to_root(path: Path, root: Path) -> Path:
    """``path`` relative to the (resolved) ``root``; resolving only paths that are not plainly
    under it (resolve() stats every component: seconds for 12,000 image paths)."""
    if not path.is_absolute():
        return path
    if ".." not in path.parts and path.is_relative_to(root):
        return path.relative_to(root)
    return path.resolve().relative_to(root)


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
    from hmr.core.keypoints import convert_keypoints

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
    from hmr.core.utils.safe_pickle import load

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


# --------------------------------------------------------------------------------------
# Small shared helpers (appended for the 2D / EFT / SPIN-fit converters)
# --------------------------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def get_option(options: ConvertOptions, name: str, default: Any) -> Any:
    """Converter option ``name`` from ``options.extra`` (``-o name=value`` on the CLI), cast to
    the type of ``default`` (bool accepts 1/0/true/false/yes/no). Bad values raise HmrError."""
    if name not in options.extra:
        return default
    raw = options.extra[name]
    if default is None or isinstance(raw, type(default)) and not isinstance(default, bool):
        return raw
    text = str(raw).strip().lower()
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(text)
        return type(default)(raw)
    except (TypeError, ValueError):
        raise HmrError(f"option {name}={raw!r}: expected a {type(default).__name__}") from None


def _probe_image(path: str) -> tuple[int, int] | str:
    """(height, width) of one image, or the reason it cannot be read (picklable for pools)."""
    try:
        return image_size_hw(Path(path))
    except DatasetFormatError as exc:
        return exc.message


POOL_MIN_SECONDS_PER_IMAGE = 5e-4  # header reads faster than this stay in-process


def attach_image_sizes(items: Iterable[Any], path_of: Callable[[Any], str | None], *,
                       workers: int | None = None, chunk: int = 512
                       ) -> Iterator[tuple[Any, tuple[int, int] | str | None]]:
    """Pair each item with its image's (height, width), or an error message, or None when
    ``path_of(item)`` is None (item needs no image / is a BadRecord).

    Header reads only (no decode), ``chunk`` items at a time, so memory does not grow with
    the number of items and an image shared by several persons is read once per chunk.
    The first chunk is read in this process and timed: a process pool of ``workers`` (None:
    all cores; 1: never) starts only if a header read costs more than
    :data:`POOL_MIN_SECONDS_PER_IMAGE` (slow or network disks). On a local disk a header
    read takes ~0.2 ms, less than a pool's start-up and messaging would save.
    """
    workers = os.cpu_count() if workers is None else workers
    pool = None
    try:
        it = iter(items)
        while True:
            block = [x for _, x in zip(range(chunk), it)]
            if not block:
                return
            paths = [path_of(x) for x in block]
            unique = sorted({p for p in paths if p is not None})
            start = time.perf_counter()
            sizes = pool.map(_probe_image, unique, chunksize=16) if pool else list(map(_probe_image, unique))
            slow = unique and (time.perf_counter() - start) / len(unique) > POOL_MIN_SECONDS_PER_IMAGE
            if pool is None and workers > 1 and slow and len(block) == chunk:
                import multiprocessing as mp

                pool = mp.get_context("spawn").Pool(workers)
            found = dict(zip(unique, sizes))
            for x, p in zip(block, paths):
                yield x, (found[p] if p is not None else None)
    finally:
        if pool is not None:
            pool.terminate()


def rotmat_to_axis_angle(rotmats: np.ndarray, *, atol: float = 1e-3) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) radians.

    Matrices must be rotations within ``atol`` (orthonormal, det +1): a fit file with a
    reflection or a scaled matrix is an error, not something to silently project.
    Angles near pi are handled (scipy's quaternion path, not the trace formula).
    """
    from scipy.spatial.transform import Rotation

    mats = np.asarray(rotmats, dtype=np.float64)
    if mats.shape[-2:] != (3, 3):
        raise ValueError(f"expected (..., 3, 3) rotation matrices, got {mats.shape}")
    flat = mats.reshape(-1, 3, 3)
    if not np.isfinite(flat).all():
        raise ValueError("rotation matrices contain NaN or inf")
    gram = np.einsum("nji,njk->nik", flat, flat) - np.eye(3)
    if np.abs(gram).max(initial=0.0) > atol or (np.linalg.det(flat) <= 0).any():
        raise ValueError("matrices are not rotations (not orthonormal or det <= 0)")
    return Rotation.from_matrix(flat).as_rotvec().reshape(*mats.shape[:-2], 3)


class ImageProber:
    """One process pool for many image-header probes (converters that walk many sequences).

    ``with ImageProber(workers) as probe: probe(paths)`` -> ordered iterator of
    (height, width) or an error message per path, like :func:`attach_image_sizes` does per chunk, but the
    pool starts once and is reused, so thousands of sequences do not each pay a pool
    start-up. ``workers=1`` probes in this process.
    """

    def __init__(self, workers: int | None = None):
        self.workers = os.cpu_count() if workers is None else workers
        self._pool: Any = None

    def __enter__(self) -> Callable[[Iterable[Any]], Iterator[Any]]:
        if self.workers > 1:
            import multiprocessing as mp

            self._pool = mp.get_context("spawn").Pool(self.workers)
        return self.probe

    def probe(self, paths: Iterable[Any]) -> Iterator[Any]:
        names = [str(p) for p in paths]
        if self._pool is None:
            return map(_probe_image, names)
        return self._pool.imap(_probe_image, names, chunksize=64)

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def merge_keypoints(*arrays: np.ndarray) -> np.ndarray:
    """Merge superset keypoint arrays (K, C): each slot takes the first array's value whose
    confidence (last column) is > 0; slots no array labels stay zero."""
    out = np.zeros_like(np.asarray(arrays[0], dtype=np.float32))
    for arr in arrays:
        free = (out[..., -1] <= 0) & (np.asarray(arr)[..., -1] > 0)
        out[free] = np.asarray(arr, dtype=np.float32)[free]
    return out
