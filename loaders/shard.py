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

What sharding refuses (docs/reliability.md): a second ``hmr shard`` into the same set while
one runs (a lock, ``<set>.lock``); a store whose files differ from its output manifest; an
image that is incomplete (a JPEG must end in its end-of-image marker, a PNG in its IEND
chunk: OpenCV decodes a cut file to a half-grey picture without an error) or unreadable,
which becomes a skipped sample listed in the index with its store row, ``source_key`` and
reason; and a store of which no sample could be sharded (an error, not an empty set).
:func:`loaders.shard_check.verify_shard_set` checks an index against its folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from bisect import bisect_left
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
from hmr.core.schema.marks import (MARKS_FORMAT, MARKS_SCHEMA, MARKS_SUFFIX,  # noqa: F401 (read by hmr shard; re-exported)
                                   marked_excluded, marks_path, read_marks, resolve_marks)
from hmr.core.schema.sample_keys import safe_key, sample_key, set_name
from hmr.core.utils.atomic import atomic_path, atomic_write_text, output_lock, write_error

INDEX_NAME = "index.json"
#: what :func:`load_shard_set` needs from an index (besides ``format``)
INDEX_KEYS = ("name", "dataset", "split", "num_samples", "num_keypoints", "keypoint_convention", "shards")
INDEX_FORMAT = "hmrkit-shards"
INDEX_VERSION = 1
SMPL_FIELDS = ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl")
KP_COLUMNS = ("x_px", "y_px", "conf2d", "x_m", "y_m", "z_m", "conf3d")
MEMBER_EXTENSIONS = ("jpg", "json", "kp.npy")  # the members of one sample, nothing else
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC


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
    part: tuple[int, int] | None = None  # (I, N): write only shards k with k % N == I, no index

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
    excluded: dict[int, str] = field(default_factory=dict)  # store row -> reason (marks file)


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


def image_problem(data: bytes) -> str | None:
    """Why an encoded image file is incomplete, or None. OpenCV decodes a JPEG cut short into
    a picture greyed below the cut, without an error, so the end is checked first: a JPEG
    must end with its end-of-image marker FFD9, a PNG with its IEND chunk (trailing NUL
    padding allowed). Other formats are left to the decoder."""
    if not data:
        return "empty file"
    tail = data[-1024:].rstrip(b"\x00")
    if data[:3] == b"\xff\xd8\xff" and not tail.endswith(b"\xff\xd9"):
        return f"JPEG is truncated ({len(data)} bytes, no end-of-image marker FFD9)"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and not tail.endswith(PNG_END):
        return f"PNG is truncated ({len(data)} bytes, no IEND chunk at the end)"
    return None


class _ImageCache:
    """The last decoded image: consecutive rows often share one (several people per image)."""

    def __init__(self, root: Path):
        self.root, self.path, self.image, self.problem = root, None, None, None

    def get(self, rel: str) -> np.ndarray | None:
        """The decoded image, or None with ``self.problem`` saying why."""
        path = self.root / rel
        if path != self.path:
            self.path, self.image, self.problem = path, None, None
            try:
                data = path.read_bytes()
            except OSError as exc:
                self.problem = f"cannot read image {path} ({exc.strerror or exc})"
                return None
            why = image_problem(data)
            if why is None:
                self.image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                why = None if self.image is not None else "not a decodable image"
            if why is not None:
                self.problem = f"bad image {path}: {why}"
        return self.image


# --------------------------------------------------------------------------------------
# One shard
# --------------------------------------------------------------------------------------
def write_shard(job: ShardJob) -> ShardResult:
    """Write rows [start, stop) of a store into one tar (atomically) plus its sidecar."""
    from hmr.core.schema import open_store

    store = open_store(job.store)  # opened here, in the worker process (zarr + fork)
    cols = store.columns(job.start, job.stop)
    cache = _ImageCache(Path(job.image_root))
    trace = {"dataset": store.dataset, "split": store.split}
    out = Path(job.out_dir) / shard_filename(job.shard_index)
    skipped, count = [], 0
    try:
        count = _write_tar(out, job, cols, cache, trace, skipped)
    except OSError as exc:  # a full disk: the partial tar is already gone (atomic_path)
        raise write_error(exc, out, "cannot write the shard") from exc
    digest = _sha256(out)
    result = ShardResult(out.name, count, out.stat().st_size, digest, (job.start, job.stop), skipped)
    atomic_write_text(_sidecar(out), json.dumps({**asdict(result), "plan": _plan_key(job)}))
    return result


