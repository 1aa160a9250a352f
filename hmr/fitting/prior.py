"""Priors of SMPLify: a Gaussian-mixture pose prior, the elbow/knee angle prior, a shape prior.

Pose prior file layout (the published SMPLify ``gmm_08.pkl``, and ours)::

    means    (M, 69)      float  mean body pose of each component (axis-angle, joints 1..23)
    covars   (M, 69, 69)  float  full covariance of each component
    weights  (M,)         float  mixture weights, summing to 1

``gmm_08.pkl`` (M = 8, fitted by the SMPLify authors to CMU mocap) is a python-2 pickle of a
dict with exactly these keys; it is read through the restricted unpickler
(:func:`hmr.core.utils.safe_pickle.load`), never with ``pickle.load``. Users who have it put it
next to their SMPL files (SPIN's ``data/`` folder) or pass its path.

Without it we use a prior of the same form **fitted by us** with EM (:func:`fit_gmm`) to poses
drawn from :class:`hmr.synth.poses.PoseSampler` (plausible, long-tailed poses); it is written
once (about 15 s of CPU), atomically, as ``gmm_08_synth.npz`` (same three keys, no pickle) under
``$HMR_CACHE/pose-prior-v<N>/`` (:func:`ensure_synthetic_prior`). It describes our generator,
not human motion: good for tests, the demo and mannequin data, not a replacement for the
published prior on real images.

Cost (:class:`MixturePosePrior`): SMPLify's "max-mixture" form, the negative log of the most
likely component, ``min_m [ ½ dᵀ Σ_m⁻¹ d − log w_m + ½ log det Σ_m ] − c`` with ``d = θ − μ_m``
and ``c`` chosen so the cost is ~0 at the best component's mean (a constant: it changes no
gradient, and keeps the weighted cost comparable between priors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmr.core.body import default_body_model_dir
from hmr.core.body.smpl import cache_dir
from hmr.core.errors import BodyModelError
from hmr.core.utils import safe_pickle
from hmr.core.utils.atomic import atomic_path
from hmr.synth.poses import PoseSampler

__all__ = ["GaussianMixture", "MixturePosePrior", "angle_prior", "ensure_synthetic_prior", "fit_gmm",
           "find_pose_prior", "load_gmm", "load_pose_prior", "save_gmm", "shape_prior"]

PRIOR_VERSION = 1
PUBLISHED_NAME = "gmm_08.pkl"
SYNTH_NAME = "gmm_08_synth.npz"
POSE_DIM = 69


@dataclass
class GaussianMixture:
    """A full-covariance Gaussian mixture over body poses (see the module docstring)."""

    means: np.ndarray  # (M, D)
    covars: np.ndarray  # (M, D, D)
    weights: np.ndarray  # (M,)
    source: str = ""

    def check(self, path: object = None) -> "GaussianMixture":
        m, d = np.shape(self.means) if np.ndim(self.means) == 2 else (-1, -1)
        if m < 1 or np.shape(self.covars) != (m, d, d) or np.shape(self.weights) != (m,):
            raise BodyModelError(f"pose prior has means {np.shape(self.means)}, covars "
                                 f"{np.shape(self.covars)}, weights {np.shape(self.weights)}; expected "
                                 "(M, D), (M, D, D), (M,)", path=path)
        for name in ("means", "covars", "weights"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise BodyModelError("pose prior holds NaN/inf", path=path, record=name)
        if np.any(self.weights <= 0):
            raise BodyModelError("pose prior weights must be > 0", path=path, record="weights")
        return self


def load_gmm(path: str | os.PathLike) -> GaussianMixture:
    """Read a pose prior: the published ``.pkl`` (restricted unpickling) or our ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise BodyModelError("no pose prior file here", path=path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    else:
        raw = safe_pickle.to_numpy_tree(safe_pickle.load(path))
    if not isinstance(raw, dict) or not {"means", "covars", "weights"} <= set(raw):
        raise BodyModelError("not a pose prior: expected a dict with keys means, covars, weights "
                             "(sklearn GMM objects are not read: convert them to a dict)", path=path)
    gmm = GaussianMixture(np.asarray(raw["means"], np.float64), np.asarray(raw["covars"], np.float64),
                          np.asarray(raw["weights"], np.float64), source=str(path))
    return gmm.check(path)


def save_gmm(gmm: GaussianMixture, path: str | os.PathLike) -> Path:
    """Write ``gmm`` as an npz with the published layout (atomically)."""
    gmm.check()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, means=gmm.means, covars=gmm.covars, weights=gmm.weights)
    return path


