"""The training loop: one readable step, checkpoints, exact resume, logs, DDP.

``Trainer(config, run_dir).fit(batches)`` trains ``config.train.total_steps`` optimiser steps
on ``batches``: any iterable of loader-shaped batch dicts (``img``, ``keypoints2d``,
``keypoints3d``, ``smpl_*``, ``has_smpl``, ... see :mod:`hmr.training.objective`), or a
callable ``start_step -> iterable`` so a resumed run restarts its data stream where it left
off (the loaders seed their stream from it).

- Loss: the model type's own (:mod:`hmr.training.model_losses`), built once; the step calls it.
- Device: CUDA when present (bf16 autocast and channels-last there by default), else CPU in
  fp32. The body model always runs in fp32 (its blend shapes lose mm-level accuracy in bf16).
- Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1, one node or several) the model is
  wrapped in DDP, NCCL on CUDA and gloo on CPU; each process takes ``train.batch_size``
  samples per step, global rank 0 logs and writes checkpoints (the run folder must be on
  storage every node reads), a signal to any rank stops all of them after the same step.
- Checkpoints (:mod:`hmr.models.checkpoint`, in the run folder of :mod:`hmr.training.run_folder`)
  every ``train.checkpoint_every`` steps, at the end, and on SIGTERM/SIGINT (Slurm
  preemption): model and its input config, optimiser, scheduler, objective (Balanced-MSE σ),
  step and every rank's RNG states, so ``resume`` continues exactly.
- Logs (:mod:`hmr.training.logs`): every ``train.log_every`` steps the interval means of all
  loss terms, σ, learning rates, images/s and the fraction of time spent waiting for data.
- SPIN (``spin.enabled``, :mod:`hmr.training.spin`): each batch's SMPL supervision comes from
  SMPLify fits refined from the prediction and kept in per-shard-set fits tables; merged at
  each epoch end (logging ``spin/epoch_improved``) and before each checkpoint, which records
  a snapshot of the tables so that ``resume`` restores them too.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from hmr.core.body import JointsOnlyBody
from hmr.core.errors import ConfigError
from hmr.core.utils.atomic import atomic_path
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.models import create_model
from hmr.models.checkpoint import load_checkpoint, save_checkpoint
from hmr.training.config import Config, OptimConfig
from hmr.training.data import input_config
from hmr.training.logs import RunLogger
from hmr.training.model_losses import LossParts, build_model_loss
from hmr.training.objective import Objective
from hmr.training.run_folder import LAST, latest_checkpoint, prune_checkpoints, rng_state, set_rng_state
from loaders.batch import normalise_batch

Batches = Iterable[dict] | Callable[[int], Iterable[dict]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_distributed(device_kind: str) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)``; initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def build_optimizer(cfg: OptimConfig, model: torch.nn.Module, sigma_params: list, sigma_lr: float):
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr,
               "weight_decay": cfg.weight_decay, "name": "model"}]
    if sigma_params:
        # Balanced MSE: the noise σ learns with its own rate and no weight decay (Ren et al.)
        groups.append({"params": sigma_params, "lr": sigma_lr, "weight_decay": 0.0, "name": "sigma"})
    # One fused kernel over all parameters instead of a loop of small ops per tensor: the demo's
    # Adam step 10-16 -> 5 ms on 2 CPU cores (of a ~100 ms training step)
    fused = {"fused": True} if cfg.fused else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, **fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=cfg.momentum)
    raise ConfigError(f"optim.optimizer = {cfg.optimizer!r}: choose adam, adamw or sgd")


def lr_factor(cfg: OptimConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rates at a step: linear warm-up, then the schedule."""
    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.scheduler == "cosine":
            span = max(total_steps - cfg.warmup_steps, 1)
            return 0.5 * (1 + math.cos(math.pi * min(step - cfg.warmup_steps, span) / span))
        if cfg.scheduler == "step":
            return cfg.step_gamma ** sum(step >= m for m in cfg.step_milestones)
        return 1.0
    return factor


