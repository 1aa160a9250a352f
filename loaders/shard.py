"""Schema store → WebDataset tar shards of pre-cropped people.

Layout of one shard set (``OUT/<name>/``)::

    shard-000000.tar        WebDataset tar: members <key>.jpg, <key>.json, <key>.kp.npy
    shard-000000.tar.json   sidecar written after the tar: count, bytes, sha256, rows, config
    index.json              the list of shards (names, counts, bytes, sha256) + crop settings

One sample (key ``<name>_<store index, 9 digits>``: :mod:`hmr.core.schema.sample_keys`), three
members (each tar member costs a 512-byte header and parsing time, so labels are packed):

- ``jpg``     square crop, ``crop_size`` px, RGB JPEG; covers the person's square box
              (``max(w, h) × bbox_scale``) times ``context`` so augmentations have pixels
- ``kp.npy``  (K, 7) float32: 2D x, y in crop pixels, 2D confidence | 3D x, y, z in metres
              (camera frame, unchanged by cropping), 3D confidence
- ``json``    trace keys (dataset, split, index, source_key, image_path), flags, gender,
              SMPL parameters (``smpl_global_orient`` 3, ``smpl_body_pose`` 69, ``smpl_betas`` 10,
              ``smpl_transl`` 3), ``crop_to_image`` (2×3), ``image_hw``, ``cam_intrinsics`` in
              crop pixels (``K_crop = A·K``) or null, ``box_center_px`` / ``box_side_px`` in the crop.

No member is a pickle; the streaming loader decodes them with ``allow_pickle=False``.
Shards are written under a temporary name and renamed; a rerun skips every shard whose
sidecar matches the plan, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hmr.core import crop as geo
from hmr.core.crop import DEFAULT_CROP_SCALE
from hmr.core.errors import HmrError, SchemaError
from hmr.core.schema.sample_keys import safe_key, sample_key, set_name
from hmr.core.utils.atomic import atomic_path, atomic_write_text

INDEX_NAME = "index.json"
INDEX_FORMAT = "hmrkit-shards"
INDEX_VERSION = 1
SMPL_FIELDS = ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl")
KP_COLUMNS = ("x_px", "y_px", "conf2d", "x_m", "y_m", "z_m", "conf3d")


@dataclass
class ShardConfig:
    crop_size: int = 256
    bbox_scale: float = DEFAULT_CROP_SCALE  # HMR / SPIN "rescale": box side = max(w, h) × 1.2
    context: float = 1.25            # the stored crop covers context × the box side
    jpeg_quality: int = 95
    samples_per_shard: int | None = None   # None: derived from max_shard_bytes
    max_shard_bytes: int = 1_000_000_000
    image_root: str | None = None    # overrides the store's image_root
    name: str | None = None          # shard-set name (default "<dataset>-<split>")
    workers: int = 1
    strict: bool = False             # raise on an unreadable image instead of skipping it

    def crop_settings(self) -> dict[str, Any]:
        return {"crop_size": self.crop_size, "bbox_scale": self.bbox_scale, "context": self.context,
                "jpeg_quality": self.jpeg_quality}


@dataclass
class ShardJob:
    store: str
    image_root: str
    out_dir: str
    shard_index: int
    start: int
    stop: int
    name: str
    config: dict[str, Any]
    strict: bool = False


@dataclass
class ShardResult:
    name: str
    num_samples: int
    bytes: int
    sha256: str
    rows: tuple[int, int]
    skipped: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# One sample
# --------------------------------------------------------------------------------------
def person_box(cols: dict[str, np.ndarray], i: int) -> np.ndarray | None:
    """(4,) xywh box of row ``i``: the stored box, else the labelled keypoints' extent."""
    box = np.asarray(cols["bbox_xywh"][i], dtype=np.float64)
    if box[2] > 1 and box[3] > 1:
        return box
    kp = cols["keypoints2d"][i]
    vis = kp[kp[:, 2] > 0, :2]
    if len(vis) < 2:
        return None
    lo, hi = vis.min(0), vis.max(0)
    if np.any(hi - lo <= 1):
        return None
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def crop_affine(box_xywh: np.ndarray, cfg: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Image → stored crop affine (2, 3) and the person box side in crop pixels."""
    center, side = geo.box_to_square(box_xywh, cfg["bbox_scale"])
    affine = geo.square_affine(center, side * cfg["context"], cfg["crop_size"])
    return affine, cfg["crop_size"] / cfg["context"]


def encode_sample(image_bgr: np.ndarray, cols: dict[str, np.ndarray], i: int, key: str,
                  box: np.ndarray, cfg: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
    """Crop row ``i`` of a column block and return its WebDataset members (bytes)."""
    size = cfg["crop_size"]
    affine, box_side = crop_affine(box, cfg)
    crop = geo.warp(image_bgr, affine, size)
    ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(cfg["jpeg_quality"])])
    if not ok:
        raise HmrError("JPEG encoding failed", record=key)
    kp2 = np.asarray(cols["keypoints2d"][i], dtype=np.float32).copy()  # (K, 3)
    kp2[:, :2] = geo.apply_points(affine, kp2[:, :2])
    kp2[kp2[:, 2] <= 0, :2] = 0.0
    kp = np.concatenate([kp2, cols["keypoints3d"][i].astype(np.float32)], axis=1)  # (K, 7)
    has_k = bool(cols["has_intrinsics"][i])
    k_crop = (geo.to3x3(affine) @ cols["cam_intrinsics"][i].astype(np.float64)).tolist() if has_k else None
    meta = {
        **trace, "source_key": str(cols["source_key"][i]), "image_path": str(cols["image_path"][i]),
        "image_hw": [int(v) for v in cols["image_hw"][i]],
        "crop_to_image": geo.invert(affine).tolist(), "cam_intrinsics": k_crop,
        "has_smpl": bool(cols["has_smpl"][i]), "has_smpl_transl": bool(cols["has_smpl_transl"][i]),
        "smpl_source": int(cols["smpl_source"][i]), "gender": int(cols["gender"][i]),
        # float32 → JSON (shortest repr of the float64 value) → float32 is exact.
        **{name: [float(v) for v in cols[name][i]] for name in SMPL_FIELDS},
        "box_center_px": [size / 2.0 - 0.5, size / 2.0 - 0.5], "box_side_px": box_side,
        "subject_id": str(cols["subject_id"][i]), "sequence": str(cols["sequence"][i]),
        "frame_index": int(cols["frame_index"][i]), "person_id": int(cols["person_id"][i]),
    }
    return {"__key__": key, "jpg": jpg.tobytes(), "json": json.dumps(meta).encode(), "kp.npy": _npy(kp)}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


class _ImageCache:
    """The last decoded image: consecutive rows often share one (several people per image)."""

    def __init__(self, root: Path):
        self.root, self.path, self.image = root, None, None

    def get(self, rel: str) -> np.ndarray | None:
        path = self.root / rel
        if path != self.path:
            self.path, self.image = path, cv2.imread(str(path), cv2.IMREAD_COLOR)
        return self.image


# --------------------------------------------------------------------------------------
# One shard
# --------------------------------------------------------------------------------------
def write_shard(job: ShardJob) -> ShardResult:
    """Write rows [start, stop) of a store into one tar (atomically) plus its sidecar."""
    import webdataset as wds

    from hmr.core.schema import open_store

    store = open_store(job.store)  # opened here, in the worker process (zarr + fork)
    cols = store.columns(job.start, job.stop)
    cache = _ImageCache(Path(job.image_root))
    trace = {"dataset": store.dataset, "split": store.split}
    out = Path(job.out_dir) / shard_filename(job.shard_index)
    skipped, count = [], 0
    with atomic_path(out) as tmp:
        # A fixed integer member mtime makes shards byte-reproducible (same input → same
        # sha256); a float mtime would also add a PAX header to every member (slower reads).
        with open(tmp, "wb") as fh, wds.TarWriter(fh, encoder=False, mtime=0) as writer:
            for i in range(job.stop - job.start):
                index = job.start + i
                reason, members = _sample_members(cols, i, index, job, cache, trace)
                if reason:
                    if job.strict:
                        raise HmrError(reason, path=job.store, record=index)
                    skipped.append({"index": index, "reason": reason})
                    continue
                writer.write(members)
                count += 1
    digest = _sha256(out)
    result = ShardResult(out.name, count, out.stat().st_size, digest, (job.start, job.stop), skipped)
    atomic_write_text(_sidecar(out), json.dumps({**asdict(result), "plan": _plan_key(job)}))
    return result


def _sample_members(cols, i, index, job, cache, trace) -> tuple[str | None, dict | None]:
    box = person_box(cols, i)
    if box is None:
        return "no usable box (bbox_xywh empty and < 2 labelled keypoints)", None
    rel = str(cols["image_path"][i])
    image = cache.get(rel)
    if image is None:
        return f"cannot read image {Path(job.image_root) / rel}", None
    key = sample_key(job.name, index)
    return None, encode_sample(image, cols, i, key, box, job.config, {**trace, "index": index})


def shard_filename(index: int) -> str:
    return f"shard-{index:06d}.tar"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _plan_key(job: ShardJob) -> dict[str, Any]:
    return {"store": job.store, "rows": [job.start, job.stop], "config": job.config}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _finished(job: ShardJob) -> ShardResult | None:
    out = Path(job.out_dir) / shard_filename(job.shard_index)
    side = _sidecar(out)
    if not (out.exists() and side.exists()):
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("plan") != json.loads(json.dumps(_plan_key(job))) or meta.get("bytes") != out.stat().st_size:
        return None
    return ShardResult(meta["name"], meta["num_samples"], meta["bytes"], meta["sha256"],
                       tuple(meta["rows"]), meta.get("skipped", []))


# --------------------------------------------------------------------------------------
# A whole store
# --------------------------------------------------------------------------------------
def plan_shards(num_samples: int, samples_per_shard: int) -> list[tuple[int, int]]:
    """Contiguous row ranges; never an empty shard."""
    step = max(1, int(samples_per_shard))
    return [(a, min(a + step, num_samples)) for a in range(0, num_samples, step)]


def estimate_samples_per_shard(store, image_root: Path, cfg: ShardConfig, probe: int = 16) -> int:
    """How many samples fit in ``max_shard_bytes``, from the encoded size of a few samples."""
    n = min(probe, len(store))
    cols = store.columns(0, n)
    cache = _ImageCache(image_root)
    sizes = []
    for i in range(n):
        box = person_box(cols, i)
        image = cache.get(str(cols["image_path"][i])) if box is not None else None
        if image is None:
            continue
        members = encode_sample(image, cols, i, "probe", box, cfg.crop_settings(), {})
        sizes.append(sum(len(v) + 512 for k, v in members.items() if k != "__key__") + 512)
    per_sample = float(np.mean(sizes)) if sizes else 64_000.0
    return max(1, int(cfg.max_shard_bytes // per_sample))


def shard_store(store_path: str | os.PathLike, out_dir: str | os.PathLike,
                cfg: ShardConfig | None = None, progress: bool = True) -> Path:
    """Shard one store into ``out_dir/<name>/``; returns the shard-set folder.

    Parallel over shards (``cfg.workers`` processes, spawned: zarr must be opened after the
    process starts), resumable (finished shards are skipped), index written last.
    """
    from tqdm import tqdm

    from hmr.core.schema import open_store

    cfg = cfg or ShardConfig()
    store = open_store(store_path)
    image_root = Path(cfg.image_root if cfg.image_root is not None else store.attrs.get("image_root", ""))
    name = safe_key(cfg.name or set_name(store.dataset, store.split))
    set_dir = Path(out_dir) / name
    set_dir.mkdir(parents=True, exist_ok=True)
    if len(store) == 0:
        raise SchemaError("store has no samples: nothing to shard", path=store_path)
    per_shard = cfg.samples_per_shard or estimate_samples_per_shard(store, image_root, cfg)
    jobs = [ShardJob(str(Path(store_path).resolve()), str(image_root), str(set_dir), k, a, b, name,
                     cfg.crop_settings(), cfg.strict)
            for k, (a, b) in enumerate(plan_shards(len(store), per_shard))]
    results: dict[int, ShardResult] = {}
    todo = []
    for job in jobs:
        done = _finished(job)
        if done is not None:
            results[job.shard_index] = done
        else:
            todo.append(job)
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=len(results), desc=f"shard {name}", unit="shard",
               disable=not progress)
    if cfg.workers <= 1 or len(todo) <= 1:
        for job in todo:
            results[job.shard_index] = write_shard(job)
            bar.update()
    else:
        with ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(write_shard, job): job for job in todo}
            for fut in as_completed(futures):
                results[futures[fut].shard_index] = fut.result()
                bar.update()
    bar.close()
    _remove_unplanned(set_dir, len(jobs))
    _write_index(set_dir, store, name, cfg, [results[k] for k in sorted(results)],
                 time.perf_counter() - t0, len(todo))
    return set_dir


def _remove_unplanned(set_dir: Path, num_shards: int) -> None:
    """Shards of an earlier, longer plan would linger next to the index: remove them."""
    for path in set_dir.glob("shard-*.tar*"):
        stem = path.name.split(".", 1)[0]
        if stem[len("shard-"):].isdigit() and int(stem[len("shard-"):]) >= num_shards:
            path.unlink()


def shard_stores(store_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                 cfg: ShardConfig | None = None, progress: bool = True) -> list[Path]:
    """Shard several stores; refuses two stores that would land in the same shard set."""
    from hmr.core.schema import open_store

    cfg = cfg or ShardConfig()
    if cfg.name and len(store_paths) > 1:
        raise HmrError("a shard-set name can only be given for one store")
    names: dict[str, str] = {}
    for path in store_paths:
        store = open_store(path)
        name = safe_key(cfg.name or set_name(store.dataset, store.split))
        if name in names:
            raise HmrError(f"stores {names[name]} and {path} both shard into '{name}': "
                           "shard them separately with distinct --name", path=path)
        names[name] = str(path)
    return [shard_store(path, out_dir, cfg, progress) for path in store_paths]


def _write_index(set_dir: Path, store, name: str, cfg: ShardConfig, results: Sequence[ShardResult],
                 seconds: float, written: int) -> None:
    index = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "name": name,
        "dataset": store.dataset, "split": store.split, "store": str(Path(store.path).resolve()),
        "store_num_samples": len(store), "keypoint_convention": store.attrs["keypoint_convention"],
        "num_keypoints": store.num_keypoints, "kp_columns": list(KP_COLUMNS), **cfg.crop_settings(),
        "num_samples": sum(r.num_samples for r in results),
        "shards": [{"name": r.name, "num_samples": r.num_samples, "bytes": r.bytes, "sha256": r.sha256,
                    "rows": list(r.rows)} for r in results],
        "skipped": [s for r in results for s in r.skipped],
        "last_run": {"seconds": round(seconds, 3), "shards_written": written},
    }
    atomic_write_text(set_dir / INDEX_NAME, json.dumps(index, indent=1))


@dataclass(frozen=True)
class ShardSet:
    """A shard set as its index describes it."""

    root: Path
    name: str
    dataset: str
    split: str
    num_samples: int
    num_keypoints: int
    keypoint_convention: str
    shards: tuple[dict[str, Any], ...]
    index: dict[str, Any]

    @property
    def urls(self) -> list[str]:
        return [str(self.root / s["name"]) for s in self.shards]


def load_shard_set(path: str | os.PathLike) -> ShardSet:
    """Open a shard set from its folder or its ``index.json``."""
    p = Path(path)
    index_path = p / INDEX_NAME if p.is_dir() else p
    if not index_path.exists():
        raise HmrError("no shard index here (run 'hmr shard' first)", path=index_path)
    try:
        index = json.loads(index_path.read_text())
    except ValueError as exc:
        raise HmrError(f"shard index is not JSON ({exc})", path=index_path) from None
    if index.get("format") != INDEX_FORMAT:
        raise HmrError(f"not a {INDEX_FORMAT} index", path=index_path)
    return ShardSet(index_path.parent, index["name"], index["dataset"], index["split"],
                    int(index["num_samples"]), int(index["num_keypoints"]), index["keypoint_convention"],
                    tuple(index["shards"]), index)


def verify_shard_set(path: str | os.PathLike, check_digest: bool = True) -> list[str]:
    """Problems with a shard set (missing / resized / altered / miscounted shards); [] if none."""
    import tarfile

    sset = load_shard_set(path)
    problems = []
    for s in sset.shards:
        f = sset.root / s["name"]
        if not f.exists():
            problems.append(f"{f}: missing")
            continue
        if f.stat().st_size != s["bytes"]:
            problems.append(f"{f}: {f.stat().st_size} bytes, index says {s['bytes']} (truncated?)")
            continue
        if check_digest and _sha256(f) != s["sha256"]:
            problems.append(f"{f}: sha256 differs from the index")
            continue
        try:
            with tarfile.open(f) as tf:
                keys = {m.name.split(".", 1)[0] for m in tf.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError) as exc:
            problems.append(f"{f}: unreadable tar ({exc})")
            continue
        if len(keys) != s["num_samples"]:
            problems.append(f"{f}: {len(keys)} samples, index says {s['num_samples']}")
    return problems
