"""GraphCMR: forward shapes, rotations, a checkpoint round trip, training lowers its losses."""

import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.models import create_model
from hmr.models.checkpoint import load_model
from hmr.models.graphcmr import GraphCMR, orthonormalise
from hmr.models.hmr import ModelConfig
from hmr.training.config import load_config
from hmr.training.logs import read_metrics
from hmr.training.trainer import Trainer
from tests.fixtures.training import RandomBodyBatches

SMALL = ['model.type="graphcmr"', 'model.backbone="test_resnet"', "model.graph_channels=64", "model.graph_layers=1",
         "model.mesh_level=2", "loss.scale=1.0", "loss.weight_cam=0.0", "loss.weight_betas=0.1",
         "loss.weight_keypoints2d=1.0", "loss.weight_keypoints3d=1.0"]


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def _config(*overrides):
    return load_config("tiny_cpu", [*SMALL, "train.log_every=2", "train.checkpoint_every=100", *overrides])


def test_forward_shapes_and_rotations(body):
    cfg = ModelConfig(type="graphcmr", backbone="test_resnet", img_size=64, graph_channels=64, graph_layers=1,
                      mesh_level=2, backbone_checkpoint="")
    model = create_model(cfg, body_model=body).eval()
    assert isinstance(model, GraphCMR) and model.mesh.num_coarse == 431
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out.vertices.shape == (3, 6890, 3) and out.vertices_coarse.shape == (3, 431, 3)
    assert out.pose_rotmat.shape == (3, 24, 3, 3) and out.betas.shape == (3, 10) and out.cam.shape == (3, 3)
    eye = out.pose_rotmat @ out.pose_rotmat.transpose(-1, -2)
    assert torch.allclose(eye, torch.eye(3).expand_as(eye), atol=1e-5)
    assert torch.allclose(torch.det(out.pose_rotmat), torch.ones(3, 24), atol=1e-5)
    # the upsampled mesh is the coarse one where the vertex was kept
    ids = torch.as_tensor(__import__("hmr.models.mesh_sampling", fromlist=["x"]).mesh_hierarchy(
        body.v_template.numpy(), body.faces, levels=2)[1].vertex_ids)
    assert torch.allclose(out.vertices[:, ids], out.vertices_coarse, atol=1e-6)
    assert torch.isfinite(out.cam_t).all()


def test_orthonormalise_is_the_nearest_rotation():
    rot = orthonormalise(torch.randn(50, 3, 3))
    assert torch.allclose(torch.det(rot), torch.ones(50), atol=1e-5)
    r = orthonormalise(torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]) * 1.3)
    assert torch.allclose(r[0], torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), atol=1e-6)


def test_training_reduces_the_losses_and_the_checkpoint_rebuilds(tmp_path, body):
    batches = RandomBodyBatches(body, 8, num_distinct=2, crop_px=64)
    trainer = Trainer(_config("train.total_steps=30", "optim.lr=1e-3"), tmp_path / "run", body_model=body)
    trainer.fit(batches, progress=False)
    records = read_metrics(tmp_path / "run")
    first, last = records[0], records[-1]
    for term in ("loss", "loss_vertices", "loss_vertices_smpl", "loss_mesh_keypoints3d"):
        assert last[term] < 0.7 * first[term], (term, first[term], last[term])
    model, ckpt = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(model, GraphCMR) and ckpt["config"]["model"]["type"] == "graphcmr"
    batch = next(batches.stream())
    trainer.model.eval()
    with torch.no_grad():
        a, b = trainer.model(batch["img"]), model(batch["img"])
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.pose_rotmat, b.pose_rotmat)


def test_configs_choose_the_model_and_refuse_bad_types(tmp_path):
    from hmr.core.errors import ConfigError
    from hmr.models.checkpoint import checkpoint_model_config

    for name in ("graphcmr_normal", "graphcmr_l1", "graphcmr_l1_coco", "graphcmr_l1_coco_aug"):
        cfg = load_config(name).validate()
        assert cfg.model.type == "graphcmr" and cfg.model.graph_channels == 256 and cfg.model.graph_layers == 5
        assert cfg.loss.weight_betas == 0.1 and cfg.loss.scale == 1.0 and cfg.optim.lr == 3e-4
    assert load_config("graphcmr_l1").loss.keypoints2d == "l1"
    with pytest.raises(ConfigError, match="model.type"):
        load_config("tiny_cpu", ['model.type="nope"']).validate()
    with pytest.raises(ConfigError, match="spin.enabled needs model.type"):
        load_config("graphcmr_normal", ["spin.enabled=true"]).validate()
    with pytest.raises(ConfigError, match="model.type"):
        checkpoint_model_config({"config": {"model": {"type": "nope"}}}, tmp_path / "x.pt")
