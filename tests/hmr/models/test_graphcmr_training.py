"""Slow: GraphCMR trains on synthetic shards through the ordinary trainer and is evaluated."""

import numpy as np
import pytest

from hmr.core.body.smpl import load_body_model
from hmr.core.geometry import rot6d_to_matrix
from hmr.core.schema.store import open_store
from hmr.evaluation import get_benchmark, score_predictions, select_samples
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.models.hmr import default_mean_params_path
from hmr.models.regressor import load_mean_params
from hmr.training.launch import train
from hmr.training.logs import read_metrics
from tests.fixtures.spin import spin_shards


def _mean_pose_pa_mpjpe(store_path) -> float:
    """PA-MPJPE (mm) of predicting the body model's mean pose and shape for every sample."""
    store, bench = open_store(store_path), get_benchmark("smpl")
    rows = select_samples(bench, store)
    mean = load_mean_params(default_mean_params_path())
    rot = rot6d_to_matrix(mean.pose6d.reshape(1, 24, 6)).expand(len(rows), -1, -1, -1)
    errors = score_predictions(bench, store, rows, rot, mean.betas[None].expand(len(rows), -1),
                               lambda g: load_body_model(gender=g))
    return float(errors.pa_mpjpe_mm.mean())


@pytest.mark.slow
def test_graphcmr_trains_on_synthetic_shards(tmp_path):
    set_dir = spin_shards(tmp_path, n=32)
    overrides = ['model.backbone="test_resnet"', "model.img_size=64", "model.graph_channels=64",
                 "model.graph_layers=1", "model.mesh_level=2", 'model.backbone_checkpoint=""',
                 'data.source="shards"', f'data.shards=["{set_dir}"]', "data.num_workers=0", "data.shuffle_buffer=16",
                 "data.augment=false", "train.total_steps=40", "train.checkpoint_every=40", "train.log_every=5",
                 "train.batch_size=8", 'train.device="cpu"', 'train.precision="fp32"', "optim.lr=1e-3"]
    train("graphcmr_normal", overrides, out=tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run")
    assert len(records) == 8
    for term in ("loss", "loss_vertices", "loss_vertices_smpl"):
        first, last = records[0][term], np.mean([r[term] for r in records[-2:]])
        assert last < 0.8 * first, (term, first, last)
    store = next((tmp_path / "stores").glob("*.zarr"))
    result = evaluate(tmp_path / "run" / "last.pt", "smpl", store, tmp_path / "eval",
                      EvalOptions(num_workers=0, worst=0, device="cpu", allow_other_dataset=True))
    baseline = _mean_pose_pa_mpjpe(store)
    # 40 steps prove the path, not the accuracy: the error is finite and of the right order
    # (docs/models.md records longer runs against this baseline)
    assert np.isfinite(result["PA-MPJPE"]) and 0 < result["PA-MPJPE"] < 4 * baseline
