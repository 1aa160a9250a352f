"""PARE: shapes, the fused HRNet features, part-segmentation targets from skinning weights,
the loss term, training through the shared trainer, configs, evaluation through the common path."""

from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.core.render.rasterize import rasterize
from hmr.core.render.shade import to_screen
from hmr.losses.segmentation import part_segmentation_loss
from hmr.models import create_model, to_prediction
from hmr.models.checkpoint import load_model, save_checkpoint
from hmr.models.feature_backbone import FusedFeatures
from hmr.models.hmr import ModelConfig
from hmr.models.pare import PARE, part_attention_pool
from hmr.models.part_segmentation import (PartMapper, face_parts, fit_translation, part_map_camera,
                                          rasterize_labels, vertex_parts)
from hmr.training.config import load_config
from hmr.training.objective import predicted_joints
from hmr.training.random_batches import random_body_batch

SMALL = dict(type="pare", backbone="test_resnet", img_size=64, pare_branch_channels=32, pare_smpl_features=16,
             backbone_checkpoint="")


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def _map_intrinsics(k_crop: torch.Tensor, size: int, crop_px: int) -> torch.Tensor:
    s = size / crop_px
    return torch.tensor([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]]) @ k_crop


def test_forward_shapes_rotations_and_prediction():
    model = create_model(ModelConfig(**SMALL)).eval()
    assert isinstance(model, PARE) and model.predicts == ("smpl",)
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out.part_logits.shape == (3, 25, 16, 16) and out.part_attention.shape == (3, 24, 16, 16)
    assert out.pose_rotmat.shape == (3, 24, 3, 3) and out.betas.shape == (3, 10) and out.cam.shape == (3, 3)
    eye = out.pose_rotmat @ out.pose_rotmat.transpose(-1, -2)
    assert torch.allclose(eye, torch.eye(3).expand_as(eye), atol=1e-5)
    assert torch.allclose(torch.det(out.pose_rotmat), torch.ones(3, 24), atol=1e-5)
    assert torch.allclose(out.part_attention.flatten(2).sum(-1), torch.ones(3, 24), atol=1e-5)
    assert torch.isfinite(out.cam_t).all() and (out.cam_t[:, 2] > 0).all()  # camera bias starts at s = 0.9
    pred = to_prediction(out)
    assert pred.keys() == ["cam", "cam_t", "pose_rotmat", "betas"]


def test_fused_hrnet_features_are_the_four_branches_at_stride_4():
    fused = FusedFeatures("hrnet_w18_small").eval()
    assert fused.num_features == 16 + 32 + 64 + 128 and len(fused.upsample) == 4
    assert [len(u) for u in fused.upsample] == [0, 1, 2, 3]  # doublings per branch, PARE's conv steps
    with torch.no_grad():
        x = fused(torch.randn(1, 3, 64, 64))
    assert x.shape == (1, 240, 16, 16)
    with pytest.raises(ConfigError, match="set by hmrkit"):
        FusedFeatures("hrnet_w18_small", extra={"out_indices": [0]})
    with pytest.raises(ConfigError):
        FusedFeatures("hf-hub:someone/model")


def test_part_attention_pools_where_the_map_points():
    feats = torch.zeros(1, 2, 4, 4)
    feats[0, 0, 1, 2], feats[0, 1, 3, 0] = 5.0, 7.0
    att = torch.zeros(1, 2, 4, 4)
    att[0, 0, 1, 2] = att[0, 1, 3, 0] = 1.0
    pooled = part_attention_pool(feats, att)  # (1, parts, channels)
    assert torch.equal(pooled, torch.tensor([[[5.0, 0.0], [0.0, 7.0]]]))


