"""hmr datasets: every source of hmr.core.sources and its status on this machine."""

from __future__ import annotations

import argparse

COMMAND = "datasets"
HELP = ("list every source (dataset, fits, preprocessed files), with a converter or not yet, and its "
        "status here: manifest, raw data, verified, converted")
EXAMPLE = "hmr datasets --data-root /data/datasets --stores /data/stores --verify"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="folder holding one raw folder per dataset (default: $HMR_DATA)")
    p.add_argument("--stores", default=None,
                   help="folder of converted stores NAME_SPLIT.zarr|npz (default: $HMR_STORES or DATA_ROOT/stores)")
    p.add_argument("--verify", action="store_true",
                   help="verify every found raw folder against its manifest now (sizes; see --full) and record it")
    p.add_argument("--full", action="store_true", help="with --verify: compare checksums too (reads every byte)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from converters.status import data_root, dataset_status, format_table, stores_dir, to_json

    rows = dataset_status(args.data_root, args.stores, verify=args.verify, quick=not args.full)
    if args.json:
        print(to_json(rows))
    else:
        root = data_root(args.data_root)
        print(format_table(rows, root, stores_dir(args.stores, root)))
    return 0
