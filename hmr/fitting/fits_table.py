"""The per-sample fits table of SPIN: the best SMPL fit found so far for every training sample.

It lives next to the shards it belongs to (never inside them), keyed by the sample keys the
loaders emit (``<set name>_<store index, 9 digits>``, see :mod:`hmr.core.schema.sample_keys`)::

    SET_DIR/fits/<table>/table.npz          the merged table (written atomically)
        keys   (N,)     str      sample keys, unique
        pose   (N, 72)  float32  axis-angle: global orient (3) then body pose (69), radians
        betas  (N, 10)  float32
        error  (N,)     float32  reprojection loss of the stored fit (inf: not measured yet)
        meta   ()       str      JSON: format, version, source, history of merges
    SET_DIR/fits/<table>/updates/rank<R>-<ns>-<seq>.npz   fits accepted by rank R (same keys),
                                                          each file written atomically by its rank
    SET_DIR/fits/<table>/.lock              lock file: merges exclusive, readers shared

Update rule (SPIN): a new fit replaces the stored one only when its reprojection loss is lower
(:meth:`FitsTable.update`; the trainer passes the stored fit's loss re-measured on the same
batch, as SPIN does, else the recorded one is used). That decision is final: a fit accepted
in memory is the fit the table keeps, even when its loss is above the stored fit's *recorded*
loss (which was measured on another crop or augmentation of the sample).

Under DDP every rank keeps its own copy in memory, updates it at once, and
:meth:`~FitsTable.flush` writes what it accepted to its own file; :func:`merge_updates` (rank 0,
after a barrier, e.g. at the end of an epoch) folds every update file into the table under an
exclusive lock and deletes the files it merged. Merge rule, per key: a rank's later file
supersedes its earlier ones (its later decision was made against its own earlier fit), and
when several ranks accepted a fit for the same key in one round (two ranks saw the sample),
the lowest recorded loss wins. The winner replaces the table's entry whatever the entry's
recorded loss — the same result the rank saw in memory. The rule depends only on the set of
files, so concurrent writers, a merge killed half-way (the table is replaced atomically before
any file is deleted) or a merge repeated after a crash give the same table. Resume:
:meth:`FitsTable.open` reads the table and applies the update files not merged yet by the same
rule, so flushing before a checkpoint is all a trainer has to do.

Where: :func:`fits_dir` ``(SET_DIR, table)`` → ``SET_DIR/fits/<table>/``. The trainer gives each
run a table of its own (``run-<run folder>-<hash>``) so that two experiments on the same shards
never see each other's fits; ``spin.table = "NAME"`` shares one on purpose.

Starts: SPIN's static fits (``*_fits.npy``, (N, 82) = 72 pose + 10 betas, row-aligned with the
samples, :meth:`FitsTable.from_spin_fits`), or a store's own SMPL (:meth:`FitsTable.from_store`;
samples without SMPL start from SPIN's mean pose with loss inf, fits from ``hmr fit`` bring
their loss from the ``extra_smplify_loss`` column).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.schema import open_store
from hmr.core.schema.sample_keys import safe_key, sample_key, set_name
from hmr.core.utils.atomic import atomic_path
from hmr.fitting.smplify import mean_smpl_params

__all__ = ["FitsTable", "MergeReport", "fits_dir", "merge_updates", "run_table_name", "store_keys"]

TABLE_NAME = "table.npz"
UPDATES = "updates"
LOCK_NAME = ".lock"
FORMAT = "hmrkit-fits"
VERSION = 1
POSE_DIM, BETAS_DIM = 72, 10
LOSS_COLUMN = "extra_smplify_loss"


def fits_dir(set_dir: str | os.PathLike, table: str = "shared") -> Path:
    """Where a shard set's fits table named ``table`` lives: ``SET_DIR/fits/<table>``."""
    if not table or safe_key(table) != table:
        raise HmrError(f"fits table name {table!r}: use letters, digits, '-' and '_'", path=set_dir)
    return Path(set_dir) / "fits" / table


def run_table_name(run_dir: str | os.PathLike) -> str:
    """The name of a training run's own fits table: its folder's name and a hash of its path."""
    import hashlib

    resolved = Path(run_dir).resolve()
    return f"run-{safe_key(resolved.name)}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"


