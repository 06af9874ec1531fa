"""Parallel loops below the work threshold run on the calling thread, above it on libgomp's team.

Which path ran is observed by counting calls of `GOMP_parallel` (gomp_counting.py). Results are compared
with the reference interpreter on both paths, on shapes including 1 and primes.
"""

import math

import numpy as np
import pytest
from gomp_counting import counting_gomp, runtime_settings
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.tir import (
    Allocate,
    AssertStmt,
    BufferStore,
    DeclBuffer,
    For,
    IfThenElse,
    LetStmt,
    PrimFunc,
    call_intrinsic,
    decl_buffer,
    seq,
)
from shapeflow.ir.tir.interpreter import run as interpret
from shapeflow.runtime import threadpool

F32 = "float32"
I64 = "int64"
ZERO = E.IntImm(I64, 0)
SIZES = st.sampled_from([1, 2, 3, 5, 7, 13, 31, 64, 97])

pytestmark = pytest.mark.skipif(not threadpool.thread_runtime_available(), reason="no libgomp")


def add_one_rows() -> PrimFunc:
    """B[i, j] = A[i, j] + 1 over (n, m): 3 work units per element (load, add, store)."""
    n, m = E.Var("n"), E.Var("m")
    a, b = decl_buffer((n, m), F32, "A"), decl_buffer((n, m), F32, "B")
    i, j = E.Var("i"), E.Var("j")
    body = For(
        i, 0, n, "parallel", For(j, 0, m, "serial", BufferStore(b, a[i, j] + E.FloatImm(F32, 1.0), (i, j)))
    )
    return PrimFunc((a, b), body, {"tir.noalias": True})


def triangle_sums() -> PrimFunc:
    """B[i] = sum_{k <= i} exp(A[i, k]) over (n, n): an inner extent that depends on the parallel loop."""
    n = E.Var("n")
    a, b = decl_buffer((n, n), F32, "A"), decl_buffer((n,), F32, "B")
    acc = decl_buffer((1,), F32, "acc", scope="local")
    i, k = E.Var("i"), E.Var("k")
    inner = For(k, 0, i + 1, "serial", BufferStore(acc, acc[ZERO] + call_intrinsic("exp", a[i, k]), (ZERO,)))
    row = Allocate(
        acc, seq(BufferStore(acc, E.FloatImm(F32, 0.0), (ZERO,)), inner, BufferStore(b, acc[ZERO], (i,)))
    )
    return PrimFunc((a, b), For(i, 0, n, "parallel", row), {"tir.noalias": True})


def ragged_copy() -> PrimFunc:
    """Y[i, k] = X[i, k] * 2 for k < L[i]: an inner extent read from memory (not evaluable up front)."""
    n, m = E.Var("n"), E.Var("m")
    x, y = decl_buffer((n, m), F32, "X"), decl_buffer((n, m), F32, "Y")
    lengths = decl_buffer((n,), I64, "L")
    i, k = E.Var("i"), E.Var("k")
    inner = For(k, 0, lengths[i], "serial", BufferStore(y, x[i, k] * E.FloatImm(F32, 2.0), (i, k)))
    return PrimFunc((x, lengths, y), For(i, 0, n, "parallel", inner), {"tir.noalias": True})


def build(func: PrimFunc, name: str):
    return sf.build(sf.ir.IRModule({name: func}), target="cpu", lower=False)[name]


