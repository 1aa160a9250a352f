"""The columns ``hmr review`` filters and sorts on, read once per store, block by block.

Only small per-sample columns are kept (a few bytes a sample), never images; each is computed
on first use, so opening a store and showing its first page reads nothing but its attributes.
Pose rarity (mean vertex distance, mm, of the sample's SMPL mesh to the balanced metrics'
fixed reference mesh, :func:`hmr.evaluation.run.reference_mesh`) poses every SMPL sample once:
the first filter or sort asking for it starts a background job (:class:`RarityJob`, progress
in ``/api/rarity``) and is answered "pending" until it is done. The result is cached beside the
store in ``<store>.review-rarity.npz`` (the values, and what they were computed from: the
SHA-256 of the store's SMPL column files, the sample count, the body model and the reference
mesh), written atomically and reused by a later ``hmr review`` when all of that matches.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.errors import HmrError
from hmr.core.utils.atomic import atomic_path
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from hmr.core.schema.marks import read_rows
from hmr.core.schema.store import SampleStore, open_store

#: the columns a query may filter (min_/max_ or equality) and sort on
NUMERIC = ("row", "joints2d", "joints3d", "fit_error", "rarity_mm", "eval_error")
FLAGS = ("has_smpl", "has3d", "marked")
CHOICES = ("dataset", "split", "smpl_source")
RARITY_SUFFIX = ".review-rarity.npz"
RARITY_FORMAT = "hmrkit-review-rarity"
RARITY_FIELDS = ("has_smpl", "gender", "smpl_global_orient", "smpl_body_pose", "smpl_betas")
#: the reference mesh :func:`pose_rarity` measures from (the balanced metrics' default)
RARITY_REFERENCE = "zero pose, zero shape (no smpl_mean_params.npz given)"


class RarityPending(HmrError):
    """Pose rarity is being computed in the background; ``progress`` says how far."""

    def __init__(self, progress: list[dict[str, Any]]):
        super().__init__("pose rarity is being computed: " + "; ".join(
            f"{Path(p['path']).name}: {p['done']}/{p['total']} samples" for p in progress))
        self.progress = progress


@dataclass
class StoreEntry:
    """One store of the review and its cached columns."""

    path: Path
    store: SampleStore
    eval_errors: dict[int, float] = field(default_factory=dict)
    eval_metric: str = ""
    body_model: str | None = None  # SMPL folder for pose rarity (None: $HMR_BODY_MODEL or the mannequin)
    cache: dict[str, np.ndarray] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rarity_job: RarityJob | None = None

    @property
    def image_root(self) -> Path:
        return Path(self.store.attrs.get("image_root", ""))

    def column(self, name: str) -> np.ndarray:
        if name == "rarity_mm":
            return self.rarity()
        with self.lock:
            if name not in self.cache:
                self.cache[name] = self._compute(name)
            return self.cache[name]

    def _compute(self, name: str) -> np.ndarray:
        s, n = self.store, len(self.store)
        if name == "row":
            return np.arange(n, dtype=np.int64)
        if name in ("has_smpl", "smpl_source"):
            return s.read(name)
        if name in ("joints2d", "joints3d", "has3d"):
            j2, j3 = np.zeros(n, np.int16), np.zeros(n, np.int16)
            for off, cols in s.blocks(fields=["keypoints2d", "keypoints3d"]):
                j2[off:off + len(cols["keypoints2d"])] = (cols["keypoints2d"][..., 2] > 0).sum(axis=1)
                j3[off:off + len(cols["keypoints3d"])] = (cols["keypoints3d"][..., 3] > 0).sum(axis=1)
            self.cache["joints2d"], self.cache["joints3d"], self.cache["has3d"] = j2, j3, j3 > 0
            return self.cache[name]
        if name == "fit_error":
            return (s.read("extra_fit_error").astype(np.float64) if "extra_fit_error" in s.fields
                    else np.full(n, np.nan))
        if name == "eval_error":
            out = np.full(n, np.nan)
            for row, err in self.eval_errors.items():
                if 0 <= row < n:
                    out[row] = err
            return out
        raise HmrError(f"no review column {name!r}")

    def rarity(self) -> np.ndarray:
        """The pose rarity column: from memory, else from a matching cache file beside the store,
        else :class:`RarityPending` after starting (once) the background job computing it."""
        with self.lock:
            if "rarity_mm" in self.cache:
                return self.cache["rarity_mm"]
            if self.rarity_job is None:
                cached = read_rarity_cache(self.path, self.store, self.body_model)
                if cached is not None:
                    self.cache["rarity_mm"] = cached
                    return cached
                self.rarity_job = RarityJob(self)
            elif self.rarity_job.state == "failed":
                raise HmrError(f"pose rarity failed: {self.rarity_job.error}", path=self.path)
            job = self.rarity_job
        raise RarityPending([job.progress()])

    def rarity_progress(self, k: int) -> dict[str, Any]:
        with self.lock:
            job, cached = self.rarity_job, "rarity_mm" in self.cache
        if job is not None:
            return {**job.progress(), "store": k}
        n = len(self.store)
        return {"store": k, "path": str(self.path), "state": "done" if cached else "not started", "done": n if cached else 0,
                "total": n, "error": "", "cache": str(rarity_cache_path(self.path))}

    def value_for(self, name: str) -> np.ndarray:
        """A column as the query sees it: choices as strings, the rest numbers."""
        n = len(self.store)
        if name == "dataset":
            return np.full(n, self.store.dataset, dtype=object)
        if name == "split":
            return np.full(n, self.store.split, dtype=object)
        if name == "smpl_source":
            return np.asarray(SMPL_SOURCES, dtype=object)[np.minimum(self.column("smpl_source"),
                                                                      len(SMPL_SOURCES) - 1)]
        return self.column(name)


class RarityJob:
    """Computes a store's pose rarity in a daemon thread, then caches it in memory and beside
    the store. ``progress()``: ``{"state", "done", "total", "error", "cache"}`` (rows read)."""

    def __init__(self, entry: StoreEntry):
        self.entry, self.total, self.done, self.error = entry, len(entry.store), 0, ""
        self.state = "running"
        self.thread = threading.Thread(target=self._run, name=f"rarity {entry.path.name}", daemon=True)
        self.thread.start()

    def progress(self) -> dict[str, Any]:
        return {"path": str(self.entry.path), "state": self.state, "done": self.done, "total": self.total,
                "error": self.error, "cache": str(rarity_cache_path(self.entry.path))}

    def _advance(self, done: int) -> None:
        self.done = done

    def _run(self) -> None:
        e = self.entry
        try:
            key = rarity_key(e.store, e.body_model)  # what the values are computed from, taken first
            values = pose_rarity(e.store, e.body_model, progress=self._advance)
            try:
                write_rarity_cache(e.path, e.store, e.body_model, values, key)
            except OSError as exc:  # a read-only folder: the values still serve this session
                self.error = f"not cached ({exc.strerror or exc})"
            with e.lock:
                e.cache["rarity_mm"] = values
            self.done, self.state = self.total, "done"
        except Exception as exc:  # reported by /api/rarity and the next query
            self.error, self.state = f"{type(exc).__name__}: {exc}", "failed"


def rarity_cache_path(store_path: str | os.PathLike) -> Path:
    p = Path(store_path)
    return p.with_name(p.name.rstrip("/") + RARITY_SUFFIX)


def rarity_key(store: SampleStore, body_model: str | None) -> dict[str, Any]:
    """What a cached rarity was computed from; a cache is used only when all of it matches:
    the content of the store's SMPL columns (:func:`column_digests`: a re-conversion that
    changes a pose, or a rewrite of the store, invalidates it; one that writes the same values
    does not), the sample count, the body model folder and the reference mesh."""
    model = body_model or os.environ.get("HMR_BODY_MODEL") or "the built-in mannequin"
    if model != "the built-in mannequin":
        model = str(Path(model).resolve())
    return {"format": RARITY_FORMAT, "num_samples": len(store), "content_sha256": column_digests(store, RARITY_FIELDS),
            "body_model": model, "reference": RARITY_REFERENCE,
            "measure": "mean vertex distance (mm), the model of the sample's gender, no translation"}


def column_digests(store: SampleStore, fields: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file holding ``fields``, by its path in the store (a file store: the
    file itself). Taken from the store's output manifest (``<store>.manifest.json``, written
    by the converter) for files it lists with their current size that are not newer than it;
    hashed here otherwise (a store without a manifest, or changed after it was written)."""
    import hashlib

    root = Path(store.path)
    if root.is_dir():
        files = {f"{name}/{p.relative_to(root / name).as_posix()}": p for name in fields if (root / name).is_dir()
                 for p in sorted((root / name).rglob("*")) if p.is_file()}
    else:
        files = {root.name: root}
    recorded, written_ns = _manifest_digests(root)
    out = {}
    for rel, p in files.items():
        st = p.stat()
        size_sha = recorded.get(rel)
        if size_sha is not None and size_sha[0] == st.st_size and st.st_mtime_ns <= written_ns:
            out[rel] = size_sha[1]
            continue
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[rel] = h.hexdigest()
    return out


