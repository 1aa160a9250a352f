"""Slow: Graphormer trains through the ordinary trainer (random bodies, then synthetic shards)
and is evaluated through the common path."""

import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.evaluation.baselines import evaluate_mean_pose
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.models.checkpoint import load_model
from hmr.models.graphormer import Graphormer
from hmr.training.config import load_config
from hmr.training.launch import train
from hmr.training.logs import read_metrics
from hmr.training.trainer import Trainer
from tests.fixtures.spin import spin_shards
from tests.fixtures.training import RandomBodyBatches

#: a small Graphormer for the CPU: 64 px test backbone, two encoder blocks of one layer each
SMALL = ['model.backbone="test_resnet"', "model.img_size=64", "model.transformer_hidden=[64, 32]",
         "model.transformer_dims=[32]", "model.transformer_graph=[0, 1]", "model.transformer_layers=1",
         "model.transformer_heads=2", 'model.backbone_checkpoint=""', 'train.device="cpu"', 'train.precision="fp32"']


@pytest.mark.slow
def test_losses_fall_and_the_checkpoint_rebuilds(tmp_path):
    body = load_body_model()
    batches = RandomBodyBatches(body, 8, num_distinct=2, crop_px=64)
    config = load_config("graphormer_normal", [*SMALL, 'data.source="random"', "train.batch_size=8",
                                               "train.total_steps=30", "train.log_every=5",
                                               "train.checkpoint_every=100", "optim.lr=1e-3"])
    trainer = Trainer(config, tmp_path / "run", body_model=body)
    trainer.fit(batches, progress=False)
    records = read_metrics(tmp_path / "run")
    first, last = records[0], records[-1]
    assert all(np.isfinite(r[k]) for r in records for k in r if k.startswith("loss"))
    for term, factor in (("loss", 0.6), ("loss_keypoints3d", 0.6), ("loss_keypoints2d", 0.6),
                         ("loss_vertices", 0.85)):
        assert last[term] < factor * first[term], (term, first[term], last[term])
    model, ckpt = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(model, Graphormer) and ckpt["config"]["model"]["type"] == "graphormer"
    batch = next(batches.stream())
    trainer.model.eval()
    with torch.no_grad():
        a, b = trainer.model(batch["img"]), model(batch["img"])
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.cam, b.cam)


@pytest.mark.slow
def test_graphormer_trains_on_synthetic_shards_and_is_evaluated(tmp_path):
    set_dir = spin_shards(tmp_path, n=32)
    overrides = [*SMALL, 'data.source="shards"', f'data.shards=["{set_dir}"]', "data.num_workers=0",
                 "data.shuffle_buffer=16", "data.augment=false", "train.total_steps=40", "train.checkpoint_every=40",
                 "train.log_every=5", "train.batch_size=8", "optim.lr=1e-3"]
    train("graphormer_l1", overrides, out=tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run")
    assert len(records) == 8
    for term in ("loss", "loss_vertices", "loss_keypoints3d"):
        first, last = records[0][term], np.mean([r[term] for r in records[-2:]])
        assert last < 0.8 * first, (term, first, last)
    store = next((tmp_path / "stores").glob("*.zarr"))
    options = EvalOptions(num_workers=0, worst=0, device="cpu", allow_other_dataset=True)
    result = evaluate(tmp_path / "run" / "last.pt", "smpl", store, tmp_path / "eval", options)
    baseline = evaluate_mean_pose(tmp_path / "run" / "last.pt", "smpl", store, tmp_path / "eval_base", options)
    # 40 steps prove the path, not the accuracy: the errors are finite and of the right order
    # (docs/models.md records a longer run against this baseline)
    for metric in ("PA-MPJPE", "MPJPE", "PVE"):
        assert np.isfinite(result[metric]) and 0 < result[metric] < 4 * baseline[metric], metric


#: the beats-the-baseline run (docs/models.md, Graphormer "Synthetic check"): GraphCMR's
#: protocol (2,000 / 100 renders, yaw within ±0.3 rad, test backbone, batch 16, Adam 1e-3 with
#: a cosine decay) with a two-block encoder of hidden sizes 128 / 64, 1,200 steps (~25 min)
BEATS = ['model.backbone="test_resnet"', "model.img_size=64", "model.transformer_hidden=[128, 64]",
         "model.transformer_dims=[64]", "model.transformer_graph=[0, 1]", "model.transformer_layers=1",
         "model.transformer_heads=4", 'model.backbone_checkpoint=""', "data.shuffle_buffer=200",
         "data.augment=false", 'train.precision="fp32"', "train.batch_size=16", "train.total_steps=1200",
         "train.checkpoint_every=1200", "train.log_every=25", "train.keep_checkpoints=0", "optim.lr=1e-3",
         'optim.scheduler="cosine"', "optim.warmup_steps=0"]


@pytest.mark.slow
@pytest.mark.long
def test_graphormer_beats_the_mean_pose_baseline(tmp_path):
    from tests.hmr.models._beats_baseline import assert_beats_baseline, synthetic_split, train_and_compare

    split = synthetic_split(tmp_path / "data", n_train=2000, n_test=100, max_yaw=0.3)
    result = train_and_compare("graphormer_l1", BEATS, split, tmp_path)
    # 1,200 steps gave 123.6 vs 137.8 mm (10.3%)
    assert_beats_baseline(result, falling=("loss", "loss_keypoints3d", "loss_vertices"), min_gain=0.05)
