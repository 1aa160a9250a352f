"""Entry point of the ``hmr`` console script."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

import cli.commands
from hmr.core import __version__
from hmr.core.errors import HmrError


def discover_commands() -> dict[str, ModuleType]:
    """Import every module of :mod:`cli.commands` that declares a ``COMMAND``."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(cli.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cli.commands.{info.name}")
        name = getattr(module, "COMMAND", None)
        if name:
            found[name] = module
    return dict(sorted(found.items()))


def build_parser(commands: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hmr",
        description="hmrkit: convert, verify, shard, train and evaluate 3D human mesh recovery.",
        epilog="Run 'hmr COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"hmrkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands.items():
        example = getattr(module, "EXAMPLE", "")
        help_action = getattr(module, "HELP_ACTION", None)  # a command's own -h (e.g. convert)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=f"example:\n  {example}" if example else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=help_action is None,
        )
        if help_action is not None:
            p.add_argument("-h", "--help", action=help_action, help="show this help message and exit")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = discover_commands()
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        code = args._run(args)
    except HmrError as exc:
        if debug:
            raise
        print(f"hmr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
            NotADirectoryError, ValueError) as exc:
        if debug:
            raise
        print(f"hmr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"hmr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: still one line, with a pointer
        if debug:
            raise
        print(f"hmr {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 3
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
