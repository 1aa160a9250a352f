"""hmr conventions: list keypoint conventions, or show one's joints, superset slots and flips."""

from __future__ import annotations

import argparse

COMMAND = "conventions"
HELP = "list keypoint conventions, or one convention's joints with superset slot and flip partner"
EXAMPLE = "hmr conventions coco_wholebody"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a convention name or alias (omit to list all)")


def run(args: argparse.Namespace) -> int:
    from hmr.core.keypoints.describe import convention_table, conventions_table

    print(convention_table(args.name) if args.name else conventions_table())
    return 0
