"""Round trips of graph functions in the text format: parse(to_text(m)) is structurally m, printing the
parsed module gives the same text, and the parsed program computes what the original computes."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_tir import ir_prim_funcs

from shapeflow.ir import IRModule, Var, assert_structural_equal, structural_equal
from shapeflow.ir import expr as E
from shapeflow.ir.graph import (
    BindingBlock,
    BlockBuilder,
    Call,
    DataflowBlock,
    DataflowVar,
    ExternFunc,
    GraphFunction,
    GraphVar,
    If,
    MatchCast,
    ObjectType,
    Op,
    PrimType,
    PrimValue,
    SeqExpr,
    ShapeExpr,
    ShapeType,
    TensorType,
    Tuple,
    TupleGetItem,
    TupleType,
    VarBinding,
    const,
    op,
    run,
    verify,
)
from shapeflow.ir.graph.types import FuncType
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer

SETTINGS = settings(deadline=None, max_examples=40, suppress_health_check=list(HealthCheck))


def round_trip(obj):
    text = to_text(obj)
    back = parse(text)
    assert_structural_equal(back, obj)
    assert to_text(back) == text
    return text, back


# -- models written with the builder ---------------------------------------------------------------


def build_mlp():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 32), "float32"))
    w1, b1 = GraphVar("w1", TensorType((64, 32), "float32")), GraphVar("b1", TensorType((64,), "float32"))
    w2 = GraphVar("w2", TensorType((64, 10), "float32"))
    bb = BlockBuilder()
    with bb.function("mlp", [x, w1, b1, w2], attrs={"var_bounds": {"n": (1, 2048)}}):
        with bb.dataflow():
            h = bb.emit(op.gelu(op.linear(x, w1, b1)))
            out = bb.emit_output(op.log_softmax(op.matmul(h, w2), axis=-1))
        bb.emit_func_output(out)
    return bb.get()


def build_attention(heads=2, dim=8):
    b, s = Var("b"), Var("s")
    dh = dim // heads
    x = GraphVar("x", TensorType((b, s, dim), "float32"))
    wq, wk, wv = (GraphVar(f"w{c}", TensorType((dim, dim), "float32")) for c in "qkv")
    gamma, beta = (
        GraphVar("gamma", TensorType((dim,), "float32")),
        GraphVar("beta", TensorType((dim,), "float32")),
    )
    bb = BlockBuilder()
    with bb.function("attention", [x, wq, wk, wv, gamma, beta]):
        with bb.dataflow():

            def heads_first(t):
                return op.permute_dims(op.reshape(t, (b, s, heads, dh)), (0, 2, 1, 3))

            q, k, v = (bb.emit(heads_first(op.linear(x, w))) for w in (wq, wk, wv))
            scores = bb.emit(op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 1.0 / np.sqrt(dh)))
            ctx = bb.emit(op.matmul(op.softmax(scores, axis=-1), v))
            merged = bb.emit(op.reshape(op.permute_dims(ctx, (0, 2, 1, 3)), (b, s, -1)))
            out = bb.emit_output(op.layer_norm(op.add(x, merged), gamma, beta, epsilon=1e-6))
        bb.emit_func_output(out)
    return bb.get()


def build_shapes():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 6), "float32"))
    bb = BlockBuilder()
    with bb.function("shapes", [x]):
        with bb.dataflow():
            r = bb.emit(op.reshape(x, (n * 2, 3)))
            parts = bb.emit(op.split(r, 3, axis=1))
            cat = bb.emit(op.concat([TupleGetItem(parts, 2), TupleGetItem(parts, 0)], axis=1))
            flat = bb.emit(op.reshape(cat, (n, -1)))
            out = bb.emit_output(op.sum(op.expand_dims(flat, 0), axis=(0,), keepdims=False))
        pieces = bb.emit(op.split(out, (1, 3), axis=1))
        bb.emit_func_output([TupleGetItem(pieces, 1), out])
    return bb.get()


def build_match_cast():
    x = GraphVar("x", TensorType(None, "float32", ndim=2))
    a, c = Var("a"), Var("c")
    bb = BlockBuilder()
    with bb.function("f", [x]):
        y = bb.match_cast(x, TensorType((a, c), "float32"))
        z = bb.emit(op.reshape(y, (c, a)))
        bb.emit_func_output(z)
    return bb.get()


def build_mixed():
    n = Var("n")
    A, B = decl_buffer((n,), "float32", "A"), decl_buffer((n,), "float32", "B")
    i = Var("i")
    prim = PrimFunc(
        (A, B), For(i, 0, n, ForKind.SERIAL, BufferStore(B, A[i] + E.FloatImm("float32", 1.0), (i,)))
    )
    bb = BlockBuilder()
    add_one = bb.add_func(prim, "add_one")
    m = Var("m")
    x = GraphVar("x", TensorType((m,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(op.call_tir(add_one, [x], TensorType((m,), "float32")))
            z = bb.emit_output(op.multiply(y, const(np.full((1,), 2.0, "float32"))))
        bb.emit_func_output(z)
    mod = bb.get()
    bb = BlockBuilder(mod)
    k = Var("k")
    x2 = GraphVar("x", TensorType((k,), "float32"))
    with bb.function("outer", [x2]):
        twice = bb.emit(op.call("main", x2))
        bb.emit_func_output(op.call("main", twice))
    return bb.get()


MODELS = {
    "mlp": build_mlp,
    "attention": build_attention,
    "shapes": build_shapes,
    "match_cast": build_match_cast,
    "mixed": build_mixed,
}


def test_builder_models_round_trip_and_compute_the_same():
    rng = np.random.default_rng(0)
    inputs = {
        "mlp": lambda: [
            rng.standard_normal(s).astype("float32") for s in ((3, 32), (64, 32), (64,), (64, 10))
        ],
        "attention": lambda: [
            rng.standard_normal(s).astype("float32") for s in ((2, 5, 8), *[(8, 8)] * 3, (8,), (8,))
        ],
        "shapes": lambda: [rng.standard_normal((5, 6)).astype("float32")],
        "match_cast": lambda: [rng.standard_normal((3, 7)).astype("float32")],
        "mixed": lambda: [rng.standard_normal(7).astype("float32")],
    }
    for name, build in MODELS.items():
        mod = build()
        verify(mod)
        _, back = round_trip(mod)
        verify(back)
        entry = {"mixed": "outer", "match_cast": "f"}.get(name, name)
        args = inputs[name]()
        expected, actual = run(mod, *args, name=entry), run(back, *args, name=entry)
        for e, a in zip(*(v if isinstance(v, tuple) else (v,) for v in (expected, actual))):
            np.testing.assert_array_equal(a, e)


def test_printed_text_reads_like_the_format():
    text = to_text(build_mlp())
    assert "@R.function" in text and "with R.dataflow():" in text and "R.output(" in text
    assert 'def mlp(x: R.Tensor((n, 32), "float32")' in text
    assert "R.func_attr({'global_symbol': 'mlp', 'var_bounds': {'n': (1, 2048)}})" in text
    # attributes equal to their defaults are left out; inferred binding types are not repeated
    assert "R.log_softmax(lv" in text and "axis=-1" not in text and ": R.Tensor" not in text.split("\n", 5)[5]
    mixed = to_text(build_mixed())
    assert (
        "@T.prim_func" in mixed and 'R.call_tir(Module.add_one, (x,), out=R.Tensor((m,), "float32"))' in mixed
    )
    assert "Module.main(x, type_args=(" in mixed
    shapes = to_text(build_shapes())
    assert "R.split(lv1, indices_or_sections=3, axis=1)" in shapes and "lv3 = lv2[2]" in shapes
    assert (
        "R.concat(lv3, lv4, axis=1)" in shapes
        and "R.split(gv8, indices_or_sections=(1, 3), axis=1)" in shapes
    )
    assert 'R.match_cast(x, R.Tensor((a, c), "float32"))' in to_text(build_match_cast())


def test_module_with_graph_and_random_prim_funcs():
    @given(prim=ir_prim_funcs())
    @SETTINGS
    def check(prim):
        n = Var("n")
        x = GraphVar("x", TensorType((n, 4), "float32"))
        bb = BlockBuilder()
        callee = bb.add_func(prim, "kernel")
        with bb.function("main", [x]):
            y = bb.emit(op.call_tir(callee, [x], TensorType((n, 4), "float32"), tir_vars=[n]))
            bb.emit_func_output(y)
        mod = bb.get()
        text, back = round_trip(mod)
        assert text.index("@T.prim_func") < text.index("@R.function")
        assert isinstance(back["kernel"], PrimFunc) and isinstance(back["main"], GraphFunction)

    check()


# -- every node and type -----------------------------------------------------------------------------


def test_if_with_sequence_branches_as_body_and_as_bindings():
    n = Var("n")
    t = TensorType((n,), "float32")
    x, flag = GraphVar("x", t), GraphVar("flag", TensorType((), "bool"))
    a, b, y, q = (GraphVar(c, t) for c in "abyq")
    body = If(
        flag,
        SeqExpr([BindingBlock([VarBinding(a, op.exp(x))])], a),
        SeqExpr([BindingBlock([VarBinding(b, op.neg(x))])], b),
    )
    func = GraphFunction([x, flag], body, t, {"global_symbol": "main"})
    text, back = round_trip(func)
    assert "    if flag:\n        a = R.exp(x)\n        return a\n    else:" in text
    xs = np.arange(4, dtype="float32")
    np.testing.assert_array_equal(run(back, xs, np.array(False)), -xs)
    # an If bound to a variable, with a nested If and branches that are not sequences
    inner = If(flag, x, SeqExpr([BindingBlock([VarBinding(q, op.exp(x))])], q))
    body = SeqExpr([BindingBlock([VarBinding(y, If(flag, SeqExpr([], x), inner))])], op.add(y, x))
    func = GraphFunction([x, flag], body, t, {})
    text, back = round_trip(func)
    assert "y = R.bare(x)" in text and "return R.add(y, x)" in text
    np.testing.assert_array_equal(run(back, xs, np.array(True), name="main"), xs + xs)
    # an If in an argument position prints as R.If(...)
    func = GraphFunction([x, flag], SeqExpr([], op.add(If(flag, x, x), x)), t, {})
    assert "R.If(flag, x, x)" in round_trip(func)[0]


def test_blocks_that_must_not_merge_and_sequence_values():
    n = Var("n")
    t = TensorType((n,), "float32")
    x = GraphVar("x", t)
    d, s, z, u, w = (
        DataflowVar("d", t),
        GraphVar("s", t),
        GraphVar("z", t),
        GraphVar("u", t),
        GraphVar("w", t),
    )
    body = SeqExpr(
        [
            BindingBlock([VarBinding(u, op.exp(x))]),
            BindingBlock([]),
            BindingBlock([VarBinding(w, op.exp(u))]),
            BindingBlock(
                [
                    VarBinding(
                        z,
                        SeqExpr(
                            [
                                DataflowBlock([VarBinding(d, op.exp(x))]),
                                BindingBlock([VarBinding(s, op.exp(x))]),
                            ],
                            s,
                        ),
                    )
                ]
            ),
            DataflowBlock([]),
        ],
        z,
    )
    func = GraphFunction([x], body, t, {})
    text, back = round_trip(func)
    assert text.count("with R.bindings():") == 2 and "with R.seq():" in text
    assert [type(b) for b in back.body.blocks] == [
        BindingBlock,
        BindingBlock,
        BindingBlock,
        BindingBlock,
        DataflowBlock,
    ]


def test_every_type_and_leaf_expression():
    n, k = Var("n"), Var("k", "int32")
    x = GraphVar("x", TensorType((n,), "float32"))
    params = [
        x,
        GraphVar("shape2", ShapeType(ndim=2)),
        GraphVar("shape_any", ShapeType()),
        GraphVar("tup", TupleType((TensorType(None, None, 3), TensorType(), TensorType(None, "int8")))),
        GraphVar("empty", TupleType(())),
        GraphVar("scalar", PrimType("float32")),
        GraphVar("fn", FuncType((TensorType(None, "float16", -1),), ObjectType())),
        GraphVar("obj", ObjectType()),
        GraphVar("expr_dims", TensorType((n * 2 + 1, 3, 1), None)),
        GraphVar("zero_d", TensorType((), "bool")),
        GraphVar("known_shape", ShapeType((n, 4))),
    ]
    r, e, g = GraphVar("r", ObjectType()), GraphVar("e", ObjectType()), GraphVar("g", ObjectType())
    body = SeqExpr(
        [
            BindingBlock(
                [
                    VarBinding(r, Call(params[6], (x,), {}, (TensorType(),))),
                    VarBinding(
                        e,
                        Call(
                            ExternFunc("lib.f"),
                            (x, Op("exp"), PrimValue(k), PrimValue(E.FloatImm("float32", 0.5))),
                        ),
                    ),
                    VarBinding(g, TupleGetItem(params[3], 1)),
                ]
            )
        ],
        Tuple((ShapeExpr((n, 4)), PrimValue(n * 2), Tuple(()), Tuple((g,)))),
    )
    func = GraphFunction(params, body, ObjectType(), {"global_symbol": "types"})
    text, _ = round_trip(func)
    for piece in (
        "R.Shape(ndim=2)", "R.Shape()", "R.Tuple(R.Tensor(ndim=3), R.Tensor(), R.Tensor(dtype=\"int8\"))",
        "R.Tuple()", 'R.Prim("float32")', 'R.Callable((R.Tensor(dtype="float16"),), R.Object)', "R.Object",
        "R.Tensor((n * 2 + 1, 3, 1))", 'R.Tensor((), "bool")', "R.Shape([n, 4])", 'k = T.var("int32")',
        'R.extern("lib.f")(x, R.op("exp"), R.prim_value(k), R.prim_value(T.float32(0.5)))',
        "fn(x, type_args=(R.Tensor(),))", "(R.shape([n, 4]), R.prim_value(n * 2), (), (g,))",
    ):  # fmt: skip
        assert piece in text, piece


def test_constants_small_inline_large_and_odd_in_metadata():
    rng = np.random.default_rng(1)
    big = rng.standard_normal((100, 3)).astype("float32")
    values = [
        const(np.array(True)),
        const(np.arange(6, dtype="int32").reshape(2, 3)),
        const(np.array([1.5, -0.0], "float16")),
        const(np.zeros((0, 3), "float32")),
        const(np.array([np.nan, -np.inf], "float32")),
        const(big),
        const(np.array(7, "int64")),
        const(np.array([1e-45, 3.4e38], "float32")),
        const(np.array([255], "uint8")),
    ]
    shared = values[5]
    func = GraphFunction([], SeqExpr([], Tuple((*values, shared))), ObjectType(), {"global_symbol": "consts"})
    for obj in (func, IRModule({"consts": func})):
        text, back = round_trip(obj)
        assert 'R.const(True, "bool")' in text and 'R.const([[0, 1, 2], [3, 4, 5]], "int32")' in text
        assert 'R.const([1.5, -0.0], "float16")' in text and 'R.const(7, "int64")' in text
        assert text.count("R.const_ref(") == 4 and text.count('"c2"') == 3  # shared constant: one entry
        assert len(text) < big.nbytes * 2  # base64, not a literal per element
        fields = (back if isinstance(back, GraphFunction) else back["consts"]).body.body.fields
        np.testing.assert_array_equal(fields[5].array, big)
        assert fields[4].data == values[4].data


def test_attrs_with_symbolic_values_dtypes_and_non_default_settings():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 4), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        a = bb.emit(op.reshape(x, (n * 2, 2)))
        b = bb.emit(op.astype(a, "float16"))
        c = bb.emit(op.matmul(b, const(np.ones((2, 2), "float16")), out_dtype="float32"))
        d = bb.emit(op.clip(c, min=-1.0, max=float("inf")))
        e = bb.emit(op.sum(d, axis=(0, 1), keepdims=True))
        bb.emit_func_output(op.broadcast_to(e, (n, 1)))
    text, back = round_trip(bb.get())
    assert "shape=(n * 2, 2)" in text and 'dtype="float16"' in text and 'out_dtype="float32"' in text
    assert 'max=float("inf")' in text and "keepdims=True" in text
    xs = np.arange(12, dtype="float32").reshape(3, 4) / 10
    np.testing.assert_array_equal(run(back, xs), run(bb.get(), xs))


# -- random programs -------------------------------------------------------------------------------

UNARY = ["exp", "tanh", "relu", "neg", "sigmoid", "abs", "gelu", "silu"]
BINARY = ["add", "multiply", "subtract", "maximum"]


@st.composite
def graph_programs(draw):
    """A random program over (n, 4) float32 tensors: elementwise chains, broadcasting constants, reductions
    broadcast back, reshapes and transposes and back, split and concat, match_cast, blocks of both kinds."""
    n = Var(draw(st.sampled_from(["n", "batch", "lv1", "x"])))
    x = GraphVar("x", TensorType((n, 4), "float32"))
    flag = GraphVar("flag", TensorType((), "bool"))
    bb = BlockBuilder()
    steps = draw(st.lists(st.integers(0, 9), min_size=1, max_size=8))
    with bb.function("main", [x, flag]):
        values = [x]
        in_dataflow = False
        flow = None
        for step in steps:
            v = values[draw(st.integers(0, len(values) - 1))]
            if step == 0:
                expr = getattr(op, draw(st.sampled_from(UNARY)))(v)
            elif step == 1:
                other = values[draw(st.integers(0, len(values) - 1))]
                expr = getattr(op, draw(st.sampled_from(BINARY)))(v, other)
            elif step == 2:
                size = draw(st.sampled_from([(4,), (1, 4), (20, 4)]))
                rows = size[0] if len(size) == 2 else 1
                data = np.arange(np.prod(size), dtype="float32").reshape(size) / 7
                c = const(data)
                expr = op.add(v, c) if rows != 20 else op.add(v, op.sum(c, axis=0))
            elif step == 3:
                expr = op.add(v, op.max(v, axis=1, keepdims=True))
            elif step == 4:
                expr = op.reshape(op.reshape(v, (n, 2, 2)), (n, -1))
            elif step == 5:
                expr = op.permute_dims(op.softmax(op.permute_dims(v, (1, 0)), axis=0), (1, 0))
            elif step == 6:
                parts = bb.emit(op.split(v, 2, axis=1))
                expr = op.concat([TupleGetItem(parts, 1), TupleGetItem(parts, 0)], axis=1)
            elif step == 7:
                values.append(bb.match_cast(v, TensorType((Var("m"), 4), "float32")))
                continue
            elif step == 8:
                # An If bound to a variable: each branch a sequence with its own bindings.
                a, b = GraphVar("a", v.type), GraphVar("b", v.type)
                then_branch = SeqExpr([BindingBlock([VarBinding(a, op.exp(v))])], a)
                else_branch = SeqExpr([BindingBlock([VarBinding(b, op.neg(v))])], op.add(b, v))
                values.append(bb.emit(If(flag, then_branch, else_branch)))
                continue
            else:
                expr = op.multiply(v, draw(st.sampled_from([0.5, -2.0, 3.0])))
            if draw(st.booleans()) and not in_dataflow:
                flow = bb.dataflow()
                flow.__enter__()
                in_dataflow = True
            if in_dataflow:
                values = [bb.emit_output(expr)]
                flow.__exit__(None, None, None)
                in_dataflow = False
            else:
                values.append(bb.emit(expr))
        bb.emit_func_output(values[-1])
    return bb.get()


@given(mod=graph_programs(), size=st.sampled_from([1, 2, 3, 7]), flag=st.booleans())
@SETTINGS
def test_random_programs_round_trip_and_compute_the_same(mod, size, flag):
    text, back = round_trip(mod)
    verify(back)
    xs = (np.arange(size * 4, dtype="float32").reshape(size, 4) - 5) / 3
    np.testing.assert_array_equal(run(back, xs, np.array(flag)), run(mod, xs, np.array(flag)))
    # printed names are unique, so printing the parse of edited text is stable too
    assert structural_equal(parse(text.replace("# shapeflow.ir v1\n", "")), mod)


def test_library_calls_and_ops_spelled_by_name():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 3), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        y = bb.emit(op.call_dps_library("lib.scale", [x], TensorType((n, 3), "float32")))
        bb.emit_func_output(y)
    text, _ = round_trip(bb.get())
    assert 'R.call_dps_library(R.extern("lib.scale"), (x,), out=R.Tensor((n, 3), "float32"))' in text
    # an op spelled by name parses to the same call as its short form
    short = parse(text.replace("R.call_dps_library(", 'R.call_op("call_dps_library", '))
    assert structural_equal(short, bb.get())
    odd = GraphFunction([x], SeqExpr([], Call(Op("my-op"), (x,), {"k": 1})), ObjectType(), {})
    assert 'R.call_op("my-op", x, k=1)' in to_text(odd)


def test_match_cast_with_annotation_differing_from_cast_type():
    x = GraphVar("x", TensorType(None, "float32", ndim=1))
    m = Var("m")
    y = GraphVar("y", TensorType(None, "float32", ndim=1))
    body = SeqExpr([BindingBlock([MatchCast(y, x, TensorType((m,), "float32"))])], y)
    text, back = round_trip(GraphFunction([x], body, ObjectType(), {}))
    assert 'y: R.Tensor(ndim=1, dtype="float32") = R.match_cast(x, R.Tensor((m,), "float32"))' in text
    assert back.body.blocks[0].bindings[0].type.shape[0].name == "m"
