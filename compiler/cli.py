"""The `shapeflow` command line: compile, run and inspect models; the embedded example; the fuzzer.

Every error prints as one line on stderr with a non-zero exit code (1 for errors shapeflow reports on
purpose, 2 for a bad command line or an internal failure); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

import shapeflow
from shapeflow.cli_fuzz import add_fuzz_commands
from shapeflow.errors import Error

EPILOG = """examples:
  shapeflow compile --example -o encoder.sfa            compile the embedded transformer encoder
  shapeflow run encoder.sfa --shape batch=2 --shape seq=17
  shapeflow compile model.onnx -o model.sfa --dim seq=1..2048
  shapeflow inspect model.sfa
  shapeflow example                                      compile the encoder, run and check it at 3 sizes

run `shapeflow COMMAND --help` for the examples of each command.
"""

COMPILE_EPILOG = """examples:
  shapeflow compile model.onnx -o model.sfa
      every ONNX dim_param ("batch", "seq", ...) becomes a symbolic dim: one artifact serves every size
  shapeflow compile model.onnx -o model.sfa --dim batch=1..64 --dim seq=1..2048
      declare bounds: they size the memory plan and are checked when the model runs
  shapeflow compile model.onnx -o model.sfa --dump-ir ir/
      write the module after every pass to ir/NNN_<pass>.txt (000_input.txt is the imported model)
  shapeflow compile --example -o encoder.sfa
      the embedded transformer encoder (x: float32(batch, seq, 64)), batch in 1..64, seq in 1..512
  shapeflow compile module.txt -o module.sfa
      a graph module in the shapeflow text format (docs/text-format.md)
"""

RUN_EPILOG = """examples:
  shapeflow run model.sfa
      random inputs: symbolic dims take 8 (clamped into their declared bounds)
  shapeflow run model.sfa --shape batch=2 --shape seq=17 --bench 100
      choose the symbolic dims; time 100 more calls (median and best)
  shapeflow run model.sfa --input x=x.npy --save-outputs out/
      inputs from .npy files (the rest random, sized to match); outputs written as out/out.npy

Random inputs: floats are standard normal, integers 0 or 1, booleans random.
"""

INSPECT_EPILOG = """examples:
  shapeflow inspect model.onnx      opsets, inputs/outputs with symbolic dims, operators; then the kernels
                                    and the memory plan shapeflow would compile it into
  shapeflow inspect model.sfa       target, signature, dim bounds, kernels with call counts, memory plan
  shapeflow inspect module.txt      kernels and memory plan of a module in the text format
