"""The graph interpreter against direct numpy, at several symbolic sizes, and its run-time checks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_graph_builder import build_attention, build_mlp

from shapeflow.errors import ShapeError
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, register_library_function, run
from shapeflow.ir.graph.types import TupleType

SIZES = [1, 2, 3, 7, 13]
rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype("float32")


def np_layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("n", SIZES)
def test_mlp_matches_numpy(n):
    mod, _ = build_mlp()
    x, w1, b1, w2 = randn(n, 32), randn(64, 32), randn(64), randn(64, 10)
    got = run(mod, x, w1, b1, w2, name="mlp")
    pre = x @ w1.T + b1
    h = 0.5 * pre * (1 + np.vectorize(math.erf)(pre / math.sqrt(2)))
    z = h @ w2
    want = z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
    assert got.shape == (n, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("b,s", [(1, 1), (2, 3), (1, 7), (3, 5)])
def test_attention_matches_numpy(b, s):
    mod, _ = build_attention(heads=2, dim=16)
    x = randn(b, s, 16)
    wq, wk, wv, wo = (randn(16, 16) * 0.3 for _ in range(4))
    g, beta = randn(16), randn(16)
    got = run(mod, x, wq, wk, wv, wo, g, beta, name="attention")

    def heads(t):
        return t.reshape(b, s, 2, 8).transpose(0, 2, 1, 3)

    q, k, v = heads(x @ wq.T), heads(x @ wk.T), heads(x @ wv.T)
    p = np_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(8))
    ctx = (p @ v).transpose(0, 2, 1, 3).reshape(b, s, 16)
    want = np_layer_norm(x + ctx @ wo.T, g, beta)
    assert got.shape == (b, s, 16)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def single_op_function(make, *types):
    params = [GraphVar(f"p{i}", t) for i, t in enumerate(types)]
    bb = BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(make(*params))
        bb.emit_func_output(out)
    return bb.get()


@given(
    n=st.sampled_from(SIZES),
    m=st.sampled_from(SIZES),
    name=st.sampled_from(["add", "subtract", "multiply", "maximum", "minimum", "less", "equal"]),
)
@settings(deadline=None, max_examples=30)
def test_broadcasting_binary_ops_match_numpy(n, m, name):
    nv, mv = Var("n"), Var("m")
    mod = single_op_function(
        getattr(op, name), TensorType((nv, 1, mv), "float32"), TensorType((mv,), "float32")
    )
    a, b = randn(n, 1, m), randn(m)
    want = getattr(np, name)(a, b)
    got = run(mod, a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 5])
def test_manipulation_and_reduction_ops_match_numpy(n):
    nv = Var("n")
    t = TensorType((nv, 6), "float32")
    x = randn(n, 6)
    cases = [
        (lambda p: op.reshape(p, (-1, 3)), x.reshape(-1, 3)),
        (lambda p: op.reshape(p, (nv * 2, 3)), x.reshape(n * 2, 3)),
        (lambda p: op.permute_dims(p), x.T),
        (lambda p: op.expand_dims(p, 1), x[:, None]),
        (lambda p: op.flatten(p), x.reshape(-1)),
        (lambda p: op.concat([p, p], axis=1), np.concatenate([x, x], 1)),
        (lambda p: op.broadcast_to(op.expand_dims(p, 0), (4, nv, 6)), np.broadcast_to(x, (4, n, 6))),
        (lambda p: op.sum(p, axis=1, keepdims=True), x.sum(1, keepdims=True)),
        (lambda p: op.mean(p, axis=0), x.mean(0)),
        (lambda p: op.argmax(p, axis=1), x.argmax(1)),
        (lambda p: op.prod(p, axis=(0, 1)), x.prod()),
        (lambda p: op.clip(p, -0.5, 0.5), np.clip(x, -0.5, 0.5)),
        (lambda p: op.where(op.greater(p, 0.0), p, op.neg(p)), np.abs(x)),
        (lambda p: op.astype(p, "float16"), x.astype("float16")),
    ]
    for make, want in cases:
        mod = single_op_function(make, t)
        got = run(mod, x)
        assert got.shape == want.shape, make
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_rms_norm_matches_numpy():
    nv = Var("n")
    mod = single_op_function(
        lambda x, w: op.rms_norm(x, w, axes=(-1,), epsilon=1e-6),
        TensorType((nv, 8), "float32"),
        TensorType((8,), "float32"),
    )
    x, w = randn(3, 8), randn(8)
    want = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(run(mod, x, w), want, rtol=1e-5, atol=1e-6)


def test_split_and_take():
    nv = Var("n")
    x = randn(4, 6)
    mod = single_op_function(lambda p: op.split(p, (1, 4), axis=1), TensorType((nv, 6), "float32"))
    got = run(mod, x)
    assert isinstance(got, tuple) and [g.shape for g in got] == [(4, 1), (4, 3), (4, 2)]
    np.testing.assert_array_equal(got[1], x[:, 1:4])
    emb = randn(11, 3)
    ids = np.array([[0, 10], [5, 5], [1, 2]], dtype="int64")
    mod = single_op_function(op.take, TensorType((11, 3), "float32"), TensorType((nv, Var("m")), "int64"))
    np.testing.assert_array_equal(run(mod, emb, ids), emb[ids])


def test_unprovable_broadcast_is_checked_at_run_time():
    nv, mv = Var("n"), Var("m")
    mod = single_op_function(op.add, TensorType((nv,), "float32"), TensorType((mv,), "float32"))
    assert run(mod, randn(1), randn(4)).shape == (4,)
    assert run(mod, randn(4), randn(4)).shape == (4,)
    with pytest.raises(ShapeError) as info:
        run(mod, randn(3), randn(4))
    assert info.value.function == "main" and "add" in str(info.value)


def test_unprovable_reshape_is_checked_at_run_time():
    nv = Var("n")
    mod = single_op_function(lambda p: op.reshape(p, (nv, 3)), TensorType((nv, 4), "float32"))
    assert run(mod, randn(0, 4)).shape == (0, 3)
    with pytest.raises(ShapeError, match="reshape"):
        run(mod, randn(2, 4))


def test_boundary_errors_name_function_parameter_dimension():
    nv = Var("n")
    mod = single_op_function(op.add, TensorType((nv, 4), "float32"), TensorType((nv, 4), "float32"))
    with pytest.raises(ShapeError) as info:
        run(mod, randn(3, 4), randn(5, 4))
    e = info.value
    assert (e.function, e.parameter, e.dimension, e.actual) == ("main", "p1", 0, 5)
    assert "n" in str(e.expected) and "3" in str(e.expected)
    with pytest.raises(ShapeError) as info:
        run(mod, randn(3, 4).astype("float64"), randn(3, 4))
    assert (info.value.parameter, info.value.expected, info.value.actual) == ("p0", "float32", "float64")
    with pytest.raises(ShapeError) as info:
        run(mod, randn(3, 4, 1), randn(3, 4))
    assert (info.value.parameter, info.value.expected, info.value.actual) == ("p0", 2, 3)
    with pytest.raises(ShapeError):
        run(mod, randn(3, 4))
    with pytest.raises(ShapeError, match="expected a tensor"):
        run(mod, "text", randn(3, 4))


def test_compound_dims_checked_after_all_parameters_bind():
    nv = Var("n")
    mod = single_op_function(
        lambda a, b: op.add(op.reshape(a, (nv, 2)), b),
        TensorType((nv * 2,), "float32"),
        TensorType((nv, 2), "float32"),
    )
    assert run(mod, randn(6), randn(3, 2)).shape == (3, 2)
    with pytest.raises(ShapeError) as info:
        run(mod, randn(8), randn(3, 2))
    assert info.value.parameter == "p0" and info.value.dimension == 0


def test_var_bounds_checked():
    nv = Var("n")
    x = GraphVar("x", TensorType((nv,), "float32"))
    bb = BlockBuilder()
    with bb.function("f", [x], attrs={"var_bounds": {"n": (1, 8)}}):
        bb.emit_func_output(bb.emit(op.exp(x)))
    mod = bb.get()
    assert run(mod, randn(8), name="f").shape == (8,)
    with pytest.raises(ShapeError) as info:
        run(mod, randn(9), name="f")
    assert info.value.function == "f" and info.value.actual == 9


def test_match_cast_checked_at_run_time():
    x = GraphVar("x", TensorType(None, "float32", ndim=2))
    a = Var("a")
    bb = BlockBuilder()
    with bb.function("f", [x]):
        y = bb.match_cast(x, TensorType((a, 4), "float32"), name="y")
        bb.emit_func_output(bb.emit(op.sum(y, axis=1)))
    mod = bb.get()
    assert run(mod, randn(3, 4), name="f").shape == (3,)
    with pytest.raises(ShapeError) as info:
        run(mod, randn(3, 5), name="f")
    assert (info.value.parameter, info.value.dimension, info.value.actual) == ("y", 1, 5)


def test_call_dps_library():
    def double(x, out):
        out[...] = x * 2

    register_library_function("test.graph.double", double, override=True)
    nv = Var("n")
    mod = single_op_function(
        lambda p: op.call_dps_library("test.graph.double", [p], TensorType((nv,), "float32")),
        TensorType((nv,), "float32"),
    )
    x = randn(5)
    np.testing.assert_array_equal(run(mod, x), x * 2)


def test_call_tir_runs_prim_func_through_loop_interpreter():
    pytest.importorskip("shapeflow.ir.tir.interpreter")
    from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer

    n = Var("n")
    A, B = (decl_buffer((n,), "float32", name) for name in "AB")
    i = Var("i")
    body = For(i, 0, n, ForKind.SERIAL, BufferStore(B, A[i] + 1.0, (i,)))
    prim = PrimFunc((A, B), body)
    bb = BlockBuilder()
    callee = bb.add_func(prim, "add_one")
    m = Var("m")
    x = GraphVar("x", TensorType((m,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(op.call_tir(callee, [x], TensorType((m,), "float32")))
            z = bb.emit_output(op.multiply(y, 3.0))
        bb.emit_func_output(z)
    mod = bb.get()
    for size in (1, 7):
        x = randn(size)
        np.testing.assert_allclose(run(mod, x), (x + 1) * 3, rtol=1e-6)


def test_tuple_outputs_and_tuple_type_check():
    nv = Var("n")
    mod = single_op_function(lambda p: op.split(p, 2), TensorType((nv,), "float32"))
    assert isinstance(mod["main"].ret_type, TupleType)
    a, b = run(mod, np.arange(6, dtype="float32"))
    assert a.tolist() == [0, 1, 2] and b.tolist() == [3, 4, 5]
    with pytest.raises(ShapeError, match="split"):
        run(mod, np.arange(5, dtype="float32"))


def test_if_with_sequence_branches():
    from shapeflow.ir.graph import BindingBlock, GraphFunction, If, SeqExpr, VarBinding, join, type_of

    nv = Var("n")
    t = TensorType((nv,), "float32")
    x, flag = GraphVar("x", t), GraphVar("flag", TensorType((), "bool"))
    a, b = GraphVar("a", t), GraphVar("b", t)
    then_branch = SeqExpr([BindingBlock([VarBinding(a, op.exp(x))])], a)
    else_branch = SeqExpr([BindingBlock([VarBinding(b, op.neg(x))])], b)
    body = If(flag, then_branch, else_branch)
    assert type_of(body).shape[0] is nv and join(t, TensorType((nv,), "float16")).dtype is None
    func = GraphFunction([x, flag], body, t, {"global_symbol": "main"})
    xs = randn(5)
    np.testing.assert_allclose(run(func, xs, np.array(True)), np.exp(xs), rtol=1e-6)
    np.testing.assert_array_equal(run(func, xs, np.array(False)), -xs)


@given(
    n=st.sampled_from(SIZES),
    dims=st.lists(st.sampled_from([1, 2, 3, 5]), min_size=1, max_size=3),
    hole=st.integers(0, 3),
    keep_symbolic=st.booleans(),
)
@settings(deadline=None, max_examples=40)
def test_reshape_minus_one_inference_agrees_with_numpy(n, dims, hole, keep_symbolic):
    from shapeflow.ir.graph import type_of
    from shapeflow.ir.graph.shape import evaluate

    nv = Var("n")
    in_type = TensorType((nv, *dims), "float32")
    new = [nv if keep_symbolic else n, *dims]
    new[hole % len(new)] = -1
    call = op.reshape(GraphVar("x", in_type), tuple(new))
    inferred = type_of(call)
    x = randn(n, *dims)
    numeric = [n if d is nv else d for d in new]
    want = x.reshape(numeric).shape
    assert tuple(evaluate(d, {nv: n}) for d in inferred.shape) == want
    mod = single_op_function(lambda p: op.reshape(p, tuple(new)), in_type)
    assert run(mod, x).shape == want
