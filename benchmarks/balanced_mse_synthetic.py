"""Balanced MSE synthetic benchmark: imbalanced linear regression, balanced (uniform) test set.

Re-runs the synthetic benchmark released with Ren et al., "Balanced MSE for Imbalanced Visual
Regression" (CVPR 2022; github.com/jiawei-ren/BalancedMSE, ``synthetic_benchmark/``) with the
project's own losses (:mod:`hmr.losses`). Setup, as in the authors' ``main_1d.py``/``main_2d.py``:

1-D: y = x (slope 1, intercept 0) on [0, 10]. Training labels come from a normal N(5, s^2)
(s = 0.5 / 0.75 / 1.0: high / medium / low imbalance) or an exponential with rate 2 / 1.5 / 1,
trimmed to [0, 10]; the observed label carries Gaussian noise (sigma = 1): x = y_obs - noise.
1024 training samples in batches of 256 (4 steps an epoch), 2000 epochs, SGD (lr 1e-3, momentum
0.9) with cosine annealing; validation and test sets of 1024 noise-free samples with y uniform
on [0, 10]. The model is evaluated on the validation set every 400 epochs and the best one is
tested (balanced test MSE).

2-D: x = M y with M ~ 0.01 N(0, 1)^{2x2} (so the model must learn M^-1), labels from a
correlated normal N(0, [[1, .5], [.5, 1]]), isotropic noise sigma = 1, 10,000 epochs of Adam
(lr 0.2, cosine), 256 validation / test samples uniform on [-5, 5]^2, validation every 1000.

Criteria: MSE; inverse-density reweighting (true training pdf, weights normalised in the
batch); GAI (GMM fitted by EM to 10,000 samples of the true label distribution: 1 component for
the normal settings, 64 for the exponential ones); BMC; BNI (ours, not in the paper's benchmark:
50-bin histogram of the training labels); GAI and BMC with a learnable sigma started at 1.5x the
true noise (its own parameter group, lr 1e-3 in 1-D, 1e-2 in 2-D, not annealed, as in the
authors' code where the scheduler predates that group). Fixed-sigma losses use the true 1.0.

For one criterion, every (setting, seed) model of one dimensionality trains at once: the linear
models are stacked ``(S, ...)`` and the loss is ``torch.func.vmap``-ed over them, each model with
its own data, prior and sigma (they do not interact: the summed loss has block-separate
gradients, and SGD/Adam are element-wise). This cuts the Python overhead of 8,000 / 40,000
tiny steps; the B x B BMC logits and the bucket sums remain the main cost.

Run:  python benchmarks/balanced_mse_synthetic.py [--quick] [--seeds 5] [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, vmap

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.losses import build_loss, fit_label_gmm  # noqa: E402


@dataclass(frozen=True)
class Setting:
    """A training-label distribution."""

    name: str
    dist: str  # "normal" | "exp" | "normal2d"
    param: float  # normal: std of y; exp: rate; normal2d: unused
    dim: int = 1


@dataclass(frozen=True)
class Protocol:
    """Training and evaluation constants (the authors' values by default)."""

    epochs: int
    eval_every: int
    optimiser: str  # "sgd" | "adam"
    lr: float
    sigma_lr: float
    n_val: int
    n_test: int
    batch_size: int = 256
    n_train: int = 1024
    noise_sigma: float = 1.0
    sigma_init_factor: float = 1.5
    prior_samples: int = 10_000
    bni_bins: int = 50


SETTINGS_1D = {
    "normal-high": Setting("normal-high", "normal", 0.5),
    "normal-medium": Setting("normal-medium", "normal", 0.75),
    "normal-low": Setting("normal-low", "normal", 1.0),
    "exp-high": Setting("exp-high", "exp", 2.0),
    "exp-medium": Setting("exp-medium", "exp", 1.5),
    "exp-low": Setting("exp-low", "exp", 1.0),
}
SETTING_2D = Setting("normal-2d", "normal2d", 0.0, dim=2)
PROTOCOL_1D = Protocol(epochs=2000, eval_every=400, optimiser="sgd", lr=1e-3, sigma_lr=1e-3,
                       n_val=1024, n_test=1024)
PROTOCOL_2D = Protocol(epochs=10_000, eval_every=1000, optimiser="adam", lr=0.2, sigma_lr=1e-2,
                       n_val=256, n_test=256)
Y_RANGE_1D = (0.0, 10.0)
Y_RANGE_2D = (-5.0, 5.0)
COV_2D = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)

