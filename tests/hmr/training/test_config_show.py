"""hmr train CONFIG --show: the merged config, each value with the file or override that set it."""

import tomllib

from cli.main import main
from hmr.training.config import config_from_dict, config_with_origins, load_config, show_config


def test_origins_follow_the_inheritance_chain_and_the_overrides():
    config, origins, chain = config_with_origins("spin_l1_coco_aug", ["optim.lr=3e-4", "train.batch_size=64"])
    assert chain == ["hmr/configs/_base.toml", "hmr/configs/hmr_normal.toml", "hmr/configs/hmr_l1.toml",
                     "hmr/configs/hmr_l1_coco.toml", "hmr/configs/hmr_l1_coco_aug.toml",
                     "hmr/configs/spin_l1_coco_aug.toml"]
    assert origins["loss.keypoints3d"] == "hmr/configs/hmr_l1.toml"  # replaces _base's mse
    assert origins["model.backbone_checkpoint"] == "hmr/configs/hmr_l1_coco.toml"
    assert origins["train.init_from"] == "hmr/configs/spin_l1_coco_aug.toml"
    assert origins["optim.lr"] == "override" and config.optim.lr == 3e-4
    assert origins["train.batch_size"] == "override"  # even when it repeats the file's value
    assert origins["optim.warmup_steps"] == "default"
    assert config == load_config("spin_l1_coco_aug", ["optim.lr=3e-4", "train.batch_size=64"])


def test_shown_text_reads_back_to_the_same_config(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('base = "tiny_cpu"\n[model]\nbackbone_args = {channels = [8, 16]}\n[data]\nmix = "mix2"\n')
    text = show_config(child, ["optim.lr=0.5"])
    assert 'mix = "mix2"  # child.toml' in text or f'mix = "mix2"  # {child}' in text
    assert "lr = 0.5  # override" in text
    assert text.splitlines()[0].endswith("child.toml -> overrides")
    data = tomllib.loads(text)
    assert config_from_dict(data, child) == load_config(child, ["optim.lr=0.5"])


def test_train_show_prints_and_does_not_train(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "tiny_cpu", "train.total_steps=7", "--show"]) == 0
    out = capsys.readouterr().out
    assert "total_steps = 7  # override" in out and "[spin]" in out
    assert list(tmp_path.iterdir()) == []  # no run folder
    assert main(["train", "tiny_cpu", "optim.lr", "--show"]) == 2
    assert "section.key=value" in capsys.readouterr().err
