"""Balanced MSE (BMC / GAI / BNI) against closed forms and direct numerical integrals."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal
from torch.func import functional_call, vmap

from hmr.losses import (LabelGMM, bmc_nll, build_loss, fit_label_gmm, label_histogram,
                        pairwise_sq_dist)

# A bimodal 1-D training-label prior: p(y) = 0.3 N(-1, 0.5^2) + 0.7 N(2, 1.2^2).
GMM_1D = LabelGMM(means=np.array([[-1.0], [2.0]]), covariances=np.array([[[0.25]], [[1.44]]]),
                  weights=np.array([0.3, 0.7]))


def _prior_pdf(y: np.ndarray) -> np.ndarray:
    return np.exp(GMM_1D.log_pdf(y[:, None]))


def _balanced_mse_by_integration(pred: np.ndarray, target: np.ndarray, sigma: float) -> np.ndarray:
    """Per-sample [-log N(y; yhat, s^2) + log int p(y') N(y'; yhat, s^2) dy'] * 2 s^2 on a grid."""
    grid = np.linspace(-15.0, 15.0, 120_001)
    prior = _prior_pdf(grid)
    out = []
    for yhat, y in zip(pred, target):
        gauss = np.exp(-0.5 * (grid - yhat) ** 2 / sigma**2) / math.sqrt(2 * math.pi * sigma**2)
        integral = np.trapezoid(prior * gauss, grid)
        nll = 0.5 * (y - yhat) ** 2 / sigma**2 + 0.5 * math.log(2 * math.pi * sigma**2)
        out.append((nll + math.log(integral)) * 2 * sigma**2)
    return np.asarray(out)


@pytest.fixture
def batch_1d():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 1, generator=g) * 2, torch.randn(12, 1, generator=g) * 2


@pytest.mark.parametrize("dim", [1, 3])
def test_bmc_is_cross_entropy_over_the_batch_rescaled(dim):
    g = torch.Generator().manual_seed(dim)
    pred, target = torch.randn(10, dim, generator=g), torch.randn(10, dim, generator=g)
    sigma = 0.7
    logits = -torch.cdist(pred.double(), target.double()).pow(2) / (2 * sigma**2)
    expected = F.cross_entropy(logits, torch.arange(10)) * 2 * sigma**2
    loss = build_loss("bmc", dim=dim, init_noise_sigma=sigma)(pred, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bmc_md_matches_the_multivariate_normal_form():
    # The authors' form: logits = log N(y_j; yhat_i, s^2 I); the normalising constant cancels.
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    var = torch.tensor(1.3**2)
    logits = MultivariateNormal(pred.unsqueeze(1), var * torch.eye(4)).log_prob(target.unsqueeze(0))
    expected = F.cross_entropy(logits, torch.arange(7)) * 2 * var
    loss = build_loss("bmc", dim=4, init_noise_sigma=1.3)(pred, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bmc_batch_of_one_is_zero():
    pred = torch.tensor([[0.3, -2.0]], requires_grad=True)
    loss_fn = build_loss("bmc", dim=2, learnable_sigma=True)
    with pytest.warns(UserWarning, match="batch of one"):
        loss = loss_fn(pred, torch.tensor([[5.0, 1.0]]))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(pred.grad == 0)


def test_bmc_mask_removes_samples_from_loss_and_prior():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    target_with_holes = target.clone()
    target_with_holes[mask == 0] = float("nan")  # placeholders of missing labels
    loss_fn = build_loss("bmc", dim=2, init_noise_sigma=0.9)
    keep = mask.bool()
    pred = pred.requires_grad_()
    masked = loss_fn(pred, target_with_holes, mask)
    subset = loss_fn(pred[keep], target[keep])
    assert masked.item() == pytest.approx(subset.item(), rel=1e-6)
    masked.backward()
    assert torch.isfinite(pred.grad).all() and torch.all(pred.grad[~keep] == 0)
    assert loss_fn(pred, target, torch.zeros(6)).item() == 0.0


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5])
def test_gai_1d_equals_direct_numerical_integral(batch_1d, sigma):
    pred, target = batch_1d
    loss_fn = build_loss("gai", gmm=GMM_1D, init_noise_sigma=sigma)
    expected = _balanced_mse_by_integration(pred[:, 0].numpy(), target[:, 0].numpy(), sigma)
    assert loss_fn(pred, target).item() == pytest.approx(expected.mean(), rel=1e-4, abs=1e-5)


