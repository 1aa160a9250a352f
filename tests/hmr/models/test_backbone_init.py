"""Backbone initialisation from MMPose top-down pose checkpoints (the benchmark's "L1 + COCO").

The checkpoints are written by ``tests/fixtures/mmpose.py`` from MMPose's own naming rules,
not from timm's models, so a wrong name mapping fails here: every backbone tensor of the file
must land in the timm tensor MMPose's module of that name corresponds to (checked through
module attributes, not through state-dict names).
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from hmr.core.errors import ConfigError
from hmr.models.backbone import (
    HRNET_CLASSIFIER_REASON,
    HRNET_LOW_RES_FUSE_REASON,
    load_backbone_weights,
    mmpose_to_timm,
)
from tests.fixtures.mmpose import (
    head_shapes,
    mmpose_hrnet_shapes,
    mmpose_resnet_shapes,
    random_state,
    write_mmpose_checkpoint,
)


@pytest.fixture(scope="module")
def resnet50():
    return timm.create_model("resnet50", pretrained=False, num_classes=0)


@pytest.fixture(scope="module")
def hrnets():
    return {w: timm.create_model(f"hrnet_w{w}", pretrained=False, num_classes=0) for w in (32, 48)}


def _backbone_part(state):
    return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}


def test_resnet50_mmpose_0x_checkpoint_fills_every_tensor(tmp_path, resnet50):
    shapes = {**mmpose_resnet_shapes(50), **head_shapes(2048, deconv=True)}
    state = random_state(shapes, seed=1)
    path = write_mmpose_checkpoint(tmp_path / "resnet50_coco_pose.pth", state)
    report = load_backbone_weights(resnet50, path, min_fraction=1.0)
    assert report.layout == "mmpose-topdown"
    assert report.missing == [] and report.shape_mismatch == [] and report.expected_missing == {}
    assert len(report.matched) == len(resnet50.state_dict()) == len(_backbone_part(state))
    head = sorted(k for k in shapes if k.startswith("keypoint_head."))
    assert report.unused == head and report.head == head and len(head) == 20
    for name, tensor in _backbone_part(state).items():
        assert torch.equal(resnet50.state_dict()[name], tensor), name
    # through the modules themselves: BN statistics and the batch counter included
    assert torch.equal(resnet50.conv1.weight, state["backbone.conv1.weight"])
    assert torch.equal(resnet50.layer3[5].bn3.running_var, state["backbone.layer3.5.bn3.running_var"])
    assert torch.equal(resnet50.layer4[0].downsample[1].num_batches_tracked,
                       state["backbone.layer4.0.downsample.1.num_batches_tracked"])
    assert "[mmpose-topdown]" in report.summary() and "20 of them the pose head" in report.summary()


def test_resnetv1d_deep_stem_and_downsamples_are_renamed(tmp_path):
    model = timm.create_model("resnet50d", pretrained=False, num_classes=0)
    shapes = {**mmpose_resnet_shapes(50, deep_stem=True), **head_shapes(2048, mmpose_1x=True, deconv=True)}
    state = random_state(shapes, seed=2)
    report = load_backbone_weights(model, write_mmpose_checkpoint(tmp_path / "v1d.pth", state), min_fraction=1.0)
    assert report.missing == [] and report.shape_mismatch == []
    assert len(report.matched) == len(model.state_dict()) == len(_backbone_part(state))
    assert all(k.startswith("head.") for k in report.unused)
    assert torch.equal(model.conv1[0].weight, state["backbone.stem.0.conv.weight"])
    assert torch.equal(model.conv1[4].running_mean, state["backbone.stem.1.bn.running_mean"])
    assert torch.equal(model.conv1[6].weight, state["backbone.stem.2.conv.weight"])
    assert torch.equal(model.bn1.weight, state["backbone.stem.2.bn.weight"])
    # stride 1: MMPose [conv, bn] vs timm [Identity, conv, bn]; stride 2: [AvgPool, conv, bn] in both
    assert torch.equal(model.layer1[0].downsample[1].weight, state["backbone.layer1.0.downsample.0.weight"])
    assert torch.equal(model.layer1[0].downsample[2].bias, state["backbone.layer1.0.downsample.1.bias"])
    assert torch.equal(model.layer2[0].downsample[1].weight, state["backbone.layer2.0.downsample.1.weight"])


def test_mmpose_to_timm_leaves_a_plain_resnet_alone():
    keys = [k[len("backbone."):] for k in mmpose_resnet_shapes(50)]
    assert mmpose_to_timm(keys) == {k: k for k in keys}


# W48: a 300 MB checkpoint written and read (about 12 s on a shared core)
@pytest.mark.parametrize("width", [32, pytest.param(48, marks=pytest.mark.slow)])
def test_hrnet_mmpose_checkpoint_fills_every_pose_tensor(tmp_path, hrnets, width):
    model = hrnets[width]
    shapes = {**mmpose_hrnet_shapes(width), **head_shapes(width)}
    state = random_state(shapes, seed=width)
    path = write_mmpose_checkpoint(tmp_path / f"hrnet_w{width}_coco_pose.pth", state)
    report = load_backbone_weights(model, path, min_fraction=1.0)
    backbone = _backbone_part(state)
    assert sorted(report.matched) == sorted(backbone) and report.shape_mismatch == []
    assert report.unused == ["keypoint_head.final_layer.bias", "keypoint_head.final_layer.weight"]
    own = model.state_dict()
    classifier = sorted(k for k in own if k.split(".")[0] in ("incre_modules", "downsamp_modules", "final_layer"))
    low_res_fuse = sorted(k for k in own if k.startswith(("stage4.2.fuse_layers.1.", "stage4.2.fuse_layers.2.",
                                                           "stage4.2.fuse_layers.3.")))
    assert sorted(report.expected_missing[HRNET_CLASSIFIER_REASON]) == classifier
    assert sorted(report.expected_missing[HRNET_LOW_RES_FUSE_REASON]) == low_res_fuse
    assert sorted(report.missing) == sorted(classifier + low_res_fuse)
    assert report.fraction_of_layout == 1.0 and report.fraction_matched < 1.0
    for name, tensor in backbone.items():
        assert torch.equal(own[name], tensor), name
    last = "backbone.stage4.2.fuse_layers.0.3"
    assert torch.equal(model.stage4[2].fuse_layers[0][3][0].weight, state[f"{last}.0.weight"])
    assert torch.equal(model.stage4[2].fuse_layers[0][3][1].running_mean, state[f"{last}.1.running_mean"])
    assert torch.equal(model.stage3[3].fuse_layers[2][0][1][0].weight,
                       state["backbone.stage3.3.fuse_layers.2.0.1.0.weight"])
    assert torch.equal(model.transition3[3][0][1].num_batches_tracked,
                       state["backbone.transition3.3.0.1.num_batches_tracked"])
    assert torch.equal(model.stage2[0].branches[1][3].bn2.running_var,
                       state["backbone.stage2.0.branches.1.3.bn2.running_var"])
    text = report.summary()
    assert f"{len(classifier)} left as initialised: HRNet classification head" in text
    assert f"{len(low_res_fuse)} left as initialised: stage 4" in text and "other missing" not in text


def test_hrnet_feature_trunk_misses_only_the_low_resolution_fuse_layers(tmp_path):
    # the trunk PARE-style models use: timm's HRNet feature extractor, no classification head
    trunk = timm.create_model("hrnet_w32", pretrained=False, features_only=True, feature_location="",
                              out_indices=(1, 2, 3, 4))
    state = random_state({**mmpose_hrnet_shapes(32), **head_shapes(32, mmpose_1x=True)}, seed=5)
    report = load_backbone_weights(trunk, write_mmpose_checkpoint(tmp_path / "w32.pth", state), min_fraction=1.0)
    assert list(report.expected_missing) == [HRNET_LOW_RES_FUSE_REASON]
    low_res_fuse = sorted(k for k in trunk.state_dict() if k.startswith("stage4.2.fuse_layers.")
                          and not k.startswith("stage4.2.fuse_layers.0."))
    assert sorted(report.missing) == sorted(report.expected_missing[HRNET_LOW_RES_FUSE_REASON]) == low_res_fuse
    assert len(low_res_fuse) == 78  # 13 conv + BN pairs (6 tensors each) into branches 1-3
    assert report.head == ["head.final_layer.bias", "head.final_layer.weight"]


def test_wrong_width_or_family_is_refused_with_the_report(tmp_path, hrnets, resnet50):
    path = write_mmpose_checkpoint(tmp_path / "w32.pth", random_state(mmpose_hrnet_shapes(32)))
    report = load_backbone_weights(hrnets[48], path)  # no minimum: the report says what happened
    assert report.shape_mismatch and "conv1.weight" not in report.shape_mismatch  # the stem is shared
    assert "stage2.0.branches.0.0.conv1.weight" in report.shape_mismatch
    with pytest.raises(ConfigError, match="w32.pth.*only"):
        load_backbone_weights(hrnets[48], path, min_fraction=0.9)
    with pytest.raises(ConfigError, match="only 20% of the backbone matched"):
        load_backbone_weights(resnet50, path, min_fraction=0.5)  # the shared stem and layer1 match


def test_meta_with_numpy_values_loads_and_code_is_still_refused(tmp_path):
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state["keypoint_head.final_layer.weight"] = torch.zeros(17, 512, 1, 1)
    # MMCV 0.x hook messages hold numpy scalars, MMPose 1.x dataset_meta numpy arrays
    meta = {"hook_msgs": {"best_score": np.float64(0.72), "best_epoch": np.int64(200)},
            "dataset_meta": {"sigmas": np.full(17, 0.05), "keypoint_colors": np.zeros((17, 3), np.uint8)}}
    path = write_mmpose_checkpoint(tmp_path / "np.pth", state, **meta)
    assert load_backbone_weights(model, path, min_fraction=1.0).fraction_matched == 1.0
    for name, smuggled in (("object", ConfigError("x")), ("object-array", np.array([ConfigError("x")]))):
        evil = tmp_path / f"{name}.pth"
        torch.save({"meta": {"x": smuggled}, "state_dict": state}, evil)
        with pytest.raises(ConfigError, match="weights-only"):
            load_backbone_weights(model, evil)


@pytest.mark.parametrize("model_type", ["hmr", "graphcmr"])
def test_models_initialise_their_backbone_from_the_config(tmp_path, model_type):
    from hmr.core.body.smpl import load_body_model
    from hmr.models import create_model
    from hmr.models.hmr import ModelConfig
    from hmr.models.regressor import MEAN_PARAM_SHAPES, MeanParams

    state = random_state({**mmpose_resnet_shapes(50), **head_shapes(2048, deconv=True)}, seed=7)
    path = write_mmpose_checkpoint(tmp_path / "resnet50_coco_pose.pth", state)
    cfg = ModelConfig(type=model_type, backbone="resnet50", img_size=64, graph_channels=64, graph_layers=1,
                      mesh_level=2, backbone_checkpoint=str(path), backbone_min_match=0.9)
    extra = ({"mean": MeanParams(*(torch.zeros(s) for s in MEAN_PARAM_SHAPES.values()))} if model_type == "hmr"
             else {"body_model": load_body_model()})
    model = create_model(cfg, **extra)
    assert model.init_report.layout == "mmpose-topdown" and model.init_report.fraction_matched == 1.0
    assert torch.equal(model.backbone.layer2[1].conv2.weight, state["backbone.layer2.1.conv2.weight"])
    untouched = create_model(cfg, load_backbone_checkpoint=False, **extra)
    assert untouched.init_report is None


def test_pare_trunk_initialises_from_an_mmpose_hrnet(tmp_path):
    from hmr.models import create_model
    from hmr.models.hmr import ModelConfig

    state = random_state({**mmpose_hrnet_shapes(32), **head_shapes(32)}, seed=9)
    path = write_mmpose_checkpoint(tmp_path / "hrnet_w32_coco_pose.pth", state)
    cfg = ModelConfig(type="pare", backbone="hrnet_w32", img_size=64, pare_branch_channels=32, pare_smpl_features=16,
                      backbone_checkpoint=str(path), backbone_min_match=0.9)
    report = create_model(cfg).init_report
    assert report.layout == "mmpose-topdown" and report.fraction_of_layout == 1.0
    assert list(report.expected_missing) == [HRNET_LOW_RES_FUSE_REASON]


def test_bare_pose_backbone_and_imagenet_hrnet_files(tmp_path, hrnets):
    model = hrnets[32]
    # a pose HRNet's backbone saved on its own: no MMPose wrapper, no head, same gaps
    bare = {k[len("backbone."):]: v for k, v in random_state(mmpose_hrnet_shapes(32), seed=3).items()}
    torch.save(bare, tmp_path / "bare.pth")
    report = load_backbone_weights(model, tmp_path / "bare.pth", min_fraction=1.0)
    assert report.layout == "plain" and report.head == [] and report.unused == []
    assert set(report.expected_missing) == {HRNET_CLASSIFIER_REASON, HRNET_LOW_RES_FUSE_REASON}
    # an ImageNet HRNet's file lacking part of its head: missing for real, the check sees it
    full = {k: v for k, v in model.state_dict().items() if not k.startswith("final_layer.")}
    torch.save(full, tmp_path / "imagenet.pth")
    report = load_backbone_weights(model, tmp_path / "imagenet.pth")
    assert report.expected_missing == {} and sorted(report.missing) == sorted(
        k for k in model.state_dict() if k.startswith("final_layer."))
    assert report.fraction_of_layout == report.fraction_matched < 1.0
