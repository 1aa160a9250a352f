"""hmr inspect: counts, field coverage, ranges and validation of a store; optional picture."""

from __future__ import annotations

import argparse

COMMAND = "inspect"
HELP = "summarise a schema store: counts, field coverage, ranges, validation; draw samples"
EXAMPLE = "hmr inspect stores/coco2017_val.zarr --picture coco_val.png --count 6"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="a *.zarr or *.npz schema store")
    p.add_argument("--picture", metavar="PNG", help="save a grid of samples with keypoints drawn")
    p.add_argument("--count", type=int, default=6, help="samples in the picture")
    p.add_argument("--index", type=int, action="append", help="draw this sample (repeatable)")
    p.add_argument("--image-root", help="override the store's image_root")
    p.add_argument("--no-validate", action="store_true", help="skip the full validation pass")


def run(args: argparse.Namespace) -> int:
    from hmr.core.keypoints import get_convention
    from hmr.core.schema import open_store
    from hmr.core.schema.inspect import draw_samples, summarize

    store = open_store(args.store)
    if not args.no_validate:
        from manifests import check_store_files

        check_store_files(args.store)  # a chunk altered since conversion may still decode
    summary = summarize(store, validate=not args.no_validate)
    names = list(get_convention(store.attrs["keypoint_convention"]).joint_names)
    print(summary.format(joint_names=names))
    if args.picture:
        out = draw_samples(store, args.picture, indices=args.index, count=args.count,
                           image_root=args.image_root)
        print(f"picture    {out}")
    return 1 if summary.validation.startswith("FAILED") else 0
