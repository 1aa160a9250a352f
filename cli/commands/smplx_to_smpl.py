"""hmr smplx-to-smpl: SMPL fitted to a store's SMPL-X columns, for rows without SMPL."""

from __future__ import annotations

import argparse

COMMAND = "smplx-to-smpl"
HELP = ("fit SMPL to the SMPL-X parameters (extra_smplx_* columns) of rows without SMPL; "
        "rewrites the store with smpl_source=smplx-transfer")
EXAMPLE = ("hmr smplx-to-smpl stores/agora-train.zarr --body-model ~/models/smpl --smplx-model ~/models/smplx\n"
           "  hmr smplx-to-smpl stores/prox-train.zarr --out stores/prox-train-smpl.zarr --device cuda")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="schema store (.zarr or .npz) with extra_smplx_* columns")
    p.add_argument("--out", default=None, help="write a new store here (default: rewrite STORE in place, atomically; refused "
                                           "when STORE has a converter's output manifest)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--body-model", default=None, metavar="DIR",
                   help="SMPL folder (default: $HMR_BODY_MODEL, else the mannequin)")
    p.add_argument("--smplx-model", default=None, metavar="DIR",
                   help="SMPL-X folder with SMPLX_{NEUTRAL,MALE,FEMALE}.npz/.pkl (default: $HMR_SMPLX_MODEL, "
                        "else the SMPL-X mannequin)")
    p.add_argument("--smplx-kid-template", default=None, metavar="NPY",
                   help="AGORA's smplx_kid_template.npy, for rows with a kid shape value (extra_smplx_kid_beta; "
                        "else skipped)")
    p.add_argument("--flat-hand-mean", action="store_true",
                   help="stores without extra_smplx_flat_hand_mean: the hand poses are absolute, not "
                        "relative to the model's mean hand")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--steps", type=int, default=12, help="L-BFGS steps per batch")


def run(args: argparse.Namespace) -> int:
    from hmr.fitting.smplx_transfer import TransferConfig, TransferStoreOptions, transfer_store

    opts = TransferStoreOptions(batch_size=args.batch_size, device=args.device, body_model=args.body_model,
                                smplx_model=args.smplx_model, smplx_kid_template=args.smplx_kid_template,
                                flat_hand_mean=args.flat_hand_mean, out=args.out, overwrite=args.overwrite,
                                config=TransferConfig(steps=args.steps))
    report = transfer_store(args.store, opts)
    skipped = "".join(f"; {n} skipped: {why}" for why, n in report.skipped.items())
    print(f"{report.transferred}/{report.samples} rows given SMPL from SMPL-X -> {report.out} "
          f"(body-joint residual mean {report.mean_joint_error_mm:.1f} mm, max {report.max_joint_error_mm:.1f} mm"
          f"{skipped})")
    return 0