def store_keys(store, name: str | None = None) -> np.ndarray:
    """The loader keys of a store's rows, ``<name>_<index:09d>`` (name: the shard set's,
    default ``<dataset>-<split>`` as ``hmr shard`` names it)."""
    name = safe_key(name) if name else set_name(store.dataset, store.split)
    return np.array([sample_key(name, i) for i in range(len(store))])


@contextlib.contextmanager
def _locked(root: Path, exclusive: bool) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise HmrError(f"unreadable fits file ({type(exc).__name__}: {exc})", path=path) from None
    n = len(out.get("keys", ()))
    for name, shape in (("pose", (n, POSE_DIM)), ("betas", (n, BETAS_DIM)), ("error", (n,))):
        if name not in out or out[name].shape != shape:
            raise HmrError("fits file needs keys (N,), pose (N, 72), betas (N, 10), error (N,)",
                           path=path, record=name)
    return out


def _check_rows(pose: np.ndarray, betas: np.ndarray, source: object) -> None:
    bad = np.flatnonzero(~np.isfinite(pose).all(1) | ~np.isfinite(betas).all(1))
    if len(bad):
        raise DatasetFormatError(f"fit holds NaN/inf ({len(bad)} rows)", path=source, record=int(bad[0]))


@dataclass
class MergeReport:
    files: int  # update files merged
    proposed: int  # rows in them
    improved: int  # table rows whose fit changed