# criterion -> (loss name, learnable sigma, inverse-density reweighting)
CRITERIA = {
    "MSE": ("mse", False, False),
    "Reweight": ("mse", False, True),
    "GAI": ("gai", False, False),
    "BMC": ("bmc", False, False),
    "BNI": ("bni", False, False),
    "GAI learnable": ("gai", True, False),
    "BMC learnable": ("bmc", True, False),
}


@dataclass
class SeedData:
    """Stacked per-seed data: x ``(S, N, Din)``, y ``(S, N, D)``, float32."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    prior_samples: torch.Tensor  # (S, P, D) samples of the true label distribution (for GAI)


def _sample_labels(setting: Setting, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` labels ``(n, D)`` from the setting's training distribution (1-D trimmed to range)."""
    if setting.dist == "normal2d":
        chol = torch.linalg.cholesky(COV_2D)
        return (torch.randn(n, 2, generator=gen, dtype=torch.float64) @ chol.T).float()
    lo, hi = Y_RANGE_1D
    while True:  # draw 2n, trim to [lo, hi], keep n (the authors' rejection step)
        if setting.dist == "normal":
            y = 0.5 * (lo + hi) + setting.param * torch.randn(2 * n, generator=gen)
        else:
            y = -torch.log(torch.rand(2 * n, generator=gen).clamp_min(1e-12)) / setting.param
        y = y[(y >= lo) & (y <= hi)]
        if y.numel() >= n:
            return y[:n, None]


def label_log_pdf(setting: Setting, y: torch.Tensor) -> torch.Tensor:
    """Log-density of the (untrimmed) training label distribution at y ``(..., D)`` -> ``(...)``."""
    if setting.dist == "normal":
        mean = 0.5 * sum(Y_RANGE_1D)
        z = (y[..., 0] - mean) / setting.param
        return -0.5 * z.pow(2) - math.log(setting.param * math.sqrt(2 * math.pi))
    if setting.dist == "exp":
        return math.log(setting.param) - setting.param * y[..., 0]
    prec = torch.linalg.inv(COV_2D).float()
    maha = torch.einsum("...i,ij,...j->...", y, prec, y)
    return -0.5 * maha - 0.5 * math.log(float(torch.linalg.det(COV_2D))) - math.log(2 * math.pi)


def make_data(setting: Setting, protocol: Protocol, seeds: list[int]) -> SeedData:
    parts = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        d, n = setting.dim, protocol.n_train
        y_train = _sample_labels(setting, n, gen)  # (N, D) observed (noisy) labels
        y_clean = y_train - protocol.noise_sigma * torch.randn(n, d, generator=gen)
        lo, hi = Y_RANGE_2D if d == 2 else Y_RANGE_1D
        y_val = lo + (hi - lo) * torch.rand(protocol.n_val, d, generator=gen)
        y_test = lo + (hi - lo) * torch.rand(protocol.n_test, d, generator=gen)
        if d == 2:
            oracle = 0.01 * torch.randn(2, 2, generator=gen)  # x = M y
            to_x = lambda y, m=oracle: y @ m.T  # noqa: E731
        else:
            to_x = lambda y: y.clone()  # noqa: E731  (slope 1, intercept 0)
        prior = _sample_labels(setting, protocol.prior_samples, gen) if d == 2 else (
            _untrimmed(setting, protocol.prior_samples, gen))
        parts.append((to_x(y_clean), y_train, to_x(y_val), y_val, to_x(y_test), y_test, prior))
    return SeedData(*(torch.stack(p) for p in zip(*parts)))


