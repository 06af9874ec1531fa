"""Elementwise, reduction and call-overhead benchmarks of CPU kernels against numpy, in one process.

    python benchmarks/elementwise.py [--repeat N] [--threads T]

Prints one JSON object. Every kernel is written directly in the loop IR with an explicit parallel outer
loop and an inner loop LLVM vectorizes (scheduling primitives come later); whether a call starts a thread
team follows the runtime's work threshold and libgomp wait policy (shapeflow.runtime.threadpool), both
reported under "machine" with the load average. Timings are best-of-N wall times; `ratio` is numpy time /
shapeflow time (above 1 means shapeflow is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.tir import (
    Allocate,
    BufferStore,
    For,
    PrimFunc,
    call_intrinsic,
    decl_buffer,
    seq,
)
from shapeflow.runtime import threadpool

F32 = "float32"
I64 = "int64"
BLOCK = 4096
ZERO = E.IntImm(I64, 0)


def c(value: float) -> E.PrimExpr:
    return E.FloatImm(F32, value)


def best_of(fn, repeat: int, number: int = 1) -> float:
    fn()  # warm up (page faults, thread start)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------


def add_kernel() -> PrimFunc:
    """C = A + B over a symbolic length n: parallel over blocks of 4096, vectorized inside."""
    n = E.Var("n")
    a, b, out = (decl_buffer((n,), F32, name) for name in ("A", "B", "C"))
    blk, j = E.Var("blk"), E.Var("j")
    start = blk * BLOCK
    inner = For(
        j,
        0,
        E.min_expr(E.IntImm(I64, BLOCK), n - start),
        "serial",
        BufferStore(out, a[start + j] + b[start + j], (start + j,)),
    )
    body = For(blk, 0, E.floordiv(n + (BLOCK - 1), BLOCK), "parallel", inner)
    return PrimFunc((a, b, out), body, {"tir.noalias": True})


def gelu_value(t: E.PrimExpr) -> E.PrimExpr:
    inner = c(0.7978845608028654) * (t + c(0.044715) * t * t * t)
    return c(0.5) * t * (c(1.0) + call_intrinsic("tanh", inner))


def gelu_kernel() -> PrimFunc:
    """Y[i, j] = gelu_tanh(X[i, j] * W[j] + B[j]) over (n, 4096), one pass."""
    n = E.Var("n")
    x = decl_buffer((n, BLOCK), F32, "X")
    w = decl_buffer((BLOCK,), F32, "W")
    bias = decl_buffer((BLOCK,), F32, "Bias")
    y = decl_buffer((n, BLOCK), F32, "Y")
    i, j = E.Var("i"), E.Var("j")
    t = x[i, j] * w[j] + bias[j]
    body = For(i, 0, n, "parallel", For(j, 0, BLOCK, "serial", BufferStore(y, gelu_value(t), (i, j))))
    return PrimFunc((x, w, bias, y), body, {"tir.noalias": True})


def row_reduce_kernel(kind: str) -> PrimFunc:
    """B[i] = sum_k A[i, k] or max_k A[i, k] over (n, 4096), accumulating in a local scalar."""
    n = E.Var("n")
    a = decl_buffer((n, BLOCK), F32, "A")
    out = decl_buffer((n,), F32, "B")
    acc = decl_buffer((1,), F32, "acc", scope="local")
    i, k = E.Var("i"), E.Var("k")
    if kind == "sum":
        init, step = c(0.0), acc[ZERO] + a[i, k]
    else:
        init, step = c(float("-inf")), E.max_expr(acc[ZERO], a[i, k])
    row = Allocate(
        acc,
        seq(
            BufferStore(acc, init, (ZERO,)),
            For(k, 0, BLOCK, "serial", BufferStore(acc, step, (ZERO,))),
            BufferStore(out, acc[ZERO], (i,)),
        ),
    )
    return PrimFunc((a, out), For(i, 0, n, "parallel", row), {"tir.noalias": True})


def softmax_kernel() -> PrimFunc:
    """Y[i, :] = softmax(X[i, :]) over (n, 4096): max, exp-and-sum, scale, all inside one row pass."""
    n = E.Var("n")
    x = decl_buffer((n, BLOCK), F32, "X")
    y = decl_buffer((n, BLOCK), F32, "Y")
    stats = decl_buffer((2,), F32, "stats", scope="local")
    i, k = E.Var("i"), E.Var("k")
    one = E.IntImm(I64, 1)
    row_max = For(k, 0, BLOCK, "serial", BufferStore(stats, E.max_expr(stats[ZERO], x[i, k]), (ZERO,)))
    expo = call_intrinsic("exp", x[i, k] - stats[ZERO])
    exp_sum = For(
        k,
        0,
        BLOCK,
        "serial",
        seq(BufferStore(y, expo, (i, k)), BufferStore(stats, stats[one] + y[i, k], (one,))),
    )
    scale = For(k, 0, BLOCK, "serial", BufferStore(y, y[i, k] * (c(1.0) / stats[one]), (i, k)))
    row = Allocate(
        stats,
        seq(
            BufferStore(stats, c(float("-inf")), (ZERO,)),
            BufferStore(stats, c(0.0), (one,)),
            row_max,
            exp_sum,
            scale,
        ),
    )
    return PrimFunc((x, y), For(i, 0, n, "parallel", row), {"tir.noalias": True})


def fused3_kernel() -> PrimFunc:
    """The compile-time probe: D = (A * B + C) * 0.5 (three ops, one loop)."""
    n = E.Var("n")
    a, b, cc, d = (decl_buffer((n,), F32, name) for name in ("A", "B", "C", "D"))
    i = E.Var("i")
    body = For(i, 0, n, "parallel", BufferStore(d, (a[i] * b[i] + cc[i]) * c(0.5), (i,)))
    return PrimFunc((a, b, cc, d), body, {"tir.noalias": True})


def build(func: PrimFunc, name: str):
    return sf.build(sf.ir.IRModule({name: func}), target="cpu", lower=False)[name]


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def bench_compile() -> dict:
    start = time.perf_counter()
    build(fused3_kernel(), "fused3")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    build(fused3_kernel(), "fused3")
    warm = time.perf_counter() - start
    return {"cold_compile_s": round(cold, 4), "second_compile_s": round(warm, 4), "target_s": 0.2}


def bench_copy_bandwidth(repeat: int) -> float:
    src = np.ones(1 << 24, np.float32)
    dst = np.empty_like(src)
    t = best_of(lambda: np.copyto(dst, src), repeat)
    return 2 * src.nbytes / t / 1e9


def bench_add(repeat: int) -> list:
    kernel = build(add_kernel(), "add")
    rows = []
    for log2 in (22, 24):
        n = 1 << log2
        a, b = np.random.default_rng(0).random((2, n), dtype=np.float32)
        out, ref = np.empty(n, np.float32), np.empty(n, np.float32)
        kernel(a, b, out)
        np.add(a, b, out=ref)
        assert np.array_equal(out, ref)
        t_sf = best_of(lambda a=a, b=b, out=out: kernel(a, b, out), repeat)
        t_np = best_of(lambda a=a, b=b, ref=ref: np.add(a, b, out=ref), repeat)
        rows.append(
            {
                "n": n,
                "shapeflow_s": t_sf,
                "numpy_s": t_np,
                "ratio": t_np / t_sf,
                "shapeflow_GBps": 3 * a.nbytes / t_sf / 1e9,
                "numpy_GBps": 3 * a.nbytes / t_np / 1e9,
                "target_ratio": 1.0,
            }
        )
    return rows


def numpy_gelu(x, w, b):
    t = x * w + b
    return 0.5 * t * (1.0 + np.tanh(0.7978845608028654 * (t + 0.044715 * t**3)))


def bench_gelu(repeat: int) -> dict:
    kernel = build(gelu_kernel(), "gelu")
    rng = np.random.default_rng(1)
    rows = 1024
    x = rng.standard_normal((rows, BLOCK), dtype=np.float32)
    w = rng.standard_normal(BLOCK, dtype=np.float32)
    b = rng.standard_normal(BLOCK, dtype=np.float32)
    out = np.empty_like(x)
    kernel(x, w, b, out)
    err = float(np.max(np.abs(out - numpy_gelu(x, w, b))))
    t_sf = best_of(lambda: kernel(x, w, b, out), repeat)
    t_np = best_of(lambda: numpy_gelu(x, w, b), repeat)
    return {
        "shape": [rows, BLOCK],
        "shapeflow_s": t_sf,
        "numpy_s": t_np,
        "ratio": t_np / t_sf,
        "max_abs_error": err,
        "target_ratio": 3.0,
    }


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def bench_rows(repeat: int) -> list:
    kernels = {
        "sum": build(row_reduce_kernel("sum"), "rowsum"),
        "max": build(row_reduce_kernel("max"), "rowmax"),
        "softmax": build(softmax_kernel(), "softmax"),
    }
    peers = {"sum": lambda x: x.sum(axis=1), "max": lambda x: x.max(axis=1), "softmax": numpy_softmax}
    targets = {"sum": 1.0, "max": 1.0, "softmax": 2.0}
    rows = []
    for n in (1, 64, 1024, 8192):
        x = np.random.default_rng(n).standard_normal((n, BLOCK), dtype=np.float32)
        for op, kernel in kernels.items():
            out = np.empty((n, BLOCK) if op == "softmax" else n, np.float32)
            kernel(x, out)
            err = float(np.max(np.abs(out - peers[op](x)) / (np.abs(peers[op](x)) + 1e-3)))
            number = 200 if n == 1 else (20 if n == 64 else 1)
            t_sf = best_of(lambda k=kernel, o=out, x=x: k(x, o), repeat, number)
            t_np = best_of(lambda p=peers[op], x=x: p(x), repeat, number)
            rows.append(
                {
                    "op": op,
                    "n": n,
                    "shapeflow_s": t_sf,
                    "numpy_s": t_np,
                    "ratio": t_np / t_sf,
                    "max_rel_error": err,
                    "target_ratio": targets[op],
                }
            )
    return rows


def bench_overhead(repeat: int) -> dict:
    kernel = build(add_kernel(), "add1")
    a, b, out = (np.ones(1, np.float32) for _ in range(3))
    t_sf = best_of(lambda: kernel(a, b, out), repeat, 20000)
    t_np = best_of(lambda: np.add(a, b, out=out), repeat, 20000)
    return {"shapeflow_us": t_sf * 1e6, "numpy_ufunc_us": t_np * 1e6, "target_us": 5.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for parallel loops (0: runtime default)"
    )
    args = parser.parse_args()
    compile_times = bench_compile()  # first: a cold process
    if args.threads:
        threadpool.set_num_threads(args.threads)
    threadpool.load_thread_runtime()  # sets the default wait policy unless one was given
    report = {
        "machine": {
            "cpu": sf.Target("cpu").host_cpu,
            "cpu_count": os.cpu_count(),
            "threads": threadpool.get_num_threads(),
            "parallel_min_work": threadpool.get_parallel_min_work(),
            "libgomp_settings_applied": dict(threadpool.WAIT_POLICY_APPLIED),
            "user_OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "user_GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "copy_GBps": bench_copy_bandwidth(args.repeat),
        },
        "compile": compile_times,
        "add": bench_add(args.repeat),
        "gelu": bench_gelu(args.repeat),
        "rows": bench_rows(args.repeat),
        "overhead": bench_overhead(args.repeat),
    }
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