def _write_tar(out: Path, job: ShardJob, cols, cache: _ImageCache, trace: dict[str, Any],
               skipped: list[dict[str, Any]]) -> int:
    import webdataset as wds

    count = 0
    with atomic_path(out) as tmp:
        # A fixed integer member mtime makes shards byte-reproducible (same input → same
        # sha256); a float mtime would also add a PAX header to every member (slower reads).
        with open(tmp, "wb") as fh, wds.TarWriter(fh, encoder=False, mtime=0) as writer:
            for i in range(job.stop - job.start):
                index = job.start + i
                if index in job.excluded:
                    skipped.append({"index": index, "source_key": str(cols["source_key"][i]),
                                    "reason": f"marked excluded: {job.excluded[index]}", "marked": True})
                    continue
                reason, members = _sample_members(cols, i, index, job, cache, trace)
                if reason:
                    if job.strict:
                        raise HmrError(reason, path=job.store, record=index)
                    skipped.append({"index": index, "source_key": str(cols["source_key"][i]),
                                    "reason": reason})
                    continue
                writer.write(members)
                count += 1
    return count


def _sample_members(cols, i, index, job, cache, trace) -> tuple[str | None, dict | None]:
    box = person_box(cols, i)
    if box is None:
        return "no usable box (bbox_xywh empty and < 2 labelled keypoints)", None
    rel = str(cols["image_path"][i])
    image = cache.get(rel)
    if image is None:
        return cache.problem or f"cannot read image {Path(job.image_root) / rel}", None
    key = sample_key(job.name, index)
    return None, encode_sample(image, cols, i, key, box, job.config, {**trace, "index": index})


def shard_filename(index: int) -> str:
    return f"shard-{index:06d}.tar"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _plan_key(job: ShardJob) -> dict[str, Any]:
    plan = {"store": job.store, "rows": [job.start, job.stop], "config": job.config}
    if job.excluded:  # a shard is redone when the marks on its rows change
        plan["excluded"] = {str(k): v for k, v in sorted(job.excluded.items())}
    return plan


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
    from hmr.core.schema import open_store
    from manifests import check_store_files

    cfg = cfg or ShardConfig()
    store = open_store(store_path)
    check_store_files(store_path)  # a chunk changed since conversion may still decode
    name = safe_key(cfg.name or set_name(store.dataset, store.split))
    set_dir = Path(out_dir) / name
    if cfg.part is not None:
        # Parts write disjoint shards of one plan, each under its own lock; the same command
        # without a part then finds every shard done and writes index.json (docs/scale-out.md).
        if not 0 <= cfg.part[0] < cfg.part[1]:
            raise HmrError(f"part {cfg.part[0]}/{cfg.part[1]}: expected I/N with 0 <= I < N")
        if not cfg.samples_per_shard:
            raise HmrError("--part needs --samples-per-shard: every part must plan the same shards")
        lock = set_dir.with_name(f"{set_dir.name}.part-{cfg.part[0]}-of-{cfg.part[1]}")
    with output_lock(set_dir if cfg.part is None else lock):  # a second 'hmr shard' refuses, naming the lock
        return _shard_locked(store, store_path, set_dir, name, cfg, progress)


