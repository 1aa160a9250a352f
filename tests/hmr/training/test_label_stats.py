"""GAI / BNI label distributions fitted from stores, saved, and used by the trainer."""

import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.training.config import LossConfig, load_config
from hmr.training.logs import read_metrics
from hmr.training.label_stats import fit_label_distributions, load_label_distributions, smpl_labels
from hmr.training.trainer import Trainer
from tests.fixtures.training import RandomBodyBatches, write_test_store


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def test_labels_are_rotation_matrices_and_betas_of_smpl_samples(tmp_path, body):
    store, params = write_test_store(tmp_path / "s.zarr", body, dataset="synth", n=10)
    pose = smpl_labels([store], "pose")
    assert pose.shape == (10, 216)
    rot = pose.reshape(10, 24, 3, 3)
    np.testing.assert_allclose(rot @ rot.transpose(0, 1, 3, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)
    np.testing.assert_allclose(smpl_labels([store], "betas"), params["betas"].numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="keypoints3d"):
        smpl_labels([store], "keypoints3d")


def test_fitted_priors_drive_gai_and_bni_training(tmp_path, body):
    store, _ = write_test_store(tmp_path / "s.zarr", body, dataset="synth", n=40)
    path = fit_label_distributions([store], tmp_path / "label_dists.npz", {"pose": "gai", "betas": "bni"}, n_components=2, bins=2)
    loss_cfg = LossConfig(pose="gai", betas="bni", label_distribution_file=str(path))
    label_dists = load_label_distributions(path, loss_cfg)
    assert label_dists["pose"]["gmm"].means.shape == (2, 216)
    assert label_dists["betas"]["bucket_weights"].sum() == pytest.approx(1.0)
    cfg = load_config("tiny_cpu", ['model.backbone="test_resnet"', "model.hidden=32", "train.total_steps=2",
                                   "train.log_every=1", 'loss.pose="gai"', 'loss.betas="bni"',
                                   f'loss.label_distribution_file="{path}"'])
    trainer = Trainer(cfg, tmp_path / "run", body_model=body)
    trainer.fit(RandomBodyBatches(body, 4, num_distinct=1), progress=False)
    records = read_metrics(tmp_path / "run")
    assert all(np.isfinite(r["loss_pose"]) and np.isfinite(r["loss_betas"]) for r in records)
    assert {"sigma/pose", "sigma/betas"} <= set(records[-1])
    with pytest.raises(ConfigError, match="keypoints3d/means"):
        load_label_distributions(path, LossConfig(keypoints3d="gai"))
    assert isinstance(trainer.objective.terms["pose"].noise_sigma, torch.nn.Parameter)
