"""ONNX's backend node tests (onnx.backend.test, ~1,900 cases) through shapeflow and through onnxruntime,
run the same way (the model as it is, the test's inputs, the test's rtol/atol); prints JSON counts.

    python benchmarks/onnx_conformance.py                  # shapeflow compiled + onnxruntime, 2 workers
    python benchmarks/onnx_conformance.py --engine interpret --workers 4 --details out.json

"unsupported" is a refusal at import/compile time (shapeflow: UnsupportedError; onnxruntime: no session);
"fail" is everything else that is not a pass. The counts are for the models as they are, run the way a
user runs them: shapeflow.compile(model), which specializes on graph inputs whose values determine shapes
(reduction axes, Reshape targets fed as inputs); "specialized" counts the passes that did. Each worker
process runs a slice of the cases.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time


def _work(args):
    engine, index, count = args
    from shapeflow.frontend.onnx.conformance import collect_cases, run_case  # noqa: PLC0415

    cases = collect_cases()[index::count]
    outcomes = (run_case(c, engine) for c in cases)
    return [(o.name, o.status, o.message, o.specialized) for o in outcomes]


def run_engine(engine: str, workers: int) -> tuple[dict, list]:
    from shapeflow.frontend.onnx.conformance import Outcome, summarize  # noqa: PLC0415

    start = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        parts = pool.map(_work, [(engine, i, workers) for i in range(workers)])
    outcomes = [Outcome(*row) for part in parts for row in part]
    summary = summarize(outcomes)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    return summary, outcomes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("compile", "interpret"), default="compile")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-onnxruntime", action="store_true")
    parser.add_argument("--details", help="write every case's outcome to this JSON file")
    args = parser.parse_args(argv)

    report = {}
    details = {}
    summary, outcomes = run_engine(args.engine, args.workers)
    report[f"shapeflow_{args.engine}"] = summary
    details["shapeflow"] = [o.__dict__ for o in outcomes]
    if not args.skip_onnxruntime:
        summary, outcomes = run_engine("onnxruntime", args.workers)
        report["onnxruntime"] = summary
        details["onnxruntime"] = [o.__dict__ for o in outcomes]
    print(json.dumps(report, indent=2))
    if args.details:
        with open(args.details, "w") as f:
            json.dump(details, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
