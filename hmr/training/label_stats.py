"""Training-label distributions for the GAI and BNI Balanced MSE losses, fitted once and saved.

(Balanced MSE calls ``p_train(y)`` a prior; in hmrkit "prior" means SMPLify's pose and shape
priors only, :mod:`hmr.fitting.prior`.)

GAI needs a Gaussian mixture of the training labels and BNI a histogram of them
(:mod:`hmr.losses.label_distribution`). :func:`fit_label_distributions` computes them for the SMPL terms from the
training stores (samples with ``has_smpl``): ``pose`` = the 24 rotation matrices flattened
(216 numbers, the objective's pose label), ``betas`` (10). They are written to one npz file,
``loss.label_distribution_file`` of a config, read back by :func:`load_label_distributions`::

    pose/means (K, 216)  pose/covariances (K, 216, 216)  pose/weights (K,)        GAI
    betas/bucket_centers (C, 10)  betas/bucket_weights (C,)                     BNI

A histogram of a 216-D label is empty almost everywhere: use GAI for the pose (BNI suits
labels of a few dimensions). Keypoint terms depend on the crop and augmentation, so their
distributions are not fitted here; use BMC for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from hmr.core.errors import ConfigError
from hmr.core.geometry import axis_angle_to_matrix
from hmr.core.schema.store import open_store
from hmr.core.utils.atomic import atomic_path
from hmr.losses import LabelGMM, fit_label_gmm, label_histogram
from hmr.training.config import LossConfig

FIELDS = {"gai": ("means", "covariances", "weights"), "bni": ("bucket_centers", "bucket_weights")}
SMPL_TERMS = ("pose", "betas")


def smpl_labels(store_paths: list[str | os.PathLike], term: str) -> np.ndarray:
    """Labels ``(N, D)`` of ``term`` over every ``has_smpl`` sample of the stores."""
    if term not in SMPL_TERMS:
        raise ConfigError(f"label distributions can be fitted for {SMPL_TERMS}, not {term!r}")
    parts = []
    for path in store_paths:
        store = open_store(path)
        for _, cols in store.blocks(fields=["has_smpl", "smpl_global_orient", "smpl_body_pose", "smpl_betas"]):
            keep = cols["has_smpl"].astype(bool)
            if term == "betas":
                parts.append(cols["smpl_betas"][keep].astype(np.float64))
                continue
            aa = np.concatenate([cols["smpl_global_orient"][keep], cols["smpl_body_pose"][keep]], 1)
            rot = axis_angle_to_matrix(torch.from_numpy(aa.reshape(-1, 24, 3)).double())  # (N, 24, 3, 3)
            parts.append(rot.reshape(len(aa), -1).numpy())
    labels = np.concatenate(parts) if parts else np.zeros((0, 216 if term == "pose" else 10))
    if len(labels) == 0:
        raise ConfigError(f"no sample with SMPL in {[str(p) for p in store_paths]}")
    return labels


def fit_label_distributions(store_paths: list[str | os.PathLike], out: str | os.PathLike, kinds: dict[str, str], *,
               n_components: int = 8, bins: int = 10) -> Path:
    """Fit ``{term: "gai" | "bni"}`` label distributions on the stores and write them to ``out`` (npz)."""
    arrays: dict[str, np.ndarray] = {}
    for term, kind in kinds.items():
        labels = smpl_labels(store_paths, term)
        if kind == "gai":
            gmm = fit_label_gmm(labels, n_components)
            arrays.update({f"{term}/means": gmm.means, f"{term}/covariances": gmm.covariances,
                           f"{term}/weights": gmm.weights})
        elif kind == "bni":
            hist = label_histogram(labels, bins=bins)
            arrays.update({f"{term}/bucket_centers": hist.centers, f"{term}/bucket_weights": hist.weights})
        else:
            raise ConfigError(f"prior kind for {term!r} must be gai or bni, got {kind!r}")
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(out)


def load_label_distributions(path: str | os.PathLike, config: LossConfig) -> dict[str, dict]:
    """Keyword arguments of :func:`hmr.losses.build_loss` for every ``gai``/``bni`` term."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"loss.label_distribution_file {path} does not exist (write it with hmr.training.label_stats.fit_label_distributions)")
    with np.load(path, allow_pickle=False) as npz:
        stored = {k: npz[k] for k in npz.files}
    label_dists = {}
    for term in ("keypoints2d", "keypoints3d", "pose", "betas"):
        kind = getattr(config, term)
        if kind not in FIELDS:
            continue
        missing = [f for f in FIELDS[kind] if f"{term}/{f}" not in stored]
        if missing:
            raise ConfigError(f"loss.{term} = {kind!r} needs {[f'{term}/{f}' for f in missing]} in the prior file",
                              path=path)
        values = {f: stored[f"{term}/{f}"] for f in FIELDS[kind]}
        label_dists[term] = {"gmm": LabelGMM(**values)} if kind == "gai" else values
    return label_dists
