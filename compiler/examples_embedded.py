"""The embedded example behind `shapeflow example` and the README's first command.

It is the DESIGN.md kernel: B[i] = sum_k exp(A[i, k]) over a symbolic number of rows. One build serves every
row count; each run is checked against numpy.
"""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

import shapeflow as sf
from shapeflow import te
from shapeflow.errors import CompileError


def make_rowsum_module(columns: int = 1024) -> sf.ir.IRModule:
    n = te.var("n")
    A = te.placeholder((n, columns), "float32", name="A")
    k = te.reduce_axis((0, columns), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    return sf.ir.IRModule({"rowsum": te.create_prim_func([A, B])})


def run_example(sizes: list[int], out: TextIO) -> int:
    mod = make_rowsum_module()
    text = mod.script()
    if not sf.ir.structural_equal(sf.ir.parse(text), mod):
        raise CompileError("the example module does not survive a print/parse round trip")
    start = time.perf_counter()
    lib = sf.build(mod, target="cpu")
    build_s = time.perf_counter() - start
    print(f"built 'rowsum' (symbolic n) for the host CPU in {build_s * 1000:.0f} ms", file=out)
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, 1024), dtype=np.float32)
        b = np.empty(n, "float32")
        lib["rowsum"](a, b)
        expected = np.exp(a.astype(np.float64)).sum(axis=1)
        err = float(np.max(np.abs(b - expected) / np.abs(expected)))
        reps = max(1, min(200, 2_000_000 // (n * 1024)))
        t0 = time.perf_counter()
        for _ in range(reps):
            lib["rowsum"](a, b)
        per_call = (time.perf_counter() - t0) / reps
        status = "ok" if err < 1e-4 else "WRONG"
        print(f"  n={n:<6d} max rel err {err:.1e} [{status}]  {per_call * 1e6:10.1f} us/call", file=out)
        if status != "ok":
            return 1
    return 0
