"""Graphormer: shapes, attention and graph blocks, upsampling, masking, sizes, evaluation and predict."""

import json
import math
from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.models import ModelConfig, create_model
from hmr.models.checkpoint import load_model, save_checkpoint
from hmr.models.graphcmr import GraphMesh
from hmr.models.graphormer import (EncoderBlock, EncoderLayer, Graphormer, MeshResBlock, mesh_joints14,
                                   token_keep_mask)
from hmr.models.mesh_sampling import mesh_hierarchy

SMALL = dict(type="graphormer", backbone="test_resnet", img_size=64, mesh_level=2, transformer_hidden=[64, 32],
             transformer_dims=[32], transformer_graph=[0, 1], transformer_layers=1, transformer_heads=2,
             backbone_checkpoint="")


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def model(body):
    torch.manual_seed(0)
    return create_model(ModelConfig(**SMALL), body_model=body)


def test_forward_shapes_levels_and_upsampling(model, body):
    assert isinstance(model, Graphormer) and model.mesh.num_coarse == 431 and model.num_grid == 4
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out.vertices.shape == (3, 6890, 3) and out.joints3d.shape == (3, 14, 3) and out.cam.shape == (3, 3)
    assert [v.shape[1] for v in out.vertex_levels] == [431, 1723]
    assert torch.isfinite(out.cam_t).all() and (out.cam[:, 0] > 0.5).all()  # s starts near 0.9
    # the upsampling layers start as our matrices: a kept vertex is copied through both levels
    assert torch.allclose(out.vertices[:, model.vertex_ids(2)], out.vertex_levels[0], atol=1e-5)
    assert torch.allclose(out.vertices[:, model.vertex_ids(1)], out.vertex_levels[1], atol=1e-5)
    # and a smooth mesh goes down and up with centimetre errors (tests/hmr/models/test_mesh_sampling.py)
    rest = body.v_template[None].float()
    x = rest[:, model.vertex_ids(2)]
    with torch.no_grad():
        for layer in model.upsampling:
            x = layer(x.transpose(1, 2)).transpose(1, 2)
    assert x.shape == (1, 6890, 3) and float((x - rest).norm(dim=-1).mean()) < 0.02


def test_templates_are_the_rest_body_upside_down_around_the_pelvis(model, body):
    joints, vertices = model.template_joints, model.template_vertices
    assert joints.shape == (14, 3) and vertices.shape == (431, 3)
    # camera frame: y points down, so the ankles (rows 0, 5) lie below (+y) the head (row 13)
    assert joints[0, 1] > 0.5 and joints[5, 1] > 0.5 and joints[13, 1] < -0.3
    assert float(joints[2:4].mean(0).norm()) < 0.05  # the hips sit around the origin (the H36M pelvis)
    # the vertex tokens start where the joints' mesh is: the coarse template's own joints
    up = vertices[None]
    with torch.no_grad():
        for layer in model.upsampling:
            up = layer(up.transpose(1, 2)).transpose(1, 2)
    assert float((mesh_joints14(body, up)[0] - joints).norm(dim=-1).max()) < 0.03


def test_masked_modeling_only_in_training(model):
    img = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        a, b = model(img), model(img)
    assert torch.equal(a.vertices, b.vertices)
    keep = token_keep_mask(4000, 431, 0.3, "cpu")
    masked = (~keep).sum(dim=1).float()
    assert masked.max() <= int(0.3 * 431) and masked.mean() == pytest.approx(0.15 * 431, rel=0.05)
    assert token_keep_mask(5, 14, 0.0, "cpu").all()


def test_attention_is_multi_head_softmax_attention():
    torch.manual_seed(1)
    layer = EncoderLayer(16, 4, 0.0, None).eval()
    x = torch.randn(2, 7, 16)
    q, k, v = layer.qkv(x).split(16, dim=-1)
    heads = [torch.softmax(q[..., h * 4:(h + 1) * 4] @ k[..., h * 4:(h + 1) * 4].transpose(1, 2) / 2.0, dim=-1)
             @ v[..., h * 4:(h + 1) * 4] for h in range(4)]
    a = layer.attn_norm(layer.attn_out(torch.cat(heads, dim=-1)) + x)
    expected = layer.ff_norm(layer.ff_out(torch.nn.functional.gelu(layer.ff_in(a))) + a)
    assert torch.allclose(layer(x, slice(2, 5)), expected, atol=1e-5)


def test_graph_block_mixes_mesh_neighbours_only(body):
    level = mesh_hierarchy(body.v_template.numpy(), body.faces, levels=2)[1]
    mesh = GraphMesh.from_template(body.v_template.numpy(), body.faces, 2)
    torch.manual_seed(2)
    block = MeshResBlock(32, mesh)
    x = torch.randn(1, 431, 32)
    dx = torch.zeros_like(x)
    dx[0, 10] = torch.randn(32)  # not a constant: the LayerNorm would remove it
    changed = ((block(x + dx) - block(x)).abs().amax(dim=-1)[0] > 1e-7).nonzero().ravel().tolist()
    assert sorted(changed) == sorted({10, *level.adjacency[10].indices.tolist()})
    # in a layer the graph block sees the vertex tokens only
    layer = EncoderLayer(32, 2, 0.0, block).eval()
    assert layer(torch.randn(2, 14 + 431 + 4, 32), slice(14, 445)).shape == (2, 449, 32)