def check_against_interpreter(kernel, func, inputs, out_shape):
    got = np.zeros(out_shape, F32)
    kernel(*inputs, got)
    want = np.zeros(out_shape, F32)
    interpret(func, *[x.copy() for x in inputs], want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@settings(deadline=None, max_examples=12)
@given(n=SIZES, m=SIZES, force=st.sampled_from(["team", "serial"]))
def test_results_match_the_interpreter_on_both_paths(n, m, force):
    rng = np.random.default_rng(n * 100 + m)
    min_work = 0.0 if force == "team" else math.inf
    with counting_gomp() as calls:
        kernels = {name: build(f(), name) for name, f in [("add", add_one_rows), ("tri", triangle_sums)]}
        kernels["ragged"] = build(ragged_copy(), "ragged")
    with runtime_settings(2, min_work):
        a = rng.standard_normal((n, m), dtype=np.float32)
        check_against_interpreter(kernels["add"], add_one_rows(), [a], (n, m))
        sq = rng.standard_normal((n, n), dtype=np.float32)
        check_against_interpreter(kernels["tri"], triangle_sums(), [sq], (n,))
        lengths = rng.integers(0, m + 1, n).astype(np.int64)
        check_against_interpreter(kernels["ragged"], ragged_copy(), [a, lengths], (n, m))
    expected_calls = 3 if (force == "team" and n > 1) else 0  # one thread is enough for one row
    assert len(calls) == expected_calls


def test_threshold_boundary_is_trip_count_times_body_cost():
    """add_one_rows is estimated at n x m x 3 units: that threshold opens a team, one unit more not."""
    n, m = 6, 11
    with counting_gomp() as calls:
        kernel = build(add_one_rows(), "add_rows")
    a = np.ones((n, m), F32)
    out = np.zeros((n, m), F32)
    for min_work, team in [(n * m * 3, True), (n * m * 3 + 1, False), (0, True), (math.inf, False)]:
        calls.clear()
        with runtime_settings(2, min_work):
            kernel(a, out)
        assert len(calls) == (1 if team else 0), (min_work, calls)
        np.testing.assert_array_equal(out, a + 1)


def test_unknown_inner_extent_counts_a_fixed_trip():
    """An inner extent read from memory counts UNKNOWN_TRIP iterations (3 units each: load, mul, store)."""
    from shapeflow.codegen.llvm.parallel import UNKNOWN_TRIP

    n, m = 4, 40
    with counting_gomp() as calls:
        kernel = build(ragged_copy(), "ragged_t")
    x = np.ones((n, m), F32)
    lengths = np.full(n, m, np.int64)
    for min_work, team in [(n * UNKNOWN_TRIP * 3, True), (n * UNKNOWN_TRIP * 3 + 1, False)]:
        calls.clear()
        with runtime_settings(2, min_work):
            out = np.zeros((n, m), F32)
            kernel(x, lengths, out)
        assert len(calls) == (1 if team else 0)
        np.testing.assert_array_equal(out, 2 * x)


def test_default_threshold_keeps_small_loops_on_the_calling_thread():
    with counting_gomp() as calls:
        kernel = build(add_one_rows(), "add_default")
    with runtime_settings(2, float(threadpool.DEFAULT_PARALLEL_MIN_WORK)):
        small = np.ones((4, 8), F32)
        kernel(small, np.empty_like(small))
        assert calls == []
        rows = threadpool.DEFAULT_PARALLEL_MIN_WORK // (3 * 1024) + 1
        big = np.ones((rows, 1024), F32)
        out = np.empty_like(big)
        kernel(big, out)
        assert calls == [2]
        np.testing.assert_array_equal(out, big + 1)


def test_one_thread_never_opens_a_team():
    with counting_gomp() as calls:
        kernel = build(add_one_rows(), "add_one_thread")
    with runtime_settings(1, 0.0):
        a = np.ones((9, 5), F32)
        kernel(a, np.empty_like(a))
    assert calls == []


def test_threshold_setter_rejects_negative_and_nan():
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            threadpool.set_parallel_min_work(bad)


def blocked_rows() -> PrimFunc:
    """GEMM-like nesting: per row i, `lo = i * m` is let-bound, blocks of `d` columns (a run-time divisor)
    run only when d > 0, and each block's length is a min with the row's end: Y[i, j] = X[i, j] + 1."""
    n, m = E.Var("n"), E.Var("m")
    d = E.Var("d")
    x, y = decl_buffer((n, m), F32, "X"), decl_buffer((n, m), F32, "Y")
    x_flat = decl_buffer((n * m,), F32, "X_flat", data=x.data)
    y_flat = decl_buffer((n * m,), F32, "Y_flat", data=y.data)
    i, blk, j, lo = E.Var("i"), E.Var("blk"), E.Var("j"), E.Var("lo")
    start = lo + blk * d
    length = E.min_expr(d, lo + m - start)
    store = BufferStore(y_flat, x_flat[start + j] + E.FloatImm(F32, 1.0), (start + j,))
    blocks = For(blk, 0, E.floordiv(m + d - 1, d), "serial", For(j, 0, length, "serial", store))
    body = For(i, 0, n, "parallel", LetStmt(lo, i * m, IfThenElse(d > 0, blocks)))
    return PrimFunc((x, y, d), DeclBuffer(x_flat, DeclBuffer(y_flat, body)), {"tir.noalias": True})


def test_estimate_sees_lets_inner_loops_and_guarded_divisions():
    """blocked_rows, n=5, m=12, d=4, at the first iteration (i = blk = 0, lo = 0): per element the store 1,
    its index (lo + blk*d) + j 3, the value's add, load and index 5: 9 units; a block min(d, m) = 4 elements,
    ceil(m / d) = 3 blocks: 108; the if's condition 1 and the let's value 1: 110 per row, 550 in all."""
    n, m, d = 5, 12, 4
    with counting_gomp() as calls:
        kernel = build(blocked_rows(), "blocked")
    x = np.arange(n * m, dtype=F32).reshape(n, m)
    for min_work, team in [(550, True), (551, False)]:
        calls.clear()
        with runtime_settings(2, min_work):
            out = np.zeros_like(x)
            kernel(x, out, d)
        assert len(calls) == (1 if team else 0), min_work
        np.testing.assert_array_equal(out, x + 1)
    for min_work in (0.0, math.inf):
        with runtime_settings(2, min_work):
            out = np.zeros_like(x)
            kernel(x, out, 0)  # no block runs; the estimate divides by max(d, 1) instead of trapping
        np.testing.assert_array_equal(out, np.zeros_like(x))


def checked_double() -> PrimFunc:
    """X[i] = X[i] * 2 in a parallel loop that asserts X[i] != 13 first."""
    n = E.Var("n")
    x = decl_buffer((n,), I64, "X")
    i = E.Var("i")
    check = AssertStmt(x[i] != E.IntImm(I64, 13), "thirteen")
    body = For(i, 0, n, "parallel", seq(check, BufferStore(x, x[i] * 2, (i,))))
    return PrimFunc((x,), body, {"tir.noalias": True})


@pytest.mark.parametrize("where", [0, 1, 50, 98])
def test_failed_assertion_in_a_team_reaches_the_caller(where):
    with counting_gomp() as calls:
        kernel = build(checked_double(), f"checked_{where}")
    x = np.arange(100, dtype=np.int64) + 100
    x[where] = 13
    with runtime_settings(2, 0.0), pytest.raises(sf.Error, match="thirteen"):
        kernel(x)
    assert calls == [2]
    ok = np.arange(100, dtype=np.int64) + 100
    with runtime_settings(2, 0.0):
        kernel(ok)
    np.testing.assert_array_equal(ok, (np.arange(100) + 100) * 2)


@pytest.mark.parametrize("threads", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("n", [1, 2, 7, 31, 97])
def test_every_iteration_runs_once_for_any_thread_count(threads, n):
    """Chunks are claimed dynamically: each iteration must run exactly once, whatever the team size."""
    with counting_gomp():
        kernel = build(checked_double(), f"once_{threads}_{n}")
    x = np.arange(n, dtype=np.int64) + 100
    with runtime_settings(threads, 0.0):
        kernel(x)
    np.testing.assert_array_equal(x, (np.arange(n) + 100) * 2)
