"""Regression losses for keypoints and body-model parameters, selectable by name.

=========  ==========================================================================
name       loss
=========  ==========================================================================
``mse``    squared error, per-element weights (:class:`MSELoss`)
``l1``     absolute error, per-element weights (:class:`L1Loss`)
``bmc``    Balanced MSE, batch Monte-Carlo prior (:class:`BMCLoss`)
``gai``    Balanced MSE, Gaussian-mixture prior (:class:`GAILoss`, needs ``gmm=``)
``bni``    Balanced MSE, histogram prior (:class:`BNILoss`, needs ``bucket_centers=``/``bucket_weights=``)
=========  ==========================================================================

Every loss is an ``nn.Module`` whose ``forward(pred, target, weight=None)`` returns a scalar.
The Balanced MSE losses take ``(B, D)`` (or ``(B, ...)``, flattened) labels and a per-sample
weight; ``noise_sigma`` is their noise scale, an ``nn.Parameter`` when ``learnable_sigma=True``
(give it its own optimiser parameter group). See :mod:`hmr.losses.balanced_mse` and
``docs/balanced_mse.md``.
"""

from __future__ import annotations

from hmr.core.errors import ConfigError
from hmr.losses.balanced_mse import (BalancedMSELoss, BMCLoss, BNILoss, GAILoss, bmc_nll, bni_nll,
                                     gai_nll, pairwise_sq_dist)
from hmr.losses.label_distribution import LabelGMM, LabelHistogram, fit_label_gmm, label_histogram
from hmr.losses.regression import L1Loss, MSELoss

LOSSES: dict[str, str] = {
    "mse": "squared error with per-element weights",
    "l1": "absolute error with per-element weights",
    "bmc": "Balanced MSE, batch Monte-Carlo (no prior needed; batch size >= 2)",
    "gai": "Balanced MSE, GMM analytic integration (needs gmm=fit_label_gmm(...))",
    "bni": "Balanced MSE, bin numerical integration (needs label_histogram(...) buckets)",
}


def build_loss(name: str, *, dim: int = 1, init_noise_sigma: float = 1.0,
               learnable_sigma: bool = False, gmm=None, bucket_centers=None, bucket_weights=None,
               reduction: str = "mean"):
    """Build a regression loss by name (one of :data:`LOSSES`).

    ``dim`` is the number of label values per sample for the Balanced MSE losses (checked at
    every call); ``reduction`` applies to ``mse``/``l1`` only.
    """
    key = name.lower().strip()
    if key not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    if key in ("mse", "l1"):
        if learnable_sigma or gmm is not None or bucket_centers is not None:
            raise ConfigError(f"loss {key!r} takes no noise sigma, gmm or buckets")
        return MSELoss(reduction) if key == "mse" else L1Loss(reduction)
    common = dict(dim=dim, init_noise_sigma=init_noise_sigma, learnable_sigma=learnable_sigma)
    if key == "bmc":
        return BMCLoss(**common)
    if key == "gai":
        if gmm is None:
            raise ConfigError("loss 'gai' needs gmm= (hmr.losses.fit_label_gmm on the training "
                              "labels)")
        return GAILoss(gmm, **common)
    if bucket_centers is None or bucket_weights is None:
        raise ConfigError("loss 'bni' needs bucket_centers= and bucket_weights= "
                          "(hmr.losses.label_histogram on the training labels)")
    return BNILoss(bucket_centers, bucket_weights, **common)


__all__ = [
    "LOSSES", "build_loss", "MSELoss", "L1Loss", "BalancedMSELoss", "BMCLoss", "GAILoss", "BNILoss",
    "bmc_nll", "gai_nll", "bni_nll", "pairwise_sq_dist", "LabelGMM", "LabelHistogram",
    "fit_label_gmm", "label_histogram",
]
