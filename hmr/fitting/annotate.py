"""``hmr fit``: SMPLify over a whole schema store → a new store with SMPL pseudo-ground-truth.

Every sample's 2D keypoints (any store convention; the joints of ``FIT_JOINT_NAMES`` it has)
are fitted in SPIN's crop frame (:func:`hmr.fitting.camera.to_crop_frame`: 224 px around the
person box × 1.2; the store's intrinsics where ``has_intrinsics``, else SPIN's focal 5000 px at
224 px) with the neutral body model, in batches, from SPIN's mean pose (``init="mean"``) or
from the store's own SMPL where it has some (``init="store"``, e.g. to refine EFT fits).

The output store has every input column, with, for each fitted sample, ``has_smpl`` true,
``smpl_source = "smplify"``, the fitted ``smpl_global_orient / body_pose / betas`` and, where
the camera is known, ``smpl_transl`` (camera frame, ``has_smpl_transl``); without intrinsics
the translation is relative to an assumed camera and is not stored. Extra columns:

- ``extra_smplify_loss`` (float32): SPIN's reprojection loss Σ c² ρ(Δ) in the crop frame, the
  number the fits table compares (-1 where not fitted);
- ``extra_smplify_reproj_px`` (float32): confidence-weighted mean 2D error in image pixels
  (-1 where not fitted);
- ``extra_smplify_fitted`` (bool): False for samples with fewer than ``min_keypoints``
  confident fit joints, or that kept their SMPL (``keep_smpl``); those keep their input SMPL.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hmr.core.body import load_body_model
from hmr.core.errors import SchemaError
from hmr.core.schema import StoreWriter, open_store
from hmr.core.schema.fields import SMPL_SOURCES
from hmr.fitting.camera import fit_keypoints, to_crop_frame
from hmr.fitting.prior import load_pose_prior
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, SMPLParams

__all__ = ["FitStoreOptions", "FitStoreReport", "fit_store"]

CONVERTER = "hmr-fit"
CONVERTER_VERSION = "1"
SMPLIFY_SOURCE = SMPL_SOURCES.index("smplify")


@dataclass
class FitStoreOptions:
    batch_size: int = 64
    device: str = "cpu"
    init: str = "mean"  # "mean" | "store"
    keep_smpl: bool = False  # keep samples whose SMPL is ground truth / MoSh as they are
    min_keypoints: int = 6
    limit: int | None = None  # fit only the first N samples (a quick look)
    body_model: str | None = None
    pose_prior: str | None = None
    overwrite: bool = False
    progress: bool = True


@dataclass
class FitStoreReport:
    out: Path
    samples: int
    fitted: int
    median_reproj_px: float
    median_loss: float
    prior: str


def _fit_block(fitter: SMPLify, cols: dict[str, np.ndarray], convention: str, opts: FitStoreOptions,
               ) -> dict[str, np.ndarray]:
    """Fit one block of columns; returns the output columns (input columns updated + extras)."""
    n = len(cols["image_path"])
    kp = fit_keypoints(cols["keypoints2d"], convention)  # (n, 73, 3)
    kp_crop, k_crop, frame = to_crop_frame(kp, cols["bbox_xywh"], cols["cam_intrinsics"], cols["has_intrinsics"])
    enough = (kp_crop[..., 2] > 0).sum(1) >= opts.min_keypoints
    known = np.isin(cols["smpl_source"], [SMPL_SOURCES.index("ground-truth"), SMPL_SOURCES.index("mosh")])
    todo = np.flatnonzero(enough & ~(opts.keep_smpl & cols["has_smpl"].astype(bool) & known))
    out = dict(cols)
    loss = np.full(n, -1.0, np.float32)
    reproj = np.full(n, -1.0, np.float32)
    for name in ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl",
                 "has_smpl", "smpl_source", "has_smpl_transl"):
        out[name] = cols[name].copy()
    dev = opts.device
    for s in range(0, len(todo), opts.batch_size):
        idx = todo[s:s + opts.batch_size]
        init = None
        if opts.init == "store" and cols["has_smpl"][idx].all():
            use_t = cols["has_smpl_transl"][idx].all() and cols["has_intrinsics"][idx].all()
            init = SMPLParams(*(torch.from_numpy(cols[f][idx]).to(dev) for f in
                                ("smpl_global_orient", "smpl_body_pose", "smpl_betas")),
                              torch.from_numpy(cols["smpl_transl"][idx]).to(dev) if use_t else None)
        res = fitter(torch.from_numpy(kp_crop[idx]).to(dev), torch.from_numpy(k_crop[idx]).to(dev), init)
        p = res.params
        out["smpl_global_orient"][idx] = p.global_orient.cpu().numpy()
        out["smpl_body_pose"][idx] = p.body_pose.cpu().numpy()
        out["smpl_betas"][idx] = p.betas.cpu().numpy()
        has_k = cols["has_intrinsics"][idx].astype(bool)
        out["smpl_transl"][idx] = np.where(has_k[:, None], p.transl.cpu().numpy(), 0.0)
        out["has_smpl_transl"][idx] = has_k
        out["has_smpl"][idx] = True
        out["smpl_source"][idx] = SMPLIFY_SOURCE
        loss[idx] = res.reprojection_loss.cpu().numpy()
        reproj[idx] = res.reprojection_error_px.cpu().numpy() / frame.scale[idx]
    fitted = np.zeros(n, bool)
    fitted[todo] = True
    out.update(extra_smplify_loss=loss, extra_smplify_reproj_px=reproj, extra_smplify_fitted=fitted)
    return out


def fit_store(store_path: str | os.PathLike, out_path: str | os.PathLike,
              config: SMPLifyConfig | None = None, options: FitStoreOptions | None = None) -> FitStoreReport:
    """Run SMPLify over ``store_path`` and write ``out_path`` (zarr or npz, atomically)."""
    from tqdm import tqdm

    opts = options or FitStoreOptions()
    config = config or SMPLifyConfig()
    if opts.init not in ("mean", "store"):
        raise SchemaError(f"init must be 'mean' or 'store', got {opts.init!r}")
    store = open_store(store_path)
    if Path(out_path).resolve() == Path(store_path).resolve():
        raise SchemaError("--out must differ from the input store", path=out_path)
    total = len(store) if opts.limit is None else min(len(store), int(opts.limit))
    convention = str(store.attrs["keypoint_convention"])
    model = load_body_model(opts.body_model, gender="neutral", device=opts.device)
    prior = load_pose_prior(opts.pose_prior)
    fitter = SMPLify(model, prior, config)
    attrs = {k: v for k, v in store.attrs.items()
             if k not in ("complete", "num_samples", "num_keypoints", "schema_version", "created")}
    core = {k: attrs.pop(k) for k in ("dataset", "split", "image_root", "keypoint_convention")}
    for k in ("converter", "converter_version"):
        attrs[f"input_{k}"] = attrs.pop(k)
    attrs["smplify"] = {"config": asdict(config), "pose_prior": prior.source, "body_model": model.source,
                        "init": opts.init, "input_store": str(Path(store_path).resolve())}
    losses, errors, fitted = [], [], 0
    rows = min(store.block_rows(), 4096)
    with StoreWriter(out_path, converter=CONVERTER, converter_version=CONVERTER_VERSION,
                     overwrite=opts.overwrite, chunk_rows=store.block_rows(), attrs=attrs, **core) as writer, \
            tqdm(total=total, desc="smplify", unit=" fits", disable=not opts.progress) as bar:
        for start, cols in store.blocks(rows=rows):
            if start >= total:
                break
            cols = {k: v[:total - start] for k, v in cols.items()}
            out = _fit_block(fitter, cols, convention, opts)
            writer.add_columns(out)
            done = out["extra_smplify_fitted"]
            fitted += int(done.sum())
            losses.append(out["extra_smplify_loss"][done])
            errors.append(out["extra_smplify_reproj_px"][done])
            bar.update(len(done))
    errors_all, losses_all = np.concatenate(errors), np.concatenate(losses)
    return FitStoreReport(Path(out_path), total, fitted,
                          float(np.median(errors_all)) if fitted else float("nan"),
                          float(np.median(losses_all)) if fitted else float("nan"), prior.source)
