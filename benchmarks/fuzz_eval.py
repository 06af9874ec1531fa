"""Fuzzer evaluation: equal-time campaigns of the full fuzzer and each ablation; prints JSON.

    python benchmarks/fuzz_eval.py --seconds 600 --workers 2 --out /tmp/fuzz-eval
    python benchmarks/fuzz_eval.py --seconds 180 --workers 1 --seeds 0 1 2 --parallel --out /tmp/fuzz-eval

Per configuration: tests per second per worker (each worker is one process on one core), tests per
CPU-second of the workers (the per-core rate an unloaded machine would show; Tzer reports ~8), valid-test
rate, final arcs, arcs gained over the seed corpus, corpus size, unique bugs and coverage over time (new
arcs over the seeds at a few checkpoints, from coverage.csv); and the ratio of arcs gained by the full
fuzzer to each ablation's. Every configuration starts from the same seed corpus (the campaign seed draws
it) and runs for the same wall time.

By default configurations run one after another. On a shared, loaded machine the load then differs from
one configuration to the next; `--parallel` runs all campaigns (every seed and configuration) at the same
time instead, each in its own process tree, so that they share whatever the machine gives them. `--cpu-
seconds B` gives every campaign B seconds of worker CPU time instead of wall time: on a machine shared
with other work, the same amount of fuzzing per configuration. With several `--seeds`, the JSON gives
each seed's numbers and the medians (of arcs gained and of the per-seed ratios). The load average is
recorded beside the numbers. `--configs graph` runs the graph-level mode (not comparable with the loop-
level ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
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


def run_one(name: str, out: Path, args, seed: int) -> dict:
    """One configuration's campaign and its numbers."""
    shutil.rmtree(out, ignore_errors=True)
    options = CampaignOptions(
        out,
        seconds=None if args.cpu_seconds else args.seconds,
        cpu_seconds=args.cpu_seconds,
        workers=args.workers,
        seed=seed,
        status_stream=None,
        tvm=args.tvm,
        **CONFIGS[name],
    )
    summary = run_campaign(options)
    workers = args.workers
    s = summary["stats"]
    result = {
        "tests": s["tests"],
        "elapsed_s": round(s["elapsed"], 1),
        "cpu_s": round(s.get("cpu_s", 0.0), 1),
        "tests_per_s_per_worker": round(s["tests"] / s["elapsed"] / workers, 2) if s["elapsed"] else 0,
        # Tests per CPU-second of the workers: tests/s per core as an unloaded machine would give it.
        "tests_per_cpu_s": round(s["tests"] / s["cpu_s"], 2) if s.get("cpu_s") else 0,
        "valid_rate": round(s["valid"] / s["tests"], 3) if s["tests"] else 0,
        "arcs": summary["arcs"],
        "seed_arcs": s["seed_arcs"],
        "new_arcs_over_seeds": summary["arcs"] - s["seed_arcs"],
        "corpus": summary["corpus"],
        "unique_bugs": len(summary["bugs"]),
        "coverage_over_time": coverage_over_time(out, s["seed_arcs"]),
    }
    if args.tvm:
        result["tvm"] = {k: v for k, v in s.items() if k.startswith("tvm_")}
    return result


def _run_parallel(configs: list, seeds: list, args) -> dict:
    """Every (seed, configuration) campaign at once, each in its own process (and its workers)."""
    procs = {}
    for seed in seeds:
        for name in configs:
            cmd = [sys.executable, __file__, "--one", name, "--seconds", str(args.seconds)]
            cmd += ["--cpu-seconds", str(args.cpu_seconds)] if args.cpu_seconds else []
            cmd += [
                "--workers",
                str(args.workers),
                "--seeds",
                str(seed),
                "--out",
                str(Path(args.out) / f"seed{seed}"),
            ]
            cmd += ["--tvm"] if args.tvm else []
            procs[seed, name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    results: dict = {seed: {} for seed in seeds}
    for (seed, name), proc in procs.items():
        out, _ = proc.communicate()
        ok = proc.returncode == 0 and out.strip()
        results[seed][name] = json.loads(out.strip().splitlines()[-1]) if ok else {"error": proc.returncode}
    return results


def _ratios(results: dict) -> dict:
    full = results.get("full") or {}
    out = {}
    for name, r in results.items():
        gained = r.get("new_arcs_over_seeds", 0)
        if name not in ("full", "graph") and gained > 0 and "new_arcs_over_seeds" in full:
            out[name] = round(full["new_arcs_over_seeds"] / gained, 2)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0, help="wall time per campaign")
    ap.add_argument(
        "--cpu-seconds",
        type=float,
        help="instead of wall time: worker CPU seconds per campaign (equal work whatever the load)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None, help="one campaign seed (same as --seeds S)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="campaign seeds; medians over them")
    ap.add_argument("--out", default="fuzz-eval")
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    ap.add_argument("--parallel", action="store_true", help="run a seed's configurations at the same time")
    ap.add_argument("--tvm", action="store_true", help="add the apache-tvm differential oracle")
    ap.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)  # a --parallel child
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else args.seeds
    if args.one:
        out = Path(args.out) / args.one
        print(json.dumps(run_one(args.one, out, args, seeds[0])))
        return 0
    load_before = os.getloadavg()
    if args.parallel:
        by_seed = _run_parallel(args.configs, seeds, args)
    else:
        root = Path(args.out)
        by_seed = {s: {n: run_one(n, root / f"seed{s}" / n, args, s) for n in args.configs} for s in seeds}
    per_seed = {s: {"results": r, "new_arcs_ratio_full_vs": _ratios(r)} for s, r in by_seed.items()}
    medians = {}
    for name in args.configs:
        gained = [s["results"][name].get("new_arcs_over_seeds", 0) for s in per_seed.values()]
        rates = [s["results"][name].get("tests_per_s_per_worker", 0) for s in per_seed.values()]
        cpu_rates = [s["results"][name].get("tests_per_cpu_s", 0) for s in per_seed.values()]
        medians[name] = {
            "new_arcs_over_seeds": statistics.median(gained),
            "tests_per_s_per_worker": statistics.median(rates),
            "tests_per_cpu_s": statistics.median(cpu_rates),
        }
        ratios = [
            s["new_arcs_ratio_full_vs"][name]
            for s in per_seed.values()
            if name in s["new_arcs_ratio_full_vs"]
        ]
        if ratios:
            medians[name]["ratio_full_vs_median"] = statistics.median(ratios)
    report = {
        "seconds": None if args.cpu_seconds else args.seconds,
        "cpu_seconds": args.cpu_seconds,
        "workers": args.workers,
        "parallel": args.parallel,
        "seeds": seeds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "median": medians,
        "per_seed": per_seed,
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
