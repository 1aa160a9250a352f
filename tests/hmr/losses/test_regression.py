"""MSE / L1 with per-element weights, and the build_loss registry."""

import pytest
import torch

from hmr.core.errors import ConfigError
from hmr.losses import LOSSES, build_loss

PRED = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
TARGET = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
MASK = torch.tensor([[1.0], [0.0]])  # (B, 1): has_smpl-style per-sample mask


@pytest.mark.parametrize("reduction, expected", [
    ("mean", (1 + 4) / 4),  # over all 4 elements (SPIN convention)
    ("weighted_mean", (1 + 4) / 2),  # over the 2 labelled elements
    ("sum", 1 + 4),
])
def test_mse_hand_values_with_mask(reduction, expected):
    loss = build_loss("mse", reduction=reduction)
    assert loss(PRED, TARGET, MASK).item() == pytest.approx(expected)


def test_mse_and_l1_unweighted_and_confidence_weighted():
    assert build_loss("mse")(PRED, TARGET).item() == pytest.approx((1 + 4 + 4 + 9) / 4)
    assert build_loss("l1")(PRED, TARGET).item() == pytest.approx((1 + 2 + 2 + 3) / 4)
    conf = torch.tensor([[0.5, 1.0], [0.25, 0.0]])  # keypoint confidences, same shape
    assert build_loss("l1", reduction="weighted_mean")(PRED, TARGET, conf).item() == pytest.approx(
        (0.5 * 1 + 2 + 0.25 * 2) / 1.75)
    assert build_loss("mse")(PRED, TARGET, conf).item() == pytest.approx((0.5 + 4 + 1) / 4)


def test_all_zero_weights_give_zero_not_nan():
    loss = build_loss("mse", reduction="weighted_mean")(PRED, TARGET, torch.zeros(2, 1))
    assert loss.item() == 0.0


def test_nan_label_under_zero_weight_does_not_poison_gradient():
    pred = PRED.clone().requires_grad_()
    target = TARGET.clone()
    target[1] = float("nan")  # a sample without this label
    for name in ("mse", "l1"):
        loss = build_loss(name)(pred, target, MASK)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
        assert torch.all(pred.grad[1] == 0)
        pred.grad = None


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="broadcast"):
        build_loss("mse")(PRED, TARGET, torch.ones(3))
    with pytest.raises(ValueError, match="differ"):
        build_loss("l1")(PRED, TARGET[:1])


def test_bf16_autocast_gives_finite_float32_loss_and_gradients():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 6)
    x, target = torch.randn(8, 4), torch.randn(8, 3, 2)
    conf = torch.rand(8, 3, 1)
    for name in ("mse", "l1"):
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = layer(x).view(8, 3, 2)
            assert pred.dtype == torch.bfloat16
            loss = build_loss(name)(pred, target, conf)
        assert loss.dtype == torch.float32
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_registry_names_and_config_errors():
    assert set(LOSSES) == {"mse", "l1", "bmc", "gai", "bni"}
    with pytest.raises(ConfigError, match="unknown loss"):
        build_loss("huber")
    with pytest.raises(ConfigError, match="gmm"):
        build_loss("gai", dim=2)
    with pytest.raises(ConfigError, match="bucket"):
        build_loss("bni", bucket_centers=[0.0])
    with pytest.raises(ConfigError, match="noise sigma"):
        build_loss("mse", learnable_sigma=True)
    with pytest.raises(ValueError, match="reduction"):
        build_loss("l1", reduction="median")
    assert build_loss(" MSE ").__class__.__name__ == "MSELoss"