# --------------------------------------------------------------------------------------
# EM (sklearn is not a dependency): full covariances, started from k-means
# --------------------------------------------------------------------------------------
def _log_gaussians(x: torch.Tensor, means: torch.Tensor, covars: torch.Tensor) -> torch.Tensor:
    """log N(x_n; μ_m, Σ_m) → (N, M) for x (N, D), means (M, D), covars (M, D, D)."""
    chol = torch.linalg.cholesky(covars)  # (M, D, D)
    diff = (x[None] - means[:, None]).transpose(1, 2)  # (M, D, N)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False)  # (M, D, N)
    maha = (sol ** 2).sum(1)  # (M, N)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (M,)
    d = x.shape[1]
    return (-0.5 * (maha + logdet[:, None] + d * np.log(2 * np.pi))).T


def _kmeans(data: torch.Tensor, k: int, gen: torch.Generator, iters: int = 20) -> torch.Tensor:
    """Lloyd's k-means from k distinct random samples → centres (k, D); a start for EM that
    does not seed components on outliers (k-means++ does, and they collapse)."""
    centres = data[torch.randperm(data.shape[0], generator=gen)[:k]].clone()  # (k, D)
    for _ in range(iters):
        label = torch.cdist(data, centres).argmin(1)  # (N,)
        for j in range(k):
            members = data[label == j]
            if len(members):
                centres[j] = members.mean(0)
    return centres


def fit_gmm(x: np.ndarray, num_components: int = 8, *, iters: int = 100, reg: float = 1e-3,
            seed: int = 0, tol: float = 1e-6) -> tuple[GaussianMixture, float]:
    """Maximum-likelihood mixture of ``num_components`` full Gaussians to ``x`` (N, D) by EM.

    ``reg`` is added to every covariance diagonal (keeps them invertible). Returns the mixture
    and the mean log-likelihood per sample of the last iteration.
    """
    data = torch.as_tensor(np.asarray(x), dtype=torch.float64)  # (N, D)
    n, d = data.shape
    if n < num_components * 2:
        raise ValueError(f"{n} samples are too few for {num_components} components")
    gen = torch.Generator().manual_seed(seed)
    mu = _kmeans(data, num_components, gen)  # (M, D)
    eye = torch.eye(d, dtype=data.dtype)
    cov = torch.cov(data.T)[None].repeat(num_components, 1, 1) + reg * eye  # (M, D, D)
    logw = torch.full((num_components,), -np.log(num_components), dtype=data.dtype)
    prev = -np.inf
    for _ in range(iters):
        joint = _log_gaussians(data, mu, cov) + logw  # (N, M)
        norm = torch.logsumexp(joint, dim=1, keepdim=True)  # (N, 1)
        resp = torch.exp(joint - norm)  # (N, M)
        mean_ll = float(norm.mean())
        nk = resp.sum(0).clamp_min(1e-10)  # (M,)
        mu = (resp.T @ data) / nk[:, None]
        cov = torch.stack([((data - mu[m]) * resp[:, m:m + 1]).T @ (data - mu[m]) / nk[m]
                           for m in range(num_components)]) + reg * eye  # (M, D, D)
        logw = torch.log(nk / n)
        if abs(mean_ll - prev) < tol * max(1.0, abs(mean_ll)):
            break
        prev = mean_ll
    gmm = GaussianMixture(mu.numpy(), cov.numpy(), torch.exp(logw).numpy(), source="fit_gmm")
    return gmm.check(), mean_ll


def _cache_dir() -> Path:
    return cache_dir() / f"pose-prior-v{PRIOR_VERSION}"


def ensure_synthetic_prior(root: str | os.PathLike | None = None, *, num_poses: int = 10000,
                           seed: int = 0) -> Path:
    """Path of our fitted prior (8 components, EM on ``num_poses`` PoseSampler poses), written
    once into ``root`` (default ``$HMR_CACHE/pose-prior-v1``); deterministic for a seed."""
    folder = Path(root) if root is not None else _cache_dir()
    path = folder / (SYNTH_NAME if (num_poses, seed) == (10000, 0) else f"gmm_08_synth_{num_poses}_{seed}.npz")
    if path.is_file():
        return path
    # tail=2 spreads the poses over the sampler's range more evenly than its default (5), so
    # rare poses are not treated as outliers by the prior.
    poses = PoseSampler(tail=2.0).sample(np.random.default_rng(seed), num_poses)["body_pose"]
    gmm, _ = fit_gmm(poses.astype(np.float64), 8, iters=50, reg=1e-3, seed=seed)
    gmm.source = f"EM on {num_poses} hmr.synth PoseSampler(tail=2) poses, seed {seed}"
    return save_gmm(gmm, path)


