"""A checkpoint (or a config) cannot choose files or network access: the backbone name and
``backbone_args`` it carries are checked before timm sees them (issue 21, items 6)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import timm.models._factory as timm_factory

from cli.main import main
from hmr.core.errors import ConfigError
from hmr.models import HMR, ModelConfig
from hmr.models.backbone import create_backbone
from hmr.models.checkpoint import load_model, save_checkpoint
from tests.fixtures.training import write_mean_params


class Reached(Exception):
    """timm was about to read a file or reach the network."""


@pytest.fixture(autouse=True)
def no_loading(monkeypatch):
    """Make every timm path that loads something raise :class:`Reached` instead."""
    resolve = timm_factory._resolve_model_source

    def guarded_resolve(name, *args, **kwargs):
        if ":" in name or "/" in name:
            raise Reached(f"model source {name!r}")
        return resolve(name, *args, **kwargs)

    def guarded_load(*args, **kwargs):
        raise Reached(f"checkpoint {args[1:]}")

    monkeypatch.setattr(timm_factory, "_resolve_model_source", guarded_resolve)
    monkeypatch.setattr(timm_factory, "load_checkpoint", guarded_load)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real checkpoint's parts: its [model] table and its tensors."""
    folder = tmp_path_factory.mktemp("ckpt")
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=32,
                         mean_params=str(write_mean_params(folder / "mean.npz")))
    return asdict(config), HMR(config).state_dict()


def _checkpoint(tmp_path, trained, **model_changes):
    table, state = trained
    return save_checkpoint(tmp_path / "hostile.pt", {"config": {"model": {**table, **model_changes}}, "model": state})


HOSTILE = [
    ({"backbone": "hf-hub:timm/resnet18.a1_in1k"}, "config.model.backbone"),
    ({"backbone": "local-dir:/tmp/elsewhere"}, "config.model.backbone"),
    ({"backbone_args": {"checkpoint_path": "/etc/passwd"}}, "backbone_args.checkpoint_path"),
    ({"backbone_args": {"pretrained": True}}, "backbone_args.pretrained"),
    ({"backbone_args": {"pretrained_cfg_overlay": {"file": "/tmp/weights.pth"}}}, "pretrained_cfg_overlay"),
    ({"backbone_args": {"pretrained_cfg": {"hf_hub_id": "timm/resnet18.a1_in1k"}}}, "backbone_args.pretrained_cfg"),
    ({"backbone_args": {"cache_dir": "/tmp/cache"}}, "backbone_args.cache_dir"),
    ({"backbone_args": {"act_layer": "https://example.org/x"}}, "path or URL"),
]


@pytest.mark.parametrize(("change", "named"), HOSTILE)
def test_a_checkpoint_cannot_make_timm_load_anything(tmp_path, trained, change, named):
    path = _checkpoint(tmp_path, trained, **change)
    with pytest.raises(ConfigError, match=named) as err:
        load_model(path)
    assert err.value.path == str(path)


def test_the_cli_refuses_it_as_a_one_line_error(tmp_path, trained, capsys):
    path = _checkpoint(tmp_path, trained, backbone="hf-hub:timm/resnet18.a1_in1k")
    image = tmp_path / "x.jpg"
    image.write_bytes(b"not read")
    assert main(["predict", str(path), str(image), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and str(path) in err and "config.model.backbone" in err


def test_recorded_file_paths_are_ignored_and_the_checkpoint_still_loads(tmp_path, trained):
    """A real run records its backbone initialisation and mean-parameter files: loading
    never reads them (the tensors are in the checkpoint), so they may be gone."""
    path = _checkpoint(tmp_path, trained, backbone_checkpoint=str(tmp_path / "gone.pth"),
                       mean_params=str(tmp_path / "gone.npz"))
    model, _ = load_model(path)
    assert model.config.backbone_checkpoint == "" and model.config.mean_params == ""


@pytest.mark.parametrize(("key", "value"), [("img_size", "big"), ("img_size", 0), ("hidden", 1.5),
                                            ("dropout", float("nan")), ("backbone_args", 3)])
def test_wrong_types_in_a_checkpoint_name_the_key(tmp_path, trained, key, value):
    path = _checkpoint(tmp_path, trained, **{key: value})
    with pytest.raises(ConfigError, match=f"config.model.{key}"):
        load_model(path)


def test_a_training_config_is_held_to_the_same_rule():
    with pytest.raises(ConfigError, match="backbone_args.checkpoint_path"):
        create_backbone("test_resnet", extra={"checkpoint_path": "/etc/passwd"})
    with pytest.raises(ConfigError, match="model.backbone"):
        create_backbone("hf-hub:timm/resnet18.a1_in1k")


def test_weights_holding_nan_are_refused_naming_the_tensor(tmp_path, trained):
    """A diverged run's checkpoint would make predict and evaluate write NaN results."""
    table, state = trained
    state = {k: v.clone() for k, v in state.items()}
    key = next(k for k, v in state.items() if k.startswith("regressor.") and v.is_floating_point() and v.ndim == 2)
    state[key][0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.pt", {"config": {"model": table}, "model": state})
    with pytest.raises(ConfigError, match="NaN") as err:
        load_model(path)
    assert (err.value.path, err.value.record) == (str(path), key)