def _untrimmed(setting: Setting, n: int, gen: torch.Generator) -> torch.Tensor:
    """Samples of the *untrimmed* 1-D distribution (the authors fit their GMM to those)."""
    if setting.dist == "normal":
        return (0.5 * sum(Y_RANGE_1D) + setting.param * torch.randn(n, 1, generator=gen))
    return -torch.log(torch.rand(n, 1, generator=gen).clamp_min(1e-12)) / setting.param


def _prior_overrides(loss_name: str, setting: Setting, protocol: Protocol, data: SeedData,
                     seeds: list[int]) -> dict[str, torch.Tensor]:
    """Per-seed prior buffers ``(S, ...)`` for GAI (GMM) and BNI (histogram), for functional_call."""
    if loss_name == "gai":
        k = 1 if setting.dist != "exp" else 64
        gmms = [fit_label_gmm(data.prior_samples[i].numpy(), k, seed=s) for i, s in enumerate(seeds)]
        return {"gmm_means": torch.stack([torch.as_tensor(g.means) for g in gmms]).float(),
                "gmm_covariances": torch.stack([torch.as_tensor(g.covariances) for g in gmms]).float(),
                "gmm_log_weights": torch.stack([torch.as_tensor(np.log(g.weights)) for g in gmms]).float()}
    if loss_name == "bni":
        # Fixed edges for every seed so the buckets stack; empty buckets get log-weight -inf.
        lo, hi = Y_RANGE_1D
        edges = np.linspace(lo, hi, protocol.bni_bins + 1)
        centres, log_w = [], []
        for i in range(len(seeds)):
            y = data.y_train[i].numpy()
            if setting.dim == 1:
                counts, _ = np.histogram(y[:, 0], bins=edges)
                grid = 0.5 * (edges[:-1] + edges[1:])[:, None]
            else:
                lo2, hi2 = Y_RANGE_2D
                e2 = np.linspace(lo2, hi2, 21)
                counts, _, _ = np.histogram2d(y[:, 0], y[:, 1], bins=[e2, e2])
                c2 = 0.5 * (e2[:-1] + e2[1:])
                grid = np.stack(np.meshgrid(c2, c2, indexing="ij"), -1).reshape(-1, 2)
                counts = counts.reshape(-1)
            centres.append(torch.as_tensor(grid, dtype=torch.float32))
            with np.errstate(divide="ignore"):
                log_w.append(torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32))
        return {"bucket_centers": torch.stack(centres), "bucket_log_weights": torch.stack(log_w)}
    return {}


def _template_loss(loss_name: str, dim: int):
    """A loss module of the right kind; its prior buffers are replaced per seed at call time."""
    if loss_name == "gai":
        return build_loss("gai", dim=dim, gmm={"means": np.zeros((1, dim)),
                                               "variances": np.ones(1), "weights": np.ones(1)})
    if loss_name == "bni":
        return build_loss("bni", dim=dim, bucket_centers=np.zeros((1, dim)), bucket_weights=[1.0])
    return build_loss(loss_name, dim=dim)


