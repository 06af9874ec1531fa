"""Fuzzer evaluation: equal-time campaigns of the full fuzzer and each ablation; prints JSON.

    python benchmarks/fuzz_eval.py --seconds 600 --workers 2 --out /tmp/fuzz-eval

Per configuration: tests per second per worker (each worker is one process on one core), valid-test
rate, final arcs, arcs gained over the seed corpus, corpus size, unique bugs and coverage over time (new
arcs over the seeds at a few checkpoints, from coverage.csv); and the ratio of arcs gained by the full
fuzzer to each ablation's. Configurations run one after another, so they do not share the cores.
`--configs graph` runs the graph-level mode (not comparable with the loop-level ones: other code).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from shapeflow.fuzz.campaign import CampaignOptions, run_campaign

CONFIGS = {
    "full": {"mode": "full", "coverage": True},
    "generate-only": {"mode": "generate-only", "coverage": True},
    "ir-only": {"mode": "ir-only", "coverage": True},
    "passes-only": {"mode": "passes-only", "coverage": True},
    "no-coverage": {"mode": "full", "coverage": False},
    "graph": {"mode": "graph", "coverage": True},
}
DEFAULT_CONFIGS = ["full", "generate-only", "ir-only", "passes-only", "no-coverage"]


def coverage_over_time(out: Path, seed_arcs: int, points: int = 6) -> list:
    """[elapsed_s, new arcs over the seeds] at `points` evenly spaced rows of coverage.csv."""
    try:
        rows = (out / "coverage.csv").read_text().splitlines()[1:]
    except OSError:
        return []
    parsed = [(float(r.split(",")[0]), int(r.split(",")[3])) for r in rows if r.count(",") >= 5]
    if not parsed:
        return []
    picks = sorted({int(k * (len(parsed) - 1) / (points - 1)) for k in range(points)})
    return [[round(parsed[k][0], 1), max(0, parsed[k][1] - seed_arcs)] for k in picks]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-eval")
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    ap.add_argument("--tvm", action="store_true", help="add the apache-tvm differential oracle")
    args = ap.parse_args(argv)
    results = {}
    for name in args.configs:
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        summary = run_campaign(
            CampaignOptions(
                out,
                seconds=args.seconds,
                workers=args.workers,
                seed=args.seed,
                status_stream=None,
                tvm=args.tvm,
                **CONFIGS[name],
            )
        )
        s = summary["stats"]
        results[name] = {
            "tests": s["tests"],
            "tests_per_s_per_worker": round(s["tests"] / s["elapsed"] / args.workers, 2)
            if s["elapsed"]
            else 0,
            "valid_rate": round(s["valid"] / s["tests"], 3) if s["tests"] else 0,
            "arcs": summary["arcs"],
            "seed_arcs": s["seed_arcs"],
            "new_arcs_over_seeds": summary["arcs"] - s["seed_arcs"],
            "corpus": summary["corpus"],
            "unique_bugs": len(summary["bugs"]),
            "coverage_over_time": coverage_over_time(out, s["seed_arcs"]),
        }
        if args.tvm:
            results[name]["tvm"] = {k: v for k, v in s.items() if k.startswith("tvm_")}
    full = results.get("full")
    if full:
        for name, r in results.items():
            if name not in ("full", "graph") and r["new_arcs_over_seeds"] > 0:
                full[f"new_arcs_ratio_vs_{name}"] = round(
                    full["new_arcs_over_seeds"] / r["new_arcs_over_seeds"], 2
                )
    json.dump({"seconds": args.seconds, "workers": args.workers, "results": results}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
