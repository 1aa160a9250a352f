"""hmr train: train HMR/SPIN from a config file (see hmr/configs/), resumable."""

from __future__ import annotations

import argparse

COMMAND = "train"
HELP = "train an HMR/SPIN model from a config (named config or .toml file), with key=value overrides"
EXAMPLE = "hmr train tiny_cpu optim.lr=1e-4 train.total_steps=50 --out runs/tiny"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="named config (hmr train --list) or a .toml file")
    p.add_argument("overrides", nargs="*",
                   help="section.key=value overrides (TOML values), before the options, or with -s")
    p.add_argument("-s", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more override; may come anywhere and repeat")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run folder's latest checkpoint")
    p.add_argument("--max-steps", type=int, help="stop after this many more steps (checkpointed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the named configs and exit")
    p.add_argument("--show", action="store_true",
                   help="print the merged config (inheritance chain and overrides applied) as TOML, each value "
                        "with the file or override that set it, and exit without training")


def run(args: argparse.Namespace) -> int:
    from hmr.training.config import list_configs

    if args.list or not args.config:
        print("\n".join(list_configs()))
        return 0 if args.list else 2
    if args.show:
        from hmr.training.config import show_config

        print(show_config(args.config, [*args.overrides, *args.set]), end="")
        return 0
    from hmr.training.launch import train

    last = train(args.config, [*args.overrides, *args.set], out=args.out, resume=args.resume, max_steps=args.max_steps,
                 progress=not args.no_progress)
    if last:
        print(" ".join(f"{k}={v:.4g}" for k, v in last.items() if k.startswith("loss")))
    return 0
