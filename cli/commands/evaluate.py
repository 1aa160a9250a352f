"""hmr evaluate: score a checkpoint on a test benchmark read from a schema-v1 store."""

from __future__ import annotations

import argparse

COMMAND = "evaluate"
HELP = ("evaluate a checkpoint on 3dpw, h36m-p1/p2, mpi-inf-3dhp or the EFT test sets (MPJPE, PA-MPJPE, PVE, "
        "3DPCK/AUC, balanced)")
EXAMPLE = "hmr evaluate runs/hmr_l1/last.pt --bench 3dpw --data stores/3dpw-test.zarr --out eval/3dpw"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="hmrkit checkpoint (.pt)")
    p.add_argument("--bench", help="benchmark name (--list-benchmarks)")
    p.add_argument("--data", help="the benchmark's test store (.zarr or .npz)")
    p.add_argument("--out", help="output folder (default: <checkpoint folder>/eval-<bench>)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--workers", type=int, default=2, help="image-reading worker processes")
    p.add_argument("--max-samples", type=int, help="evaluate only the first N samples (smoke runs)")
    p.add_argument("--crop-scale", type=float, help="crop side / max box side (default: the checkpoint's training scale, "
                   "else the benchmark's)")
    p.add_argument("--image-root", default="", help="image folder (default: the store's image_root)")
    p.add_argument("--worst", type=int, default=8, help="overlays of the N worst predictions")
    p.add_argument("--body-model", help="SMPL folder (default: $HMR_BODY_MODEL or the mannequin)")
    p.add_argument("--allow-other-dataset", action="store_true",
                   help="evaluate a store whose dataset is not the benchmark's")
    p.add_argument("--pve-convention", choices=("gendered", "neutral"),
                   help="predicted mesh of PVE: the GT gender's model (MMHuman3D) or the neutral one (SPIN); "
                   "default: the benchmark's")
    p.add_argument("--mean-params", help="SPIN's smpl_mean_params.npz: its body is the balanced metrics' reference "
                   "(default: zero pose and shape)")
    p.add_argument("--no-pve", action="store_true", help="skip PVE / bMPVPE (the only metric posing full meshes)")
    p.add_argument("--exclude-marked", action="store_true",
                   help="leave out the samples marked excluded with 'hmr review' (<store>.marks.json); "
                   "the count is reported in the results")
    p.add_argument("--list-benchmarks", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--table", nargs="+", metavar="RESULTS_JSON",
                   help="print earlier results side by side (one row per run, one column per benchmark)")
    p.add_argument("--metric", default="PA-MPJPE",
                   help="metric of the --table (MPJPE, PA-MPJPE, PVE, 3DPCK, PA-3DPCK, AUC, PA-AUC)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hmr.core.errors import ConfigError
    from hmr.evaluation.benchmarks import BENCHMARKS

    if args.list_benchmarks:
        for b in BENCHMARKS.values():
            print(f"{b.name:18s} {b.title}: {b.notes}; PVE {b.pve_convention}; follows {b.follows or 'ours'}")
        return 0
    if args.table:
        from hmr.evaluation.report import table_from_files

        print(table_from_files(args.table, args.metric))
        return 0
    if not (args.checkpoint and args.bench and args.data):
        raise ConfigError("give CHECKPOINT, --bench and --data (or --list-benchmarks)")
    from hmr.evaluation.report import markdown
    from hmr.evaluation.run import EvalOptions, evaluate

    out = args.out or str(Path(args.checkpoint).parent / f"eval-{args.bench}")
    opts = EvalOptions(batch_size=args.batch_size, device=args.device, num_workers=args.workers,
                       crop_scale=args.crop_scale, image_root=args.image_root, max_samples=args.max_samples,
                       worst=args.worst, body_model=args.body_model, allow_other_dataset=args.allow_other_dataset,
                       pve_convention=args.pve_convention, mean_params=args.mean_params, pve=not args.no_pve,
                       exclude_marked=args.exclude_marked)
    from manifests import check_store_files

    check_store_files(args.data)  # a chunk altered since conversion may still decode
    result = evaluate(args.checkpoint, args.bench, args.data, out, opts)
    print(markdown(result))
    if "excluded_marked" in result:
        ex = result["excluded_marked"]
        print(f"left out {ex['count']} samples marked excluded in {ex['file']}"
              + (f" ({ex['not_found']} marks name samples not in this store)" if ex.get("not_found") else ""))
    print(f"written to {out}")
    return 0
