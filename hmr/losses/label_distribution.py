"""Training-label distributions for Balanced MSE: a Gaussian mixture (GAI) and a histogram (BNI).

Both describe ``p_train(y)``, the distribution of the *training* labels, over a D-dimensional
label space (D = 1 for a scalar such as age; D = 72 for an SMPL pose in axis-angle, ...).

- :func:`fit_label_gmm` fits a full-covariance Gaussian mixture with EM (k-means++ start, a
  few Lloyd steps, then EM in float64). scikit-learn is not a dependency, and the fit only has
  to be done once per training set, so a small, readable EM is enough.
- :func:`label_histogram` bins the labels (``numpy.histogramdd``) and keeps the non-empty
  cells: their centres and their normalised counts, as the authors' BNI does.

Shapes: labels ``(N, D)`` (a 1-D array ``(N,)`` is read as ``D = 1``). Means ``(K, D)``,
covariances ``(K, D, D)``, weights ``(K,)`` summing to 1; bucket centres ``(C, D)``, bucket
weights ``(C,)`` summing to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LabelGMM:
    """A Gaussian mixture over labels: ``p(y) = sum_k weights[k] N(y; means[k], covariances[k])``."""

    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # (K, D, D)
    weights: np.ndarray  # (K,)
    log_likelihood: float = float("nan")  # mean per-sample log-likelihood at the end of EM
    n_iter: int = 0

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def as_dict(self) -> dict[str, np.ndarray]:
        """The authors' pickle layout (``means``, ``variances``, ``weights``), for interchange."""
        return {"means": self.means, "variances": self.covariances, "weights": self.weights}

    def log_pdf(self, labels: np.ndarray) -> np.ndarray:
        """``log p(y)`` for labels ``(N, D)`` -> ``(N,)``."""
        x = torch.as_tensor(_as_2d(labels), dtype=torch.float64)
        return torch.logsumexp(_component_log_pdf(
            x, torch.as_tensor(self.means, dtype=torch.float64),
            torch.as_tensor(self.covariances, dtype=torch.float64),
            torch.as_tensor(self.weights, dtype=torch.float64)), dim=1).numpy()


@dataclass(frozen=True)
class LabelHistogram:
    """Non-empty histogram cells of the training labels."""

    centers: np.ndarray  # (C, D)
    weights: np.ndarray  # (C,), sums to 1
    edges: tuple[np.ndarray, ...]  # per dimension, the bin edges used

    @property
    def dim(self) -> int:
        return int(self.centers.shape[1])


def _as_2d(labels: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"labels must be (N, D) with N > 0, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("labels contain NaN or inf")
    return arr.astype(np.float64, copy=False)


def _component_log_pdf(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor,
                       weights: torch.Tensor) -> torch.Tensor:
    """``log w_k + log N(x_n; mu_k, S_k)`` -> ``(N, K)``; x ``(N, D)``, means ``(K, D)``."""
    d = x.shape[1]
    chol = torch.linalg.cholesky(covs)  # (K, D, D)
    diff = x[None, :, :] - means[:, None, :]  # (K, N, D)
    z = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)  # (K, D, N)
    maha = z.pow(2).sum(dim=1)  # (K, N)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    log_pdf = -0.5 * (maha + log_det[:, None] + d * math.log(2.0 * math.pi))
    return (log_pdf + torch.log(weights)[:, None]).T  # (N, K)


