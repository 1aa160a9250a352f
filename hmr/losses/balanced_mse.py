"""Balanced MSE (Ren et al., "Balanced MSE for Imbalanced Visual Regression", CVPR 2022).

For a prediction ``y_hat`` and label ``y`` in R^D, with label noise N(0, sigma^2 I):

    L(y_hat, y) = -log N(y; y_hat, sigma^2 I) + log  integral p_train(y') N(y'; y_hat, sigma^2 I) dy'

The second term removes the training-label prior from the likelihood, so the regressor models
the *balanced* conditional p_bal(y | x) while still being trained on imbalanced data. The three
implementations differ only in how they evaluate the integral:

- **BMC** (batch Monte-Carlo): with the batch's own labels as samples of p_train. The loss
  becomes a cross-entropy over the B x B logits ``-||y_hat_i - y_j||^2 / 2 sigma^2`` with the
  diagonal as the class. Needs no prior; a batch of one sample gives exactly 0 (the authors'
  issues #14/#19: use GAI or BNI then).
- **GAI** (GMM analytic integration): p_train is a Gaussian mixture fitted beforehand
  (:func:`hmr.losses.fit_label_gmm`); the convolution with the noise Gaussian is closed-form:
  ``sum_k pi_k N(y_hat; mu_k, Sigma_k + sigma^2 I)``.
- **BNI** (bin numerical integration): p_train is a histogram (bucket centres and normalised
  counts, :func:`hmr.losses.label_histogram`); the integral is ``sum_c w_c N(b_c; y_hat, sigma^2 I)``.

Conventions (those of the authors' code, which we follow so results are comparable):

- The multi-dimensional form uses one isotropic sigma^2 I over the flattened D-dim label.
  Terms constant in ``y_hat`` and sigma (``D/2 log 2 pi``) cancel and are dropped; BMC and BNI
  also drop ``D/2 log sigma^2`` (it cancels between their two terms), GAI keeps it because its
  two terms have different variances.
- The per-sample loss is multiplied by the **detached** ``2 sigma^2``, which restores the MSE
  scale (``L * 2 sigma^2 -> ||y - y_hat||^2`` when sigma is small relative to the prior) without
  the scale factor pushing sigma towards 0 when sigma is learnable.
- sigma can be a fixed buffer or a learnable ``nn.Parameter`` (``learnable_sigma=True``); the
  trainer puts ``loss.noise_sigma`` in its own optimiser parameter group with its own learning
  rate (the authors use 1e-2 with init 1.0 - 10.0 on real data).

Weights: ``weight`` is a per-sample value ``(B,)`` (or anything with B elements, e.g. ``(B, 1)``):
a keypoint-free or SMPL-free sample gets 0. The result is ``sum_i w_i L_i / sum_i w_i`` (0 when
every weight is 0). In BMC a sample with weight 0 is also removed from the batch prior (its label
is not a sample of p_train for this batch: it may be a placeholder); positive weights all count as
one prior sample each (they are confidences, not sampling weights).

Shapes: ``pred``, ``target`` ``(B, D)`` or ``(B, ...)`` (flattened to ``(B, D)``); a 1-D ``(B,)``
input is read as ``D = 1``. Computation is float32 with autocast off (the B x B logits and the
Cholesky factors are not safe in bf16). No Python branch depends on tensor values, so the losses
run under ``torch.func.vmap`` and CUDA graphs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from hmr.losses.label_distribution import LabelGMM

# Above this many (B * M * D) elements the pairwise distance uses the expanded
# ||a||^2 + ||b||^2 - 2 a.b form, which needs no (B, M, D) temporary.
_DIRECT_PAIRWISE_MAX = 1 << 22


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_j||^2`` for a ``(B, D)``, b ``(M, D)`` -> ``(B, M)``."""
    if a.shape[1] == 1:  # scalar labels: no (B, M, 1) temporary, no reduction
        return (a - b.T).pow(2)
    if a.shape[0] * b.shape[0] * a.shape[1] <= _DIRECT_PAIRWISE_MAX:
        return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    sq = a.pow(2).sum(-1)[:, None] + b.pow(2).sum(-1)[None, :] - 2.0 * a @ b.T
    return sq.clamp_min(0.0)