def find_pose_prior(path: str | os.PathLike | None = None) -> Path:
    """The prior file to use: ``path`` (a file, or a folder holding ``gmm_08.pkl``), else
    ``gmm_08.pkl`` in the body-model folder or its parent (SPIN's ``data/`` layout), else our
    synthetic prior."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / PUBLISHED_NAME
        if not p.is_file():
            raise BodyModelError("no pose prior file here (expected gmm_08.pkl or an npz "
                                 "with means/covars/weights)", path=p)
        return p
    model_dir = default_body_model_dir()
    for folder in (model_dir, model_dir.parent, model_dir / "smpl"):
        if (folder / PUBLISHED_NAME).is_file():
            return folder / PUBLISHED_NAME
    return ensure_synthetic_prior()


# --------------------------------------------------------------------------------------
# Costs (torch)
# --------------------------------------------------------------------------------------
class MixturePosePrior(torch.nn.Module):
    """Max-mixture negative log-likelihood of body poses ``(B, 69)`` → ``(B,)``."""

    def __init__(self, gmm: GaussianMixture, dtype: torch.dtype = torch.float32):
        super().__init__()
        gmm.check()
        cov = torch.as_tensor(gmm.covars, dtype=torch.float64)
        precisions = torch.linalg.inv(cov)  # (M, D, D)
        logdet = torch.linalg.slogdet(cov).logabsdet  # (M,)
        # -log w_m + ½ log det Σ_m, shifted so the best component's mean costs 0.
        offset = -torch.log(torch.as_tensor(gmm.weights, dtype=torch.float64)) + 0.5 * logdet
        self.register_buffer("means", torch.as_tensor(gmm.means, dtype=dtype))
        self.register_buffer("precisions", precisions.to(dtype))
        self.register_buffer("offsets", (offset - offset.min()).to(dtype))
        self.source = gmm.source

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        diff = body_pose[:, None, :] - self.means  # (B, M, D)
        weighted = (diff.transpose(0, 1) @ self.precisions).transpose(0, 1)  # (B, M, D): one bmm over M
        maha = (weighted * diff).sum(-1)  # (B, M)
        return (0.5 * maha + self.offsets).min(dim=1).values  # (B,)


def load_pose_prior(path: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32
                    ) -> MixturePosePrior:
    """:class:`MixturePosePrior` from :func:`find_pose_prior` (published, else ours)."""
    gmm = load_gmm(find_pose_prior(path))
    if gmm.means.shape[1] != POSE_DIM:
        raise BodyModelError(f"pose prior is over {gmm.means.shape[1]} values; SMPL body poses "
                             f"have {POSE_DIM}", path=gmm.source)
    return MixturePosePrior(gmm, dtype=dtype)


# Elbow bend about SMPL's local y axis, knee bend about x; the sign that is anatomically
# impossible is the one penalised (SMPLify's angle prior, indices into body_pose (69,):
# joint j's component c is at 3 (j - 1) + c).
_ANGLE_INDEX = (3 * 17 + 1, 3 * 18 + 1, 3 * 3 + 0, 3 * 4 + 0)  # L elbow y, R elbow y, L knee x, R knee x
_ANGLE_SIGN = (1.0, -1.0, -1.0, -1.0)


def angle_prior(body_pose: torch.Tensor) -> torch.Tensor:
    """Penalty on bending elbows/knees the wrong way: ``Σ exp(sign · θ)²`` → ``(B,)``."""
    idx = torch.tensor(_ANGLE_INDEX, device=body_pose.device)
    sign = torch.tensor(_ANGLE_SIGN, dtype=body_pose.dtype, device=body_pose.device)
    return torch.exp(body_pose[:, idx] * sign).pow(2).sum(-1)


def shape_prior(betas: torch.Tensor) -> torch.Tensor:
    """``Σ β²`` → ``(B,)`` (betas are unit-variance PCA coefficients)."""
    return betas.pow(2).sum(-1)