def _kmeans_init(x: torch.Tensor, k: int, gen: torch.Generator, n_lloyd: int = 10) -> torch.Tensor:
    """k-means++ seeding followed by a few Lloyd iterations -> centres ``(K, D)``."""
    n = x.shape[0]
    centres = [x[torch.randint(n, (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).pow(2).min(dim=1).values  # (N,)
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        centres.append(x[torch.multinomial(probs, 1, generator=gen)].squeeze(0))
    c = torch.stack(centres)
    for _ in range(n_lloyd):
        assign = torch.cdist(x, c).argmin(dim=1)  # (N,)
        for j in range(k):
            members = x[assign == j]
            if members.shape[0] > 0:
                c[j] = members.mean(dim=0)
    return c


def fit_label_gmm(labels: np.ndarray | torch.Tensor, n_components: int, *, max_iter: int = 200,
                  tol: float = 1e-4, reg_covar: float = 1e-6, max_samples: int | None = 200_000,
                  seed: int = 0) -> LabelGMM:
    """Fit a full-covariance Gaussian mixture to training labels ``(N, D)`` with EM.

    EM stops when the mean per-sample log-likelihood improves by less than ``tol`` (absolute,
    as scikit-learn's criterion) or after ``max_iter`` iterations.
    ``reg_covar`` is added to every covariance diagonal (as scikit-learn does) so that a
    component collapsing onto repeated labels stays invertible. With more than ``max_samples``
    labels a random subset (fixed by ``seed``) is used: the prior only needs the shape.
    """
    x = torch.as_tensor(_as_2d(labels), dtype=torch.float64)
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    gen = torch.Generator().manual_seed(seed)
    if max_samples is not None and x.shape[0] > max_samples:
        x = x[torch.randperm(x.shape[0], generator=gen)[:max_samples]]
    n, d = x.shape
    if n < n_components:
        raise ValueError(f"cannot fit {n_components} components to {n} labels")
    eye = torch.eye(d, dtype=torch.float64)
    means = _kmeans_init(x, n_components, gen)  # (K, D)
    global_cov = torch.atleast_2d(torch.cov(x.T)) if n > 1 else eye.clone()
    covs = (global_cov + reg_covar * eye).expand(n_components, d, d).clone()  # (K, D, D)
    weights = torch.full((n_components,), 1.0 / n_components, dtype=torch.float64)
    prev_ll, ll, it = -math.inf, -math.inf, 0
    for it in range(1, max_iter + 1):
        log_joint = _component_log_pdf(x, means, covs, weights)  # (N, K)
        log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)  # (N, 1)
        ll = float(log_norm.mean())
        resp = torch.exp(log_joint - log_norm)  # (N, K)
        nk = resp.sum(dim=0) + 10.0 * torch.finfo(torch.float64).eps  # (K,)
        weights = nk / n
        means = (resp.T @ x) / nk[:, None]
        diff = x[None, :, :] - means[:, None, :]  # (K, N, D)
        covs = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None]
        covs = covs + reg_covar * eye
        if abs(ll - prev_ll) < tol:
            break
        prev_ll = ll
    return LabelGMM(means=means.numpy(), covariances=covs.numpy(), weights=weights.numpy(),
                    log_likelihood=ll, n_iter=it)


def label_histogram(labels: np.ndarray | torch.Tensor,
                    bins: int | np.ndarray | list | tuple = 100,
                    range_: list[tuple[float, float]] | None = None) -> LabelHistogram:
    """Histogram of training labels ``(N, D)``: centres and normalised counts of non-empty cells.

    ``bins`` is what :func:`numpy.histogramdd` takes: a count for every dimension, a count per
    dimension, or explicit edges (for D = 1 a 1-D edge array is accepted). Empty cells are
    dropped (their log-weight would be -inf and they add nothing to the integral).
    """
    x = _as_2d(labels)
    d = x.shape[1]
    if d == 1 and isinstance(bins, np.ndarray | list) and np.ndim(bins) == 1 and len(bins) > 1:
        bins = [np.asarray(bins, dtype=np.float64)]
    counts, edges = np.histogramdd(x, bins=bins, range=range_)
    centres_1d = [0.5 * (e[:-1] + e[1:]) for e in edges]
    grid = np.stack(np.meshgrid(*centres_1d, indexing="ij"), axis=-1).reshape(-1, d)  # (cells, D)
    flat = counts.reshape(-1)
    keep = flat > 0
    if not keep.any():
        raise ValueError("no label falls inside the histogram range")
    return LabelHistogram(centers=grid[keep], weights=flat[keep] / flat[keep].sum(),
                          edges=tuple(edges))
