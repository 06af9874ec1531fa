"""Compiled Allocate is zero-filled every time it runs, as the interpreter defines it (the fuzzer found
kernels that read an allocation before writing it getting stack garbage), and the fill costs nothing where
the kernel initializes the buffer itself: LLVM removes the memset."""

import sys
from pathlib import Path

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.codegen.llvm import generate_llvm_ir, host_cpu, optimize, parse_and_verify, target_machine
from shapeflow.codegen.llvm.jit import patch_loop_ids
from shapeflow.ir import expr as E
from shapeflow.ir.tir import Allocate, BufferStore, For, PrimFunc, decl_buffer, seq
from shapeflow.ir.tir.interpreter import run as interpret

I64 = "int64"
ZERO = E.IntImm(I64, 0)
WIDTH = 3


def read_then_dirty(dtype: str, heap: bool) -> PrimFunc:
    """For each row i: OUT[i, j] = tmp[j], then tmp[j] = a nonzero value. The stack slot of a constant-size
    Allocate is hoisted out of the loop, and freed heap blocks are reused, so without a fill on every run
    the second row (or the second call) would see the first one's values."""
    n = E.Var("n")
    out = decl_buffer((n, WIDTH), dtype, "OUT")
    extent = E.Max(n, E.IntImm(I64, WIDTH)) if heap else E.IntImm(I64, WIDTH)
    tmp = decl_buffer((extent,), dtype, "tmp", scope="local")
    i, j, k = E.Var("i"), E.Var("j"), E.Var("k")
    dirty = E.make_const(dtype, 1)
    body = Allocate(
        tmp,
        seq(
            For(j, 0, WIDTH, "serial", BufferStore(out, tmp[j], (i, j))),
            For(k, 0, extent, "serial", BufferStore(tmp, dirty, (k,))),
        ),
    )
    return PrimFunc((out,), For(i, 0, n, "serial", body), {"tir.noalias": True})


@pytest.mark.parametrize("heap", [False, True], ids=["stack", "heap"])
@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float32", "float64", "bool"])
def test_allocate_reads_zero_on_every_run_like_the_interpreter(dtype, heap):
    func = read_then_dirty(dtype, heap)
    kernel = sf.build(func, lower=False)["main"]
    for rows in (1, 5, 40):
        for _ in range(2):  # a second call may get the heap block the first one freed
            got = np.full((rows, WIDTH), 1, dtype=np.dtype(dtype))
            kernel(got)
            want = np.full((rows, WIDTH), 1, dtype=np.dtype(dtype))
            interpret(func, want)
            np.testing.assert_array_equal(want, np.zeros_like(want))
            np.testing.assert_array_equal(got, want)


def test_large_constant_allocation_goes_to_the_heap_and_is_zero_filled():
    n = E.Var("n")
    out = decl_buffer((n,), "float32", "OUT")
    big = decl_buffer((8192,), "float32", "big", scope="local")  # 32 KiB: over the stack limit
    i, k = E.Var("i"), E.Var("k")
    body = Allocate(
        big,
        seq(
            BufferStore(out, big[i * 61], (i,)),
            For(k, 0, 8192, "serial", BufferStore(big, E.FloatImm("float32", 3.5), (k,))),
        ),
    )
    kernel = sf.build(PrimFunc((out,), For(i, 0, n, "serial", body)), lower=False)["main"]
    got = np.full(100, 9.0, np.float32)
    kernel(got)
    np.testing.assert_array_equal(got, np.zeros(100, np.float32))


def _optimized_ir(func: PrimFunc, name: str) -> tuple[str, str]:
    text, _ = generate_llvm_ir({name: func})
    module = parse_and_verify(patch_loop_ids(text))
    cpu, features = host_cpu()
    optimize(module, target_machine(cpu, features))
    return text, str(module)


def test_fill_is_removed_where_the_kernel_initializes_the_buffer():
    """The row-reduction benchmark kernels store their accumulator before reading it: the memset is emitted
    and LLVM deletes it, and the inner loop is still vectorized."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from elementwise import row_reduce_kernel, softmax_kernel  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    for name, func in (("rowsum", row_reduce_kernel("sum")), ("softmax", softmax_kernel())):
        raw, optimized = _optimized_ir(func, name)
        assert "llvm.memset" in raw, name
        assert "memset" not in optimized, name
        assert "x float>" in optimized, f"{name}: no vector code left"
