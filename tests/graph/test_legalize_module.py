"""Whole-module legalization: every op call becomes a call_tir of a PrimFunc of the module, identical kernels
are added once, and the graph interpreter gives the same results before and after."""

import numpy as np
import pytest
from test_legalize_helpers import random_array

from shapeflow.errors import UnsupportedError
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphFunction, GraphVar, TensorType, op, run, verify
from shapeflow.ir.graph.legalize import legalize_module
from shapeflow.ir.graph.shape import evaluate, free_vars
from shapeflow.ir.tir.function import PrimFunc


def mlp():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 8), "float32"))
    w1, b1 = GraphVar("w1", TensorType((16, 8), "float32")), GraphVar("b1", TensorType((16,), "float32"))
    w2, b2 = GraphVar("w2", TensorType((16, 16), "float32")), GraphVar("b2", TensorType((16,), "float32"))
    w3 = GraphVar("w3", TensorType((16, 4), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, w1, b1, w2, b2, w3]):
        with bb.dataflow():
            h = bb.emit(op.relu(op.linear(x, w1, b1)))
            h = bb.emit(op.relu(op.linear(h, w2, b2)))  # same kernels as the layer above except shapes
            h = bb.emit(op.relu(h))
            out = bb.emit_output(op.log_softmax(op.matmul(h, w3), axis=-1))
        bb.emit_func_output(out)
    return bb.get()


def attention(heads=2, dim=8):
    b, s = Var("b"), Var("s")
    dh = dim // heads
    x = GraphVar("x", TensorType((b, s, dim), "float32"))
    wq, wk, wv, wo = (GraphVar(f"w{c}", TensorType((dim, dim), "float32")) for c in "qkvo")
    gamma, beta = (
        GraphVar("gamma", TensorType((dim,), "float32")),
        GraphVar("beta", TensorType((dim,), "float32")),
    )
    bb = BlockBuilder()
    with bb.function("main", [x, wq, wk, wv, wo, gamma, beta]):
        with bb.dataflow():

            def heads_first(t):
                return op.permute_dims(op.reshape(t, (b, s, heads, dh)), (0, 2, 1, 3))

            q = bb.emit(heads_first(op.linear(x, wq)))
            k = bb.emit(heads_first(op.linear(x, wk)))
            v = bb.emit(heads_first(op.linear(x, wv)))
            scores = bb.emit(op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 1.0 / np.sqrt(dh)))
            probs = bb.emit(op.softmax(scores, axis=-1))
            ctx = bb.emit(op.reshape(op.permute_dims(op.matmul(probs, v), (0, 2, 1, 3)), (b, s, -1)))
            y = bb.emit(op.add(x, op.linear(ctx, wo)))
            out = bb.emit_output(op.layer_norm(y, gamma, beta, axes=(-1,), epsilon=1e-5))
        bb.emit_func_output(out)
    return bb.get()


def _op_calls(func: GraphFunction):
    names = []
    for block in func.body.blocks:
        for binding in block.bindings:
            names.append(binding.value.op.name)
    return names


@pytest.mark.parametrize("build", [mlp, attention])
def test_legalized_module_matches_interpreter(build):
    mod = build()
    legal = legalize_module(mod)
    verify(legal)
    assert set(_op_calls(legal["main"])) == {"call_tir"}
    kernels = [f for f in legal.functions.values() if isinstance(f, PrimFunc)]
    assert kernels
    params = mod["main"].params
    symbols = free_vars([d for p in params for d in p.type.shape])
    for size in (1, 3, 7):
        env = {v: (2 if v.name == "b" else size) for v in symbols}
        args = [random_array([evaluate(d, env) for d in p.type.shape], "float32", -1.0, 1.0) for p in params]
        want = run(mod, *args)
        got = run(legal, *args)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_identical_kernels_are_added_once():
    legal = legalize_module(mlp())
    names = [b.value.args[0].name for blk in legal["main"].body.blocks for b in blk.bindings]
    # relu over (n, 16) appears three times: one kernel serves all of them
    relu_calls = [n for n in names if n.startswith("relu")]
    assert len(relu_calls) == 3 and len(set(relu_calls)) == 1
    assert len(set(names)) < len(names)


def test_strict_refuses_unknown_shapes():
    x = GraphVar("x", TensorType(None, "float32", 2))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        out = bb.emit(op.exp(x))
        bb.emit_func_output(out)
    mod = bb.get()
    assert _op_calls(legalize_module(mod)["main"]) == ["exp"]  # left as an op call
    with pytest.raises(UnsupportedError):
        legalize_module(mod, strict=True)