def _shard_locked(store, store_path, set_dir: Path, name: str, cfg: ShardConfig, progress: bool) -> Path:
    from tqdm import tqdm

    image_root = Path(cfg.image_root if cfg.image_root is not None else store.attrs.get("image_root", ""))
    set_dir.mkdir(parents=True, exist_ok=True)
    if len(store) == 0:
        raise SchemaError("store has no samples: nothing to shard", path=store_path)
    per_shard = cfg.samples_per_shard or estimate_samples_per_shard(store, image_root, cfg)
    # marks name samples by source identity: placed on this conversion's rows; those whose
    # sample is gone are listed in the index (marks_not_found), not dropped in silence
    resolved = resolve_marks(store_path, store)
    excluded = {row: str(m.get("reason", "")) for row, m in resolved.rows.items() if m.get("excluded", True)}
    if resolved.missing:
        print(f"hmr shard: {len(resolved.missing)} marks in {resolved.file.name} name samples that are not in "
              f"{Path(store_path).name} (listed under marks_not_found in {INDEX_NAME})", file=sys.stderr)
    marked = sorted(excluded)  # each shard takes its rows' marks by bisection, not a scan of all
    jobs = [ShardJob(str(Path(store_path).resolve()), str(image_root), str(set_dir), k, a, b, name,
                     cfg.crop_settings(), cfg.strict,
                     {r: excluded[r] for r in marked[bisect_left(marked, a):bisect_left(marked, b)]})
            for k, (a, b) in enumerate(plan_shards(len(store), per_shard))]
    results: dict[int, ShardResult] = {}
    todo = []
    if cfg.part is not None:
        jobs = [job for job in jobs if job.shard_index % cfg.part[1] == cfg.part[0]]
    for job in jobs:
        done = _finished(job)
        if done is not None:
            results[job.shard_index] = done
        else:
            todo.append(job)
    if cfg.part is not None and todo:  # an earlier index would name shards being rewritten
        (set_dir / INDEX_NAME).unlink(missing_ok=True)
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
    if cfg.part is not None:
        return set_dir  # the set's index is written by the run without a part
    _remove_unplanned(set_dir, len(jobs))
    if not any(r.num_samples for r in results.values()):
        _nothing_sharded(set_dir, store_path, [s for r in results.values() for s in r.skipped])
    _write_index(set_dir, store, name, cfg, [results[k] for k in sorted(results)],
                 time.perf_counter() - t0, len(todo), resolved.missing)
    return set_dir


def _nothing_sharded(set_dir: Path, store_path, skipped: list[dict[str, Any]]) -> None:
    """Every sample was skipped: an error naming the store (an empty set would train on
    nothing); the empty shards go, so a rerun after fixing the images redoes them."""
    for path in [*set_dir.glob("shard-*.tar*"), set_dir / INDEX_NAME]:
        path.unlink(missing_ok=True)  # an earlier index would name the shards just removed
    first = f" (first: row {skipped[0]['index']}: {skipped[0]['reason']})" if skipped else ""
    raise HmrError(f"no sample could be sharded: all {len(skipped)} were skipped{first}; "
                   "check --image-root and the images", path=store_path)


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
                 seconds: float, written: int, marks_not_found: Sequence[dict[str, Any]] = ()) -> None:
    index = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "name": name,
        "dataset": store.dataset, "split": store.split, "store": str(Path(store.path).resolve()),
        "store_num_samples": len(store), "keypoint_convention": store.attrs["keypoint_convention"],
        "num_keypoints": store.num_keypoints, "kp_columns": list(KP_COLUMNS), **cfg.crop_settings(),
        "num_samples": sum(r.num_samples for r in results),
        "shards": [{"name": r.name, "num_samples": r.num_samples, "bytes": r.bytes, "sha256": r.sha256,
                    "rows": list(r.rows)} for r in results],
        "skipped": [s for r in results for s in r.skipped],
        **({"marks_not_found": [{"source_key": m.get("source_key", ""), "row_when_marked": m.get("row"),
                                 "reason": m.get("reason", "")} for m in marks_not_found]}
           if marks_not_found else {}),
        "last_run": {"seconds": round(seconds, 3), "shards_written": written},
    }
    atomic_write_text(set_dir / INDEX_NAME, json.dumps(index, indent=1))


@dataclass(frozen=True)
class ShardSet:
    """A shard set as its index describes it."""

    root: Path | str   # a folder, or a URL prefix (str) for a remote set (is_remote)
    name: str
    dataset: str
    split: str
    num_samples: int
    num_keypoints: int
    keypoint_convention: str
    shards: tuple[dict[str, Any], ...]
    index: dict[str, Any]

    def url(self, name: str) -> str:
        """Where the shard called ``name`` (a plain file name from the index) is read from."""
        if isinstance(self.root, str):
            return self.root.rstrip("/") + "/" + name
        return str(self.root / name)

    @property
    def urls(self) -> list[str]:
        return [self.url(s["name"]) for s in self.shards]