def bmc_nll(pred: torch.Tensor, target: torch.Tensor, noise_var: torch.Tensor,
            valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample BMC loss (before the 2 sigma^2 rescale): pred, target ``(B, D)`` -> ``(B,)``.

    ``valid`` ``(B,)`` bool removes samples from the batch prior (columns of the logits).
    """
    logits = -pairwise_sq_dist(pred, target) / (2.0 * noise_var)  # (B, B): pred i vs label j
    if valid is not None:
        eye = torch.eye(pred.shape[0], dtype=torch.bool, device=pred.device)
        # Keep the diagonal even for an invalid row so its value stays finite (it is weighted 0).
        logits = logits.masked_fill(~(valid[None, :] | eye), float("-inf"))
    return torch.logsumexp(logits, dim=1) - torch.diagonal(logits)  # cross-entropy, class i


def gai_nll(pred: torch.Tensor, target: torch.Tensor, noise_var: torch.Tensor,
            means: torch.Tensor, covariances: torch.Tensor, log_weights: torch.Tensor
            ) -> torch.Tensor:
    """Per-sample GAI loss: pred, target ``(B, D)``; GMM means ``(K, D)``, covs ``(K, D, D)``."""
    d = pred.shape[1]
    eye = torch.eye(d, dtype=pred.dtype, device=pred.device)
    mse_term = (pred - target).pow(2).sum(-1) / (2.0 * noise_var) + 0.5 * d * torch.log(noise_var)
    chol = torch.linalg.cholesky(covariances + noise_var * eye)  # (K, D, D)
    diff = (pred[None, :, :] - means[:, None, :]).transpose(1, 2)  # (K, D, B)
    z = torch.linalg.solve_triangular(chol, diff, upper=False)  # (K, D, B)
    maha = z.pow(2).sum(1)  # (K, B)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    log_conv = log_weights[:, None] - 0.5 * (maha + log_det[:, None])  # (K, B)
    return mse_term + torch.logsumexp(log_conv, dim=0)


def bni_nll(pred: torch.Tensor, target: torch.Tensor, noise_var: torch.Tensor,
            centers: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """Per-sample BNI loss: pred, target ``(B, D)``; bucket centres ``(C, D)``, log-weights ``(C,)``."""
    mse_term = (pred - target).pow(2).sum(-1) / (2.0 * noise_var)
    log_conv = log_weights[None, :] - pairwise_sq_dist(pred, centers) / (2.0 * noise_var)  # (B, C)
    return mse_term + torch.logsumexp(log_conv, dim=1)


class BalancedMSELoss(nn.Module):
    """Common part of BMC / GAI / BNI: shapes, weights, sigma, rescale and reduction."""

    def __init__(self, dim: int = 1, init_noise_sigma: float = 1.0, learnable_sigma: bool = False):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if not (init_noise_sigma > 0 and math.isfinite(init_noise_sigma)):
            raise ValueError(f"init_noise_sigma must be a positive number, got {init_noise_sigma}")
        self.dim = int(dim)
        self.learnable_sigma = bool(learnable_sigma)
        sigma = torch.tensor(float(init_noise_sigma), dtype=torch.float32)
        if learnable_sigma:
            self.noise_sigma = nn.Parameter(sigma)
        else:
            self.register_buffer("noise_sigma", sigma)

    @property
    def noise_var(self) -> torch.Tensor:
        return self.noise_sigma.float().pow(2)

    def _nll(self, pred: torch.Tensor, target: torch.Tensor, noise_var: torch.Tensor,
             valid: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _flatten(self, pred: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if pred.ndim == 0:
            raise ValueError("pred must have a batch dimension")
        batch = pred.shape[0]
        pred2 = pred.reshape(batch, -1)  # (B, D)
        target2 = target.reshape(batch, -1)  # (B, D)
        if pred2.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__} was built for dim={self.dim} but got "
                             f"labels of {pred2.shape[1]} values per sample (shape {tuple(pred.shape)})")
        if weight is None:
            return pred2, target2, None
        if weight.numel() != batch:
            raise ValueError(f"Balanced MSE takes one weight per sample ({batch}), got weight of "
                             f"shape {tuple(weight.shape)}; use a per-sample mask such as has_smpl")
        w = weight.reshape(batch)  # (B,)
        # A masked sample's label may be a placeholder (NaN, zeros): swap in a finite value so it
        # cannot reach the loss or the gradient; it is weighted 0 and left out of the BMC prior.
        target2 = torch.where((w != 0)[:, None], target2, pred2.detach())
        return pred2, target2, w

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        pred2, target2, w = self._flatten(pred, target, weight)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            noise_var = self.noise_var
            valid = None if w is None else w != 0
            nll = self._nll(pred2.float(), target2.float(), noise_var, valid)  # (B,)
            per_sample = nll * (2.0 * noise_var).detach()
            if w is None:
                return per_sample.mean()
            w = w.float()
            weighted = torch.where(valid, per_sample * w, torch.zeros_like(per_sample))
            return weighted.sum() / w.sum().clamp_min(torch.finfo(torch.float32).tiny)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, noise_sigma={float(self.noise_sigma):.4g}, "
                f"learnable_sigma={self.learnable_sigma}")


class BMCLoss(BalancedMSELoss):
    """Balanced MSE, batch Monte-Carlo: the batch's labels are the prior (see module docstring)."""

    def _nll(self, pred, target, noise_var, valid):
        if pred.shape[0] < 2:
            warnings.warn("BMC loss with a batch of one sample is identically 0; use 'gai' or "
                          "'bni' for batch size 1", stacklevel=3)
        return bmc_nll(pred, target, noise_var, valid)


def _gmm_arrays(gmm: LabelGMM | dict, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means ``(K, D)``, full covariances ``(K, D, D)``, weights ``(K,)`` from a LabelGMM or the
    authors' dict layout (``means``, ``variances`` as (K,), (K, D), (K, D, D) or (K, 1, 1), ``weights``)."""
    if isinstance(gmm, LabelGMM):
        means, covs, weights = gmm.means, gmm.covariances, gmm.weights
    elif isinstance(gmm, dict):
        missing = {"means", "weights"} - set(gmm)
        if missing or not ({"variances", "covariances"} & set(gmm)):
            raise ValueError(f"gmm dict needs means, variances (or covariances), weights; has {sorted(gmm)}")
        means, weights = gmm["means"], gmm["weights"]
        covs = gmm["variances"] if "variances" in gmm else gmm["covariances"]
    else:
        raise TypeError(f"gmm must be a LabelGMM or a dict, got {type(gmm).__name__}")
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)  # (K,)
    k = weights.shape[0]
    means = np.asarray(means, dtype=np.float64).reshape(k, -1)  # (K, D)
    d = means.shape[1]
    covs = np.asarray(covs, dtype=np.float64)
    if covs.size == k:  # spherical: one variance per component
        covs = covs.reshape(k, 1, 1) * np.eye(d)
    elif covs.shape == (k, d):  # diagonal
        covs = covs[:, :, None] * np.eye(d)
    covs = covs.reshape(k, d, d)
    if d != dim:
        raise ValueError(f"GMM is {d}-dimensional but the loss was built for dim={dim}")
    if np.any(weights <= 0) or not np.all(np.isfinite(means)):
        raise ValueError("GMM weights must be positive and means finite")
    return means, covs, weights / weights.sum()


class GAILoss(BalancedMSELoss):
    """Balanced MSE, GMM analytic integration over a prior fitted to the training labels."""

    def __init__(self, gmm: LabelGMM | dict, dim: int = 1, init_noise_sigma: float = 1.0,
                 learnable_sigma: bool = False):
        super().__init__(dim, init_noise_sigma, learnable_sigma)
        means, covs, weights = _gmm_arrays(gmm, self.dim)
        # Prior tensors are derived from the training set, not learnt: not in the state dict.
        self.register_buffer("gmm_means", torch.as_tensor(means, dtype=torch.float32), persistent=False)
        self.register_buffer("gmm_covariances", torch.as_tensor(covs, dtype=torch.float32), persistent=False)
        self.register_buffer("gmm_log_weights", torch.as_tensor(np.log(weights), dtype=torch.float32),
                             persistent=False)

    def _nll(self, pred, target, noise_var, valid):
        return gai_nll(pred, target, noise_var, self.gmm_means, self.gmm_covariances,
                       self.gmm_log_weights)


class BNILoss(BalancedMSELoss):
    """Balanced MSE, bin numerical integration over a histogram of the training labels."""

    def __init__(self, bucket_centers, bucket_weights, dim: int = 1, init_noise_sigma: float = 1.0,
                 learnable_sigma: bool = False):
        super().__init__(dim, init_noise_sigma, learnable_sigma)
        weights = np.asarray(bucket_weights, dtype=np.float64).reshape(-1)
        centers = np.asarray(bucket_centers, dtype=np.float64).reshape(weights.shape[0], -1)  # (C, D)
        if centers.shape[1] != self.dim:
            raise ValueError(f"bucket centres are {centers.shape[1]}-dimensional but dim={self.dim}")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("bucket weights must be >= 0 with a positive sum")
        keep = weights > 0  # an empty bucket adds nothing to the integral (log 0 = -inf)
        self.register_buffer("bucket_centers", torch.as_tensor(centers[keep], dtype=torch.float32),
                             persistent=False)
        self.register_buffer("bucket_log_weights",
                             torch.as_tensor(np.log(weights[keep] / weights.sum()), dtype=torch.float32),
                             persistent=False)

    def _nll(self, pred, target, noise_var, valid):
        return bni_nll(pred, target, noise_var, self.bucket_centers, self.bucket_log_weights)
