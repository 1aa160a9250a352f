"""hmr mixes: list dataset-mix presets, or check one against a shard folder."""

from __future__ import annotations

import argparse

COMMAND = "mixes"
HELP = "list the dataset-mix presets (the benchmark's 11 mixes) or check a mix against shards"
EXAMPLE = "hmr mixes --show mix6 --shards shards/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", default=None, help="a preset name or a .toml/.json mix file")
    p.add_argument("--shards", default=None, help="shard folder to resolve the mix against")
    p.add_argument("--alias", action="append", default=[], metavar="NAME=SET",
                   help="use shard set SET where the mix says NAME (repeatable)")


def run(args: argparse.Namespace) -> int:
    from loaders.mixes import MIXES, load_mix, resolve_mix

    mixes = [load_mix(args.show)] if args.show else list(MIXES.values())
    for mix in mixes:
        print(f"{mix.name}: {mix.description}")
        for comp, ratio in zip(mix.components, mix.ratios()):
            extra = f"  ({comp.ann_file})" if comp.ann_file else ""
            print(f"  {ratio:6.3f}  {comp.set}{extra}")
        if args.show and mix.source:
            print(f"  source: {mix.source}")
    if args.shards:
        aliases = dict(a.split("=", 1) for a in args.alias)
        for mix in mixes:
            resolved = resolve_mix(mix, args.shards, aliases)
            print(f"{mix.name}: all {len(resolved)} shard sets present under {args.shards}")
    return 0
