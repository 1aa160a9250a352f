"""The mean-pose baseline: one for every model type, equal to the zeroed-decoder HMR copy."""

from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.core.geometry import rot6d_to_matrix
from hmr.core.schema.store import open_store
from hmr.evaluation import get_benchmark, score_predictions, select_samples
from hmr.evaluation.baselines import evaluate_mean_pose, mean_pose_checkpoint
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.models import HMR, ModelConfig, create_model, load_mean_params
from hmr.models.checkpoint import save_checkpoint
from tests.fixtures.training import write_mean_params, write_test_store


@pytest.fixture(scope="module")
def neutral():
    return load_body_model()


def _store_with_images(tmp_path, neutral, n=6):
    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=n, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    return path


def test_hmr_baseline_equals_the_zeroed_decoder_checkpoint(tmp_path, neutral):
    path = _store_with_images(tmp_path, neutral)
    mean_file = write_mean_params(tmp_path / "mean.npz")
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=16, mean_params=str(mean_file))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt", {"config": {"model": asdict(config)},
                                                          "model": HMR(config).state_dict(), "step": 5})
    opts = EvalOptions(batch_size=4, num_workers=0, worst=1, device="cpu")
    zeroed = evaluate(mean_pose_checkpoint(ckpt, tmp_path / "zeroed.pt"), "3dpw", path, tmp_path / "e1", opts)
    baseline = evaluate_mean_pose(ckpt, "3dpw", path, tmp_path / "e2", opts)
    for metric in ("MPJPE", "PA-MPJPE", "PVE"):
        assert baseline[metric] == pytest.approx(zeroed[metric], abs=1e-3)
    assert baseline["checkpoint"].startswith("mean-pose baseline") and baseline["checkpoint_step"] == -1
    assert len(list((tmp_path / "e2" / "worst").glob("worst_*.png"))) == 1  # drawn with the mean camera
    # the numbers are those of the mean parameters posed on the neutral model, sample by sample
    mean = load_mean_params(mean_file)
    store = open_store(path)
    rows = select_samples(get_benchmark("3dpw"), store)
    rot = rot6d_to_matrix(mean.pose6d.reshape(1, 24, 6)).expand(len(rows), -1, -1, -1)
    direct = score_predictions(get_benchmark("3dpw"), store, rows, rot, mean.betas[None].expand(len(rows), -1),
                               lambda g: load_body_model(gender=g))
    assert baseline["PA-MPJPE"] == pytest.approx(float(direct.pa_mpjpe_mm.mean()), abs=1e-3)


def test_graphcmr_gets_the_same_baseline(tmp_path, neutral):
    path = _store_with_images(tmp_path, neutral, n=4)
    hmr_config = ModelConfig(backbone="test_resnet", img_size=64, hidden=16)  # the mean next to the body model
    hmr_ckpt = save_checkpoint(tmp_path / "hmr.pt", {"config": {"model": asdict(hmr_config)},
                                                     "model": HMR(hmr_config).state_dict()})
    config = ModelConfig(type="graphcmr", backbone="test_resnet", img_size=64, graph_channels=64, graph_layers=0,
                         mesh_level=2, backbone_checkpoint="")
    ckpt = save_checkpoint(tmp_path / "graphcmr.pt", {"config": {"model": asdict(config)},
                                                      "model": create_model(config, body_model=neutral).state_dict()})
    opts = EvalOptions(batch_size=4, num_workers=0, worst=0, device="cpu")
    with pytest.raises(ConfigError, match="not an HMR checkpoint"):
        mean_pose_checkpoint(ckpt, tmp_path / "zeroed.pt")
    graph = evaluate_mean_pose(ckpt, "3dpw", path, tmp_path / "e1", opts)
    hmr = evaluate_mean_pose(hmr_ckpt, "3dpw", path, tmp_path / "e2", opts)
    other = evaluate_mean_pose(ckpt, "3dpw", path, tmp_path / "e3", opts,
                               mean_params=write_mean_params(tmp_path / "mean.npz"))
    for metric in ("MPJPE", "PA-MPJPE", "PVE"):
        assert graph[metric] == pytest.approx(hmr[metric], abs=1e-3)
    assert other["PVE"] != pytest.approx(graph["PVE"], abs=1e-2)  # another mean, another baseline
    assert "mean.npz" in other["checkpoint"]
