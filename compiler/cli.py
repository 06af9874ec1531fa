"""The `shapeflow` command line.

Errors from the shapeflow.Error hierarchy print as one line on stderr with a non-zero exit code; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

import shapeflow
from shapeflow.cli_fuzz import add_fuzz_commands
from shapeflow.errors import Error

EPILOG = """examples:
  shapeflow example                 build the embedded example kernel and run it at several sizes
  shapeflow example --sizes 1 7 4096
  shapeflow --version
"""


def _cmd_example(args: argparse.Namespace) -> int:
    from shapeflow.examples_embedded import run_example  # noqa: PLC0415

    return run_example(sizes=args.sizes, out=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shapeflow",
        description="shapeflow: a tensor compiler for models whose shapes are known only at run time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shapeflow {shapeflow.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    example = sub.add_parser(
        "example",
        help="build the embedded example kernel (a symbolic-length row sum of exp) and run it",
        description="Builds the DESIGN.md example kernel once, with a symbolic row count, runs it at "
        "several sizes, checks each result against numpy and prints the time per call.",
    )
    example.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 7, 97, 1024, 8192],
        help="row counts to run (default: 1 7 97 1024 8192)",
    )
    example.set_defaults(handler=_cmd_example)
    add_fuzz_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        if args.debug:
            traceback.print_exc()
        else:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"shapeflow: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