def _concat_priors(priors: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-setting priors along the model axis; GMMs with fewer components are padded
    with dead components (log-weight -inf, unit covariance) so that every model has K_max."""
    if not priors or not priors[0]:
        return {}
    if "gmm_means" in priors[0]:
        k_max = max(p["gmm_means"].shape[1] for p in priors)
        padded = []
        for p in priors:
            s, k, d = p["gmm_means"].shape
            extra = k_max - k
            padded.append({
                "gmm_means": torch.cat([p["gmm_means"], torch.zeros(s, extra, d)], 1),
                "gmm_covariances": torch.cat([p["gmm_covariances"],
                                              torch.eye(d).expand(s, extra, d, d)], 1),
                "gmm_log_weights": torch.cat([p["gmm_log_weights"],
                                              torch.full((s, extra), float("-inf"))], 1)})
        priors = padded
    stacked = {key: torch.cat([p[key] for p in priors]) for key in priors[0]}
    if "bucket_log_weights" in stacked:  # drop cells empty for every model (saves time only)
        used = torch.isfinite(stacked["bucket_log_weights"]).any(dim=0)
        stacked = {key: val[:, used] for key, val in stacked.items()}
    return stacked


def train_criterion(protocol: Protocol, data: SeedData, criterion: str,
                    prior: dict[str, torch.Tensor], log_pdf, init_seed: int) -> dict:
    """Train S independent linear models (one per row of ``data``) with one criterion and
    test each validation-selected model. ``log_pdf(y (S, B, D)) -> (S, B)`` is the true
    training-label log-density, used by the reweighting baseline only."""
    loss_name, learnable, reweight = CRITERIA[criterion]
    n_models, d_in, d_out = data.x_train.shape[0], data.x_train.shape[2], data.y_train.shape[2]
    gen = torch.Generator().manual_seed(1000 + init_seed)
    bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init range
    weight = ((torch.rand(n_models, d_in, d_out, generator=gen) * 2 - 1) * bound).requires_grad_()
    bias = ((torch.rand(n_models, 1, d_out, generator=gen) * 2 - 1) * bound).requires_grad_()
    overrides = dict(prior)  # per-model prior buffers (shared, not copied)
    loss_mod = _template_loss(loss_name, d_out)
    sigma0 = protocol.noise_sigma * (protocol.sigma_init_factor if learnable else 1.0)
    sigma = torch.full((n_models,), sigma0, requires_grad=learnable)
    if loss_name != "mse":
        overrides["noise_sigma"] = sigma

    def one_model(over, pred, target, w):
        return functional_call(loss_mod, over, (pred, target, w))

    batched_loss = vmap(one_model, in_dims=(0, 0, 0, 0 if reweight else None))
    opt_cls = torch.optim.SGD if protocol.optimiser == "sgd" else torch.optim.Adam
    extra = {"momentum": 0.9} if protocol.optimiser == "sgd" else {}
    opt = opt_cls([weight, bias], lr=protocol.lr, **extra)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=protocol.epochs)
    opt_sigma = opt_cls([sigma], lr=protocol.sigma_lr, **extra) if learnable else None

    best_val = torch.full((n_models,), float("inf"))
    best_w, best_b = weight.detach().clone(), bias.detach().clone()
    shuffle_gen = torch.Generator().manual_seed(2000 + init_seed)
    n, bs = protocol.n_train, protocol.batch_size
    for epoch in range(protocol.epochs):
        perm = torch.rand(n_models, n, generator=shuffle_gen).argsort(dim=1)  # (S, N)
        for start in range(0, n, bs):
            idx = perm[:, start:start + bs]  # (S, B)
            x = torch.gather(data.x_train, 1, idx[..., None].expand(-1, -1, d_in))
            y = torch.gather(data.y_train, 1, idx[..., None].expand(-1, -1, d_out))
            w = None
            if reweight:
                w = torch.exp(-log_pdf(y))  # (S, B) inverse true density
                w = (w / w.mean(dim=1, keepdim=True))[..., None]  # (S, B, 1)
            pred = torch.baddbmm(bias, x, weight)  # (S, B, D)
            loss = batched_loss(overrides, pred, y, w).sum()  # models are independent
            opt.zero_grad(set_to_none=True)
            if opt_sigma is not None:
                opt_sigma.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if opt_sigma is not None:
                opt_sigma.step()
        sched.step()
        if (epoch + 1) % protocol.eval_every == 0:
            val = _mse(weight, bias, data.x_val, data.y_val)
            better = val < best_val
            best_val = torch.where(better, val, best_val)
            best_w = torch.where(better[:, None, None], weight.detach(), best_w)
            best_b = torch.where(better[:, None, None], bias.detach(), best_b)
    return {"test_mse": _mse(best_w, best_b, data.x_test, data.y_test),
            "last_test_mse": _mse(weight, bias, data.x_test, data.y_test),
            "sigma": sigma.detach().abs() if loss_name != "mse" else None,
            "weight": best_w, "bias": best_b}


@torch.no_grad()
def _mse(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-seed MSE over all elements: ``(S,)``."""
    return (torch.baddbmm(bias, x, weight) - y).pow(2).mean(dim=(1, 2))


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True)
class RunConfig:
    """What to run: settings, criteria, seeds and the two protocols."""

    settings_1d: tuple[str, ...] = tuple(SETTINGS_1D)
    run_2d: bool = True
    criteria: tuple[str, ...] = tuple(CRITERIA)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    protocol_1d: Protocol = PROTOCOL_1D
    protocol_2d: Protocol = PROTOCOL_2D


