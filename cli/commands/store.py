"""hmr store: copy between containers (zarr <-> npz) and validate."""

from __future__ import annotations

import argparse

COMMAND = "store"
HELP = "copy a schema store between zarr and npz (lossless), validate it, or merge conversion parts"
EXAMPLE = ("hmr store copy stores/coco2017_val.zarr coco2017_val.npz   |   hmr store validate coco2017_val.npz"
           "   |   hmr store merge stores/h36m_train.part-*-of-8.zarr --out stores/h36m_train.zarr")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("copy", help="copy SRC to DST (container chosen by DST's suffix)")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--chunk-rows", type=int, default=None, help="rows per zarr chunk")
    v = sub.add_parser("validate", help="check every sample against schema v1")
    v.add_argument("store")
    m = sub.add_parser("merge", help="join the part stores of 'hmr convert --part I/N' into one store")
    m.add_argument("parts", nargs="+", help="every part store, 0/N .. N-1/N (any order)")
    m.add_argument("--out", required=True, help="merged store (*.zarr / *.npz)")
    m.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    from hmr.core.schema import copy_store, open_store

    if args.action == "copy":
        out = copy_store(args.src, args.dst, overwrite=args.overwrite, chunk_rows=args.chunk_rows)
        print(f"{args.src} -> {out} ({len(open_store(out))} samples)")
        return 0
    if args.action == "merge":
        import sys

        from converters.driver import merge_parts

        out, _ = merge_parts(args.parts, args.out, overwrite=args.overwrite, argv=["hmr", *sys.argv[1:]])
        print(f"{len(args.parts)} parts -> {out} ({len(open_store(out))} samples)")
        return 0
    from manifests import check_store_files

    store = open_store(args.store)
    check_store_files(args.store)  # a chunk altered since conversion may still decode
    n = store.validate()
    print(f"{args.store}: ok, {n} samples valid (schema v1)")
    return 0
