"""Per-kernel dispatch overhead of the VM on tiny shapes (a script, not a test; prints JSON).

A chain of K elementwise ops on a (n, 4) float32 tensor, compiled at opt_level 0 (no fusion, so K kernels),
run at n = 1. Reported: microseconds per call of the whole executable, per kernel in it, the same with a
chain of 1 (the fixed cost of a call: boundary checks and the interpreter loop), and, for reference, one
checked call of a compiled kernel through its Library (`lib["k"](a, out)`).

    python tests/vm/measure_dispatch.py
"""

import json
import time

import numpy as np

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op


def chain(k: int):
    n = Var("n")
    x = GraphVar("x", TensorType((n, 4), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = x
            for i in range(k):
                y = bb.emit(op.exp(y) if i % 2 else op.neg(y))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


def best_of(fn, repeat=7, number=2000) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main():
    k = 32
    exe_k = sf.compile(chain(k), opt_level=0)
    exe_1 = sf.compile(chain(1), opt_level=0)
    kernels = [i for i in exe_k.program.functions["main"].code if i[0] == "call_tir"]
    assert len(kernels) == k, "fusion must be off to count kernels"
    x = np.random.default_rng(0).standard_normal((1, 4)).astype("float32")
    per_call_k = best_of(lambda: exe_k(x))
    per_call_1 = best_of(lambda: exe_1(x))
    name = exe_1.program.kernels[0]
    kernel = exe_1.library[name]
    out = np.empty_like(x)
    direct = best_of(lambda: kernel(x, out))
    print(
        json.dumps(
            {
                "kernels_in_chain": k,
                "us_per_call_chain": round(per_call_k, 2),
                "us_per_kernel": round(per_call_k / k, 3),
                "us_per_kernel_marginal": round((per_call_k - per_call_1) / (k - 1), 3),
                "us_per_call_single_kernel": round(per_call_1, 2),
                "us_checked_library_call": round(direct, 2),
                "target_us_per_kernel": 10.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