def move_batch(batch: dict, device: torch.device, channels_last: bool) -> dict:
    """Tensors to ``device``; a uint8 image batch (``StreamConfig.normalise_on_device``) is
    normalised there, after the move (a quarter of the bytes to copy), to the same floats; a
    JPEG batch (``data.decode_on = "device"``) is decoded, warped and normalised there
    (``normalise_batch`` hands it to :func:`loaders.device_decode.decode_batch`)."""
    out = {key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
           for key, value in batch.items()}
    out = normalise_batch(out)
    if channels_last:
        out["img"] = out["img"].contiguous(memory_format=torch.channels_last)
    return out


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: CUDA, or a CPU with bf16 matrix instructions
    (AVX-512 BF16 / AMX, through oneDNN); elsewhere CPU bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


class Trainer:
    def __init__(self, config: Config, run_dir: str | os.PathLike, *, body_model=None,
                 label_dists: dict[str, dict] | None = None, resume: bool | str | os.PathLike = False,
                 spin_prior=None):
        """``resume``: True = continue from the run folder's latest checkpoint (if any), a
        path = from that checkpoint; ``self.step`` then tells where training goes on.
        ``spin_prior``: a :class:`~hmr.fitting.prior.MixturePosePrior` for SPIN's SMPLify
        (default: ``spin.pose_prior``)."""
        self.config, self.run_dir = config, Path(run_dir)
        resume_path = None
        if resume:
            resume_path = latest_checkpoint(self.run_dir) if resume is True else Path(resume)
        elif latest_checkpoint(self.run_dir) is not None:
            raise ConfigError("the run folder already holds checkpoints: resume it or choose another "
                              "folder", path=self.run_dir)
        t = config.train
        kind = t.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.rank, self.world, local_rank = setup_distributed(kind)
        self.device = torch.device(f"cuda:{local_rank}" if kind == "cuda" else kind)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.use_bf16 = t.precision == "bf16" or (t.precision == "auto" and native_bf16(self.device))
        # NHWC: tensor cores on CUDA; oneDNN's faster convolutions on CPU (HMR-ResNet-50 at 224 px,
        # batch 64: 1.33x fp32 on 2 cores, benchmarks/train_step.py; no change for the demo's 64 px)
        self.channels_last = t.channels_last
        seed_everything(t.seed + self.rank)
        # Initial weights are read only for a fresh run: a resumed one overwrites them anyway.
        self.model = create_model(config.model, load_backbone_checkpoint=resume_path is None and not t.init_from,
                                  input_config=input_config(config))
        if t.init_from and resume_path is None:  # fine-tuning: every network weight from an earlier run
            self.model.load_state_dict(load_checkpoint(t.init_from)["model"])
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if body_model is None:
            from hmr.core.body.smpl import load_body_model

            body_model = load_body_model(t.body_model or None, device=self.device)
        self.body_model = body_model.to(self.device)
        # The losses need joints only: SMPL posed at the few hundred vertices the joint
        # regressors read, not the whole mesh (same joints; 1.2x faster demo step on CPU)
        self.loss_body = JointsOnlyBody(self.body_model, h36m=config.data.convention == "h36m")
        if label_dists is None and config.loss.label_distribution_file:
            from hmr.training.label_stats import load_label_distributions

            label_dists = load_label_distributions(config.loss.label_distribution_file, config.loss)
        self.objective = Objective(config.loss, config.data.convention, focal_length_px=config.model.focal_length_px,
                                   crop_px=config.model.img_size, label_dists=label_dists).to(self.device)
        # the model type's loss (hmr.training.model_losses): the step calls it and nothing else
        self.loss_fn = build_model_loss(LossParts(config, self.objective, self.body_model, self.loss_body, self.model))
        self.optimizer = build_optimizer(config.optim, self.model, self.objective.sigma_parameters(),
                                         config.loss.sigma_lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config.optim, t.total_steps))
        self.step = 0
        self._stop_signal: int | None = None
        self.spin = None
        if config.spin.enabled:
            from hmr.training.spin import SpinSupervision

            self.spin = SpinSupervision(config, self.body_model, rank=self.rank, world=self.world,
                                        pose_prior=spin_prior, run_dir=self.run_dir)
        if resume_path is not None:
            self.resume(resume_path)
        self._control = None  # the process group of the per-step stop flag (None: the default)
        if self.world > 1:
            if self.device.type == "cuda":  # a CPU flag over gloo: no GPU sync per step
                self._control = dist.new_group(backend="gloo")
            self._check_same_step()

    # -- checkpoints ----------------------------------------------------------------------
    def _gather_rng(self) -> list:
        state = rng_state()
        if self.world == 1:
            return [state]
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, state)
        return gathered

    def save(self, metrics: dict[str, float] | None = None) -> Path | None:
        """Write ``last.pt`` (and a ``step_N.pt`` copy); every rank must call it (RNG gather)."""
        spin_state = self.spin.snapshot(self.run_dir, self.step) if self.spin is not None else None
        rngs = self._gather_rng()
        if self.rank != 0:
            return None
        payload = {"config": self.config.to_dict(), "model": self.model.state_dict(),
                   "objective": self.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "step": self.step, "world_size": self.world,
                   "rng": rngs, "metrics": dict(metrics or {}),
                   # what the network was fed (crop size, mean/std, the shards' crop scale): evaluation
                   # and prediction crop with it to show the network what it learnt on
                   "input_config": self.model.input_config.to_dict()}
        if spin_state is not None:
            payload["spin"] = spin_state
        last = save_checkpoint(self.run_dir / LAST, payload)
        if self.config.train.keep_checkpoints > 0:
            with atomic_path(self.run_dir / f"step_{self.step:08d}.pt") as tmp:
                shutil.copyfile(last, tmp)
            prune_checkpoints(self.run_dir, self.config.train.keep_checkpoints)
        if self.spin is not None:
            from hmr.training.spin import checkpoint_steps, prune_snapshots

            prune_snapshots(self.run_dir, checkpoint_steps(self.run_dir) | {self.step})
        return last

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from checkpoint ``path``: weights, optimiser, scheduler, σ, step, RNG."""
        ckpt = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(ckpt["model"])
        self.objective.load_state_dict(ckpt["objective"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step = int(ckpt["step"])
        if self.spin is not None:
            self.spin.restore(Path(path).parent, ckpt.get("spin"))
        rngs = ckpt["rng"]
        if len(rngs) == self.world:
            set_rng_state(rngs[self.rank])
        else:  # a different world size cannot continue the same random streams
            seed_everything(self.config.train.seed + self.rank + 1_000_003 * self.step)

    def _check_same_step(self) -> None:
        """Every rank must start at the same step: one that found no checkpoint (a run folder
        on a disk only one node sees) would train from scratch beside resumed ones."""
        steps: list = [None] * self.world
        dist.all_gather_object(steps, self.step)
        if len(set(steps)) > 1:
            raise ConfigError(f"the ranks start at different steps {steps}: the run folder must be on "
                              "storage that every node reads (resume found different checkpoints)",
                              path=self.run_dir)

    # -- one step -------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        batch = move_batch(batch, self.device, self.channels_last)
        self.net.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            out = self.net(batch["img"])
        spin_terms = {}
        with torch.autocast(self.device.type, enabled=False):
            if self.spin is not None:  # SPIN: SMPLify from the prediction supervises the SMPL terms
                batch, spin_terms = self.spin.supervise(batch, out)
            loss, terms = self.loss_fn(out, batch)
        terms.update({k: v.to(loss.device) for k, v in spin_terms.items()})
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {self.step}: "
                                     + ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.optim.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {k: v.detach() for k, v in terms.items()}

    def _mean_over_ranks(self, scalars: dict[str, float]) -> dict[str, float]:
        """Interval means averaged over the processes, so the log shows the global batch."""
        if self.world == 1:
            return scalars
        keys = sorted(scalars)
        values = torch.tensor([scalars[k] for k in keys], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(values)
        return dict(zip(keys, (values / self.world).tolist()))

    def validate(self, logger: RunLogger) -> dict[str, float]:
        """Rank 0: evaluate ``last.pt`` on the configured benchmark, log and return the numbers."""
        if self.rank != 0:
            return {}

        t = self.config.train
        opts = EvalOptions(batch_size=t.batch_size, device=str(self.device), num_workers=self.config.data.num_workers,
                           max_samples=t.eval_max_samples or None, worst=0, body_model=t.body_model or None)
        result = evaluate(self.run_dir / LAST, t.eval_bench, t.eval_data,
                          self.run_dir / "eval" / f"step_{self.step:08d}", opts)
        scalars = {f"eval/{t.eval_bench}/{k}": float(result[k]) for k in ("MPJPE", "PA-MPJPE", "PVE")
                   if result.get(k) is not None}
        for name, values in result.get("balanced", {}).items():
            scalars[f"eval/{t.eval_bench}/{name}-All"] = float(values["All"])
        logger.log(self.step, scalars)
        return scalars

    # -- the loop -------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def _stopping(self) -> bool:
        """Whether a SIGTERM/SIGINT reached any rank. The signal reaches the processes of a
        multi-node job at different moments (Slurm's preemption, one node's torchrun): the ranks
        agree on it each step, so all of them stop after the same step and checkpoint it together."""
        flag = self._stop_signal is not None
        if self.world == 1:
            return flag
        stop = torch.tensor([int(flag)])
        dist.all_reduce(stop, op=dist.ReduceOp.MAX, group=self._control)
        if stop.item() and self._stop_signal is None:
            self._stop_signal = 0  # another rank's signal: stop (and skip the final evaluation) too
        return bool(stop.item())

    def _spin_merge_every(self, batches: Batches) -> int:
        """Steps between SPIN's fits-table merges: ``spin.merge_every`` or the data's epoch."""
        if self.spin is None:
            return 0
        every = self.config.spin.merge_every or getattr(batches, "batches_per_epoch", 0)
        if not every:
            raise ConfigError("SPIN merges its fits every epoch, but this data stream has no epoch length: "
                              "set spin.merge_every")
        return int(every)

    def _end_spin_epoch(self, logger: RunLogger, bar) -> None:
        scalars = self.spin.end_epoch()
        logger.log(self.step, scalars)
        if self.rank == 0:
            bar.write(f"spin: step {self.step}: {int(scalars['spin/epoch_improved'])} of "
                      f"{int(scalars['spin/epoch_fits'])} fits improved "
                      f"({100 * scalars['spin/epoch_improved_fraction']:.1f}%)")

    def fit(self, batches: Batches, *, max_steps: int | None = None, progress: bool = True) -> dict[str, float]:
        """Train until ``train.total_steps`` (or ``max_steps`` more steps); returns the last
        logged scalars."""
        t = self.config.train
        logger = RunLogger(self.run_dir, enabled=self.rank == 0, resume_step=self.step if self.step else None)
        stream = iter(batches(self.step) if callable(batches) else batches)
        end = t.total_steps if max_steps is None else min(t.total_steps, self.step + max_steps)
        merge_every = self._spin_merge_every(batches)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
            if _main_thread() else {}
        from tqdm import tqdm

        bar = tqdm(total=t.total_steps, initial=self.step, disable=not progress or self.rank != 0,
                   desc=self.config.name or "train", unit="step", dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}  # kept on the device: no host sync per step
        count, wait_s, t0, last = 0, 0.0, time.perf_counter(), {}
        samples = None
        if t.log_samples:
            from hmr.training.sample_log import SampleLog

            samples = SampleLog(self.run_dir, self.rank, resume_step=self.step if self.step else None)
        try:
            while self.step < end and not self._stopping():
                tw = time.perf_counter()
                try:
                    batch = next(stream)
                except StopIteration:
                    raise ConfigError(f"the data stream ended at step {self.step} of {end}") from None
                wait_s += time.perf_counter() - tw
                if samples is not None:
                    samples.log(self.step + 1, batch)
                terms = self.train_step(batch)
                for k, v in terms.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                count += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == end:
                    elapsed = time.perf_counter() - t0
                    last = self._mean_over_ranks({k: float(v) / count for k, v in sums.items()})
                    last.update({f"lr/{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)})
                    last["images_per_s"] = count * len(batch["keypoints2d"]) * self.world / max(elapsed, 1e-9)
                    last["data_wait_fraction"] = wait_s / max(elapsed, 1e-9)
                    logger.log(self.step, last)
                    bar.set_postfix(loss=f"{last['loss']:.4g}")
                    sums, count, wait_s, t0 = {}, 0, 0.0, time.perf_counter()
                if merge_every and self.step % merge_every == 0:
                    self._end_spin_epoch(logger, bar)
                evaluate_now = bool(t.eval_every) and self.step % t.eval_every == 0
                if (self.step % t.checkpoint_every == 0 or evaluate_now) and self.step < end:
                    paused = time.perf_counter()
                    self.save(last)
                    if evaluate_now:
                        self.validate(logger)
                    t0 += time.perf_counter() - paused  # images/s counts training time only
            self.save(last)
            if t.eval_every and self._stop_signal is None:
                self.validate(logger)
        finally:
            bar.close()
            logger.close()
            if samples is not None:
                samples.close()
            for s, handler in old.items():
                signal.signal(s, handler)
        return last


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
