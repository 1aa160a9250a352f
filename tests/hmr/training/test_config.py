"""Config files: named configs, inheritance, overrides and clear errors."""

import pytest

from hmr.core.errors import ConfigError
from hmr.training.config import config_from_dict, list_configs, load_config


def test_every_shipped_config_loads_and_the_matrix_is_there():
    names = list_configs()
    for variant in ("normal", "l1", "l1_coco", "l1_coco_aug"):
        assert f"hmr_{variant}" in names and f"spin_{variant}" in names
    assert {"bmse_ft_baseline", "bmse_ft_bmc", "tiny_cpu"} <= set(names)
    configs = {n: load_config(n) for n in names}
    assert configs["hmr_l1"].loss.keypoints3d == "l1" and configs["hmr_normal"].loss.keypoints3d == "mse"
    assert configs["hmr_l1_coco"].model.backbone_checkpoint.endswith("resnet50_coco_pose.pth")
    assert configs["hmr_l1_coco_aug"].data.occlusion["synthetic_occlusion_kp"] > 0
    assert configs["spin_l1"].train.init_from.endswith("hmr_l1/last.pt")
    assert configs["bmse_ft_bmc"].loss.pose == "bmc" and configs["bmse_ft_baseline"].loss.pose == "mse"
    assert configs["tiny_cpu"].data.source == "random"


def test_overrides_use_toml_values():
    cfg = load_config("tiny_cpu", ["optim.lr=0.5", 'loss.pose="l1"', "train.total_steps=3", "data.mix=mix2",
                                   "optim.step_milestones=[1, 2]"])
    assert cfg.optim.lr == 0.5 and cfg.loss.pose == "l1" and cfg.train.total_steps == 3
    assert cfg.data.mix == "mix2" and cfg.optim.step_milestones == [1, 2]


def test_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nbackbone = 'resnet18'\nwidth = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml.*\[model\] has unknown keys \['width'\]"):
        load_config(bad)
    bad.write_text("[train]\ntotal_steps = 'many'\n")
    with pytest.raises(ConfigError, match="train.total_steps must be int"):
        load_config(bad)
    bad.write_text("[loss]\npose = 'huber'\n")
    with pytest.raises(ConfigError, match="loss.pose"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config("tiny_cpu", ["lr=3"])
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml")


def test_inheritance_and_cycles(tmp_path):
    (tmp_path / "a.toml").write_text("base = 'b.toml'\n[optim]\nlr = 1.0\n")
    (tmp_path / "b.toml").write_text("[optim]\nlr = 2.0\nweight_decay = 0.5\n")
    cfg = load_config(tmp_path / "a.toml")
    assert cfg.optim.lr == 1.0 and cfg.optim.weight_decay == 0.5 and cfg.name == "a"
    (tmp_path / "b.toml").write_text("base = 'a.toml'\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.toml")


def test_config_round_trips_through_a_dict():
    cfg = load_config("hmr_l1_coco_aug")
    assert config_from_dict(cfg.to_dict()) == cfg