def test_gai_md_matches_multivariate_normal_closed_form():
    g = torch.Generator().manual_seed(3)
    means = torch.randn(3, 2, generator=g, dtype=torch.float64)
    a = torch.randn(3, 2, 2, generator=g, dtype=torch.float64)
    covs = a @ a.transpose(1, 2) + 0.2 * torch.eye(2, dtype=torch.float64)
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    gmm = {"means": means.numpy(), "variances": covs.numpy(), "weights": weights.numpy()}
    pred, target = torch.randn(9, 2, generator=g), torch.randn(9, 2, generator=g)
    var = 0.8**2
    eye = torch.eye(2, dtype=torch.float64)
    p64, t64 = pred.double(), target.double()
    nll = -MultivariateNormal(p64, var * eye).log_prob(t64)
    conv = MultivariateNormal(means, covs + var * eye).log_prob(p64[:, None, :]) + weights.log()
    expected = ((nll + torch.logsumexp(conv, dim=1)) * 2 * var).mean()
    loss = build_loss("gai", dim=2, gmm=gmm, init_noise_sigma=0.8)(pred, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)


def test_bni_1d_equals_direct_numerical_integral(batch_1d):
    pred, target = batch_1d
    sigma, width = 0.8, 0.02
    centres = np.arange(-12.0, 14.0, width) + width / 2  # fine buckets over the prior's support
    weights = _prior_pdf(centres) * width
    loss_fn = build_loss("bni", bucket_centers=centres, bucket_weights=weights,
                         init_noise_sigma=sigma)
    expected = _balanced_mse_by_integration(pred[:, 0].numpy(), target[:, 0].numpy(), sigma)
    assert loss_fn(pred, target).item() == pytest.approx(expected.mean(), rel=1e-4, abs=1e-4)


def test_bni_and_gai_from_fitted_priors_agree_with_the_true_prior(batch_1d):
    pred, target = batch_1d
    rng = np.random.default_rng(0)
    comp = rng.random(200_000) < 0.3
    labels = np.where(comp, rng.normal(-1.0, 0.5, comp.size), rng.normal(2.0, 1.2, comp.size))
    hist = label_histogram(labels, bins=300)
    true = build_loss("gai", gmm=GMM_1D)(pred, target)
    bni = build_loss("bni", bucket_centers=hist.centers, bucket_weights=hist.weights)(pred, target)
    gai = build_loss("gai", gmm=fit_label_gmm(labels, 2))(pred, target)
    assert bni.item() == pytest.approx(true.item(), abs=0.02)
    assert gai.item() == pytest.approx(true.item(), abs=0.02)


@pytest.mark.parametrize("name", ["bmc", "gai", "bni"])
def test_learnable_sigma_gets_a_gradient_and_rescale_is_detached(name, batch_1d):
    pred, target = batch_1d
    extra = {"gai": {"gmm": GMM_1D},
             "bni": {"bucket_centers": [-1.0, 0.0, 2.0], "bucket_weights": [0.2, 0.3, 0.5]},
             "bmc": {}}[name]
    loss_fn = build_loss(name, init_noise_sigma=1.5, learnable_sigma=True, **extra)
    assert [p for p in loss_fn.parameters()] == [loss_fn.noise_sigma]
    loss = loss_fn(pred, target)
    loss.backward()
    grad = loss_fn.noise_sigma.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs() > 0
    # d/dsigma [nll(sigma) * c] with c = 2 sigma^2 held constant:
    sigma = torch.tensor(1.5, requires_grad=True)
    nll = loss_fn._nll(pred, target, sigma**2, None).mean()
    (expected,) = torch.autograd.grad(nll * 2 * 1.5**2, sigma)
    assert grad.item() == pytest.approx(expected.item(), rel=1e-5)


