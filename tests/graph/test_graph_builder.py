"""BlockBuilder: models written with the builder, normalization, typing, and structural equality."""

import numpy as np
import pytest

from shapeflow.errors import ShapeError, VerifyError
from shapeflow.ir import IRModule, Var, structural_equal, structural_hash
from shapeflow.ir.graph import (
    BlockBuilder,
    Call,
    Constant,
    DataflowBlock,
    DataflowVar,
    GraphFunction,
    GraphVar,
    MatchCast,
    SeqExpr,
    TensorType,
    TupleType,
    VarBinding,
    const,
    op,
    verify,
)
from shapeflow.ir.graph.shape import compare_dims


def build_mlp(batch_name="n", x_name="x"):
    n = Var(batch_name)
    x = GraphVar(x_name, TensorType((n, 32), "float32"))
    w1 = GraphVar("w1", TensorType((64, 32), "float32"))
    b1 = GraphVar("b1", TensorType((64,), "float32"))
    w2 = GraphVar("w2", TensorType((64, 10), "float32"))
    bb = BlockBuilder()
    with bb.function("mlp", [x, w1, b1, w2]):
        with bb.dataflow():
            h = bb.emit(op.gelu(op.linear(x, w1, b1)))
            logits = bb.emit(op.matmul(h, w2))
            out = bb.emit_output(op.log_softmax(logits, axis=-1))
        bb.emit_func_output(out)
    return bb.get(), n


def build_attention(heads=2, dim=16):
    b, s = Var("b"), Var("s")
    dh = dim // heads
    x = GraphVar("x", TensorType((b, s, dim), "float32"))
    wq, wk, wv, wo = (GraphVar(f"w{c}", TensorType((dim, dim), "float32")) for c in "qkvo")
    gamma, beta = (
        GraphVar("gamma", TensorType((dim,), "float32")),
        GraphVar("beta", TensorType((dim,), "float32")),
    )
    bb = BlockBuilder()
    with bb.function("attention", [x, wq, wk, wv, wo, gamma, beta]):
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
    return bb.get(), (b, s)


def test_mlp_is_typed_normalized_and_verifies():
    mod, n = build_mlp()
    func = mod["mlp"]
    assert isinstance(func, GraphFunction) and func.attrs["global_symbol"] == "mlp"
    assert func.ret_type.shape[0] is n and compare_dims(func.ret_type.shape[1], 10) is True
    (block,) = func.body.blocks
    assert isinstance(block, DataflowBlock)
    # nested calls were bound one at a time: linear, gelu, matmul, log_softmax
    ops = [b.value.op.name for b in block.bindings]
    assert ops == ["linear", "gelu", "matmul", "log_softmax"]
    assert all(isinstance(b.var, DataflowVar) for b in block.bindings[:-1])
    assert type(block.bindings[-1].var) is GraphVar
    verify(mod)


def test_attention_block_types():
    mod, (b, s) = build_attention()
    ret = mod["attention"].ret_type
    assert ret.shape[0] is b and ret.shape[1] is s and compare_dims(ret.shape[2], 16) is True
    verify(mod)
    scores = [x for x in mod["attention"].body.blocks[0].bindings if x.value.op.name == "softmax"][0]
    assert [compare_dims(d, w) for d, w in zip(scores.var.type.shape, (b, 2, s, s))] == [True] * 4


def test_structural_equality_up_to_renaming_and_hash():
    a, _ = build_mlp()
    b, _ = build_mlp("batch", "inp")
    assert structural_equal(a, b)
    assert structural_hash(a) == structural_hash(b)
    c, _ = build_attention()
    assert not structural_equal(a["mlp"], c["attention"])


