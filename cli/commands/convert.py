"""hmr convert: raw dataset -> schema-v1 store."""

from __future__ import annotations

import argparse
import sys

COMMAND = "convert"
HELP = "convert a raw dataset (its real download layout) into a schema-v1 store"
EXAMPLE = "hmr convert coco2017 --root /data/coco --split val --out stores/ --format zarr"


class HelpWithOptions(argparse.Action):
    """``hmr convert NAME --help``: the usual help, then NAME's declared ``-o`` options."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from converters import get_converter
        from converters.options import describe_options
        from hmr.core.errors import HmrError

        parser.print_help()
        name = getattr(namespace, "name", None)
        if name is None:
            print("\nconverter options: hmr convert NAME --help")
        else:
            try:
                declared = getattr(get_converter(name), "OPTIONS", ())
                print(f"\noptions of '{name}' (-o KEY=VALUE):\n{describe_options(declared)}")
            except HmrError as exc:
                print(f"\n{exc}")
        parser.exit()


HELP_ACTION = HelpWithOptions  # cli.main gives this command's parser this -h/--help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="source name or alias (see 'hmr datasets')")
    p.add_argument("--root", required=True, help="raw dataset folder, as downloaded and extracted")
    p.add_argument("--out", required=True, help="output store (*.zarr / *.npz) or folder for NAME_SPLIT.zarr")
    p.add_argument("--split", action="append", help="split(s) to convert (default: all of the converter's)")
    p.add_argument("--format", choices=("zarr", "npz"), default=None, help="container when --out is a folder")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unconvertible records and list them in STORE.skipped.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--workers", type=int, default=None, help="processes for per-image work")
    p.add_argument("--body-model", default=None, help="SMPL folder (default: $HMR_BODY_MODEL or the mannequin)")
    p.add_argument("--no-check-images", action="store_true", help="do not check that image files exist")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="converter-specific option ('hmr convert NAME --help' lists them)")
    p.add_argument("--part", default=None, metavar="I/N",
                   help="convert only part I of N (0 <= I < N) into NAME_SPLIT.part-I-of-N.zarr; "
                        "join the N parts with 'hmr store merge' (docs/scale-out.md)")


def run(args: argparse.Namespace) -> int:
    from converters import get_converter
    from converters.driver import run_conversion
    from converters.options import ConvertOptions
    from hmr.core.errors import HmrError

    from hmr.core.schema.merge import parse_part

    module = get_converter(args.name)
    part = parse_part(args.part) if args.part is not None else None
    extra = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HmrError(f"-o {item!r}: expected KEY=VALUE ('hmr convert {args.name} --help' lists the options)")
        extra[key.strip()] = value
    options = ConvertOptions(workers=args.workers, check_images=not args.no_check_images,
                             body_model=args.body_model, extra=extra)
    splits = args.split or list(module.SOURCE.splits)
    if not splits:
        raise HmrError(f"converter '{args.name}' has no fixed splits: name one with --split "
                       "(see the converter's docstring)")
    for split in splits:
        result = run_conversion(args.name, args.root, args.out, split=split, fmt=args.format,
                                skip_bad=args.skip_bad, overwrite=args.overwrite, options=options,
                                argv=["hmr", *sys.argv[1:]], part=part)
        line = f"{args.name}/{split}: {result.num_samples} samples -> {result.store}"
        if result.skipped:
            line += f" ({len(result.skipped)} skipped, see {result.skipped_report})"
        print(line)
    return 0
