"""HMR network: shapes, mean-parameter start, backbone families and checkpoint init."""

import numpy as np
import pytest
import torch

from hmr.core.errors import BodyModelError, ConfigError
from hmr.core.geometry import rot6d_to_matrix
from hmr.models import BACKBONE_FAMILIES, HMR, ModelConfig, create_backbone, load_backbone_weights, load_mean_params
from tests.fixtures.training import mean_params_arrays, write_mean_params


@pytest.fixture()
def mean_params(tmp_path):
    return write_mean_params(tmp_path / "smpl_mean_params.npz")


def _tiny_config(mean_params, **kw):
    return ModelConfig(backbone="resnet18", img_size=64, hidden=64, mean_params=str(mean_params), **kw)


def test_forward_shapes_and_rotations(mean_params):
    torch.manual_seed(0)
    model = HMR(_tiny_config(mean_params)).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.pose6d.shape == (2, 144) and out.betas.shape == (2, 10) and out.cam.shape == (2, 3)
    assert out.pose_rotmat.shape == (2, 24, 3, 3) and out.cam_t.shape == (2, 3)
    assert len(out.iterations) == 3
    rot = out.pose_rotmat.detach()
    np.testing.assert_allclose((rot.transpose(-1, -2) @ rot).numpy(), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    # depth from the weak-perspective scale: 2 f / (S s)
    expected_z = 2 * 5000.0 / (64 * out.cam[:, 0])
    np.testing.assert_allclose(out.cam_t[:, 2].detach().numpy(), expected_z.detach().numpy(), rtol=1e-5)


def test_untrained_model_starts_near_mean_parameters(mean_params):
    torch.manual_seed(0)
    model = HMR(_tiny_config(mean_params)).eval()
    out = model(torch.randn(4, 3, 64, 64))
    mean = mean_params_arrays()
    mean_rot = rot6d_to_matrix(torch.tensor(mean["pose"], dtype=torch.float32).reshape(24, 6))
    # the output layers start at Xavier gain 0.01: the first prediction is a small step from the mean
    assert (out.pose_rotmat - mean_rot).abs().max().item() < 0.2
    assert (out.cam[:, 0] - 0.9).abs().max().item() < 0.2


def test_gradients_reach_the_backbone(mean_params):
    model = HMR(_tiny_config(mean_params))
    out = model(torch.randn(2, 3, 64, 64))
    (out.pose6d.sum() + out.betas.sum() + out.cam.sum()).backward()
    first = next(model.backbone.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_mean_params_errors_name_the_file(tmp_path):
    with pytest.raises(BodyModelError, match="not found"):
        load_mean_params(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, pose=np.zeros(72), shape=np.zeros(10), cam=np.zeros(3))
    with pytest.raises(BodyModelError, match="bad.npz.*'pose'"):
        load_mean_params(bad)
    np.savez(bad, pose=np.zeros(144), shape=np.zeros(10))
    with pytest.raises(BodyModelError, match="missing key"):
        load_mean_params(bad)


def test_backbone_init_from_wrapped_checkpoint_reports_matches(tmp_path):
    torch.manual_seed(1)
    source = create_backbone("resnet18")
    # a pose-estimation style checkpoint: nested and prefixed, with an extra head
    state = {f"module.backbone.{k}": v for k, v in source.state_dict().items()}
    state["keypoint_head.final.weight"] = torch.zeros(17, 32, 1, 1)
    path = tmp_path / "pose_ckpt.pth"
    torch.save({"state_dict": state, "meta": {"epoch": 210}}, path)
    target = create_backbone("resnet18")
    report = load_backbone_weights(target, path, min_fraction=1.0)
    assert report.fraction_matched == 1.0 and report.missing == [] and report.unused == ["keypoint_head.final.weight"]
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    assert "tensors loaded (100% of the backbone)" in report.summary()


def test_backbone_init_refuses_wrong_architecture_and_pickled_code(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(create_backbone("resnet18").state_dict(), path)
    with pytest.raises(ConfigError, match="other.pth.*only"):
        load_backbone_weights(create_backbone("efficientnet_b0"), path, min_fraction=0.5)
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": ConfigError("x")}, evil)
    with pytest.raises(ConfigError, match="weights-only"):
        load_backbone_weights(create_backbone("resnet18"), evil)


def test_model_loads_backbone_checkpoint_from_config(tmp_path, mean_params):
    torch.manual_seed(2)
    src = create_backbone("resnet18")
    path = tmp_path / "imagenet.pth"
    torch.save(src.state_dict(), path)
    model = HMR(_tiny_config(mean_params, backbone_checkpoint=str(path)))
    assert model.init_report.fraction_matched == 1.0
    assert torch.equal(model.backbone.conv1.weight, src.conv1.weight)


def test_unknown_backbone_is_a_config_error(mean_params):
    with pytest.raises(ConfigError, match="no_such_net"):
        HMR(ModelConfig(backbone="no_such_net", mean_params=str(mean_params)))


@pytest.mark.parametrize("name", ["hrnet_w18_small", "vit_tiny_patch16_224", "swin_tiny_patch4_window7_224",
                                  "twins_svt_small", "efficientnet_b0", "resnext26ts"])
def test_other_families_run_at_small_size(name, mean_params):
    size = 224 if "swin" in name or "twins" in name else 64
    model = HMR(ModelConfig(backbone=name, img_size=size, hidden=32, mean_params=str(mean_params))).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.pose_rotmat.shape == (1, 24, 3, 3) and torch.isfinite(out.cam).all()


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(BACKBONE_FAMILIES))
def test_every_benchmark_family_is_creatable(family):
    backbone = create_backbone(family)
    assert backbone.num_features > 0


def test_flatten_pooling_feeds_the_feature_map_layout_to_the_regressor(mean_params):
    torch.manual_seed(0)
    model = HMR(_tiny_config(mean_params, pooling="flatten"))
    # ResNet-18 at 64 px: a 512 × 2 × 2 map, flattened, plus the 157 fed-back parameters
    assert model.regressor.fc1.in_features == 512 * 2 * 2 + 157
    bn = model.backbone.bn1
    assert model.training and torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))  # probe: eval mode
    out = model.eval()(torch.randn(2, 3, 64, 64))
    assert out.pose_rotmat.shape == (2, 24, 3, 3) and torch.isfinite(out.betas).all()
    assert HMR(_tiny_config(mean_params, pooling="avg")).regressor.fc1.in_features == 512 + 157


def test_backbone_args_reach_timm_and_bad_ones_are_config_errors(mean_params):
    # the demo's narrower last stage: ResNet-10-T with 256 instead of 512 channels in layer4
    model = HMR(ModelConfig(backbone="resnet10t", img_size=64, hidden=32, mean_params=str(mean_params),
                            backbone_args={"channels": [64, 128, 256, 256]}))
    assert model.backbone.num_features == 256 and model.regressor.fc1.in_features == 256 + 157
    assert model.backbone.layer4[0].conv1.weight.shape[:2] == (256, 256)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).pose_rotmat.shape == (1, 24, 3, 3)
    with pytest.raises(ConfigError, match="backbone_args.*no_such_option"):
        create_backbone("resnet10t", extra={"no_such_option": 1})
    with pytest.raises(ConfigError, match="backbone_args.num_classes"):
        create_backbone("resnet10t", extra={"num_classes": 10})