def _manifest_digests(store_path: Path) -> tuple[dict[str, tuple[int, str]], int]:
    """({path in the store: (size, sha256)}, the manifest's mtime in ns) from the store's
    output manifest; ({}, 0) when there is none or it cannot be read."""
    from manifests.output import output_manifest_path

    path = output_manifest_path(store_path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        files = {str(f["path"]): (int(f["size"]), str(f["sha256"])) for f in doc["files"]}
        return files, path.stat().st_mtime_ns
    except (OSError, ValueError, KeyError, TypeError):
        return {}, 0


def read_rarity_cache(store_path: str | os.PathLike, store: SampleStore,
                      body_model: str | None) -> np.ndarray | None:
    """The cached rarity of a store, or None when there is none or it was computed from
    something else (another conversion of the store, another body model or reference)."""
    path = rarity_cache_path(store_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            key, values = json.loads(str(z["key"])), z["rarity_mm"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable: recomputed and replaced
    want = json.loads(json.dumps(rarity_key(store, body_model)))
    if key != want or values.shape != (len(store),):
        return None
    return values.astype(np.float64)


def write_rarity_cache(store_path: str | os.PathLike, store: SampleStore, body_model: str | None,
                       values: np.ndarray, key: dict[str, Any] | None = None) -> Path:
    """Writes ``<store>.review-rarity.npz`` under a temporary name, renamed when complete.
    ``key``: :func:`rarity_key` as taken before computing the values (default: now)."""
    path = rarity_cache_path(store_path)
    key = key if key is not None else rarity_key(store, body_model)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, rarity_mm=np.asarray(values, np.float64), key=np.array(json.dumps(key, sort_keys=True)))
    return path


def pose_rarity(store: SampleStore, body_model: str | None = None, batch: int = 1024,
                progress=None) -> np.ndarray:
    """Mean vertex distance (mm) of each SMPL sample's mesh (the model of its gender, zero
    translation, as the evaluation poses ground truth) to the balanced metrics' reference mesh
    (neutral model); NaN for samples without SMPL. ``progress(rows_read)`` after each block."""
    import torch

    from hmr.evaluation.run import BodyModels, reference_mesh

    models = BodyModels(body_model, torch.device("cpu"))
    ref, what = reference_mesh(models)
    if what != RARITY_REFERENCE:
        raise HmrError(f"the reference mesh is {what!r}, the rarity cache says {RARITY_REFERENCE!r}")
    n = len(store)
    out = np.full(n, np.nan)
    for off, cols in store.blocks(fields=list(RARITY_FIELDS)):
        for g in np.unique(cols["gender"]):
            sel = np.flatnonzero(cols["has_smpl"] & (cols["gender"] == g))
            model = models(GENDERS[g] if g < len(GENDERS) else "neutral")
            for a in range(0, len(sel), batch):
                idx = sel[a:a + batch]
                _pose(model, cols, idx, ref, out[off:])
        if progress is not None:
            progress(off + len(cols["has_smpl"]))
    return out


def _pose(model, cols: dict[str, np.ndarray], idx: np.ndarray, ref, out: np.ndarray) -> None:
    """out[idx] = rarity (mm) of the meshes of rows ``idx`` of a block."""
    import torch

    from hmr.evaluation.metrics import mesh_rarity

    with torch.no_grad():
        body = model(global_orient=torch.from_numpy(cols["smpl_global_orient"][idx]),
                     body_pose=torch.from_numpy(cols["smpl_body_pose"][idx]),
                     betas=torch.from_numpy(cols["smpl_betas"][idx]))
        out[idx] = mesh_rarity(body.vertices, ref).numpy() * 1000.0


def read_eval_results(results_dir: str | os.PathLike) -> tuple[str, dict[int, float], str]:
    """(store path, {store row: error}, metric name) from an ``hmr evaluate`` output folder
    (``results.json`` names the store; ``per_sample.csv`` has one row per scored sample)."""
    d = Path(results_dir)
    try:
        result = json.loads((d / "results.json").read_text(encoding="utf-8"))
        store = str(result["store"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HmrError(f"not an 'hmr evaluate' results folder ({type(exc).__name__}: {exc})", path=d) from None
    errors: dict[int, float] = {}
    metric = ""
    with open(d / "per_sample.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        metric = next((m for m in ("pa_mpjpe_mm", "error_px", "mpjpe_mm") if m in fields), "")
        if not metric or "store_row" not in fields:
            raise HmrError("per_sample.csv has no store_row / error column", path=d / "per_sample.csv")
        for line, rec in enumerate(reader, start=2):
            try:
                errors[int(rec["store_row"])] = float(rec[metric]) if rec[metric] else float("nan")
            except ValueError:
                raise HmrError(f"bad number in {metric}", path=d / "per_sample.csv", record=line) from None
    return store, errors, metric


class ReviewIndex:
    """Several stores as one list of samples ``(store number, row)``, queried by the server."""

    def __init__(self, store_paths: list[str | os.PathLike], eval_dirs: list[str | os.PathLike] = (),
                 body_model: str | None = None):
        self.entries = [StoreEntry(Path(p), open_store(p), body_model=body_model) for p in store_paths]
        for d in eval_dirs:
            store, errors, metric = read_eval_results(d)
            target = Path(store).resolve()
            match = [e for e in self.entries if e.path.resolve() == target]
            if not match:  # results.json keeps the path as given to hmr evaluate (maybe relative elsewhere)
                match = [e for e in self.entries if e.path.name == target.name]
            if len(match) != 1:
                raise HmrError(f"evaluation results are for {store}, which is not among the reviewed stores",
                               path=d)
            match[0].eval_errors.update(errors)
            match[0].eval_metric = metric

    def total(self) -> int:
        return sum(len(e.store) for e in self.entries)

    def query(self, params: dict[str, str], marked: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(store numbers, rows) of every sample passing the filters of ``params``, sorted.

        ``params``: ``store``, ``dataset``, ``split``, ``smpl_source`` (equality), ``has_smpl``,
        ``has3d``, ``marked`` (0/1), ``min_<col>`` / ``max_<col>`` for :data:`NUMERIC`, and
        ``sort`` = a numeric column, ``-`` in front for descending (NaN always last).
        """
        stores, rows, keys = [], [], []
        sort = params.get("sort", "")
        desc = sort.startswith("-")
        sort = sort.lstrip("-")
        if sort and sort not in NUMERIC:
            raise HmrError(f"cannot sort by {sort!r} (one of {', '.join(NUMERIC)})")
        for k, e in enumerate(self.entries):
            if params.get("store", "") not in ("", str(k)):
                continue
            n = len(e.store)
            keep = np.ones(n, dtype=bool)
            for name in CHOICES:
                want = params.get(name, "")
                if want:
                    if name in ("dataset", "split"):
                        keep &= (e.value_for(name)[0] if n else "") == want
                    else:
                        keep &= e.value_for(name) == want
            for name in FLAGS:
                want = params.get(name, "")
                if want in ("0", "1"):
                    if name == "marked":
                        flag = np.zeros(n, dtype=bool)
                        flag[[r for r in marked[k] if r < n]] = True
                    else:
                        flag = e.column(name).astype(bool)
                    keep &= flag == (want == "1")
            for name in NUMERIC:
                for bound, op in (("min_", np.greater_equal), ("max_", np.less_equal)):
                    text = params.get(bound + name, "")
                    if text != "":
                        try:
                            limit = float(text)
                        except ValueError:
                            raise HmrError(f"{bound}{name} is not a number: {text!r}") from None
                        with np.errstate(invalid="ignore"):
                            keep &= op(e.column(name), limit)
            sel = np.flatnonzero(keep)
            stores.append(np.full(len(sel), k, dtype=np.int32))
            rows.append(sel)
            if sort:
                keys.append(np.asarray(e.column(sort), dtype=np.float64)[sel])
        s = np.concatenate(stores) if stores else np.zeros(0, np.int32)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        if sort and len(r):
            key = np.concatenate(keys)
            key = -key if desc else key
            key = np.where(np.isnan(key), np.inf, key)
            order = np.argsort(key, kind="stable")  # ties keep the store order
            s, r = s[order], r[order]
        return s, r

    def describe(self, k: int, rows: list[int], marks: dict[str, Any]) -> list[dict[str, Any]]:
        """The grid's cards of some samples of store ``k``: place, labels, cheap columns. Each
        field is read once per store chunk the rows fall in, never per row."""
        e = self.entries[k]
        st = e.store
        rows = [int(r) for r in rows]
        wanted = ["image_path", "source_key", "has_smpl", "smpl_source"]
        if "extra_fit_error" in st.fields:
            wanted.append("extra_fit_error")
        if "joints2d" not in e.cache:  # the first page must not read every keypoint of the store
            wanted += ["keypoints2d", "keypoints3d"]
        got = {name: rows_of(st, name, rows) for name in wanted}
        if "joints2d" in e.cache:
            j2, j3 = e.cache["joints2d"][rows], e.cache["joints3d"][rows]
        else:
            j2 = (got["keypoints2d"][..., 2] > 0).sum(axis=1)
            j3 = (got["keypoints3d"][..., 3] > 0).sum(axis=1)
        items = []
        for i, row in enumerate(rows):
            source = int(got["smpl_source"][i])
            mark = marks.get(str(row))
            item = {"store": k, "row": row, "image_path": str(got["image_path"][i]),
                    "source_key": str(got["source_key"][i]), "joints2d": int(j2[i]), "joints3d": int(j3[i]),
                    "has3d": bool(j3[i] > 0), "has_smpl": bool(got["has_smpl"][i]),
                    "smpl_source": SMPL_SOURCES[min(source, len(SMPL_SOURCES) - 1)],
                    "fit_error": _json_number(got["extra_fit_error"][i]) if "extra_fit_error" in got else None,
                    "eval_error": _json_number(e.eval_errors.get(row, np.nan)),
                    "mark": mark.get("reason", "") if mark else None}
            if "rarity_mm" in e.cache:
                item["rarity_mm"] = _json_number(e.cache["rarity_mm"][row])
            items.append(item)
        return items


def rows_of(store: SampleStore, name: str, rows: list[int]) -> np.ndarray:
    """``store.read(name)[rows]`` reading each chunk the rows fall in once (not the whole column)."""
    return read_rows(store, name, rows)


def _json_number(v: Any) -> Any:
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    v = float(v)
    return None if not np.isfinite(v) else (int(v) if v.is_integer() else round(v, 3))
