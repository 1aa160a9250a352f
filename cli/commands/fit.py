"""hmr fit: SMPLify over a schema store (2D keypoints -> SMPL pseudo-ground-truth)."""

from __future__ import annotations

import argparse

COMMAND = "fit"
HELP = "fit SMPL to every sample's 2D keypoints (SMPLify) and write a new store with smpl_source=smplify"
EXAMPLE = "hmr fit stores/coco-train.zarr --out stores/coco-train-smplify.zarr --batch-size 64 --device cuda"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="input schema store (.zarr or .npz)")
    p.add_argument("--out", required=True, help="output store (.zarr or .npz)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cuda:1")
    p.add_argument("--init", choices=("mean", "store"), default="mean",
                   help="start from SPIN's mean pose, or from the store's SMPL where it has some")
    p.add_argument("--keep-smpl", action="store_true",
                   help="leave samples with ground-truth / MoSh SMPL as they are")
    p.add_argument("--camera-iters", type=int, default=100, help="Adam steps of the camera stage (SPIN: 100)")
    p.add_argument("--body-iters", type=int, default=100, help="Adam steps of the body stage (SPIN: 100)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam step size (SPIN: 1e-2)")
    p.add_argument("--pose-prior-weight", type=float, default=4.78 ** 2)
    p.add_argument("--angle-prior-weight", type=float, default=15.2 ** 2)
    p.add_argument("--shape-prior-weight", type=float, default=5.0 ** 2)
    p.add_argument("--min-keypoints", type=int, default=6, help="fewer confident joints: sample not fitted")
    p.add_argument("--limit", type=int, default=None, help="fit only the first N samples")
    p.add_argument("--body-model", default=None, help="SMPL folder (default: $HMR_BODY_MODEL or the mannequin)")
    p.add_argument("--pose-prior", default=None,
                   help="gmm_08.pkl or our npz (default: gmm_08.pkl next to the body model, else the "
                        "prior fitted to hmr.synth poses)")
    p.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    from hmr.fitting.annotate import FitStoreOptions, fit_store
    from hmr.fitting.smplify import SMPLifyConfig

    config = SMPLifyConfig(camera_iters=args.camera_iters, body_iters=args.body_iters, lr=args.lr,
                           pose_prior_weight=args.pose_prior_weight, angle_prior_weight=args.angle_prior_weight,
                           shape_prior_weight=args.shape_prior_weight)
    options = FitStoreOptions(batch_size=args.batch_size, device=args.device, init=args.init,
                              keep_smpl=args.keep_smpl, min_keypoints=args.min_keypoints, limit=args.limit,
                              body_model=args.body_model, pose_prior=args.pose_prior, overwrite=args.overwrite)
    report = fit_store(args.store, args.out, config, options)
    print(f"{report.fitted}/{report.samples} samples fitted -> {report.out} (median 2D error "
          f"{report.median_reproj_px:.2f} px, median SPIN loss {report.median_loss:.1f}; prior: {report.prior})")
    return 0