def test_public_encoder_sizes():
    """The public body encoder (docs/EXP.md sizes): our parameters are its 83,318,598 (its log)
    minus the BERT parts it never calls (the word / position / token-type embeddings of
    BertEmbeddings and their LayerNorm, the pooler, the graph block's unused skip projection)."""
    mesh = GraphMesh.from_template(load_body_model().v_template.numpy(), load_body_model().faces, 2)
    blocks = [EncoderBlock(2051, 1024, 512, layers=4, heads=4, dropout=0.1, mesh=None),
              EncoderBlock(512, 256, 128, layers=4, heads=4, dropout=0.1, mesh=None),
              EncoderBlock(128, 64, 3, layers=4, heads=4, dropout=0.1, mesh=mesh)]
    ours = sum(p.numel() for b in blocks for p in b.parameters())
    # per block: BertEmbeddings (words, its own 512 positions, 2 token types, LayerNorm), the pooler
    unused = sum(30522 * h + 512 * h + 2 * h + 2 * h + h * h + h for h in (1024, 256, 64)) + 4 * (64 * 64 + 64)
    assert ours == 40_467_334 and ours + unused == 83_318_598


def test_hrnet_grid_and_global_features():
    cfg = ModelConfig(**{**SMALL, "backbone": "hrnet_w18_small"})
    model = create_model(cfg, body_model=load_body_model()).eval()
    with torch.no_grad():
        global_feat, grid = model.image_features(torch.randn(1, 3, 64, 64))
        fmap = model.backbone(torch.randn(1, 3, 64, 64))
    # the grid is the 1,024-channel map entering HRNet's last 1x1 convolution, the global feature
    # the mean of that convolution's 2,048 channels (MeshGraphormer's hrnet_cls_net_gridfeat)
    assert grid.shape == (1, 4, 1024) and global_feat.shape == (1, 2048) and fmap.shape[1] == 2048
    assert model.grid_proj.in_features == 1024 and model.grid_proj.out_features == 2051


@pytest.mark.slow
def test_checkpoint_evaluate_and_predict_through_the_common_path(tmp_path, model, body):
    from hmr.evaluation.predict import predict_images
    from hmr.evaluation.run import EvalOptions, evaluate
    from tests.fixtures.training import write_test_store

    config = ModelConfig(**SMALL)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt", {"config": {"model": asdict(config)},
                                                         "model": model.state_dict(), "step": 1})
    loaded, _ = load_model(ckpt)
    img = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        a, b = model(img), loaded(img)
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.joints3d, b.joints3d)
    images = tmp_path / "images"
    images.mkdir()
    store, _ = write_test_store(tmp_path / "pw3d.zarr", body, dataset="3dpw", n=4, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    result = evaluate(ckpt, "3dpw", store, tmp_path / "eval", EvalOptions(batch_size=2, num_workers=0, worst=1,
                                                                        device="cpu"))
    assert result["num_samples"] == 4 and math.isfinite(result["PA-MPJPE"]) and result["PVE"] > 0
    predict_images(ckpt, [images / "img_0000.jpg"], tmp_path / "out", device="cpu")
    record = json.loads((tmp_path / "out" / "img_0000.json").read_text())
    assert "body_pose" not in record and len(record["cam_t"]) == 3
    with np.load(tmp_path / "out" / "img_0000.npz") as npz:
        assert npz["vertices"].shape == (6890, 3)


def test_configs_choose_graphormer():
    from hmr.training.config import load_config

    for name in ("graphormer_normal", "graphormer_l1", "graphormer_l1_coco", "graphormer_l1_coco_aug"):
        cfg = load_config(name).validate()
        m = cfg.model
        assert m.type == "graphormer" and m.backbone == "hrnet_w48" and m.mesh_level == 2
        assert m.transformer_hidden == [1024, 256, 64] and m.transformer_dims == [512, 128]
        assert m.transformer_graph == [0, 0, 1] and m.transformer_layers == 4 and m.transformer_heads == 4
        assert (cfg.loss.weight_keypoints3d, cfg.loss.weight_vertices, cfg.loss.weight_keypoints2d) == (1000, 100, 100)
        assert cfg.loss.scale == 1.0 and cfg.optim.lr == 1e-4 and cfg.train.batch_size == 25
    assert load_config("graphormer_l1").loss.keypoints3d == "l1" and cfg.data.mix == "graphormer"
    assert load_config("graphormer_normal").loss.keypoints3d == "mse"


def test_flops_count_the_encoder_attention_included(model):
    from hmr.models.flops import count_flops

    report = count_flops(model, (1, 3, 64, 64))
    t, n = 14 + 431 + 4, 431
    block1 = 99 * 64 * t + (64 * 192 + 64 * 64 + 2 * 64 * 128) * t + 2 * t * t * 64 + (64 * 32 + 99 * 32) * t
    block2 = 32 * 32 * t + (32 * 96 + 32 * 32 + 2 * 32 * 64) * t + 2 * t * t * 32 + (32 * 3 + 32 * 3) * t \
        + (32 * 16 + 16 * 16 + 16 * 32) * n  # the graph block's dense products (the sparse A is not counted)
    assert report.by_module["blocks"] == 2 * (block1 + block2)
    assert report.by_module["upsampling"] == 2 * 3 * (431 * 1723 + 1723 * 6890)
    assert report.flops == sum(report.by_module.values())


@pytest.mark.parametrize("change", [dict(transformer_dims=[]), dict(transformer_graph=[1]),
                                    dict(transformer_hidden=[64, "32"]), dict(transformer_heads=0),
                                    dict(transformer_hidden=[64, 33]), dict(mask_ratio=1.5)])
def test_bad_encoder_configs_are_refused(change, body):
    from hmr.core.errors import ConfigError

    with pytest.raises(ConfigError, match="model.transformer|model.mask_ratio"):
        Graphormer(ModelConfig(**{**SMALL, **change}), body_model=body)
