"""SPIN's SMPLify-in-the-loop for the trainer: fits tables per shard set, per-batch supervision,
merges at epoch ends and checkpoints, exact resume.

``SpinSupervision(config, body_model, ...)`` is built by the trainer when ``spin.enabled``:

- **Tables.** Each shard set of the config has the run's fits table in ``SET_DIR/fits/<table>/``
  (:mod:`hmr.fitting.fits_table`): ``<table>`` is ``spin.table`` if set (a table shared on
  purpose), else the run's own (``run-<run folder>-<hash>``), so experiments on the same shards
  start from the same static fits and never see each other's improvements. A missing one is
  created by rank 0 before training from ``spin.static_fits[set name]`` (SPIN's
  ``*_fits.npy``, row-aligned with the store) or from the store the set was sharded from
  (its SMPL; samples without SMPL start from the mean pose).
  Sample keys ``<set name>_<store row:09d>`` route each sample to its set's table.
- **Per batch** (:meth:`SpinSupervision.supervise`): batch keypoints (``[-1, 1]`` over the
  ``S``-px crop) → crop pixels ``(x + 1)·S/2`` → rescaled to SPIN's ``spin.fit_crop_px`` frame
  (224 px, where SMPLify's weights were tuned; the 3D fit does not change under this scaling);
  ``K`` = the batch's ``cam_intrinsics`` where ``has_intrinsics`` (and ``spin.use_intrinsics``),
  else the network's crop camera (``model.focal_length_px`` at ``S``), rescaled the same way.
  SMPLify starts from the network's (detached) prediction, and
  :func:`hmr.fitting.spin.spin_fit_step` compares the new fit with the stored one re-placed on
  this batch, keeps the better in the table (in the un-augmented frame, using the batch's
  ``aug_rotation`` / ``aug_flip``) and returns it in the batch frame. Supervision, as SPIN's
  trainer: the fit's SMPL with extreme betas (any |β| > 3) zeroed, replaced by the ground truth
  where ``has_smpl``; ``has_smpl`` becomes ``valid | has_smpl`` with ``valid`` = fit loss <
  ``spin.threshold``.
- **Merges** (:meth:`SpinSupervision.sync`, every rank): flush each table's improvements to
  this rank's update file, barrier, rank 0 merges them, barrier, every rank reloads. At the end
  of each epoch (or every ``spin.merge_every`` steps) and before every checkpoint.
- **Checkpoints** (:meth:`snapshot` / :meth:`restore`): after the sync, rank 0 copies every
  table into the run folder (``fits/step_<N>/<set>.npz``) and the checkpoint names the copies
  and the epoch's counts so far. Resuming restores the tables exactly as they were at that
  step (improvements made after the checkpoint by the killed run are discarded), so a resumed
  run repeats the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist

from hmr.core.errors import ConfigError, HmrError
from hmr.core.geometry import matrix_to_axis_angle
from hmr.core.schema import open_store
from hmr.core.schema.sample_keys import set_of_key
from hmr.core.utils.atomic import atomic_path
from hmr.fitting.camera import fit_keypoints, solve_translation, spin_crop_intrinsics
from hmr.fitting.fits_table import (
    TABLE_NAME,
    UPDATES,
    FitsTable,
    _locked,
    fits_dir,
    merge_updates,
    run_table_name,
    store_keys,
)
from hmr.fitting.prior import load_pose_prior
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, SMPLParams
from hmr.fitting.spin import spin_fit_step
from hmr.training.data import shard_sources

__all__ = ["MultiTable", "SpinSupervision", "ensure_table", "prediction_params"]

SNAPSHOTS = "fits"
EXTREME_BETAS = 3.0  # SPIN zeroes fits with any |β| above this


def _barrier(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.barrier()


class MultiTable:
    """The fits tables of several shard sets behind the ``lookup`` / ``update`` interface of one
    :class:`~hmr.fitting.fits_table.FitsTable`, routing each key by its set name."""

    def __init__(self, tables: dict[str, FitsTable]):
        self.tables = tables

    def _groups(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        names = np.array([set_of_key(k) for k in keys])
        unknown = sorted(set(names) - set(self.tables))
        if unknown:
            raise HmrError(f"batch sample from shard set {unknown[0]!r}, which has no fits table here "
                           f"(tables: {sorted(self.tables)})", record=str(keys[list(names).index(unknown[0])]))
        return {name: np.flatnonzero(names == name) for name in dict.fromkeys(names)}

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pose = np.zeros((len(keys), 72), np.float32)  # (B, 72)
        betas = np.zeros((len(keys), 10), np.float32)  # (B, 10)
        error = np.zeros(len(keys), np.float32)  # (B,)
        for name, idx in self._groups(keys).items():
            pose[idx], betas[idx], error[idx] = self.tables[name].lookup([keys[i] for i in idx])
        return pose, betas, error

    def update(self, keys: Sequence[str], pose: np.ndarray, betas: np.ndarray, new_error: np.ndarray,
               old_error: np.ndarray | None = None) -> np.ndarray:
        better = np.zeros(len(keys), bool)
        for name, idx in self._groups(keys).items():
            better[idx] = self.tables[name].update([keys[i] for i in idx], pose[idx], betas[idx], new_error[idx],
                                                   None if old_error is None else old_error[idx])
        return better

    def reset_counts(self) -> tuple[int, int]:
        counts = [t.reset_counts() for t in self.tables.values()]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)


def ensure_table(sset, static_fits: str = "", table: str = "shared") -> Path:
    """Create the fits table of shard set ``sset`` if it has none (see the module docstring)."""
    root = fits_dir(sset.root, table)
    if (root / TABLE_NAME).is_file():
        return root
    store_path = sset.index.get("store", "")
    if not store_path or not Path(store_path).exists():
        raise HmrError(f"shard set {sset.name!r} has no fits table and its store ({store_path or 'unknown'}) "
                       "is not here: give spin.static_fits for it or create the table (hmr.fitting.FitsTable)",
                       path=root)
    if static_fits:
        keys = store_keys(open_store(store_path), sset.name)
        FitsTable.from_spin_fits(root, static_fits, keys)
    else:
        FitsTable.from_store(root, store_path, sset.name)
    print(f"spin: created the fits table of {sset.name} from {static_fits or store_path}", file=sys.stderr)
    return root


def prediction_params(out, body_fit_joints, keypoints_px: torch.Tensor, intrinsics: torch.Tensor,
                      use_solved: torch.Tensor):
    """The network's prediction as SMPLify's start :class:`~hmr.fitting.smplify.SMPLParams`
    (detached, fp32): axis-angle pose, betas, and ``cam_t``; rows ``use_solved`` (B,) bool
    (fitted with another camera than the network's) get the least-squares translation instead."""
    rot = out.pose_rotmat.detach().float()  # (B, 24, 3, 3)
    aa = matrix_to_axis_angle(rot.reshape(-1, 3, 3)).reshape(-1, 72)  # (B, 72)
    params = SMPLParams(aa[:, :3], aa[:, 3:], out.betas.detach().float(), out.cam_t.detach().float())
    if bool(use_solved.any()):
        with torch.no_grad():
            joints, _ = body_fit_joints(SMPLParams(params.global_orient, params.body_pose, params.betas))
            solved = solve_translation(joints, keypoints_px, intrinsics)  # (B, 3)
        params.transl = torch.where(use_solved[:, None], solved, params.transl)
    return params


@dataclass
class _Setup:
    crop_px: int
    focal_length_px: float
    convention: str


class SpinSupervision:
    """See the module docstring."""

    def __init__(self, config, body_model, *, rank: int = 0, world: int = 1, pose_prior=None,
                 run_dir: str | Path | None = None):
        s = config.spin
        self.cfg, self.rank, self.world = s, rank, world
        if not s.table and run_dir is None:
            raise ConfigError("SPIN needs the run folder (its own fits table) or spin.table (a shared one)")
        #: the fits table's name in every shard set (SET_DIR/fits/<name>)
        self.table_name = s.table or run_table_name(run_dir)
        self.setup = _Setup(config.model.img_size, config.model.focal_length_px, config.data.convention)
        sets = [sset for sset, _ in shard_sources(config)]
        unknown = sorted(set(s.static_fits) - {x.name for x in sets})
        if unknown:
            raise ConfigError(f"spin.static_fits names shard sets not in the data: {unknown}")
        if rank == 0:
            for sset in sets:
                ensure_table(sset, str(s.static_fits.get(sset.name, "")), self.table_name)
        _barrier(world)
        self.sets = {sset.name: sset for sset in sets}
        self.table = MultiTable({name: FitsTable.open(self._dir(x), rank=rank) for name, x in self.sets.items()})
        shared = {f.name for f in dataclasses.fields(SMPLifyConfig)} & {f.name for f in dataclasses.fields(s)}
        fit_cfg = SMPLifyConfig(**{name: getattr(s, name) for name in shared})
        prior = pose_prior if pose_prior is not None else load_pose_prior(s.pose_prior or None)
        self.fitter = SMPLify(body_model, prior, fit_cfg)
        self.carried = (0, 0)  # (proposed, improved) of this epoch before a resume (rank 0 holds them)

    def _dir(self, sset) -> Path:
        return fits_dir(sset.root, self.table_name)

    # -- per batch ------------------------------------------------------------------------
    def _fit_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fit keypoints (B, 73, 3) and K (B, 3, 3) in the fit frame, and which rows use their
        own camera (B,)."""
        ref = self.fitter.body_model.v_template
        size, scale = float(self.setup.crop_px), self.cfg.fit_crop_px / float(self.setup.crop_px)
        kp = batch["keypoints2d"].to(ref)  # (B, K, 3) in [-1, 1]
        kp_px = torch.cat([(kp[..., :2] + 1.0) * (size / 2.0) * scale, kp[..., 2:]], dim=-1)
        kp_fit = fit_keypoints(kp_px, self.setup.convention)  # (B, 73, 3)
        b = kp.shape[0]
        k = spin_crop_intrinsics(b, self.setup.focal_length_px * scale, self.cfg.fit_crop_px, ref.dtype, ref.device)
        own = torch.zeros(b, dtype=torch.bool, device=ref.device)
        if self.cfg.use_intrinsics and "has_intrinsics" in batch:
            own = batch["has_intrinsics"].to(ref.device).bool()
            to_fit = torch.diag(torch.tensor([scale, scale, 1.0], dtype=ref.dtype, device=ref.device))
            k = torch.where(own[:, None, None], to_fit @ batch["cam_intrinsics"].to(ref), k)
        return kp_fit, k, own

    def supervise(self, batch: dict, out) -> tuple[dict, dict[str, torch.Tensor]]:
        """The batch with SPIN's SMPL supervision, and scalars to log (see the module docstring)."""
        t0 = time.perf_counter()
        kp, k, own = self._fit_inputs(batch)
        start = prediction_params(out, self.fitter.joints, kp, k, own)
        rotation = batch.get("aug_rotation")
        flip = batch.get("aug_flip")
        targets = spin_fit_step(self.fitter, self.table, list(batch["key"]), start, kp, k,
                                rotation=None if rotation is None else rotation.to(kp),
                                flip=None if flip is None else flip.to(kp.device).bool(), threshold=self.cfg.threshold)
        dev = batch["smpl_betas"].device
        betas = targets.betas.to(dev).float()
        betas = torch.where((betas.abs() > EXTREME_BETAS).any(-1, keepdim=True), torch.zeros_like(betas), betas)
        has = batch["has_smpl"].bool()
        gt = has[:, None]
        out_batch = dict(batch)
        out_batch["smpl_global_orient"] = torch.where(gt, batch["smpl_global_orient"], targets.global_orient.to(dev))
        out_batch["smpl_body_pose"] = torch.where(gt, batch["smpl_body_pose"], targets.body_pose.to(dev))
        out_batch["smpl_betas"] = torch.where(gt, batch["smpl_betas"], betas)
        out_batch["has_smpl"] = has | targets.valid.to(dev)
        stats = {"spin/fit_loss": targets.loss.float().mean().cpu(),
                 "spin/valid_fraction": targets.valid.float().mean().cpu(),
                 "spin/improved_fraction": targets.improved.float().mean().cpu(),
                 "spin/fit_seconds": torch.tensor(time.perf_counter() - t0)}
        return out_batch, stats

    # -- merges, epochs -------------------------------------------------------------------
    def sync(self) -> int:
        """Every rank: flush, merge (rank 0), reload. Returns the rows the merge improved."""
        for table in self.table.tables.values():
            table.flush()
        _barrier(self.world)
        improved = 0
        if self.rank == 0:
            improved = sum(merge_updates(self._dir(x)).improved for x in self.sets.values())
        _barrier(self.world)
        proposed, kept = self.table.reset_counts()  # the reloaded tables start their counts at 0
        self.carried = (self.carried[0] + proposed, self.carried[1] + kept)
        self.table.tables = {name: t.reload() for name, t in self.table.tables.items()}
        return improved

    def epoch_counts(self) -> tuple[int, int]:
        """(proposed, improved) fits over all ranks since the last call; every rank calls it."""
        proposed, improved = self.table.reset_counts()
        proposed, improved = proposed + self.carried[0], improved + self.carried[1]
        self.carried = (0, 0)
        if self.world > 1:
            both = torch.tensor([proposed, improved], dtype=torch.float64)
            dist.all_reduce(both)
            proposed, improved = int(both[0]), int(both[1])
        return proposed, improved

    def end_epoch(self) -> dict[str, float]:
        """Sync and return the epoch's scalars (every rank calls it)."""
        self.sync()
        proposed, improved = self.epoch_counts()
        return {"spin/epoch_fits": float(proposed), "spin/epoch_improved": float(improved),
                "spin/epoch_improved_fraction": improved / max(proposed, 1)}

    # -- checkpoints ----------------------------------------------------------------------
    def snapshot(self, run_dir: Path, step: int) -> dict:
        """Every rank: sync; rank 0 copies the tables into the run folder. Returns what the
        checkpoint records (counts of this epoch so far, summed over ranks)."""
        self.sync()
        proposed, improved = self.epoch_counts()
        state = {"counts": [proposed, improved], "tables": {}}
        if self.rank == 0:
            folder = Path(run_dir) / SNAPSHOTS / f"step_{step:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for name, sset in self.sets.items():
                with atomic_path(folder / f"{name}.npz") as tmp:
                    shutil.copyfile(self._dir(sset) / TABLE_NAME, tmp)
                state["tables"][name] = str((folder / f"{name}.npz").relative_to(run_dir))
        self.carried = (proposed, improved) if self.rank == 0 else (0, 0)
        return state

    def restore(self, run_dir: Path, state: dict | None) -> None:
        """Every rank: put the tables back as checkpoint ``state`` recorded them."""
        if not state:
            print("spin: the checkpoint has no fits-table snapshot; continuing with the tables as they are",
                  file=sys.stderr)
            return
        if self.rank == 0:
            for name, rel in state["tables"].items():
                if name not in self.sets:
                    raise HmrError(f"checkpoint has a fits snapshot for shard set {name!r}, not in the data",
                                   path=run_dir)
                _restore_table(self._dir(self.sets[name]), Path(run_dir) / rel)
        _barrier(self.world)
        self.table.tables = {name: FitsTable.open(self._dir(x), rank=self.rank) for name, x in self.sets.items()}
        self.carried = tuple(state.get("counts", (0, 0))) if self.rank == 0 else (0, 0)


def _restore_table(root: Path, snapshot: Path) -> None:
    """Replace the table in ``root`` by ``snapshot`` and drop update files not merged into it."""
    if not snapshot.is_file():
        raise HmrError("fits-table snapshot of the checkpoint is missing", path=snapshot)
    with _locked(root, exclusive=True):
        with atomic_path(root / TABLE_NAME) as tmp:
            shutil.copyfile(snapshot, tmp)
        for stale in (root / UPDATES).glob("*.npz"):
            stale.unlink()


def prune_snapshots(run_dir: Path, keep_steps: set[int]) -> None:
    """Delete snapshot folders whose step has no checkpoint any more."""
    for folder in (Path(run_dir) / SNAPSHOTS).glob("step_*"):
        try:
            step = int(folder.name.removeprefix("step_"))
        except ValueError:
            continue
        if step not in keep_steps:
            shutil.rmtree(folder, ignore_errors=True)


def checkpoint_steps(run_dir: Path) -> set[int]:
    """Steps of the ``step_*.pt`` checkpoints in a run folder."""
    steps = set()
    for p in Path(run_dir).glob("step_*.pt"):
        try:
            steps.add(int(p.stem.removeprefix("step_")))
        except ValueError:
            pass
    return steps