def test_fixed_sigma_is_a_buffer_in_the_state_dict():
    loss_fn = build_loss("bmc", dim=2, init_noise_sigma=2.0)
    assert list(loss_fn.parameters()) == []
    assert loss_fn.state_dict()["noise_sigma"].item() == 2.0
    assert loss_fn.noise_var.item() == pytest.approx(4.0)


@pytest.mark.parametrize("name", ["bmc", "gai", "bni"])
def test_bf16_autocast_gradients_are_finite(name):
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 6)
    x, target = torch.randn(16, 5), torch.randn(16, 2, 3)
    labels = torch.randn(500, 6).numpy()
    extra = {"gai": {"gmm": fit_label_gmm(labels, 2)},
             "bni": {"bucket_centers": labels[:50], "bucket_weights": np.ones(50)},
             "bmc": {}}[name]
    loss_fn = build_loss(name, dim=6, init_noise_sigma=0.5, learnable_sigma=True, **extra)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = layer(x).view(16, 2, 3)  # (B, ...) flattened to (B, 6) by the loss
        assert pred.dtype == torch.bfloat16
        loss = loss_fn(pred, target, torch.ones(16, 1))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in layer.parameters()] + [loss_fn.noise_sigma.grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_flattening_and_shape_errors():
    g = torch.Generator().manual_seed(4)
    pred, target = torch.randn(5, 4, 3, generator=g), torch.randn(5, 4, 3, generator=g)
    loss_fn = build_loss("bmc", dim=12)
    assert loss_fn(pred, target).item() == pytest.approx(
        loss_fn(pred.reshape(5, 12), target.reshape(5, 12)).item())
    with pytest.raises(ValueError, match="dim=1"):
        build_loss("bmc")(pred, target)
    with pytest.raises(ValueError, match="one weight per sample"):
        loss_fn(pred, target, torch.ones(5, 4, 3))
    with pytest.raises(ValueError, match="2-dimensional"):
        build_loss("gai", dim=3, gmm=fit_label_gmm(np.random.default_rng(0).normal(size=(50, 2)), 1))
    with pytest.raises(ValueError, match="init_noise_sigma"):
        build_loss("bmc", init_noise_sigma=0.0)


def test_losses_run_under_vmap_like_a_loop():
    # The synthetic benchmark trains all seeds at once through torch.func.vmap.
    g = torch.Generator().manual_seed(5)
    pred, target = torch.randn(3, 8, 2, generator=g), torch.randn(3, 8, 2, generator=g)
    sigmas = torch.tensor([0.5, 1.0, 2.0])
    mask = (torch.rand(3, 8, generator=g) > 0.3).float()
    for loss_fn in (build_loss("bmc", dim=2), build_loss("gai", dim=2, gmm=fit_label_gmm(
            torch.randn(100, 2, generator=g), 2))):
        batched = vmap(lambda s, p, t, w, f=loss_fn: functional_call(f, {"noise_sigma": s}, (p, t, w)))
        looped = [functional_call(loss_fn, {"noise_sigma": s}, (p, t, w))
                  for s, p, t, w in zip(sigmas, pred, target, mask)]
        assert torch.allclose(batched(sigmas, pred, target, mask), torch.stack(looped), rtol=1e-5)


def test_pairwise_distance_paths_agree():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(300, 100, generator=g), torch.randn(200, 100, generator=g)
    direct = (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    assert 300 * 200 * 100 > (1 << 22)  # takes the expanded (matmul) path
    assert torch.allclose(pairwise_sq_dist(a, b), direct, rtol=1e-4, atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bmc_nll(a[:4, :3], b[:4, :3], torch.tensor(1.0)).shape == (4,)
