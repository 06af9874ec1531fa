"""fp32 GEMM with a symbolic M: one shapeflow kernel family for every shape, against numpy, torch and
apache-tvm's default build of the same dynamic Relax matmul, in one process.

    python benchmarks/gemm_dynamic.py [--quick] [--threads 2] [--repeat 30] [--budget 1.0] [--no-tvm]

Prints one JSON object: per shape the best-of-N times (microseconds, runs interleaved in rounds), ratios
peer time / shapeflow time (above 1 means shapeflow is faster), GFLOP/s and the fraction of the measured
peak (the best micro-kernel on L1-resident panels, times the threads), and the decomposition the cost model
chose; then geomeans.

One family serves everything: `build_gemm(None, None)` (M, N and K all symbolic) is compiled once; the
weights of each (N, K) are packed once, outside the timings. Libraries are timed in rounds, one run of
each per round with a short pause between (so one runtime's spinning threads do not slow the next), and
the best of the rounds is kept. The machine may be shared: `load_average` is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

M_VALUES = [1, 2, 3, 5, 7, 16, 17, 31, 64, 100, 127, 128, 255, 333, 512, 1000, 1949]
NK_VALUES = [(768, 768), (3072, 768), (768, 3072), (4096, 4096), (11008, 4096)]
QUICK_M = [1, 7, 17, 64, 127, 512, 1000]
QUICK_NK = [(768, 768), (3072, 768), (768, 3072)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a subset of the grid")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument("--repeat", type=int, default=30, help="at most this many timed runs per library")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed runs per library and shape")
    p.add_argument("--no-tvm", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument(
        "--tvm-max-flops", type=float, default=2e8, help="skip apache-tvm above this many flops (it is slow)"
    )
    return p.parse_args(argv)


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "SHAPEFLOW_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)

from shapeflow.passes.hierarchy import build_gemm, host_cpu_model, microkernel_table  # noqa: E402
from shapeflow.passes.hierarchy.measure import measure_candidates  # noqa: E402
from shapeflow.passes.hierarchy.microkernel import MicroKernelShape  # noqa: E402
from shapeflow.runtime import threadpool  # noqa: E402


def best_of_interleaved(fns: dict, repeat: int, budget: float) -> dict:
    """Best time of each function, timed in rounds (one run of each per round) so that load from other
    processes, which comes and goes, falls on every library alike. Stops after `repeat` rounds or once
    `budget` seconds are spent (at least 3 rounds)."""
    for fn in fns.values():
        fn()  # warm up: page faults, thread start
    best = dict.fromkeys(fns, math.inf)
    start = time.perf_counter()
    for i in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            settle()
        if time.perf_counter() - start > budget and i >= 2:
            break
    return best


def settle():
    if ARGS.threads > 1:
        time.sleep(0.02)  # let the previous runtime's threads stop spinning


def make_torch():
    if ARGS.no_torch:
        return None
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    torch.set_num_threads(ARGS.threads)
    return torch


def make_tvm_runner():
    """A function (x, w) -> run, from apache-tvm's default build of R.matmul with a symbolic M."""
    if ARGS.no_tvm:
        return None
    try:
        import tvm  # noqa: PLC0415
        from tvm import relax  # noqa: PLC0415
    except ImportError:
        return None
    cache = {}

    def runner(n: int, k: int):
        if (n, k) not in cache:
            bb = relax.BlockBuilder()
            m = tvm.tirx.Var("m", "int64")
            x = relax.Var("x", relax.TensorType((m, k), "float32"))
            w = relax.Var("w", relax.TensorType((k, n), "float32"))
            with bb.function("main", [x, w]):
                with bb.dataflow():
                    out = bb.emit_output(bb.emit(relax.op.matmul(x, w)))
                bb.emit_func_output(out)
            vm = relax.VirtualMachine(tvm.compile(bb.get(), target="llvm"), tvm.cpu())
            cache[(n, k)] = vm
        vm = cache[(n, k)]
        return lambda a, b: vm["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(b))

    return runner


def measure_peak(kernel) -> float:
    """GFLOP/s of the family's best micro-kernel on L1-resident panels, times the threads."""
    hw = host_cpu_model()
    shape = MicroKernelShape(kernel.mrs[0], kernel.nr, hw.lanes(4))
    best = max(r.gflops for r in measure_candidates(hw, [shape], budget_s=0.0005, rounds=60))
    return best * min(ARGS.threads, hw.cores)


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def main():
    threadpool.set_num_threads(ARGS.threads)
    hw = host_cpu_model()
    t0 = time.perf_counter()
    table = microkernel_table(hw)
    table_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kernel = build_gemm(None, None)
    build_s = time.perf_counter() - t0
    peak = measure_peak(kernel)
    torch = make_torch()
    tvm_runner = make_tvm_runner()
    rng = np.random.default_rng(0)
    m_values, nk_values = (QUICK_M, QUICK_NK) if ARGS.quick else (M_VALUES, NK_VALUES)
    rows = []
    for n, k in nk_values:
        b = rng.standard_normal((k, n), dtype=np.float32)
        t0 = time.perf_counter()
        packed = kernel.pack_weights(b)
        pack_s = time.perf_counter() - t0
        tb = torch.from_numpy(b) if torch is not None else None
        for m in m_values:
            a = rng.standard_normal((m, k), dtype=np.float32)
            c = np.empty((m, n), np.float32)
            c_ref = np.empty((m, n), np.float32)
            flops = 2.0 * m * n * k
            kernel(a, packed, c)
            np.matmul(a, b, out=c_ref)
            err = float(np.abs(c - c_ref).max() / max(1.0, float(np.abs(c_ref).max())))
            row = {"M": m, "N": n, "K": k, "rel_err": err, "pack_weights_ms": pack_s * 1e3}
            fns = {
                "shapeflow": lambda a=a, p=packed, c=c: kernel(a, p, c),
                "numpy": lambda a=a, b=b, c=c_ref: np.matmul(a, b, out=c),
            }
            if torch is not None:
                ta, tc = torch.from_numpy(a), torch.from_numpy(c_ref)
                fns["torch"] = lambda x=ta, y=tb, z=tc: torch.matmul(x, y, out=z)
            for name, seconds in best_of_interleaved(fns, ARGS.repeat, ARGS.budget).items():
                row[f"{name}_us"] = seconds * 1e6
            if tvm_runner is not None and flops <= ARGS.tvm_max_flops:
                run = tvm_runner(n, k)
                row["tvm_us"] = (
                    best_of_interleaved({"tvm": lambda f=run, a=a, b=b: f(a, b)}, 3, 0.0)["tvm"] * 1e6
                )
            for peer in ("numpy", "torch", "tvm"):
                if f"{peer}_us" in row:
                    row[f"ratio_{peer}"] = row[f"{peer}_us"] / row["shapeflow_us"]
            row["gflops"] = flops / row["shapeflow_us"] / 1e3
            row["frac_peak"] = row["gflops"] / peak
            row["choice"] = kernel.choose(m, n, k).summary()
            rows.append(row)
            print(
                json.dumps({k_: (round(v, 3) if isinstance(v, float) else v) for k_, v in row.items()}),
                file=sys.stderr,
            )

    big = [r["frac_peak"] for r in rows if r["M"] >= 512]
    summary = {
        "benchmark": "gemm_dynamic",
        "machine": {
            "cpu": hw.name,
            "cores": hw.cores,
            "threads": ARGS.threads,
            "load_average": os.getloadavg(),
            "simd_bits": hw.simd_bits,
        },
        "family": {
            "micro_kernel": f"{kernel.mrs[0]}x{kernel.nr}",
            "build_s": build_s,
            "table_s": table_s,
            "table_entries": len(table),
        },
        "peak_gflops": peak,
        "geomean": {
            "ratio_numpy": geomean([r.get("ratio_numpy") for r in rows]),
            "ratio_torch": geomean([r.get("ratio_torch") for r in rows]),
            "ratio_tvm": geomean([r.get("ratio_tvm") for r in rows]),
            "frac_peak": geomean([r["frac_peak"] for r in rows]),
        },
        "min_ratio_numpy": min(r["ratio_numpy"] for r in rows),
        "min_frac_peak_m_ge_512": min(big) if big else None,
        "max_rel_err": max(r["rel_err"] for r in rows),
        "tvm_shapes": sum("tvm_us" in r for r in rows),
        "shapes": rows,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
