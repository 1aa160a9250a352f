"""Does a model learn? Train it on small synthetic shards and score it against the mean-pose baseline.

The check every algorithm of the benchmark passes on the CPU (issue 18: "each trains on the
synthetic demo shards on the CPU and beats the mean-pose baseline on the synthetic test set"):

    split = synthetic_split(tmp_path, n_train=..., n_test=...)       # hmr.synth renders, as the demo
    result = train_and_compare("graphcmr_normal", overrides, split, tmp_path / "run")
    assert_beats_baseline(result, falling=("loss", "loss_vertices"), min_gain=0.1)

Both the trained checkpoint and the baseline (:func:`hmr.evaluation.baselines.evaluate_mean_pose`:
the mean pose and shape for every sample, the same for every model type) are scored by
:func:`hmr.evaluation.run.evaluate` on the ``smpl`` benchmark of the synthetic test store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import run_conversion
from hmr.evaluation.baselines import evaluate_mean_pose
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.models.checkpoint import load_checkpoint
from hmr.synth.generate import SynthConfig, generate
from hmr.training.launch import train
from hmr.training.logs import read_metrics
from loaders import ShardConfig, shard_store

METRICS = ("MPJPE", "PA-MPJPE", "PVE")


@dataclass
class SyntheticSplit:
    train_shards: Path  # shard set of the training renders
    test_store: Path  # converted store of the test renders


def synthetic_split(root: Path, *, n_train: int, n_test: int, image_size: int = 96, crop_px: int = 64,
                    tail: float = 0.0, max_yaw: float = SynthConfig.max_yaw, seed: int = 0) -> SyntheticSplit:
    """Render ``n_train`` + ``n_test`` mannequins (``hmr.synth``, the default body model, pose
    rarity drawn with ``tail``: 0 = uniform, as the demo's test set; the body turned about the
    vertical by up to ``max_yaw`` radians, ±90° by default as in the demo), convert both, shard
    the training store at ``crop_px``."""
    raw, stores = root / "raw", root / "stores"
    paths = {}
    for split, n in (("train", n_train), ("test", n_test)):
        generate(raw, SynthConfig(n=n, split=split, image_size=image_size, seed=seed, tail=tail, max_yaw=max_yaw,
                                  workers=1, supersample=1, photo_fraction=0.0), progress=False)
        paths[split] = run_conversion("synth", raw, stores, split=split, progress=False).store
    shards = shard_store(paths["train"], root / "shards",
                         ShardConfig(crop_size=crop_px, samples_per_shard=max(8, n_train // 4), workers=1),
                         progress=False)
    return SyntheticSplit(train_shards=shards, test_store=paths["test"])


@dataclass
class Comparison:
    trained: dict[str, float]  # metric -> mm, on the test store
    baseline: dict[str, float]
    steps: int  # optimiser steps trained: the checkpoint's step
    train_seconds: float
    records: list[dict]  # the run's metrics.jsonl

    def gain(self, metric: str = "PA-MPJPE") -> float:
        """Relative error reduction of the trained model against the baseline."""
        return (self.baseline[metric] - self.trained[metric]) / self.baseline[metric]

    def line(self) -> str:
        return (f"{self.steps} steps in {self.train_seconds:.0f} s; "
                + "; ".join(f"{m} {self.trained[m]:.1f} vs baseline {self.baseline[m]:.1f}" for m in METRICS))


def train_and_compare(config: str, overrides: list[str], split: SyntheticSplit, out: Path) -> Comparison:
    """Train ``config`` (with ``overrides``) on the split's shards on the CPU, score ``last.pt``
    and the mean-pose baseline on the test store."""
    run_overrides = ['data.source="shards"', f'data.shards=["{split.train_shards}"]', "data.num_workers=0",
                     'train.device="cpu"', 'model.backbone_checkpoint=""', *overrides]
    start = time.perf_counter()
    train(config, run_overrides, out=out / "run", progress=False)
    seconds = time.perf_counter() - start
    records = read_metrics(out / "run")
    options = EvalOptions(num_workers=0, worst=0, device="cpu", allow_other_dataset=True)
    trained = evaluate(out / "run" / "last.pt", "smpl", split.test_store, out / "eval_trained", options)
    baseline = evaluate_mean_pose(out / "run" / "last.pt", "smpl", split.test_store, out / "eval_baseline", options)
    pick = lambda summary: {m: float(summary[m]) for m in METRICS}  # noqa: E731
    steps = int(load_checkpoint(out / "run" / "last.pt")["step"])
    return Comparison(trained=pick(trained), baseline=pick(baseline), steps=steps, train_seconds=seconds,
                      records=records)


def assert_beats_baseline(result: Comparison, *, falling: Sequence[str], min_gain: float,
                          metric: str = "PA-MPJPE") -> None:
    """The checks of every beats-the-baseline test, after printing the run's line: each loss term
    of ``falling`` fell by 20% (the mean of the last three logged intervals below 0.8 × the
    first), and the trained model's ``metric`` is more than ``min_gain`` (relative) below the
    baseline's."""
    print(result.line())
    records = result.records
    for term in falling:
        first, last = records[0][term], np.mean([r[term] for r in records[-3:]])
        assert last < 0.8 * first, (term, first, last)
    assert result.gain(metric) > min_gain, result.line()