def test_vertex_part_is_the_dominant_bone(body):
    weights = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.0, 0.4, 0.6]])
    assert vertex_parts(weights).tolist() == [1, 0, 2]
    parts = vertex_parts(body.lbs_weights)
    dominated = body.lbs_weights.max(1).values > 0.9
    assert torch.equal(parts[dominated], body.lbs_weights[dominated].argmax(1))
    assert set(parts.tolist()) == set(range(24))  # every bone owns some vertices
    # a face takes the part two of its corners share, else its first corner's
    faces = torch.tensor([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    assert face_parts(faces, torch.tensor([4, 9, 9])).tolist() == [9, 9, 9]
    assert face_parts(faces, torch.tensor([4, 5, 6])).tolist() == [4, 5, 6]


def test_rasterised_part_map_matches_the_reference_rasteriser(body):
    """Same silhouette, same winning faces as hmr.core.render.rasterize (numpy, per image)."""
    batch = random_body_batch(body, 3, crop_px=224, render=False, seed=1)
    out = body(global_orient=batch["smpl_global_orient"], body_pose=batch["smpl_body_pose"], betas=batch["smpl_betas"])
    mapper = PartMapper.from_body_model(body)
    k = _map_intrinsics(batch["cam_intrinsics"][0], 56, 224).expand(3, 3, 3)
    maps = mapper(out.vertices, batch["smpl_transl"], k, 56)
    for i in range(3):
        verts = (out.vertices[i] + batch["smpl_transl"][i]).double().numpy()
        frags = rasterize(to_screen(verts, k[i].double().numpy()), body.faces, 56, 56)
        labels = np.where(frags.mask, mapper.face_labels.numpy()[np.maximum(frags.face, 0)] + 1, 0)
        assert frags.mask.sum() > 150
        np.testing.assert_array_equal(maps[i].numpy(), labels)
        assert len(np.unique(labels)) >= 20  # most of the 24 parts are seen


def test_part_map_labels_follow_the_bones(body):
    """A body in the rest pose facing the camera: the head's pixels lie above the feet's."""
    rest = torch.zeros(1, 3)
    rest[0, 0] = np.pi  # SMPL's y-up body in the y-down camera frame
    out = body(global_orient=rest, body_pose=torch.zeros(1, 69), betas=torch.zeros(1, 10))
    k = torch.tensor([[[60.0, 0.0, 31.5], [0.0, 60.0, 31.5], [0.0, 0.0, 1.0]]])
    maps = PartMapper.from_body_model(body)(out.vertices, torch.tensor([[0.0, 0.3, 3.0]]), k, 64)[0]
    rows = torch.arange(64)[:, None].expand(64, 64).float()
    head, feet = maps == 15 + 1, (maps == 10 + 1) | (maps == 11 + 1)  # SMPL joints 15 head, 10/11 feet
    assert head.any() and feet.any()
    assert rows[head].mean() + 20 < rows[feet].mean()


def test_empty_and_degenerate_inputs_give_background():
    verts = torch.tensor([[[0.0, 0.0, -1.0], [5.0, 0.0, -1.0], [0.0, 5.0, -1.0]]])  # behind the camera
    faces, labels = torch.tensor([[0, 1, 2]]), torch.tensor([3])
    assert rasterize_labels(verts, faces, labels, 8).sum() == 0
    verts = torch.tensor([[[1.0, 1.0, 1.0], [6.0, 1.0, 1.0], [1.0, 6.0, 1.0]]])
    out = rasterize_labels(verts, faces, labels, 8)
    assert out[0, 1, 1] == 4 and out[0, 6, 6] == 0 and out[0, 3, 2] == 4


def test_translation_fitted_to_keypoints_draws_the_same_map(body):
    """Without a known camera the translation comes from the 2D keypoints (SPIN's
    estimate_translation): on exact keypoints it finds the true one."""
    batch = random_body_batch(body, 4, crop_px=224, render=False, seed=2)
    # the loaders' keypoints are 0 at x = S / 2 (u = 2 x / S - 1): the principal point there
    batch["cam_intrinsics"][:, :2, 2] = 112.0
    out = body(global_orient=batch["smpl_global_orient"], body_pose=batch["smpl_body_pose"], betas=batch["smpl_betas"])
    joints = predicted_joints(out, "spin_49")
    t, ok = fit_translation(joints, batch["keypoints2d"], 2 * 5000.0 / 224)
    assert ok.all()
    torch.testing.assert_close(t, batch["smpl_transl"], atol=1e-3, rtol=1e-4)
    known = part_map_camera(batch, joints, crop_px=224, focal_length_px=5000.0, size=56)
    unknown = dict(batch, has_smpl_transl=torch.zeros(4, dtype=torch.bool))
    fitted = part_map_camera(unknown, joints, crop_px=224, focal_length_px=5000.0, size=56)
    mapper = PartMapper.from_body_model(body)
    a, b = mapper(out.vertices, *known[:2], 56), mapper(out.vertices, *fitted[:2], 56)
    assert ((a > 0) & (b > 0)).sum() / ((a > 0) | (b > 0)).sum() > 0.95
    few = dict(unknown, keypoints2d=batch["keypoints2d"] * torch.tensor([1.0, 1.0, 0.0]))
    assert not part_map_camera(few, joints, crop_px=224, focal_length_px=5000.0, size=56)[2].any()


def test_segmentation_loss_is_cross_entropy_over_kept_samples():
    torch.manual_seed(0)
    logits = torch.randn(3, 25, 8, 8, requires_grad=True)
    target = torch.randint(0, 25, (3, 8, 8))
    keep = torch.tensor([True, False, True])
    loss = part_segmentation_loss(logits, target, keep)
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], target[[0, 2]])
    torch.testing.assert_close(loss, expected)
    none = part_segmentation_loss(logits, target, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad
    big = part_segmentation_loss(logits, torch.zeros(3, 16, 16, dtype=torch.long), keep)  # upsampled logits
    assert torch.isfinite(big)


def test_configs_choose_pare(tmp_path):
    for name in ("pare_normal", "pare_l1", "pare_l1_coco", "pare_l1_coco_aug"):
        cfg = load_config(name).validate()
        assert cfg.model.type == "pare" and cfg.model.backbone == "hrnet_w32" and cfg.data.mix == "pare"
        assert (cfg.model.pare_branch_channels, cfg.model.pare_branch_layers, cfg.model.pare_smpl_features) == (128, 2, 64)
        assert cfg.loss.scale == 60.0 and cfg.loss.weight_part_segmentation == 1.0 and cfg.train.batch_size == 64
    assert load_config("pare_l1").loss.pose == "l1" and load_config("pare_normal").loss.pose == "mse"
    assert "coco_pose" in load_config("pare_l1_coco").model.backbone_checkpoint
    with pytest.raises(ConfigError, match="pare_branch_layers"):
        load_config("pare_normal", ["model.pare_branch_layers=0"]).validate()


def test_checkpoint_rebuilds_and_evaluate_scores_it(tmp_path, body):
    from hmr.evaluation.run import EvalOptions, evaluate
    from tests.fixtures.training import write_test_store

    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_test_store(tmp_path / "pw3d.zarr", body, dataset="3dpw", n=4, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    config = ModelConfig(**SMALL)
    torch.manual_seed(0)
    model = create_model(config)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt",
                           {"config": {"model": asdict(config)}, "model": model.state_dict(), "step": 3})
    loaded, _ = load_model(ckpt)
    assert isinstance(loaded, PARE)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x).pose_rotmat, loaded(x).pose_rotmat)
    result = evaluate(ckpt, "3dpw", path, tmp_path / "eval", EvalOptions(batch_size=2, num_workers=0, worst=0,
                                                                       device="cpu"))
    assert result["num_samples"] == 4 and np.isfinite(result["PA-MPJPE"]) and result["PVE"] > 0