def test_constants_compare_by_value():
    assert structural_equal(
        const(np.arange(6, dtype="float32").reshape(2, 3)), const(np.arange(6.0).reshape(2, 3), "float32")
    )
    assert not structural_equal(const(np.zeros(3, "float32")), const(np.ones(3, "float32")))
    assert not structural_equal(const(np.zeros(3, "float32")), const(np.zeros(3, "float64")))
    c = Constant.from_array([[1, 2], [3, 4]], "int32")
    assert c.array.dtype == np.int32 and c.array.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError):
        c.array[0, 0] = 5  # constants are immutable


def test_match_cast_defines_new_symbolic_vars():
    x = GraphVar("x", TensorType(None, "float32", ndim=2))
    a, c = Var("a"), Var("c")
    bb = BlockBuilder()
    with bb.function("f", [x]):
        y = bb.match_cast(x, TensorType((a, c), "float32"))
        z = bb.emit(op.reshape(y, (c, a)))
        bb.emit_func_output(z)
    mod = bb.get()
    block = mod["f"].body.blocks[0]
    assert isinstance(block.bindings[0], MatchCast)
    assert mod["f"].ret_type.shape[0] is c
    verify(mod)


def test_emit_outside_dataflow_and_tuple_output():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 6), "float32"))
    bb = BlockBuilder()
    with bb.function("f", [x]):
        parts = bb.emit(op.split(x, 3, axis=1))
        bb.emit_func_output([parts, op.sum(x, axis=0)])
    func = bb.get()["f"]
    assert isinstance(func.ret_type, TupleType) and len(func.ret_type.fields) == 2
    assert isinstance(func.body, SeqExpr) and not isinstance(func.body.blocks[0], DataflowBlock)
    assert all(isinstance(b, VarBinding) and type(b.var) is GraphVar for b in func.body.blocks[0].bindings)


def test_call_of_another_graph_function_substitutes_symbolic_dims():
    mod, _ = build_mlp()
    bb = BlockBuilder(mod)
    m = Var("m")
    x = GraphVar("x", TensorType((m, 32), "float32"))
    ws = [GraphVar(p.name, p.type) for p in mod["mlp"].params[1:]]
    with bb.function("main", [x, *ws]):
        y = bb.emit(op.call("mlp", x, *ws))
        bb.emit_func_output(y)
    out = bb.get()
    assert out["main"].ret_type.shape[0] is m
    verify(out)


def test_builder_errors():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 3), "float32"))
    bb = BlockBuilder()
    with pytest.raises(ShapeError):
        with bb.function("f", [x]):
            bb.emit(op.add(x, GraphVar("y", TensorType((n, 4), "float32"))))
    bb = BlockBuilder()
    with pytest.raises(VerifyError, match="emit_func_output"):
        with bb.function("g", [x]):
            bb.emit(op.exp(x))
    bb = BlockBuilder()
    with pytest.raises(VerifyError, match="dataflow"):
        with bb.function("h", [x]):
            with bb.dataflow():
                bb.emit_func_output(x)
    with pytest.raises(VerifyError):
        BlockBuilder().emit(op.exp(x))


def test_module_holds_graph_and_prim_functions():
    from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer

    n = Var("n")
    A, B = decl_buffer((n,), "float32", "A"), decl_buffer((n,), "float32", "B")
    i = Var("i")
    prim = PrimFunc((A, B), For(i, 0, n, ForKind.SERIAL, BufferStore(B, A[i] + 1.0, (i,))))
    bb = BlockBuilder()
    gv = bb.add_func(prim, "add_one")
    m = Var("m")
    x = GraphVar("x", TensorType((m,), "float32"))
    with bb.function("main", [x]):
        y = bb.emit(op.call_tir(gv, [x], TensorType((m,), "float32")))
        bb.emit_func_output(y)
    mod = bb.get()
    assert isinstance(mod, IRModule) and set(mod.functions) == {"add_one", "main"}
    binding = mod["main"].body.blocks[0].bindings[0]
    assert isinstance(binding.value, Call) and binding.value.op.name == "call_tir"
    verify(mod)
