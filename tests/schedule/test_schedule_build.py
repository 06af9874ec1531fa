"""Scheduled kernels compiled with shapeflow.build compute what the interpreter computes (and numpy)."""

from __future__ import annotations

import numpy as np
import pytest

import shapeflow as sf
from shapeflow import te
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.stmt import For, ForKind
from shapeflow.passes.schedule import Schedule

SIZES = (1, 2, 7, 17, 33)


def _matmul(k_extent=64, n_extent=48):
    m = te.var("m")
    A = te.placeholder((m, k_extent), "float32", name="A")
    W = te.placeholder((k_extent, n_extent), "float32", name="W")
    k = te.reduce_axis((0, k_extent), name="k")
    M = te.compute((m, n_extent), lambda i, j: te.sum(A[i, k] * W[k, j], axis=k), name="M")
    return te.create_prim_func([A, W, M])


def _softmax(width=32):
    n = te.var("n")
    A = te.placeholder((n, width), "float32", name="A")
    k = te.reduce_axis((0, width), name="k")
    mx = te.compute((n,), lambda i: te.max(A[i, k], axis=k), name="mx")
    E = te.compute((n, width), lambda i, j: te.exp(A[i, j] - mx[i]), name="E")
    k2 = te.reduce_axis((0, width), name="k2")
    S = te.compute((n,), lambda i: te.sum(E[i, k2], axis=k2), name="S")
    O = te.compute((n, width), lambda i, j: E[i, j] / S[i], name="O")
    return te.create_prim_func([A, O])


def _kinds(func) -> set:
    return {f.kind for f in collect(func.body, For)}


def tiled_matmul(tail: str = "predicate") -> Schedule:
    sch = Schedule(_matmul())
    b = sch.get_block("M")
    i, j, k = sch.get_loops(b)
    io, ii = sch.split(i, [None, 4], tail=tail)
    jo, ji = sch.split(j, [None, 16])
    sch.reorder(io, jo, k, ii, ji)
    sch.decompose_reduction(b, k)
    sch.parallel(io)
    sch.vectorize(ji)
    sch.vectorize(sch.get_loops(sch.get_block("M_init"))[-1])
    return sch


def vectorized_softmax() -> Schedule:
    sch = Schedule(_softmax())
    o = sch.get_block("O")
    i, j = sch.get_loops(o)
    for name in ("S", "E", "mx"):
        sch.compute_at(sch.get_block(name), i)
    sch.parallel(i)
    for name in ("E", "O"):
        inner = sch.get_loops(sch.get_block(name))[-1]
        _, lanes = sch.split(inner, [None, 8])
        sch.vectorize(lanes)
    return sch


def _check(sch: Schedule, make_inputs, out_shape, reference):
    lib = sf.build(sch.mod)
    rng = np.random.default_rng(1)
    for size in SIZES:
        inputs = make_inputs(rng, size)
        compiled = np.zeros(out_shape(size), "float32")
        lib[sch.func_name](*inputs, compiled)
        interpreted = np.zeros(out_shape(size), "float32")
        run(sch.func, *inputs, interpreted)
        np.testing.assert_allclose(compiled, interpreted, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(compiled, reference(*inputs), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tail", ["predicate", "partition"])
def test_tiled_parallel_vectorized_matmul_builds_and_matches(tail):
    sch = tiled_matmul(tail)
    assert {ForKind.PARALLEL, ForKind.VECTORIZED} <= _kinds(sch.func)
    _check(
        sch,
        lambda rng, s: [rng.random((s, 64), dtype="float32"), rng.random((64, 48), dtype="float32")],
        lambda s: (s, 48),
        lambda a, w: a @ w,
    )


def test_vectorized_softmax_builds_and_matches():
    sch = vectorized_softmax()
    assert {ForKind.PARALLEL, ForKind.VECTORIZED} <= _kinds(sch.func)

    def reference(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    _check(sch, lambda rng, s: [rng.standard_normal((s, 32), dtype="float32")], lambda s: (s, 32), reference)


def test_rfactor_and_cached_matmul_builds_and_matches():
    sch = Schedule(_matmul(k_extent=30, n_extent=8))
    b = sch.get_block("M")
    i, j, k = sch.get_loops(b)
    _, ki = sch.split(k, [None, 4])
    sch.rfactor(ki, 0)
    sch.cache_read(sch.get_block("M_rf"), 1, "local")
    cache = sch.cache_write(sch.get_block("M"), 0, "local")
    sch.reverse_compute_at(cache, sch.get_loops(sch.get_block("M"))[0])
    _check(
        sch,
        lambda rng, s: [rng.random((s, 30), dtype="float32"), rng.random((30, 8), dtype="float32")],
        lambda s: (s, 8),
        lambda a, w: a @ w,
    )


def test_packed_and_padded_matmul_builds_and_matches():
    sch = Schedule(_matmul(k_extent=10, n_extent=6))
    sch.pad(sch.get_block("M"), [4, 8, 4])
    sch.transform_layout(sch.get_block("W_pad"), 0, lambda k, j: (j // 4, k, j % 4))
    sch.storage_align(sch.get_block("A_pad"), 0, 0, 16, 1)
    _check(
        sch,
        lambda rng, s: [rng.random((s, 10), dtype="float32"), rng.random((10, 6), dtype="float32")],
        lambda s: (s, 6),
        lambda a, w: a @ w,
    )
