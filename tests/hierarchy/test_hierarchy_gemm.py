"""GEMM families vs numpy: every M of the issue's list, N and K with primes and non-multiples of the SIMD
width, symbolic and constant sizes, dense (transposed weights), batched, and the errors users can cause."""

import numpy as np
import pytest
from hierarchy_helpers import fake_table
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.errors import ShapeError, UnsupportedError
from shapeflow.passes.hierarchy import build_batched_gemm, build_dense, build_gemm

M_VALUES = [1, 2, 3, 5, 7, 16, 17, 31, 64, 100, 127, 128, 255]
NK_VALUES = [(1, 1), (16, 16), (17, 13), (33, 97), (64, 128), (100, 37), (131, 257)]


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(actual, expected, k):
    tol = 1e-4 * max(1.0, np.sqrt(k)) * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("n,k", NK_VALUES)
def test_symbolic_family_every_m(sym_gemm, n, k):
    b = _rand(k, n, seed=1)
    packed = sym_gemm.pack_weights(b)
    assert packed.data.shape == (-(-n // sym_gemm.nr), k, sym_gemm.nr)
    for m in M_VALUES:
        a = _rand(m, k, seed=m)
        _close(sym_gemm(a, packed), a @ b, k)


def test_every_decomposition_is_correct(sym_gemm):
    """Not only the chosen one: each tile choice the cost model may make computes the same product."""
    m, n, k = 37, 70, 150
    a, b = _rand(m, k), _rand(k, n, seed=2)
    packed = sym_gemm.pack_weights(b)
    kernel = sym_gemm.library[f"gemm_{sym_gemm.mrs[0]}"]
    tiles = [(1, 1, 6, 1, 1), (2, 1, 12, 2, 7), (1, 2, 5, 1, 150), (3, 3, 1, 9, 64), (2, 2, 37, 3, 200)]
    for pm, pn, mc, ncp, kc in tiles:
        for pack_a in (0, 1):
            c = np.full((m, n), np.nan, np.float32)
            kernel(a, packed.data, c, pm, pn, mc, ncp, kc, pack_a)
            _close(c, a @ b, k)


@settings(deadline=None, max_examples=40)
@given(m=st.integers(1, 70), n=st.integers(1, 80), k=st.integers(1, 80))
def test_random_shapes(sym_gemm, m, n, k):
    a, b = _rand(m, k, seed=m), _rand(k, n, seed=n)
    _close(sym_gemm(a, b), a @ b, k)


def test_constant_nk_build(host):
    kernel = build_gemm(97, 61, hardware=host, table=fake_table(host))
    assert (kernel.nr, kernel.mrs) == (2 * host.lanes(4), (6,))
    b = _rand(61, 97, seed=3)
    packed = kernel.pack_weights(b)
    for m in (1, 6, 13, 255):
        a = _rand(m, 61, seed=m)
        _close(kernel(a, packed), a @ b, 61)
    with pytest.raises(ShapeError):
        kernel.pack_weights(_rand(61, 96))
    assert build_gemm(97, 61, hardware=host, table=fake_table(host)) is kernel  # built once


def test_dense_transposed_weights(host):
    kernel = build_dense(None, None, hardware=host, table=fake_table(host))
    w = _rand(45, 70, seed=4)  # (N, K)
    packed = kernel.pack_weights(w)
    for m in (1, 7, 100):
        a = _rand(m, 70, seed=m)
        _close(kernel(a, packed), a @ w.T, 70)


def test_batched(host):
    kernel = build_batched_gemm(None, None, hardware=host, table=fake_table(host))
    a = _rand(3, 17, 40, seed=5)
    b = _rand(3, 40, 33, seed=6)
    _close(kernel(a, b), a @ b, 40)  # per-batch B, packed per call
    shared = _rand(40, 33, seed=7)
    _close(kernel(a, kernel.pack_weights(shared)), a @ shared, 40)
    with pytest.raises(ShapeError):
        kernel(a, _rand(2, 40, 33))


def test_output_argument_fast_path(sym_gemm):
    """With C given, 2-D float32 contiguous arguments go straight to native code: same results, and
    anything unusual (non-contiguous A, wrong C) still reaches the checked path and its errors."""
    b = _rand(53, 29, seed=8)
    packed = sym_gemm.pack_weights(b)
    for m in (1, 8, 130):
        a = _rand(m, 53, seed=m)
        c = np.full((m, 29), np.nan, np.float32)
        assert sym_gemm(a, packed, c) is c
        _close(c, a @ b, 53)
    a = _rand(53, 9).T  # not C-contiguous: copied by the checked path
    _close(sym_gemm(a, packed, np.empty((9, 29), np.float32)), a @ b, 53)
    with pytest.raises(ShapeError):
        sym_gemm(_rand(4, 53), packed, np.empty((4, 28), np.float32))
    with pytest.raises(ShapeError):
        sym_gemm(_rand(4, 53), packed, np.empty((4, 29), np.float64))


def test_user_errors(sym_gemm):
    packed = sym_gemm.pack_weights(_rand(8, 5))
    with pytest.raises(ShapeError):
        sym_gemm(_rand(3, 9), packed)  # K differs
    with pytest.raises(ShapeError):
        sym_gemm(_rand(3, 8).astype(np.float64), packed)
    with pytest.raises(ShapeError):
        sym_gemm(_rand(3, 8), packed, np.empty((3, 4), np.float32))
    with pytest.raises(UnsupportedError):
        build_gemm(8, 8, dtype="float16")
    with pytest.raises(ShapeError):
        sym_gemm.pack_weights(_rand(2, 8, 5))  # a stack of weights for a kernel that is not batched


def test_output_in_place_and_k_zero(sym_gemm):
    a, b = _rand(4, 0), _rand(0, 3)
    c = np.full((4, 3), 7.0, np.float32)
    assert sym_gemm(a, b, c) is c
    assert (c == 0).all()


def test_family_ir_verifies_and_round_trips():
    """The generated loop IR is ordinary IR: it verifies and prints/parses back structurally equal."""
    import shapeflow as sf
    from shapeflow.ir.tir.verify import verify
    from shapeflow.passes.hierarchy import MicroKernelShape, build_gemm_func, build_pack_func
    from shapeflow.passes.hierarchy.gemm_ir import LEVELS, GemmSignature

    funcs = [
        build_gemm_func(GemmSignature(MicroKernelShape(3, 16, 16))),
        build_gemm_func(GemmSignature(MicroKernelShape(2, 32, 16), 64, None, batched=True, shared_b=False)),
        build_pack_func(16, None, 40, transposed=True, batched=True),
    ]
    for func in funcs:
        verify(func)
        sf.ir.assert_structural_equal(sf.ir.parse(func.script()), func)
    text = funcs[0].script()
    for level in LEVELS:  # every hierarchy loop is there, annotated with its level and class
        assert f"for {level.var} in" in text
    assert "temporal-reduction" in text and "parallel" in text
