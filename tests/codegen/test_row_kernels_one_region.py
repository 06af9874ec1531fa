"""softmax and layer_norm compiled by `shapeflow.compile` start one parallel region per call (their blocks
are computed inside one parallel row loop), and still equal the graph interpreter at sizes 1 and primes."""

import numpy as np
import pytest
from gomp_counting import counting_gomp, runtime_settings

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.ir.tir.stmt import For, ForKind
from shapeflow.runtime import threadpool

pytestmark = pytest.mark.skipif(not threadpool.thread_runtime_available(), reason="no libgomp")
DIMS = {"s": (1, 64)}


def single_op(kind: str):
    """One kernel: softmax over the last axis of (12, s, s), or layer_norm over the last axis of (s, 40)."""
    s = Var("s")
    if kind == "softmax":
        x = GraphVar("x", TensorType((12, s, s), "float32"))
        params, make = [x], lambda: op.softmax(x, axis=-1)
    else:
        x = GraphVar("x", TensorType((s, 40), "float32"))
        g = GraphVar("g", TensorType((40,), "float32"))
        beta = GraphVar("beta", TensorType((40,), "float32"))
        params, make = [x, g, beta], lambda: op.layer_norm(x, g, beta, axes=(-1,))
    bb = BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(make())
        bb.emit_func_output(out)
    return bb.get()


def inputs(kind: str, s: int, rng) -> list:
    if kind == "softmax":
        return [rng.standard_normal((12, s, s)).astype("float32")]
    return [rng.standard_normal((s, 40)).astype("float32")] + [
        rng.standard_normal(40).astype("float32") for _ in range(2)
    ]


@pytest.fixture(scope="module")
def compiled():
    with counting_gomp() as calls:
        exes = {kind: sf.compile(single_op(kind), dims=DIMS) for kind in ("softmax", "layer_norm")}
    return exes, calls


@pytest.mark.parametrize("kind", ["softmax", "layer_norm"])
def test_one_parallel_loop_not_inside_another_loop(compiled, kind):
    exes, _ = compiled
    kernels = [k.abi.func for k in exes[kind].library.kernels.values()]
    assert len(kernels) == 1
    func = kernels[0]
    loops = collect(func.body, For)
    parallel = [x for x in loops if x.kind == ForKind.PARALLEL]
    assert len(parallel) == 1
    enclosing = [x for x in loops if x is not parallel[0] and parallel[0] in collect(x.body, For)]
    assert enclosing == []


@pytest.mark.parametrize("kind", ["softmax", "layer_norm"])
@pytest.mark.parametrize("s", [1, 2, 7, 13, 64])
def test_one_team_per_call_and_interpreter_results(compiled, kind, s):
    exes, calls = compiled
    rng = np.random.default_rng(s)
    args = inputs(kind, s, rng)
    want = run(single_op(kind), *args)
    for min_work in (0.0, float("inf")):
        calls.clear()
        with runtime_settings(2, min_work):
            got = exes[kind](*args)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        team_possible = min_work == 0.0 and (kind == "softmax" or s > 1)  # softmax runs its 12 heads
        assert calls == ([2] if team_possible else [])
