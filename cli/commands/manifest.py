"""``hmr manifest``: list, show and lock source manifests."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "manifest"
HELP = "list, show or lock (record sizes and sha256 from a trusted copy) source manifests"
EXAMPLE = ("hmr manifest list\n  hmr manifest show coco2014\n"
           "  hmr manifest lock coco2014 --root /data/coco")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="names, categories and how much of each is checkable")
    show = sub.add_parser("show", help="print a manifest's metadata and entries")
    show.add_argument("name")
    lock = sub.add_parser("lock", help="fill unknown sizes/sha256 from a copy you trust")
    lock.add_argument("name")
    lock.add_argument("--root", type=Path, required=True, help="the trusted dataset root")
    lock.add_argument("--output", type=Path, default=None,
                      help="where to write (default: the user manifest folder)")
    lock.add_argument("--workers", type=int, default=None, help="hashing threads")
    lock.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import manifests
    from manifests.describe import describe_manifest, summary_table

    if args.action == "list":
        print(summary_table([manifests.load_manifest(n) for n in manifests.list_manifests()]))
    elif args.action == "show":
        print(describe_manifest(manifests.load_manifest(args.name)))
    else:
        out = manifests.lock_manifest(args.name, args.root, output=args.output,
                                      workers=args.workers,
                                      progress=False if args.no_progress else None)
        print(f"locked {args.name} from {args.root} -> {out}")
    return 0
