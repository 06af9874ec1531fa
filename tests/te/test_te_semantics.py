"""What te functions compute: run them on the reference interpreter and compare with numpy, at symbolic
sizes 1, a prime and a larger value. Every function must also pass the loop-IR verifier."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow import te
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.verify import verify

SIZES = [1, 13, 64]
rng = np.random.default_rng(0)


def rand(*shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def build(tensors, **kwargs):
    func = te.create_prim_func(tensors, **kwargs)
    verify(func)
    return func


@pytest.mark.parametrize("n", SIZES)
def test_elementwise(n):
    N = te.var("n")
    A = te.placeholder((N, 3), name="A")
    B = te.placeholder((N, 3), name="B")
    C = te.compute((N, 3), lambda i, j: te.tanh(A[i, j]) * B[i, j] - te.sqrt(te.abs(A[i, j])), name="C")
    func = build([A, B, C])
    a, b, c = rand(n, 3), rand(n, 3), np.zeros((n, 3), "float32")
    run(func, a, b, c)
    np.testing.assert_allclose(c, np.tanh(a) * b - np.sqrt(np.abs(a)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_broadcasting_add_of_a_row_vector(n):
    N = te.var("n")
    A = te.placeholder((N, 7), name="A")
    b = te.placeholder((7,), name="b")
    C = te.compute((N, 7), lambda i, j: A[i, j] + b[j], name="C")
    a, bias, c = rand(n, 7), rand(7), np.zeros((n, 7), "float32")
    run(build([A, b, C]), a, bias, c)
    np.testing.assert_allclose(c, a + bias, rtol=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_design_example_rowsum_of_exp(n):
    N = te.var("n")
    A = te.placeholder((N, 1024), "float32", name="A")
    k = te.reduce_axis((0, 1024), name="k")
    B = te.compute((N,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    a, out = rng.random((n, 1024)).astype("float32"), np.empty(n, "float32")
    run(build([A, B]), a, out)
    np.testing.assert_allclose(out, np.exp(a).sum(axis=1), rtol=1e-4)


@pytest.mark.parametrize("n", SIZES)
def test_row_max_and_min_over_two_axes(n):
    N = te.var("n")
    A = te.placeholder((N, 5, 3), name="A")
    k1, k2 = te.reduce_axis((0, 5), name="k1"), te.reduce_axis((0, 3), name="k2")
    mx = te.compute((N,), lambda i: te.max(A[i, k1, k2], axis=[k1, k2]), name="mx")
    r = te.reduce_axis((0, 3), name="r")
    mn = te.compute((N, 5), lambda i, j: te.min(A[i, j, r], axis=r), name="mn")
    a = rand(n, 5, 3)
    out_max, out_min = np.empty(n, "float32"), np.empty((n, 5), "float32")
    run(build([A, mx, mn]), a, out_max, out_min)
    np.testing.assert_array_equal(out_max, a.max(axis=(1, 2)))
    np.testing.assert_array_equal(out_min, a.min(axis=2))


@pytest.mark.parametrize("n", SIZES)
def test_softmax_with_intermediates(n):
    N = te.var("n")
    A = te.placeholder((N, 10), name="A")
    k1 = te.reduce_axis((0, 10), name="k1")
    mx = te.compute((N,), lambda i: te.max(A[i, k1], axis=k1), name="row_max")
    ex = te.compute((N, 10), lambda i, j: te.exp(A[i, j] - mx[i]), name="exps")
    k2 = te.reduce_axis((0, 10), name="k2")
    sm = te.compute((N,), lambda i: te.sum(ex[i, k2], axis=k2), name="row_sum")
    out = te.compute((N, 10), lambda i, j: ex[i, j] / sm[i], name="softmax")
    a, y = rand(n, 10) * 5, np.empty((n, 10), "float32")
    run(build([A, out]), a, y)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("m", SIZES)
def test_matmul_with_symbolic_m(m):
    M = te.var("M")
    A = te.placeholder((M, 16), name="A")
    B = te.placeholder((16, 5), name="B")
    k = te.reduce_axis((0, 16), name="k")
    C = te.compute((M, 5), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    a, b, c = rand(m, 16), rand(16, 5), np.empty((m, 5), "float32")
    run(build([A, B, C]), a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", SIZES)
def test_conv1d_with_stride_and_padding(n):
    """Padding as its own compute (an `if` around the load), then a strided convolution over it."""
    N = te.var("n")
    X = te.placeholder((N,), name="X")
    W = te.placeholder((3,), name="W")
    P = te.compute((N + 2,), lambda i: te.if_then_else(te.all(i >= 1, i <= N), X[i - 1], 0.0), name="pad")
    k = te.reduce_axis((0, 3), name="k")
    Y = te.compute(((N - 1) // 2 + 1,), lambda i: te.sum(P[i * 2 + k] * W[k], axis=k), name="Y")
    x, w = rand(n), rand(3)
    y = np.empty((n - 1) // 2 + 1, "float32")
    run(build([X, W, Y]), x, w, y)
    padded = np.concatenate([[0.0], x, [0.0]]).astype("float32")
    expected = np.array([padded[2 * i : 2 * i + 3] @ w for i in range(len(y))], "float32")
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_conv2d_like_index_arithmetic(n):
    N = te.var("n")
    X = te.placeholder((N + 2, N + 2), name="X")
    W = te.placeholder((3, 3), name="W")
    kh, kw = te.reduce_axis((0, 3), name="kh"), te.reduce_axis((0, 3), name="kw")
    Y = te.compute((N, N), lambda i, j: te.sum(X[i + kh, j + kw] * W[kh, kw], axis=[kh, kw]), name="Y")
    x, w, y = rand(n + 2, n + 2), rand(3, 3), np.empty((n, n), "float32")
    run(build([X, W, Y]), x, w, y)
    expected = sum(x[a : a + n, b : b + n] * w[a, b] for a in range(3) for b in range(3))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", SIZES)
def test_custom_comm_reducer_sum_of_squares_and_absmax(n):
    N = te.var("n")
    A = te.placeholder((N, 6), name="A")
    absmax = te.comm_reducer(
        lambda x, y: te.maximum(te.abs(x), te.abs(y)), lambda dt: te.const(0.0, dt), name="absmax"
    )
    k = te.reduce_axis((0, 6), name="k")
    B = te.compute((N,), lambda i: absmax(A[i, k], axis=k), name="B")
    a, b = rand(n, 6), np.empty(n, "float32")
    run(build([A, B]), a, b)
    np.testing.assert_array_equal(b, np.abs(a).max(axis=1))


@pytest.mark.parametrize("n", SIZES)
def test_where_predicate_prefix_sum(n):
    N = te.var("n")
    A = te.placeholder((N,), name="A")
    k = te.reduce_axis((0, N), name="k")
    B = te.compute((N,), lambda i: te.sum(A[k], axis=k, where=k <= i), name="cumsum")
    a, b = rand(n), np.full(n, 99.0, "float32")
    run(build([A, B]), a, b)
    np.testing.assert_allclose(b, np.cumsum(a), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", SIZES)
def test_scalar_var_parameters(n):
    N = te.var("n")
    alpha = te.var("alpha", "float32")
    A = te.placeholder((N,), name="A")
    B = te.compute((N,), lambda i: A[i] * alpha + te.cast(i, "float32"), name="B")
    a, b = rand(n), np.empty(n, "float32")
    run(build([A, alpha, B]), a, 2.5, b)
    np.testing.assert_allclose(b, a * np.float32(2.5) + np.arange(n, dtype="float32"), rtol=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_multi_output_and_reduce_axis_offset(n):
    N = te.var("n")
    A = te.placeholder((N, 9), name="A")
    lo, hi = te.compute((N, 9), lambda i, j: (A[i, j] - 1.0, A[i, j] * 2.0), name="pm")
    k = te.reduce_axis((2, 7), name="k")
    S = te.compute((N,), lambda i: te.sum(hi[i, k], axis=k, init=te.const(1.0, "float32")), name="S")
    a = rand(n, 9)
    out_lo, out_s = np.empty((n, 9), "float32"), np.empty(n, "float32")
    run(build([A, lo, S]), a, out_lo, out_s)
    np.testing.assert_allclose(out_lo, a - 1.0, rtol=1e-6)
    np.testing.assert_allclose(out_s, 1.0 + (a[:, 2:7] * 2.0).sum(axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_integer_prod_and_floor_division(n):
    N = te.var("n")
    A = te.placeholder((N, 4), "int32", name="A")
    k = te.reduce_axis((0, 4), name="k")
    P = te.compute((N,), lambda i: te.prod(A[i, k], axis=k), name="P")
    D = te.compute((N, 4), lambda i, j: te.floordiv(A[i, j], 3) + te.floormod(A[i, j], 3), name="D")
    a = rng.integers(-9, 9, size=(n, 4)).astype("int32")
    p, d = np.empty(n, "int32"), np.empty((n, 4), "int32")
    run(build([A, P, D]), a, p, d)
    np.testing.assert_array_equal(p, a.prod(axis=1))
    np.testing.assert_array_equal(d, a // 3 + a % 3)


@settings(deadline=None, max_examples=25)
@given(
    n=st.sampled_from([1, 2, 3, 5, 7, 11]),
    lo=st.integers(0, 4),
    width=st.integers(1, 4),
    op=st.sampled_from(["sum", "max", "min", "prod"]),
)
def test_reductions_over_any_range_match_numpy(n, lo, width, op):
    """Every standard reducer over any [lo, lo + width) of a row."""
    N = te.var("n")
    A = te.placeholder((N, 8), "float64", name="A")
    k = te.reduce_axis((lo, lo + width), name="k")
    reducer = getattr(te, op)
    B = te.compute((N,), lambda i: reducer(A[i, k], axis=k), name="B")
    a, b = np.random.default_rng(n).standard_normal((n, 8)), np.empty(n, "float64")
    run(build([A, B]), a, b)
    part = a[:, lo : lo + width]
    expected = getattr(np, op)(part, axis=1)
    np.testing.assert_allclose(b, expected, rtol=1e-12)
