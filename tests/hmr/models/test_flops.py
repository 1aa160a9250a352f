"""FLOP counts against a hand count of the regressor and the bare backbone."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from cli.main import main
from hmr.models import HMR, ModelConfig
from hmr.models.flops import count_flops
from tests.fixtures.training import write_mean_params


def test_flops_split_into_backbone_and_hand_counted_regressor(tmp_path):
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=64,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    model = HMR(config)
    report = count_flops(model, (2, 3, 64, 64))
    with FlopCounterMode(display=False) as counter:
        model.backbone.eval()(torch.zeros(2, 3, 64, 64))
    assert report.by_module["backbone"] == counter.get_total_flops()
    # per IEF iteration: fc1 (96 + 157) x 64, fc2 64 x 64, decoders 64 x (144 + 10 + 3) MACs
    assert model.backbone.num_features == 96
    macs_per_iter = (96 + 157) * 64 + 64 * 64 + 64 * 157
    assert report.by_module["regressor"] == 2 * 2 * 3 * macs_per_iter  # 2 FLOPs/MAC, batch 2, 3 iterations
    assert report.flops == report.by_module["backbone"] + report.by_module["regressor"]
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.macs == report.flops // 2


def test_flops_command_prints_the_table(capsys):
    assert main(["flops", "tiny_cpu", "--shape", "1,3,64,64"]) == 0
    out = capsys.readouterr().out
    assert "backbone resnet18" in out and "GFLOPs" in out and "params" in out
    assert main(["flops", "tiny_cpu", "--shape", "1,3,64"]) == 2