def test_predict_writes_pare_parameters(tmp_path, body):
    import json

    from hmr.evaluation.predict import predict_images

    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), np.random.default_rng(1).integers(0, 255, (80, 60, 3), dtype=np.uint8))
    config = ModelConfig(**SMALL)
    torch.manual_seed(0)
    model = create_model(config).eval()
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt", {"config": {"model": asdict(config)},
                                                         "model": model.state_dict()})
    predict_images(ckpt, [image], tmp_path / "out", device="cpu")
    record = json.loads((tmp_path / "out" / "person.json").read_text())
    assert len(record["body_pose"]) == 69 and len(record["betas"]) == 10
    assert np.isfinite(record["body_pose"]).all()


@pytest.mark.slow
def test_hmr_flops_counts_pare_at_its_published_size(capsys):
    import re

    from cli.main import main

    assert main(["flops", "pare_normal"]) == 0
    text = capsys.readouterr().out
    params = float(re.search(r"params\s+([\d.]+) M", text).group(1))
    macs = float(re.search(r"multiply-accumulates ([\d.]+) G", text).group(1))
    assert 32.5 < params < 33.2  # HRNet-W32 trunk 29.3 M + fusion and the two branches
    assert 15.0 < macs < 16.0  # at 224 px; the two 56 x 56 branches cost 4.4 GMACs
    assert re.search(r"part_branch\s+[\d.]+ GFLOPs", text)


def test_trunk_initialises_from_an_mmpose_top_down_hrnet_checkpoint(tmp_path):
    """An MMPose top-down HRNet checkpoint (``state_dict`` of ``backbone.*`` + ``keypoint_head.*``
    keys, its last stage fusing into the high-resolution branch only) fills the trunk but the
    lower branches' last fuse layers, which PARE too starts from scratch."""
    from hmr.models.feature_backbone import FusedFeatures

    source = FusedFeatures("hrnet_w18_small").trunk.state_dict()
    last = max(int(k.split(".")[1]) for k in source if k.startswith("stage4."))
    lower_fuse = tuple(f"stage4.{last}.fuse_layers.{i}." for i in (1, 2, 3))
    state = {f"backbone.{k}": v + 1.0 if v.is_floating_point() else v for k, v in source.items()
             if not k.startswith(lower_fuse)}
    state["keypoint_head.final_layer.weight"] = torch.zeros(17, 16, 1, 1)
    torch.save({"meta": {"epoch": 210}, "state_dict": state}, tmp_path / "hrnet_coco.pth")
    model = create_model(ModelConfig(**dict(SMALL, backbone="hrnet_w18_small",
                                            backbone_checkpoint=str(tmp_path / "hrnet_coco.pth"))))
    report = model.init_report
    assert report.fraction_matched > 0.75 and report.unused == ["keypoint_head.final_layer.weight"]
    assert report.missing and all(k.startswith(lower_fuse) for k in report.missing)
    loaded = model.backbone.trunk.state_dict()
    assert torch.equal(loaded["conv1.weight"], source["conv1.weight"] + 1.0)