QUICK = RunConfig(settings_1d=("normal-high", "exp-high"), run_2d=False,
                  criteria=("MSE", "GAI", "BMC", "BNI"), seeds=(0, 1, 2),
                  protocol_1d=replace(PROTOCOL_1D, epochs=250, eval_every=50))


def run_group(settings: list[Setting], protocol: Protocol, config: RunConfig,
              progress=None) -> dict[str, dict]:
    """All criteria on a group of settings of one dimensionality, every (setting, seed) model
    trained in one vmapped batch. Returns ``{setting name: {results, seed-0 data}}``."""
    seeds = list(config.seeds)
    n_seeds = len(seeds)
    datas = [make_data(st, protocol, seeds) for st in settings]
    data = SeedData(*(torch.cat([getattr(d, f) for d in datas]) for f in SeedData.__dataclass_fields__))

    def log_pdf(y: torch.Tensor) -> torch.Tensor:  # (S_total, B, D) -> (S_total, B)
        return torch.cat([label_log_pdf(st, y[i * n_seeds:(i + 1) * n_seeds])
                          for i, st in enumerate(settings)])

    priors: dict[str, dict[str, torch.Tensor]] = {}
    out = {st.name: {"results": {}, "x_train": datas[i].x_train[0].tolist(),
                     "y_train": datas[i].y_train[0].tolist(), "x_test": datas[i].x_test[0].tolist(),
                     "y_test": datas[i].y_test[0].tolist()} for i, st in enumerate(settings)}
    for criterion in config.criteria:
        loss_name = CRITERIA[criterion][0]
        if loss_name not in priors:  # GAI and "GAI learnable" share one fitted GMM per model
            priors[loss_name] = _concat_priors([_prior_overrides(loss_name, st, protocol, d, seeds)
                                                for st, d in zip(settings, datas)])
        t0 = time.perf_counter()
        res = train_criterion(protocol, data, criterion, priors[loss_name], log_pdf, seeds[0])
        seconds = time.perf_counter() - t0
        for i, st in enumerate(settings):
            part = slice(i * n_seeds, (i + 1) * n_seeds)
            out[st.name]["results"][criterion] = {
                key: (None if val is None else val[part].tolist()) for key, val in res.items()}
            out[st.name]["results"][criterion]["seconds_group"] = seconds
        if progress is not None:
            progress.update(1)
    return out


