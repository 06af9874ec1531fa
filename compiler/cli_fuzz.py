"""The `shapeflow fuzz` subcommand: run a campaign (`shapeflow fuzz --time 10m --out DIR`), resume it, or
report on it (`shapeflow fuzz report DIR`)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from shapeflow.errors import UnsupportedError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1h', '1.5h' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise UnsupportedError(f"cannot read duration {text!r} (use e.g. 90s, 10m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _cmd_fuzz(args: argparse.Namespace) -> int:
    if args.action and args.action[0] == "report":
        from shapeflow.fuzz.report import report  # noqa: PLC0415

        if len(args.action) != 2:
            raise UnsupportedError("usage: shapeflow fuzz report DIR")
        report(Path(args.action[1]), sys.stdout)
        return 0
    if args.action:
        raise UnsupportedError(f"unknown fuzz action {args.action[0]!r} (known: report)")
    from shapeflow.fuzz.campaign import CampaignOptions, run_campaign  # noqa: PLC0415

    seconds = parse_duration(args.time) if args.time else None
    if seconds is None and args.iterations is None:
        seconds = 600.0
    mode = "full"
    for flag in ("ir_only", "passes_only", "generate_only", "graph"):
        if getattr(args, flag):
            mode = flag.replace("_", "-")
    options = CampaignOptions(
        out=Path(args.out),
        seconds=seconds,
        iterations=args.iterations,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        coverage=not args.no_coverage,
        mode=mode,
        test_timeout=args.test_timeout,
        tvm=args.tvm,
    )
    summary = run_campaign(options)
    print(
        f"{summary['stats']['tests']} tests, {summary['arcs']} arcs, corpus {summary['corpus']}, "
        f"{len(summary['bugs'])} unique bugs in {args.out}"
    )
    return 0


def add_fuzz_commands(subparsers) -> None:
    """Register `fuzz` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "fuzz",
        help="run a coverage-guided fuzzing campaign of the compiler, or report on one",
        description="Mutates loop-level programs and pass sequences together under coverage feedback and "
        "checks every stage with oracles. `shapeflow fuzz report DIR` summarizes a campaign folder.",
    )
    p.add_argument("action", nargs="*", help="`report DIR` to summarize a campaign")
    p.add_argument("--time", help="how long to run: 90s, 10m, 1h (default 10m)")
    p.add_argument("--iterations", type=int, help="stop after this many tests")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--out", default="fuzz-out", help="campaign folder (default fuzz-out)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the campaign in --out")
    p.add_argument("--no-coverage", action="store_true", help="ablation: no coverage feedback")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--ir-only", action="store_true", help="ablation: mutate only the IR")
    group.add_argument("--passes-only", action="store_true", help="ablation: mutate only pass sequences")
    group.add_argument("--generate-only", action="store_true", help="ablation: fresh programs, no mutation")
    group.add_argument(
        "--graph",
        action="store_true",
        help="fuzz graph functions (registry ops, graph passes, the compiled executable) instead of loops",
    )
    p.add_argument(
        "--tvm",
        action="store_true",
        help="also compare every test with apache-tvm (the `tvm` extra); findings in TVM are kept apart",
    )
    p.add_argument(
        "--test-timeout",
        type=float,
        default=10.0,
        help="seconds per test (default 10); a test running twice as long is killed as a hang",
    )
    p.set_defaults(handler=_cmd_fuzz)


__all__ = ["add_fuzz_commands", "parse_duration"]
