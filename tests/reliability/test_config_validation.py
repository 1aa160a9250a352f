"""Every training-config value is checked when the config is read, and a bad one is an error
naming the key, not a crash mid-training (issue 21, item 2)."""

from __future__ import annotations

import pytest
import torch

from cli.main import main
from hmr.core.errors import ConfigError
from hmr.training.config import load_config

# The tester's cases (synthetic_batches is the random source's data.random_batches), then more
# of the same families: ranges, finiteness, types, choices.
CASES = [
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.log_every=0", "train.log_every"),
    ("model.img_size=0", "model.img_size"),
    ("data.random_batches=0", "data.random_batches"),
    ("data.synthetic_batches=0", "synthetic_batches"),
    ("model.backbone_args=3", "model.backbone_args"),
    ('optim.step_milestones=["a"]', "optim.step_milestones"),
    ("optim.step_milestones=[5, 2]", "optim.step_milestones"),
    ("name.x=1", "name"),
    ("optim.lr=nan", "optim.lr"),
    ("optim.lr=-1e-4", "optim.lr"),
    ("loss.scale=inf", "loss.scale"),
    ("model.dropout=1.5", "model.dropout"),
    ("train.batch_size=true", "train.batch_size"),
    ("train.keep_checkpoints=-1", "train.keep_checkpoints"),
    ("train.seed=-3", "train.seed"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.augmentation=3", "data.augmentation"),
    ("data.augmentation={flip_prob=nan}", "data.augmentation.flip_prob"),
    ("data.augmentation={flip_prob=2}", "data.augmentation.flip_prob"),
    ("data.augmentation={flipprob=0.1}", "data.augmentation.flipprob"),
    ("data.occlusion={hard_erasing=-0.1}", "data.occlusion.hard_erasing"),
    ("data.shards=[1, 2]", "data.shards"),
    ('optim.optimizer="lbfgs"', "optim.optimizer"),
    ('data.source="files"', "data.source"),
    ('model.pooling="median"', "model.pooling"),
    ('train.device="tpu"', "train.device"),
    ('name="../../elsewhere"', "name"),
    ('model.backbone="hf-hub:timm/resnet18.a1_in1k"', "model.backbone"),
    ("model.backbone_args={pretrained=true}", "model.backbone_args.pretrained"),
    ('model.backbone_args={checkpoint_path="/etc/passwd"}', "model.backbone_args.checkpoint_path"),
]


@pytest.mark.parametrize(("override", "key"), CASES)
def test_a_bad_value_is_refused_naming_its_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config("tiny_cpu", [override])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_refused_before_training():
    with pytest.raises(ConfigError, match="train.device"):
        load_config("tiny_cpu", ['train.device="cuda"'])


def test_a_table_that_is_not_a_table_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("base = \"tiny_cpu\"\nmodel = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*\[model\] must be a table"):
        load_config(bad)
    bad.write_text("base = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*base"):
        load_config(bad)


def test_every_shipped_config_passes():
    from hmr.training.config import list_configs

    for name in list_configs():
        load_config(name, ['train.device="cpu"'])


@pytest.mark.parametrize("override", ["train.checkpoint_every=0", "optim.lr=nan", "name.x=1",
                                      'optim.step_milestones=["a"]', "model.backbone_args=3"])
def test_hmr_train_exits_with_a_one_line_error(tmp_path, capsys, override):
    code = main(["train", "tiny_cpu", override, "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "internal error" not in err and override.split("=")[0].split(".")[0] in err
    assert not (tmp_path / "run").exists()
