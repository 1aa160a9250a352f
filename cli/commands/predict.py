"""hmr predict: SMPL parameters (JSON + npz) and a mesh overlay for people in images."""

from __future__ import annotations

import argparse
import math

COMMAND = "predict"
HELP = "predict SMPL for the person in each image (JSON/npz parameters and an overlay picture)"
EXAMPLE = "hmr predict runs/hmr_l1/last.pt photo.jpg --bbox 120,40,200,380 --out predictions/"


def _box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: expected x,y,w,h numbers") from None
    if len(values) != 4 or not all(map(math.isfinite, values)) or values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"--bbox {text!r}: expected x,y,w,h finite numbers with w, h > 0")
    return values


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--crop-scale {text!r}: expected a finite number > 0")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="hmrkit checkpoint (.pt)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--bbox", type=_box, action="append",
                   help="person box x,y,w,h in pixels (once for all images, or once per image)")
    p.add_argument("--crop-scale", type=_scale, default=None,
                   help="crop side / max box side (default: the checkpoint's training scale with --bbox, "
                        "1.0 for whole images)")
    p.add_argument("--out", default="predictions", help="output folder")
    p.add_argument("--device", default="")
    p.add_argument("--body-model", help="SMPL folder (default: $HMR_BODY_MODEL or the mannequin)")


def run(args: argparse.Namespace) -> int:
    from hmr.evaluation.predict import predict_images

    written = predict_images(args.checkpoint, args.images, args.out, bboxes=args.bbox, crop_scale=args.crop_scale,
                             device=args.device, body_model=args.body_model)
    for path in written:
        print(path)
    return 0