"""

EXAMPLE_EPILOG = """examples:
  shapeflow example                              the encoder at (batch, seq) = (1, 1), (2, 17), (4, 64)
  shapeflow example --shapes 1x1 3x97 8x128
  shapeflow example --kernel --sizes 1 7 4096    the DESIGN.md row-sum kernel instead of the encoder
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line (and exit code 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common_flags() -> argparse.ArgumentParser:
    """--debug and --quiet, accepted both before and after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parent.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress display"
    )
    return parent


def _shape_pair(text: str) -> tuple[int, int]:
    try:
        batch, seq = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: write BATCHxSEQ, e.g. 2x17") from None
    return batch, seq


def _cmd_example(args: argparse.Namespace) -> int:
    if args.kernel:
        from shapeflow.examples_embedded import run_example  # noqa: PLC0415

        return run_example(sizes=args.sizes, out=sys.stdout)
    from shapeflow.cli_progress import Progress  # noqa: PLC0415
    from shapeflow.examples_embedded import run_encoder_example  # noqa: PLC0415

    with Progress(enabled=False if args.quiet else None) as progress:
        return run_encoder_example(args.shapes, sys.stdout, progress=progress)


def _cmd_compile(args):
    from shapeflow.cli_model import cmd_compile  # noqa: PLC0415

    return cmd_compile(args)


def _cmd_run(args):
    from shapeflow.cli_model import cmd_run  # noqa: PLC0415

    return cmd_run(args)


def _cmd_inspect(args):
    from shapeflow.cli_inspect import cmd_inspect  # noqa: PLC0415

    args.out = sys.stdout
    return cmd_inspect(args)


def _add_model_commands(sub, common) -> None:
    from shapeflow.cli_model import dim_range, dim_value, fixed_input, input_file  # noqa: PLC0415

    fmt = argparse.RawDescriptionHelpFormatter
    compile_ = sub.add_parser(
        "compile",
        parents=[common],
        help="compile an ONNX model (or a text-format module) into a .sfa artifact",
        description="Import MODEL (.onnx, or a graph module in the text format), compile it once for every "
        "value of its symbolic dims, and save the executable.",
        epilog=COMPILE_EPILOG,
        formatter_class=fmt,
    )
    compile_.add_argument("model", nargs="?", metavar="MODEL", help="MODEL.onnx or MODULE.txt")
    compile_.add_argument("--example", action="store_true", help="compile the embedded encoder instead")
    compile_.add_argument(
        "-o",
        "--output",
        metavar="OUT.sfa",
        help="artifact to write (default: MODEL's name with .sfa, in the current directory)",
    )
    compile_.add_argument("--target", default="cpu", help="target (default cpu)")
    compile_.add_argument(
        "--dim",
        type=dim_range,
        action="append",
        metavar="NAME=LO..HI",
        help="bounds of a symbolic dim (repeatable)",
    )
    compile_.add_argument("--dump-ir", metavar="DIR", help="write the module after every pass to DIR")
    compile_.add_argument(
        "--fix-input",
        type=fixed_input,
        action="append",
        metavar="NAME=FILE.npy|[1,2]",
        help="fix an ONNX graph input whose value determines shapes (axes, a Reshape target) (repeatable)",
    )
    compile_.set_defaults(handler=_cmd_compile)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run a compiled .sfa artifact on given or random inputs",
        description="Load a compiled model, run it once on inputs from .npy files or random ones, print "
        "each output's shape, dtype, min/max/mean and the latency.",
        epilog=RUN_EPILOG,
        formatter_class=fmt,
    )
    run.add_argument("artifact", metavar="MODEL.sfa")
    run.add_argument(
        "--input", type=input_file, action="append", metavar="NAME=FILE.npy", help="an input (repeatable)"
    )
    run.add_argument(
        "--shape", type=dim_value, action="append", metavar="NAME=VALUE", help="a symbolic dim's value"
    )
    run.add_argument("--bench", type=int, default=0, metavar="N", help="time N more calls")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    run.add_argument("--save-outputs", metavar="DIR", help="write each output to DIR as .npy")
    run.set_defaults(handler=_cmd_run)

    inspect = sub.add_parser(
        "inspect",
        parents=[common],
        help="show the inputs, outputs, symbolic dims, kernels and memory plan of a model or artifact",
        description="Describe MODEL.onnx, MODEL.sfa or MODULE.txt without running it.",
        epilog=INSPECT_EPILOG,
        formatter_class=fmt,
    )
    inspect.add_argument("file", metavar="FILE", help="MODEL.onnx, MODEL.sfa or MODULE.txt")
    inspect.add_argument(
        "--dim", type=dim_range, action="append", metavar="NAME=LO..HI", help="bounds for the memory plan"
    )
    inspect.set_defaults(handler=_cmd_inspect)


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = _Parser(
        prog="shapeflow",
        description="shapeflow: a tensor compiler for models whose shapes are known only at run time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shapeflow {shapeflow.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_model_commands(sub, common)

    example = sub.add_parser(
        "example",
        parents=[common],
        help="compile the embedded encoder once and run it at several sizes, checked against numpy",
        description="Compiles the embedded transformer encoder (symbolic batch and seq) once, runs it at "
        "several (batch, seq), checks each result against the graph interpreter and prints the time per "
        "call. With --kernel: the DESIGN.md row-sum kernel, checked against numpy.",
        epilog=EXAMPLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    example.add_argument(
        "--shapes",
        type=_shape_pair,
        nargs="+",
        default=[(1, 1), (2, 17), (4, 64)],
        metavar="BxS",
        help="(batch, seq) pairs to run the encoder at (default: 1x1 2x17 4x64)",
    )
    example.add_argument("--kernel", action="store_true", help="run the row-sum kernel example instead")
    example.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 7, 97, 1024, 8192],
        help="row counts for --kernel (default: 1 7 97 1024 8192)",
    )
    example.set_defaults(handler=_cmd_example)
    add_fuzz_commands(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad command line (already reported in one line)
        return int(exc.code or 0)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"shapeflow: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("shapeflow: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in shapeflow: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"shapeflow: internal error: {type(exc).__name__}: {_one_line(exc)} "
                "(rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 2


if __name__ == "__main__":
    sys.exit(main())
