"""Attention's batched matmuls through `shapeflow.compile`, side by side with numpy and torch, in one process.

    python benchmarks/attention.py [--seqs 1,17,64,128,256,384,512] [--repeat N] [--no-torch]

Batch 1, 12 heads, head dim 64, sequence length s:
- qk: scores = Q . K^T, (12, s, 64) x (12, 64, s) -> (12, s, s)  (K^T given already transposed);
- pv: context = P . V,  (12, s, s) x (12, s, 64) -> (12, s, 64).
Each is one graph function with a symbolic s (declared bounds 1..512), compiled once by shapeflow.compile
(graph BlockBuilder, default target "cpu", default schedule rules) and then run at every s. The peers:
numpy `np.matmul` and torch `torch.matmul` with `torch.set_num_threads(2)`; every framework allocates its
output on each call. Results are checked against numpy (float64 reference) first.

Timings: per framework and shape, the best and the median of `--repeat` rounds, each round the mean of
enough calls to last about 2 ms, with the frameworks interleaved round by round so that load changes hit
all of them alike. `ratio_<peer>` = peer time / shapeflow time (best-of; above 1: shapeflow is faster);
`geomean` is over the sequence lengths. Prints one JSON object, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

HEADS, HEAD_DIM, MAX_SEQ = 12, 64, 512
SEQS = (1, 17, 64, 128, 256, 384, 512)


def shapeflow_kernels() -> dict:
    """The two compiled functions, each with a symbolic s."""
    import shapeflow as sf  # noqa: PLC0415
    from shapeflow.ir import Var  # noqa: PLC0415
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op  # noqa: PLC0415

    def matmul_function(a_shape, b_shape):
        a = GraphVar("a", TensorType(a_shape, "float32"))
        b = GraphVar("b", TensorType(b_shape, "float32"))
        bb = BlockBuilder()
        with bb.function("main", [a, b]):
            with bb.dataflow():
                out = bb.emit_output(op.matmul(a, b))
            bb.emit_func_output(out)
        return bb.get()

    s = Var("s")
    modules = {
        "qk": matmul_function((HEADS, s, HEAD_DIM), (HEADS, HEAD_DIM, s)),
        "pv": matmul_function((HEADS, s, s), (HEADS, s, HEAD_DIM)),
    }
    out = {}
    for name, mod in modules.items():
        start = time.perf_counter()
        out[name] = sf.compile(mod, target="cpu", dims={"s": (1, MAX_SEQ)})
        out[f"{name}_compile_s"] = round(time.perf_counter() - start, 3)
    return out


def operands(kind: str, seq: int, rng) -> tuple[np.ndarray, np.ndarray]:
    def rand(*shape):
        return rng.standard_normal(shape).astype("float32")

    if kind == "qk":
        return rand(HEADS, seq, HEAD_DIM), rand(HEADS, HEAD_DIM, seq)
    probs = np.abs(rand(HEADS, seq, seq))
    return probs / probs.sum(-1, keepdims=True), rand(HEADS, seq, HEAD_DIM)


def timed_rounds(runners: dict, repeat: int) -> dict:
    """{name: (best, median)} seconds per call; frameworks interleaved within each round."""
    numbers = {}
    for name, fn in runners.items():
        fn()  # warm up: first-call costs (thread start, page faults)
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        numbers[name] = max(1, min(2000, int(2e-3 / once)))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, fn in runners.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / numbers[name])
    return {name: (min(t), float(np.median(t))) for name, t in samples.items()}


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", default=",".join(map(str, SEQS)))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true")
    opts = parser.parse_args(argv)
    seqs = [int(s) for s in opts.seqs.split(",")]

    from shapeflow.runtime import threadpool  # noqa: PLC0415

    report: dict = {
        "heads": HEADS,
        "head_dim": HEAD_DIM,
        "batch": 1,
        "seqs": seqs,
        "shapeflow_threads": threadpool.get_num_threads(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }
    compiled = shapeflow_kernels()
    report["compile_s"] = {k: compiled[f"{k}_compile_s"] for k in ("qk", "pv")}
    torch = None
    if not opts.no_torch:
        import torch  # noqa: PLC0415

        torch.set_num_threads(2)
        report["torch_threads"] = torch.get_num_threads()
    rng = np.random.default_rng(0)
    ratios: dict[str, list[float]] = {}
    for kind in ("qk", "pv"):
        rows = {}
        for seq in seqs:
            a, b = operands(kind, seq, rng)
            want = np.matmul(a.astype("float64"), b.astype("float64"))
            exe = compiled[kind]
            runners = {
                "shapeflow": lambda exe=exe, a=a, b=b: exe(a, b),
                "numpy": lambda a=a, b=b: np.matmul(a, b),
            }
            if torch is not None:
                ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                runners["torch"] = lambda ta=ta, tb=tb: torch.matmul(ta, tb)
            row: dict = {"shape": f"({HEADS},{seq},{b.shape[1]})x({HEADS},{b.shape[1]},{b.shape[2]})"}
            for name, fn in runners.items():
                got = np.asarray(fn())
                err = float(np.max(np.abs(got - want))) if got.size else 0.0
                row[f"{name}_max_abs_error"] = err
                if not np.allclose(got, want, rtol=1e-3, atol=1e-3):
                    row[f"{name}_WRONG"] = True
            for name, (best, median) in timed_rounds(runners, opts.repeat).items():
                row[f"{name}_us"] = round(best * 1e6, 2)
                row[f"{name}_median_us"] = round(median * 1e6, 2)
            for name in runners:
                if name != "shapeflow":
                    ratio = row[f"{name}_us"] / row["shapeflow_us"]
                    row[f"ratio_{name}"] = round(ratio, 3)
                    ratios.setdefault(f"{kind}_vs_{name}", []).append(ratio)
                    ratios.setdefault(f"all_vs_{name}", []).append(ratio)
            rows[str(seq)] = row
        report[kind] = rows
    report["geomean_ratio"] = {k: round(geomean(v), 3) for k, v in ratios.items()}
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["note"] = "ratio = peer best-of time / shapeflow best-of time; above 1: shapeflow is faster"
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
