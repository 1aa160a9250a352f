"""hmr demo: the whole pipeline on synthetic data (what `make demo` runs)."""

from __future__ import annotations

import argparse

COMMAND = "demo"
HELP = "run the end-to-end demo on the licence-free mannequin: render, verify, convert, shard, train, evaluate"
EXAMPLE = "hmr demo --out demo_out"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_out", help="folder for everything the demo writes")
    p.add_argument("--n-train", type=int, default=None, help="training renders (default: the demo's)")
    p.add_argument("--n-test", type=int, default=None, help="test renders (default: the demo's)")
    p.add_argument("--size", type=int, default=None, help="rendered image side, px (default: the demo's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the renders (poses, cameras, backgrounds)")
    p.add_argument("--train-tail", type=float, default=None,
                   help="long tail of the training poses (hmr synth --tail; 0 = uniform rarity)")
    p.add_argument("--workers", type=int, default=None,
                   help="render processes (default: all cores, at most one per 250 images)")
    p.add_argument("--supersample", type=int, default=None,
                   help="antialiasing samples per pixel side of the renders (default: the demo's)")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the demo config's)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")


def run(args: argparse.Namespace) -> int:
    from hmr.demo import DemoConfig, run_demo

    from hmr.demo import gain, metrics_table

    # options left out keep DemoConfig's defaults (one place holds them)
    given = (("n_train", args.n_train), ("n_test", args.n_test), ("image_size", args.size),
             ("train_tail", args.train_tail), ("supersample", args.supersample))
    extra = {name: value for name, value in given if value is not None}
    config = DemoConfig(out=args.out, seed=args.seed, workers=args.workers, quick=args.quick,
                        train_steps=args.steps, **extra)
    report = run_demo(config)
    print("\n" + report.table())
    print("\nsynthetic test set, millimetres (lower is better)\n" + metrics_table(report.metrics))
    for what, path in report.files.items():
        print(f"{what}: {path}")
    print(f"\neverything is under {report.out.resolve()}")
    improvement = gain(report.metrics)
    verdict = f"PA-MPJPE {100 * improvement:.0f}% lower than the mean-pose baseline"
    if args.quick:
        print(f"(quick run: {verdict}; no target checked)")
        return 0
    if improvement < config.required_gain:
        print(f"FAILED: {verdict}; the demo expects at least {100 * config.required_gain:.0f}%")
        return 1
    print(f"OK: {verdict}")
    return 0
