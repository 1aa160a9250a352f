"""``hmr body-model``: write the licence-free mannequin, preview or describe a body model."""

from __future__ import annotations

import argparse

COMMAND = "body-model"
HELP = "write the licence-free SMPL-format mannequin, or preview/describe a body model"
EXAMPLE = ("hmr body-model mannequin --out data/body_models/mannequin\n"
           "  hmr body-model render --out mannequin.png\n"
           "  hmr body-model info --body-model ~/models/smpl --gender female")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("mannequin", help="write the mannequin folder (smpl/SMPL_*.pkl, SPIN's "
                       "regressors and mean params)")
    p.add_argument("--out", required=True, help="output folder (created atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    for name, text in (("render", "PNG of the model, front and side, rest and bent pose"),
                       ("info", "print what a body-model folder holds")):
        q = sub.add_parser(name, help=text)
        q.add_argument("--body-model", default=None, metavar="PATH",
                       help="SMPL folder or pkl (default: $HMR_BODY_MODEL, else the mannequin)")
        q.add_argument("--gender", default="neutral", choices=("neutral", "male", "female"))
        if name == "render":
            q.add_argument("--out", required=True, help="PNG file to write")


def run(args: argparse.Namespace) -> int:
    if args.action == "mannequin":
        from hmr.core.body.mannequin import write_mannequin

        out = write_mannequin(args.out, overwrite=args.overwrite)
        print(f"wrote mannequin to {out} (smplx: smplx.create('{out}', model_type='smpl'))")
    elif args.action == "render":
        from hmr.core.body.preview import render_preview

        print(f"wrote {render_preview(args.out, args.body_model, args.gender)}")
    else:
        from hmr.core.body.smpl import describe_body_model

        for key, value in describe_body_model(args.body_model, args.gender).items():
            print(f"{key}: {value}")
    return 0
