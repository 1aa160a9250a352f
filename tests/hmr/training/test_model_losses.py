"""One loss per model type (hmr.training.model_losses): the trainer builds the type's loss once
and its step goes through it, for each of the four model types."""

import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.models import MODEL_TYPES
from hmr.training.config import list_configs, load_config
from hmr.training.graphcmr_objective import GraphCMRObjective
from hmr.training.graphormer_objective import GraphormerObjective
from hmr.training.model_losses import MODEL_LOSSES, LossParts, build_model_loss
from hmr.training.pare_objective import PAREObjective
from hmr.training.smpl_objective import SmplObjective
from hmr.training.trainer import Trainer
from tests.fixtures.training import RandomBodyBatches

SMPL_TERMS = {"loss", "loss_keypoints2d", "loss_keypoints3d", "loss_pose", "loss_betas", "loss_cam"}
#: model.type -> (its loss, the terms a step logs); small networks for a shared CPU
CASES = {
    "hmr": (SmplObjective, SMPL_TERMS, ["model.hidden=64"]),
    "graphcmr": (GraphCMRObjective, SMPL_TERMS | {"loss_vertices", "loss_vertices_smpl", "loss_mesh_keypoints2d",
                                                  "loss_mesh_keypoints3d"},
                 ["model.graph_channels=64", "model.graph_layers=1", "model.mesh_level=2"]),
    "pare": (PAREObjective, SMPL_TERMS | {"loss_part_segmentation"},
             ["model.pare_branch_channels=32", "model.pare_smpl_features=16"]),
    "graphormer": (GraphormerObjective, {"loss", "loss_keypoints2d", "loss_keypoints3d", "loss_vertices"},
                   ["model.mesh_level=2", "model.transformer_hidden=[64, 32]", "model.transformer_dims=[32]",
                    "model.transformer_graph=[0, 1]", "model.transformer_layers=1", "model.transformer_heads=2"]),
}


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def _config(kind: str, *overrides: str):
    return load_config("tiny_cpu", [f'model.type="{kind}"', 'model.backbone="test_resnet"', "model.img_size=64",
                                    "train.batch_size=4", "train.total_steps=1", "train.checkpoint_every=100",
                                    *overrides])


def test_every_model_type_and_shipped_config_has_a_loss():
    assert set(MODEL_LOSSES) == set(MODEL_TYPES) == set(CASES)
    for name in list_configs():  # the spin_* configs train an HMR network: HMR's loss
        assert load_config(name).model.type in MODEL_LOSSES, name


@pytest.mark.parametrize("kind", list(CASES))
def test_the_step_goes_through_the_model_types_loss(kind, tmp_path, body):
    loss_class, terms, overrides = CASES[kind]
    trainer = Trainer(_config(kind, *overrides), tmp_path / "run", body_model=body)
    assert type(trainer.loss_fn) is loss_class and set(loss_class.TERMS) == terms
    built, calls = trainer.loss_fn, []

    def spy(out, batch):  # the built loss, counted: a step that computes its loss elsewhere fails
        loss, step_terms = built(out, batch)
        calls.append(set(step_terms))
        return loss, step_terms

    trainer.loss_fn = spy
    batch = next(RandomBodyBatches(body, 4, num_distinct=1, crop_px=64).stream())
    before = [p.detach().clone() for p in trainer.model.parameters()]
    step = trainer.train_step(batch)
    assert calls == [terms] and set(step) == terms
    assert all(torch.isfinite(v) for v in step.values())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.model.parameters()))


def test_a_model_type_without_a_loss_is_a_config_error():
    config = load_config("tiny_cpu")
    config.model.type = "hmr_v9"  # past the config's own check, as a new type without a loss would be
    with pytest.raises(ConfigError, match=r"model.type = 'hmr_v9' has no training loss: choose one of "
                                          r"\['graphcmr', 'graphormer', 'hmr', 'pare'\]"):
        build_model_loss(LossParts(config, objective=None, body_model=None, loss_body=None, model=None))