#: URL forms read through fsspec (``pipe:`` shards, webdataset's convention, are read by
#: loaders.stream; a set's index itself is read from a folder or one of these prefixes)
REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://", "gcs://")


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL (``http(s)://``, ``s3://``, ``gs://``) or a ``pipe:`` command."""
    return isinstance(path, str) and (path.startswith(REMOTE_PREFIXES) or path.startswith("pipe:"))


def _read_remote_index(path: str) -> tuple[str, str]:
    """(root URL, index text) of a remote set given its prefix or its ``index.json`` URL;
    fsspec picks the storage library and its credentials from the usual environment."""
    url = path.rstrip("/")
    index_url = url if url.endswith(".json") else url + "/" + INDEX_NAME
    try:
        import fsspec

        with fsspec.open(index_url, "rb") as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise HmrError("no shard index here (run 'hmr shard' and upload the set first)",
                       path=index_url) from None
    except Exception as exc:  # noqa: BLE001 - storage libraries raise their own classes
        raise HmrError(f"cannot read the shard index ({type(exc).__name__}: {exc})", path=index_url) from None
    return index_url.rsplit("/", 1)[0], text


def load_shard_set(path: str | os.PathLike) -> ShardSet:
    """Open a shard set from its folder or its ``index.json``, local or a URL prefix
    (``http(s)://``, ``s3://``, ``gs://``: docs/scale-out.md, "Remote shards")."""
    if isinstance(path, str) and path.startswith("pipe:"):
        raise HmrError("a shard set is opened from a folder or a URL prefix; pipe: commands name "
                       "single shards (its index's names must never reach a shell)", path=path)
    if is_remote(path):
        root, text = _read_remote_index(str(path))
        index_path: Path | str = root + "/" + INDEX_NAME
    else:
        p = Path(path)
        index_path = p / INDEX_NAME if p.is_dir() else p
        if not index_path.exists():
            raise HmrError("no shard index here (run 'hmr shard' first)", path=index_path)
        root, text = index_path.parent, None
    try:
        index = json.loads(index_path.read_text() if text is None else text)
    except (ValueError, RecursionError) as exc:  # RecursionError: a JSON nesting bomb
        raise HmrError(f"shard index is not JSON ({type(exc).__name__})", path=index_path) from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise HmrError(f"not a {INDEX_FORMAT} index", path=index_path)
    missing = [k for k in INDEX_KEYS if k not in index]
    if missing:
        raise HmrError(f"shard index lacks {', '.join(map(repr, missing))}", path=index_path, record=missing[0])
    if not isinstance(index["shards"], list):
        raise HmrError("'shards' is not a list", path=index_path, record="shards")
    _check_shard_names(index["shards"], index_path)
    try:
        counts = int(index["num_samples"]), int(index["num_keypoints"])
    except (TypeError, ValueError) as exc:
        raise HmrError(f"num_samples / num_keypoints are not integers ({exc})", path=index_path) from None
    return ShardSet(root, str(index["name"]), str(index["dataset"]), str(index["split"]),
                    *counts, str(index["keypoint_convention"]), tuple(index["shards"]), index)


def _check_shard_names(shards: Any, index_path: Path | str) -> None:
    """Shard names in an index are plain ``.tar`` file names inside the set's folder: a name
    with a folder part (``../x.tar``, ``/etc/x.tar``) would make readers open files outside it."""
    for i, s in enumerate(shards if isinstance(shards, list) else []):
        name = s.get("name") if isinstance(s, dict) else None
        if (not isinstance(name, str) or not name.endswith(".tar") or name.startswith(".")
                or Path(name).name != name or "\\" in name):
            raise HmrError(f"shards[{i}] name {name!r} is not a .tar file inside the shard set "
                           "(refused: it would be read from outside the set)", path=index_path)