class FitsTable:
    """In-memory fits of one shard set, bound to its folder (see the module docstring)."""

    def __init__(self, root: Path, keys: np.ndarray, pose: np.ndarray, betas: np.ndarray, error: np.ndarray,
                 meta: dict, rank: int = 0):
        self.root, self.rank, self.meta = Path(root), int(rank), meta
        self.keys = np.asarray(keys).astype(str)
        self.pose = np.asarray(pose, dtype=np.float32)  # (N, 72)
        self.betas = np.asarray(betas, dtype=np.float32)  # (N, 10)
        self.error = np.asarray(error, dtype=np.float32)  # (N,)
        self.row = {k: i for i, k in enumerate(self.keys)}
        if len(self.row) != len(self.keys):
            raise HmrError("fits table keys are not unique", path=self.root)
        self._pending: dict[int, None] = {}  # rows improved since the last flush (ordered set)
        self._seq = 0
        self.proposed = self.improved = 0  # this rank's counts since reset_counts()

    # -- creation / loading ---------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, keys: Sequence[str], pose: np.ndarray, betas: np.ndarray,
               error: np.ndarray | None = None, *, source: str = "", overwrite: bool = False) -> "FitsTable":
        root = Path(root)
        pose, betas = np.asarray(pose, np.float32), np.asarray(betas, np.float32)
        if pose.shape != (len(keys), POSE_DIM) or betas.shape != (len(keys), BETAS_DIM):
            raise HmrError(f"need pose (N, 72) and betas (N, 10) for {len(keys)} keys, got "
                           f"{pose.shape} and {betas.shape}", path=root)
        _check_rows(pose, betas, source or root)
        error = np.full(len(keys), np.inf, np.float32) if error is None else np.asarray(error, np.float32)
        with _locked(root, exclusive=True):
            if (root / TABLE_NAME).exists() and not overwrite:
                raise FileExistsError(f"{root / TABLE_NAME} exists (pass overwrite to start again)")
            for stale in (root / UPDATES).glob("*.npz"):
                stale.unlink()
            meta = {"format": FORMAT, "version": VERSION, "source": source, "history": [],
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            table = cls(root, np.asarray(keys).astype(str), pose, betas, error, meta)
            table._save()
        return table

    @classmethod
    def from_spin_fits(cls, root: str | os.PathLike, fits_npy: str | os.PathLike, keys: Sequence[str],
                       **kw) -> "FitsTable":
        """SPIN static fits ``(N, 82)``, row i = the sample with key ``keys[i]``."""
        path = Path(fits_npy)
        try:
            fits = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetFormatError(f"unreadable fits ({type(exc).__name__}: {exc})", path=path) from None
        if fits.ndim != 2 or fits.shape[1] != POSE_DIM + BETAS_DIM:
            raise DatasetFormatError(f"SPIN fits are (N, 82), got {fits.shape}", path=path)
        if len(fits) != len(keys):
            raise DatasetFormatError(f"{len(fits)} fits for {len(keys)} samples: not row-aligned", path=path)
        _check_rows(fits[:, :POSE_DIM], fits[:, POSE_DIM:], path)
        return cls.create(root, keys, fits[:, :POSE_DIM], fits[:, POSE_DIM:], source=f"spin static fits {path}", **kw)

    @classmethod
    def from_store(cls, root: str | os.PathLike, store_path: str | os.PathLike, name: str | None = None,
                   **kw) -> "FitsTable":
        """A store's own SMPL; rows without SMPL start from the mean pose (loss inf)."""
        store = open_store(store_path)
        mean = mean_smpl_params(1)
        mean_pose = np.concatenate([mean.global_orient[0].numpy(), mean.body_pose[0].numpy()])
        pose = np.tile(mean_pose, (len(store), 1)).astype(np.float32)
        betas = np.tile(mean.betas[0].numpy(), (len(store), 1)).astype(np.float32)
        error = np.full(len(store), np.inf, np.float32)
        fields = ["has_smpl", "smpl_global_orient", "smpl_body_pose", "smpl_betas"]
        fields += [LOSS_COLUMN] if LOSS_COLUMN in store.fields else []
        for start, cols in store.blocks(fields=fields):
            rows = start + np.flatnonzero(cols["has_smpl"])
            has = cols["has_smpl"].astype(bool)
            pose[rows] = np.c_[cols["smpl_global_orient"][has], cols["smpl_body_pose"][has]]
            betas[rows] = cols["smpl_betas"][has]
            if LOSS_COLUMN in cols:
                error[rows] = cols[LOSS_COLUMN][has]
        return cls.create(root, store_keys(store, name), pose, betas, error, source=f"store {store_path}", **kw)

    @classmethod
    def open(cls, root: str | os.PathLike, rank: int = 0) -> "FitsTable":
        """The table plus every update file not merged yet (resume point)."""
        root = Path(root)
        if not (root / TABLE_NAME).is_file():
            raise HmrError("no fits table here (create one from SPIN fits or a store first)", path=root)
        with _locked(root, exclusive=False):
            data = _read_npz(root / TABLE_NAME)
            meta = json.loads(str(data["meta"]))
            table = cls(root, data["keys"], data["pose"], data["betas"], data["error"], meta, rank)
            table._apply([(path, _read_npz(path)) for path in _update_files(root)])
        if meta.get("format") != FORMAT:
            raise HmrError(f"not a {FORMAT} table", path=root / TABLE_NAME)
        return table

    def _save(self) -> None:
        _write_npz(self.root / TABLE_NAME, keys=self.keys, pose=self.pose, betas=self.betas, error=self.error,
                   meta=np.array(json.dumps(self.meta)))

    def _apply(self, updates: Sequence[tuple[Path, dict[str, np.ndarray]]]) -> int:
        """Fold update files (path, contents) into the table by the merge rule of the module
        docstring; returns how many rows changed."""
        rows, err, pose, betas, rank, order = [], [], [], [], [], []
        for n, (path, update) in enumerate(updates):
            unknown = [k for k in update["keys"] if k not in self.row]
            if unknown:
                raise HmrError(f"update has {len(unknown)} keys the table lacks", path=path, record=str(unknown[0]))
            count = len(update["keys"])
            rows.append(np.array([self.row[k] for k in update["keys"]], dtype=np.int64))
            err.append(np.asarray(update["error"], np.float32))
            pose.append(np.asarray(update["pose"], np.float32))
            betas.append(np.asarray(update["betas"], np.float32))
            rank.append(np.full(count, _file_rank(path), np.int64))
            order.append(np.full(count, n, np.int64))
        if not rows:
            return 0
        rows, err, rank, order = (np.concatenate(a) for a in (rows, err, rank, order))
        pose, betas = np.concatenate(pose), np.concatenate(betas)
        # 1. per (row, rank): the rank's latest file wins (files come sorted by time within a rank)
        by_rank = np.lexsort((-order, rank, rows))
        first = np.r_[True, (rows[by_rank][1:] != rows[by_rank][:-1]) | (rank[by_rank][1:] != rank[by_rank][:-1])]
        latest = by_rank[first]
        # 2. per row: among the ranks' latest, the lowest recorded loss wins
        by_err = latest[np.lexsort((err[latest], rows[latest]))]
        win = by_err[np.r_[True, rows[by_err][1:] != rows[by_err][:-1]]]
        r = rows[win]
        changed = ((self.error[r] != err[win]) | (self.pose[r] != pose[win]).any(1)
                   | (self.betas[r] != betas[win]).any(1))
        self.pose[r], self.betas[r], self.error[r] = pose[win], betas[win], err[win]
        return int(changed.sum())

    # -- training-time API ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        try:
            return np.array([self.row[str(k)] for k in keys], dtype=np.int64)
        except KeyError as exc:
            raise HmrError("sample key not in the fits table (was the table made for these shards?)",
                           path=self.root, record=str(exc.args[0])) from None

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stored ``pose (B, 72)``, ``betas (B, 10)``, ``error (B,)`` of ``keys``."""
        r = self.rows(keys)
        return self.pose[r].copy(), self.betas[r].copy(), self.error[r].copy()

    def update(self, keys: Sequence[str], pose: np.ndarray, betas: np.ndarray, new_error: np.ndarray,
               old_error: np.ndarray | None = None) -> np.ndarray:
        """SPIN's rule: keep each new fit whose loss is lower than the stored fit's (``old_error``
        if given, e.g. re-measured on this batch, else the recorded loss). Returns (B,) bool."""
        r = self.rows(keys)
        new_error = np.asarray(new_error, np.float32).reshape(-1)
        old = self.error[r] if old_error is None else np.asarray(old_error, np.float32).reshape(-1)
        better = np.isfinite(new_error) & (new_error < old)
        pose, betas = np.asarray(pose, np.float32), np.asarray(betas, np.float32)
        better &= np.isfinite(pose).all(1) & np.isfinite(betas).all(1)
        self.pose[r[better]] = pose[better]
        self.betas[r[better]] = betas[better]
        self.error[r[better]] = new_error[better]
        self._pending.update(dict.fromkeys(r[better].tolist()))
        self.proposed += len(r)
        self.improved += int(better.sum())
        return better

    def reset_counts(self) -> tuple[int, int]:
        """(proposed, improved) on this rank since the last reset; then zero them."""
        counts = (self.proposed, self.improved)
        self.proposed = self.improved = 0
        return counts

    def flush(self) -> Path | None:
        """Write this rank's improvements since the last flush to its own update file."""
        if not self._pending:
            return None
        r = np.fromiter(self._pending, dtype=np.int64)
        self._seq += 1
        # Unique across restarts and ranks; names sort by time within a rank.
        path = self.root / UPDATES / f"rank{self.rank:03d}-{time.time_ns()}-{self._seq:06d}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_npz(path, keys=self.keys[r], pose=self.pose[r], betas=self.betas[r], error=self.error[r])
        self._pending.clear()
        return path

    def reload(self) -> "FitsTable":
        """A fresh copy from disk (after a merge), same rank; pending rows must be flushed."""
        if self._pending:
            raise HmrError("flush() before reload(): unflushed improvements would be lost", path=self.root)
        return FitsTable.open(self.root, self.rank)


def merge_updates(root: str | os.PathLike) -> MergeReport:
    """Fold every update file into the table (exclusive lock), then delete them."""
    root = Path(root)
    with _locked(root, exclusive=True):
        files = _update_files(root)
        if not files:
            return MergeReport(0, 0, 0)
        data = _read_npz(root / TABLE_NAME)
        table = FitsTable(root, data["keys"], data["pose"], data["betas"], data["error"],
                          json.loads(str(data["meta"])))
        updates = [(path, _read_npz(path)) for path in files]
        proposed = sum(len(update["keys"]) for _, update in updates)
        improved = table._apply(updates)
        table.meta["history"].append({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "files": len(files), "proposed": proposed, "improved": improved})
        table._save()
        for path in files:
            path.unlink(missing_ok=True)
    return MergeReport(len(files), proposed, improved)


def _update_files(root: Path) -> list[Path]:
    """Update files, sorted by (rank, time, sequence): their names' order."""
    return sorted((root / UPDATES).glob("rank*.npz"))


def _file_rank(path: Path) -> int:
    try:
        return int(Path(path).name.split("-")[0].removeprefix("rank"))
    except ValueError:
        raise HmrError("update file name is not rank<R>-<ns>-<seq>.npz", path=path) from None