def run_benchmark(config: RunConfig, show_progress: bool = True) -> dict:
    """Run every (setting, criterion) of ``config``; returns a JSON-able dict of results."""
    from tqdm import tqdm

    jobs = []
    if config.settings_1d:
        jobs.append(([SETTINGS_1D[name] for name in config.settings_1d], config.protocol_1d))
    if config.run_2d:
        jobs.append(([SETTING_2D], config.protocol_2d))
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = {"config": {"seeds": list(config.seeds), "criteria": list(config.criteria),
                      "protocol_1d": asdict(config.protocol_1d),
                      "protocol_2d": asdict(config.protocol_2d) if config.run_2d else None,
                      "torch": torch.__version__, "threads": torch.get_num_threads()},
           "settings": {}}
    # BMC's exp(-d^2 / 2 sigma^2) underflows to denormals, which are ~10x slower on CPU.
    torch.set_flush_denormal(True)
    try:
        with tqdm(total=len(jobs) * len(config.criteria), desc="balanced-mse synthetic",
                  disable=not show_progress) as bar:
            for settings, protocol in jobs:
                bar.set_postfix_str(f"{settings[0].dim}-D")
                t1 = time.perf_counter()
                out["settings"].update(run_group(settings, protocol, config, bar))
                out[f"seconds_{settings[0].dim}d"] = time.perf_counter() - t1
    finally:
        torch.set_flush_denormal(False)
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - cpu0
    return out


def format_tables(out: dict) -> str:
    """Markdown tables: balanced test MSE (mean ± std over seeds) and learnt sigma."""
    names = list(out["settings"])
    criteria = out["config"]["criteria"]
    head = "| criterion | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    mse_rows, sigma_rows = [], []
    for crit in criteria:
        cells, sig_cells = [], []
        for name in names:
            res = out["settings"][name]["results"][crit]
            v = np.asarray(res["test_mse"])
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}")
            if res["sigma"] is not None and CRITERIA[crit][1]:
                s = np.asarray(res["sigma"])
                sig_cells.append(f"{s.mean():.3f} ± {s.std(ddof=1) if s.size > 1 else 0.0:.3f}")
        mse_rows.append(f"| {crit} | " + " | ".join(cells) + " |")
        if sig_cells:
            sigma_rows.append(f"| {crit} | " + " | ".join(sig_cells) + " |")
    text = ("Balanced test MSE (validation-selected model), mean ± std over seeds "
            f"{out['config']['seeds']}:\n\n" + head + "\n".join(mse_rows) + "\n")
    if sigma_rows:
        text += "\nLearnt noise sigma at the end of training (true sigma = 1, init 1.5):\n\n"
        text += head + "\n".join(sigma_rows) + "\n"
    return text


