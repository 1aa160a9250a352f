"""SPIN's fitting side: batched SMPLify, its priors, the per-sample fits table, ``hmr fit``.

Public API::

    from hmr.fitting import SMPLify, SMPLifyConfig, SMPLParams, fit_keypoints, to_crop_frame
    fitter = SMPLify(load_body_model())                  # prior: gmm_08.pkl if found, else ours
    result = fitter(keypoints2d (B, 73, 3), K (B, 3, 3))  # crop-frame px, see hmr.fitting.camera
    table = FitsTable.open(fits_dir(set_dir), rank=rank)  # SPIN's fits table
    table.update(keys, pose, betas, new_loss, old_loss); table.flush(); merge_updates(root)
    targets = spin_fit_step(fitter, table, batch_keys, prediction, kp_crop_px, K_crop, Rz, flip)

Modules: :mod:`~hmr.fitting.smplify` (the optimisation), :mod:`~hmr.fitting.prior` (GMM pose
prior: the published ``gmm_08.pkl`` or ours, EM), :mod:`~hmr.fitting.camera` (fit joints,
projection, crop frame, translation start), :mod:`~hmr.fitting.fits_table`,
:mod:`~hmr.fitting.spin` (SPIN's per-batch step: refine, update, supervise),
:mod:`~hmr.fitting.annotate` (store → store, ``hmr fit``), :mod:`~hmr.fitting.problems`
(problems with known answers).
"""

from hmr.fitting.camera import FIT_JOINT_NAMES, fit_keypoints, spin_crop_intrinsics, to_crop_frame
from hmr.fitting.fits_table import FitsTable, MergeReport, fits_dir, merge_updates, store_keys
from hmr.fitting.prior import (GaussianMixture, MixturePosePrior, ensure_synthetic_prior, fit_gmm, load_gmm,
                               load_pose_prior, save_gmm)
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, SMPLifyResult, SMPLParams, mean_smpl_params
from hmr.fitting.spin import SpinFitTargets, spin_fit_step, to_batch_frame, to_canonical_frame

__all__ = [
    "FIT_JOINT_NAMES", "FitsTable", "GaussianMixture", "MergeReport", "MixturePosePrior", "SMPLParams",
    "SMPLify", "SMPLifyConfig", "SMPLifyResult", "SpinFitTargets", "ensure_synthetic_prior", "fit_gmm", "fit_keypoints",
    "fits_dir", "load_gmm", "load_pose_prior", "mean_smpl_params", "merge_updates", "save_gmm",
    "spin_crop_intrinsics", "spin_fit_step", "store_keys", "to_batch_frame", "to_canonical_frame",
    "to_crop_frame",
]
