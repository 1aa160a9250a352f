"""hmr synth: render synthetic humans into a raw dataset folder."""

from __future__ import annotations

import argparse

COMMAND = "synth"
HELP = "render the mannequin (or your SMPL) posed and shaped into a synthetic raw dataset"
EXAMPLE = "hmr synth --out raw/synth --n 2000 --split train --tail 5 && hmr convert synth --root raw/synth --out stores/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="raw dataset folder to write (images/, annotations/)")
    p.add_argument("--n", type=int, default=100, help="number of images")
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tail", type=float, default=5.0,
                   help="pose long tail: rate of the exponential rarity distribution (0 = uniform)")
    p.add_argument("--max-yaw", type=float, default=90.0, help="largest body turn away from the camera, degrees")
    p.add_argument("--photos", action="append", default=[], metavar="DIR",
                   help="folder of your own photos to crop backgrounds from (repeatable; crops avoid the person "
                        "boxes of a COCO-style JSON in the folder). Default: procedural cluttered scenes only")
    p.add_argument("--photo-fraction", type=float, default=0.5,
                   help="share of photo backgrounds when --photos is given")
    p.add_argument("--body-model", default=None, help="SMPL folder (default: $HMR_BODY_MODEL or the mannequin)")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: all cores, at most one per 250 images)")
    p.add_argument("--supersample", type=int, default=2,
                   help="antialiasing samples per pixel side (1: no antialiasing, 3.5x faster: benchmarks/render.py)")


def run(args: argparse.Namespace) -> int:
    import math

    from hmr.synth.generate import SynthConfig, generate

    config = SynthConfig(n=args.n, split=args.split, image_size=args.size, seed=args.seed, tail=args.tail,
                         max_yaw=math.radians(args.max_yaw), photo_fraction=args.photo_fraction,
                         photo_dirs=tuple(args.photos),
                         body_model=args.body_model, workers=args.workers, supersample=args.supersample)
    path = generate(args.out, config)
    print(f"{args.n} {args.split} images -> {args.out} (annotations: {path})")
    return 0