def _panels(n: int, max_cols: int, size: float):
    """A figure with ``n`` axes in rows of ``max_cols`` (unused axes hidden): (plt, fig, axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(max_cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return plt, fig, list(axes.flat)[:n]


def plot_1d(out: dict, path: Path) -> None:
    """Fitted lines (seed 0) over the training data for every 1-D setting, like the paper's figure."""
    names = [n for n in out["settings"] if n in SETTINGS_1D]
    plt, fig, axes = _panels(len(names), 3, 4.2)
    grid = np.linspace(*Y_RANGE_1D, 2)
    for ax, name in zip(axes, names):
        s = out["settings"][name]
        x, y = np.asarray(s["x_train"])[:, 0], np.asarray(s["y_train"])[:, 0]
        ax.scatter(x, y, s=6, alpha=0.15, color="#1f3f8f", linewidths=0, label="training data")
        ax.plot(grid, grid, color="black", lw=2.0, ls="--", label="oracle y = x")
        for crit, res in s["results"].items():
            w, b = res["weight"][0][0][0], res["bias"][0][0][0]
            ax.plot(grid, w * grid + b, lw=1.4, label=f"{crit} ({res['test_mse'][0]:.2f})")
        ax.set(xlim=Y_RANGE_1D, ylim=Y_RANGE_1D, xlabel="x", ylabel="y", title=name)
        ax.legend(fontsize=6.5, loc="upper left", title="balanced test MSE, seed 0",
                  title_fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_2d(out: dict, path: Path) -> None:
    """Training labels, balanced test labels, and each criterion's test predictions (seed 0)."""
    s = out["settings"][SETTING_2D.name]
    panels = [("training labels", np.asarray(s["y_train"])),
              ("test labels (uniform)", np.asarray(s["y_test"]))]
    x_test = torch.tensor(s["x_test"])
    for crit, res in s["results"].items():
        w, b = torch.tensor(res["weight"][0]), torch.tensor(res["bias"][0])
        panels.append((f"{crit}: test MSE {res['test_mse'][0]:.2f}", (x_test @ w + b).numpy()))
    plt, fig, axes = _panels(len(panels), 5, 3.2)
    lo, hi = Y_RANGE_2D
    for ax, (title, pts) in zip(axes, panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, linewidths=0)
        ax.add_patch(plt.Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ls="--", lw=0.8))
        ax.set(xlim=(lo - 1, hi + 1), ylim=(lo - 1, hi + 1), aspect="equal", xlabel="y1", ylabel="y2")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scaled(protocol: Protocol, scale: float) -> Protocol:
    every = max(1, round(protocol.eval_every * scale))
    return replace(protocol, eval_every=every, epochs=max(every, round(protocol.epochs * scale)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="normal-high and exp-high, MSE/GAI/BMC/BNI, 3 seeds, 250 epochs (~15 s CPU)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    parser.add_argument("--settings", nargs="*", default=None, choices=list(SETTINGS_1D),
                        help="1-D settings to run (default: all six)")
    parser.add_argument("--no-2d", action="store_true", help="skip the 2-D setting")
    parser.add_argument("--criteria", nargs="*", default=None, choices=list(CRITERIA))
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="write results.json and the 1-D/2-D plots here")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--epoch-scale", type=float, default=1.0,
                        help="multiply epochs and evaluation period (smoke tests; 1 = paper)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: --quick with one seed, a tenth of the epochs, 1-D and 2-D plots "
                             "written to a temporary folder (checks the script runs; figures meaningless)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.seeds, args.epoch_scale = True, 1, 0.1
    scratch = Path(tempfile.mkdtemp(prefix="hmr-bench-bmse-")) if args.smoke and args.out_dir is None else None
    if scratch is not None:
        args.out_dir = scratch

    torch.set_num_threads(args.threads)
    config = QUICK if args.quick else RunConfig()
    if args.seeds is not None:
        config = replace(config, seeds=tuple(range(args.seeds)))
    if args.settings is not None:
        config = replace(config, settings_1d=tuple(args.settings))
    if args.no_2d:
        config = replace(config, run_2d=False)
    if args.criteria is not None:
        config = replace(config, criteria=tuple(args.criteria))
    if args.epoch_scale != 1.0:
        config = replace(config, protocol_1d=_scaled(config.protocol_1d, args.epoch_scale),
                         protocol_2d=_scaled(config.protocol_2d, args.epoch_scale))
    out = run_benchmark(config)
    print(format_tables(out))
    print(f"runtime: {out['seconds']:.1f} s wall, {out['cpu_seconds']:.1f} s CPU, "
          f"torch {torch.__version__}; {machine_line(args.threads)}")
    if args.out_dir is not None:
        from hmr.core.utils.atomic import atomic_write_text

        args.out_dir.mkdir(parents=True, exist_ok=True)
        prefix = "balanced_mse_quick" if args.quick else "balanced_mse"
        atomic_write_text(args.out_dir / f"{prefix}_results.json", json.dumps(out))
        if any(n in SETTINGS_1D for n in out["settings"]):
            plot_1d(out, args.out_dir / f"{prefix}_synthetic_1d.png")
        if SETTING_2D.name in out["settings"]:
            plot_2d(out, args.out_dir / f"{prefix}_synthetic_2d.png")
        print(f"wrote {args.out_dir}/{prefix}_*")
    if scratch is not None:
        shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
