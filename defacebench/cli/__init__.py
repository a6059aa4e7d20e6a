"""The ``defacebench`` command line: one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` (adds its parser and sets ``func``) and
``run(args) -> int``. A subcommand whose module is missing or fails to import is reported, not fatal,
so ``defacebench list`` keeps working while an optional part is broken.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from defacebench.errors import DefacebenchError

SUBCOMMANDS = ("list", "sample_data", "convert", "run", "report", "evaluate", "identify", "cache", "weights",
               "reference")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every importable subcommand registered."""
    parser = argparse.ArgumentParser(prog="defacebench", description=__doc__.splitlines()[0])
    parser.add_argument("--plugins-file", dest="global_plugins_file", type=str, default=None,
                        help="TOML plugins file: command defacers, plugin parameters and variants "
                             "(default: ./defacebench.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            if exc.name != f"{__name__}.{name}":
                broken = subparsers.add_parser(name.replace("_", "-"), help=f"(unavailable: {exc})")
                broken.set_defaults(func=_broken(name, exc))
            continue
        module.register(subparsers)
    return parser


def _broken(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        print(f"defacebench {name}: cannot load this subcommand: {exc}", file=sys.stderr)
        return 2
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"defacebench {args.command}: interrupted; finished stages are cached, rerun to resume", file=sys.stderr)
        return 130
    except (DefacebenchError, OSError) as exc:
        if args.debug:
            raise
        print(f"defacebench {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """The error as one line; an OSError names its file and what the user can do."""
    if isinstance(exc, OSError) and not isinstance(exc, DefacebenchError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (check that the folder exists, is writable and has free space; --debug shows the traceback)"
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
