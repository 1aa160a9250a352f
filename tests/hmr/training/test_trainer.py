"""Training loop on synthetic batches: it learns, resumes exactly, logs and checkpoints."""


import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from hmr.training.config import load_config
from hmr.training.logs import read_metrics
from hmr.training.run_folder import step_checkpoints
from hmr.training.trainer import Trainer
from tests.fixtures.training import RandomBodyBatches


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def batches(body):
    return RandomBodyBatches(body, 8, num_distinct=3, crop_px=64)


def _config(*overrides):
    # timm's 0.4M-parameter test_resnet keeps steps and checkpoints small on a shared CPU
    return load_config("tiny_cpu", ['model.backbone="test_resnet"', "model.hidden=64", "model.dropout=0.3",
                                    "train.log_every=2", "train.checkpoint_every=4", *overrides])


def test_training_reduces_the_loss(tmp_path, body, batches):
    cfg = _config("train.total_steps=40", "optim.lr=1e-3", "model.dropout=0.0")
    trainer = Trainer(cfg, tmp_path / "run", body_model=body)
    trainer.fit(batches, progress=False)
    records = read_metrics(tmp_path / "run")
    assert len(records) == 20 and trainer.step == 40
    for term, ratio in (("loss", 0.6), ("loss_keypoints2d", 0.6), ("loss_keypoints3d", 0.6), ("loss_pose", 0.85)):
        assert records[-1][term] < ratio * records[0][term], term


def test_resume_continues_exactly(tmp_path, body, batches):
    cfg = _config("train.total_steps=12")
    full = Trainer(cfg, tmp_path / "full", body_model=body)
    full.fit(batches, progress=False)
    part = Trainer(cfg, tmp_path / "part", body_model=body)
    part.fit(batches, max_steps=5, progress=False)  # stops at 5 after checkpoints at 4 and 5
    # the run "dies" after step 5; its metrics at steps 6.. would be written again on resume
    resumed = Trainer(cfg, tmp_path / "part", body_model=body, resume=tmp_path / "part" / "step_00000004.pt")
    assert resumed.step == 4
    resumed.fit(batches, progress=False)
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "part")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [2, 4, 6, 8, 10, 12]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    for (name, p), q in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_balanced_mse_sigma_has_its_own_group_and_is_checkpointed(tmp_path, body, batches):
    cfg = _config("train.total_steps=4", 'loss.pose="bmc"', "loss.sigma_lr=0.05", "loss.noise_sigma=0.5")
    trainer = Trainer(cfg, tmp_path / "run", body_model=body)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["sigma"]["lr"] == 0.05 and groups["sigma"]["weight_decay"] == 0.0
    trainer.fit(batches, progress=False)
    sigma = trainer.objective.terms["pose"].noise_sigma.detach().clone()
    assert sigma.item() != pytest.approx(0.5)
    resumed = Trainer(cfg, tmp_path / "run", body_model=body, resume=True)
    assert torch.equal(resumed.objective.terms["pose"].noise_sigma.detach(), sigma)
    assert "sigma/pose" in read_metrics(tmp_path / "run")[-1]


def test_checkpoints_logs_and_fresh_run_guard(tmp_path, body, batches):
    cfg = _config("train.total_steps=12", "train.keep_checkpoints=2")
    Trainer(cfg, tmp_path / "run", body_model=body).fit(batches, progress=False)
    run = tmp_path / "run"
    assert [s for s, _ in step_checkpoints(run)] == [8, 12]
    assert (run / "last.pt").is_file() and any((run / "tb").iterdir())
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 12 and ckpt["config"]["model"]["backbone"] == "test_resnet"
    record = read_metrics(run)[-1]
    assert {"loss", "loss_pose", "lr/model", "images_per_s", "data_wait_fraction"} <= set(record)
    model, _ = load_model(run / "last.pt")
    assert not model.training
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        Trainer(cfg, run, body_model=body)


def test_checkpoint_reading_refuses_bad_files(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"step": 3, "model": {"w": torch.zeros(2)}})
    assert load_checkpoint(path)["step"] == 3
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match="cut.pt.*cannot read"):
        load_checkpoint(truncated)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "hmrkit-checkpoint", "version": 1, "obj": ConfigError("x")}, evil)
    with pytest.raises(ConfigError, match="evil.pt.*cannot read"):
        load_checkpoint(evil)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ConfigError, match="not an hmrkit checkpoint"):
        load_checkpoint(other)
    assert not list(tmp_path.glob("*.partial-*"))


def test_fine_tuning_starts_from_another_run(tmp_path, body, batches):
    Trainer(_config("train.total_steps=4"), tmp_path / "a", body_model=body).fit(batches, progress=False)
    source = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    ft = Trainer(_config("train.total_steps=4", f'train.init_from="{tmp_path / "a" / "last.pt"}"'),
                 tmp_path / "b", body_model=body)
    for name, value in ft.model.state_dict().items():
        assert torch.equal(value, source[name]), name


def test_data_stream_end_is_an_error(tmp_path, body, batches):
    trainer = Trainer(_config("train.total_steps=10"), tmp_path / "run", body_model=body)
    with pytest.raises(ConfigError, match="ended at step 3"):
        trainer.fit(batches.batches, progress=False)  # a list of 3 batches


def test_validation_during_training_is_logged(tmp_path, body, batches):
    import cv2
    import numpy as np

    from tests.fixtures.training import write_test_store

    images = tmp_path / "images"
    images.mkdir()
    store, _ = write_test_store(tmp_path / "val.zarr", body, dataset="synth", n=4, image_root=images)
    for i in range(4):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), np.full((256, 256, 3), 100, np.uint8))
    cfg = _config("train.total_steps=4", "train.eval_every=2", 'train.eval_bench="smpl"',
                  f'train.eval_data="{store}"', "data.num_workers=0")
    Trainer(cfg, tmp_path / "run", body_model=body).fit(batches, progress=False)
    evals = [r for r in read_metrics(tmp_path / "run") if "eval/smpl/PA-MPJPE" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval/smpl/PVE"] > 0 and "eval/smpl/bMPJPE-All" in r for r in evals)
    assert (tmp_path / "run" / "eval" / "step_00000002" / "results.json").is_file()
    with pytest.raises(ConfigError, match="eval_data"):
        _config("train.eval_every=2")


def test_fused_adam_takes_the_same_steps_as_the_per_tensor_loop(tmp_path, body, batches):
    runs = {}
    for fused in (True, False):
        torch.manual_seed(0)
        trainer = Trainer(_config("train.total_steps=3", f"optim.fused={str(fused).lower()}",
                                  "model.dropout=0.0"), tmp_path / f"fused_{fused}", body_model=body)
        assert bool(trainer.optimizer.defaults.get("fused")) is fused
        trainer.fit(batches, progress=False)
        runs[fused] = [p.detach().clone() for p in trainer.model.parameters()]
    assert len(runs[True]) == len(runs[False])
    for a, b in zip(runs[True], runs[False]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
