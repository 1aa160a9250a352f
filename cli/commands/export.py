"""hmr export: schema-v1 store -> MMHuman3D HumanData npz or SPIN-style npz."""

from __future__ import annotations

import argparse

COMMAND = "export"
HELP = "export a schema-v1 store as an MMHuman3D HumanData npz or a SPIN-style npz"
EXAMPLE = "hmr export stores/pw3d_test.zarr --to spin --out pw3d_test_spin.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="schema-v1 store (*.zarr or *.npz)")
    p.add_argument("--to", required=True, choices=("humandata", "spin"), help="output format")
    p.add_argument("--out", required=True, help="output .npz file (written atomically)")
    p.add_argument("--no-overwrite", action="store_true", help="fail if --out exists")


def run(args: argparse.Namespace) -> int:
    from hmr.core.interop import export_store
    from hmr.core.schema import open_store

    store = open_store(args.store)
    out = export_store(store, args.to, args.out, overwrite=not args.no_overwrite)
    print(f"{args.store} ({len(store)} samples) -> {out} [{args.to}]")
    return 0
