"""``hmr verify``: check a raw dataset tree against its source manifest, or a store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMAND = "verify"
HELP = "check raw files against a source manifest (with --root), a converted store, or a shard set"
EXAMPLE = ("hmr verify coco2014 --root /data/coco      # raw files\n"
           "  hmr verify out/coco_train.zarr                # a converter output\n"
           "  hmr verify shards/coco2017-train              # a shard set (its index.json)\n"
           "  hmr verify https://host/sets/coco2017-train   # a shard set by URL (http(s), s3, gs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="source manifest name or .toml path (with --root), "
                        "or a store / its .manifest.json, or a shard set's folder or URL prefix")
    parser.add_argument("--root", type=Path, help="dataset root folder (source verification)")
    parser.add_argument("--quick", action="store_true", help="sizes only, skip checksums")
    parser.add_argument("--workers", type=int, default=None, help="hashing threads")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument("--extra-ok", action="store_true",
                        help="do not fail on files the manifest does not list")
    parser.add_argument("--strict", action="store_true",
                        help="also fail entries the manifest cannot check (no size/checksum)")
    parser.add_argument("--extract", action="store_true",
                        help="first unpack intact archives whose files are missing")
    parser.add_argument("--all", action="store_true", help="list matching entries too")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import manifests

    progress = False if (args.no_progress or args.json) else None
    if args.root is not None:
        report = manifests.verify_source(args.target, args.root, quick=args.quick,
                                         workers=args.workers, extra_ok=args.extra_ok,
                                         strict=args.strict, extract=args.extract,
                                         progress=progress)
    else:
        from loaders.shard import is_remote

        if is_remote(args.target):  # a shard set's URL prefix (docs/scale-out.md)
            return _verify_shards(args.target, quick=args.quick, as_json=args.json)
        target = Path(args.target)
        if (target / "index.json").is_file():
            return _verify_shards(target, quick=args.quick, as_json=args.json)
        if not target.exists():
            raise FileNotFoundError(f"{target}: no such store; to check raw files of a "
                                    f"source give --root DIR")
        report = manifests.verify_output(target, quick=args.quick, workers=args.workers,
                                         progress=progress)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        print(report.format_table(show_ok=args.all))
    return 0 if report.ok else 1


def _verify_shards(folder: Path | str, *, quick: bool, as_json: bool) -> int:
    import json

    from loaders import verify_shard_set

    problems = verify_shard_set(folder, check_digest=not quick)
    if as_json:
        sys.stdout.write(json.dumps({"shard_set": str(folder), "ok": not problems,
                                     "problems": problems}) + "\n")
    else:
        for line in problems:
            print(f"  problem  {line}")
        print(f"shard set {folder}: " + ("OK" if not problems else f"FAILED ({len(problems)} problem(s))"))
    return 0 if not problems else 1
