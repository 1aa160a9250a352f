"""PARE trains through the shared Trainer: every loss term finite, the losses fall, the part
segmentation term is on only where the batch has SMPL."""

import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.models.checkpoint import load_model
from hmr.models.pare import PARE
from hmr.training.config import load_config
from hmr.training.logs import read_metrics
from hmr.training.random_batches import RandomBodyBatches
from hmr.training.trainer import Trainer

SMALL = ['model.type="pare"', 'model.backbone="test_resnet"', "model.pare_branch_channels=32",
         "model.pare_smpl_features=16", "loss.scale=1.0", "loss.weight_betas=0.1", "loss.weight_keypoints2d=1.0",
         "loss.weight_keypoints3d=1.0", "loss.weight_cam=0.0"]
TERMS = ("loss", "loss_keypoints2d", "loss_keypoints3d", "loss_pose", "loss_betas", "loss_part_segmentation")


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def _config(*overrides):
    return load_config("tiny_cpu", [*SMALL, "train.log_every=5", "train.checkpoint_every=100", *overrides])


@pytest.mark.slow
def test_training_lowers_every_term_and_the_checkpoint_rebuilds(tmp_path, body):
    torch.manual_seed(0)
    batches = RandomBodyBatches(body, 8, num_distinct=2, crop_px=64)
    trainer = Trainer(_config("train.total_steps=40", "optim.lr=1e-3"), tmp_path / "run", body_model=body)
    trainer.fit(batches, progress=False)
    records = read_metrics(tmp_path / "run")
    first, last = records[0], records[-1]
    for term in TERMS:
        assert np.isfinite([r[term] for r in records]).all(), term
    for term in ("loss", "loss_part_segmentation", "loss_pose", "loss_keypoints3d"):
        assert last[term] < 0.7 * first[term], (term, first[term], last[term])
    # the part branch learnt the maps: most GT-part pixels of a training batch are predicted right
    batch = next(batches.stream())
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(batch["img"])
        _, terms = trainer.loss_fn.part_terms(out, batch)
    assert terms["loss_part_segmentation"] < 0.7 * first["loss_part_segmentation"]
    model, ckpt = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(model, PARE) and ckpt["config"]["model"]["type"] == "pare"
    with torch.no_grad():
        assert torch.equal(model(batch["img"]).pose_rotmat, out.pose_rotmat)


def test_part_term_only_where_the_batch_has_smpl(tmp_path, body):
    batches = RandomBodyBatches(body, 6, num_distinct=1, crop_px=64)
    trainer = Trainer(_config("train.total_steps=1"), tmp_path / "run", body_model=body)
    batch = dict(next(batches.stream()))
    out = trainer.model(batch["img"])
    loss, terms = trainer.loss_fn.part_terms(out, batch)
    assert torch.isfinite(loss) and terms["loss_part_segmentation"] > 0
    loss.backward()
    assert trainer.model.part_head.weight.grad.abs().sum() > 0 and trainer.model.pose_mlp.weight.grad is None
    trainer.model.zero_grad()
    trainer.model(batch["img"]).pose_rotmat.square().sum().backward()  # the 3D terms reach the part
    assert trainer.model.part_head.weight.grad.abs().sum() > 0  # branch through the attention
    none = dict(batch, has_smpl=torch.zeros(6, dtype=torch.bool))
    loss, terms = trainer.loss_fn.part_terms(trainer.model(batch["img"]), none)
    assert terms["loss_part_segmentation"].item() == 0.0
    step = trainer.train_step(batch)
    assert set(TERMS) <= set(step) and all(torch.isfinite(v) for v in step.values())


@pytest.mark.slow
def test_pare_trains_on_synthetic_shards_and_is_evaluated(tmp_path):
    """``hmr train`` on shards (``hmr.synth`` renders, whose SMPL and camera draw the part maps)
    and ``hmr evaluate`` through the common prediction path, no PARE special case."""
    from hmr.evaluation.run import EvalOptions, evaluate
    from hmr.training.launch import train
    from tests.fixtures.spin import spin_shards
    from hmr.evaluation.baselines import evaluate_mean_pose

    set_dir = spin_shards(tmp_path, n=32)
    overrides = [*SMALL, "model.img_size=64", 'model.backbone_checkpoint=""', 'data.source="shards"',
                 f'data.shards=["{set_dir}"]', "data.num_workers=0", "data.shuffle_buffer=16", "data.augment=false",
                 "train.total_steps=40", "train.checkpoint_every=40", "train.log_every=5", "train.batch_size=8",
                 'train.device="cpu"', 'train.precision="fp32"', "optim.lr=1e-3"]
    train("pare_normal", overrides, out=tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run")
    assert len(records) == 8
    for term in ("loss", "loss_part_segmentation"):
        first, last = records[0][term], np.mean([r[term] for r in records[-2:]])
        assert last < 0.8 * first, (term, first, last)
    store = next((tmp_path / "stores").glob("*.zarr"))
    options = EvalOptions(num_workers=0, worst=0, device="cpu", allow_other_dataset=True)
    result = evaluate(tmp_path / "run" / "last.pt", "smpl", store, tmp_path / "eval", options)
    baseline = evaluate_mean_pose(tmp_path / "run" / "last.pt", "smpl", store, tmp_path / "baseline", options)["PA-MPJPE"]
    # 40 steps prove the path, not the accuracy (docs/models.md records a longer run)
    assert np.isfinite(result["PA-MPJPE"]) and 0 < result["PA-MPJPE"] < 4 * baseline


# GraphCMR's protocol (test_graphcmr_training.py): the test backbone, batch 16, Adam 1e-3 with a
# cosine decay; PARE's head at branch width 32 and shape/camera features 16; 1,200 steps
# (docs/models.md, "Synthetic check": 600 steps stop 2.6% above the baseline)
BEATS = ['model.backbone="test_resnet"', "model.img_size=64", "model.pare_branch_channels=32",
         "model.pare_smpl_features=16", "data.shuffle_buffer=200", "data.augment=false", 'train.precision="fp32"',
         "train.batch_size=16", "train.total_steps=1200", "train.checkpoint_every=1200", "train.log_every=25",
         "train.keep_checkpoints=0", "optim.lr=1e-3", 'optim.scheduler="cosine"', "optim.warmup_steps=0"]


@pytest.mark.slow
@pytest.mark.long
def test_pare_beats_the_mean_pose_baseline(tmp_path):
    from tests.hmr.models._beats_baseline import assert_beats_baseline, synthetic_split, train_and_compare

    split = synthetic_split(tmp_path / "data", n_train=2000, n_test=100, max_yaw=0.3)
    result = train_and_compare("pare_l1", BEATS, split, tmp_path)
    # 1,200 steps give 124.4 vs 137.8 mm (9.7%)
    assert_beats_baseline(result, falling=("loss", "loss_part_segmentation", "loss_pose", "loss_keypoints3d"),
                          min_gain=0.05)
