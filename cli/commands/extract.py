"""``hmr extract``: unpack a dataset archive, refusing members that escape the target."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "extract"
HELP = "safely extract a tar(.gz/.bz2/.xz) or zip archive into a folder"
EXAMPLE = "hmr extract downloads/annotations_trainval2014.zip /data/coco"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="the archive to unpack")
    parser.add_argument("dest", type=Path, help="target folder (created if needed)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from hmr.core.utils.archive import safe_extract

    names = safe_extract(args.archive, args.dest,
                         progress=False if args.no_progress else None)
    print(f"extracted {len(names)} member(s) of {args.archive} into {args.dest}")
    return 0
