"""Round trips of the text format: parse(to_text(x)) is structurally x, and printing again gives the same
text, for random IR of every kind and for hand-written examples."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_tir import ALL_SCALAR_DTYPES, exprs, ir_prim_funcs, prim_funcs

import shapeflow as sf
from shapeflow.ir import IRModule, Var, assert_structural_equal, structural_equal
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir import (
    INTRINSICS,
    Block,
    BlockRealize,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    PrimFunc,
    decl_buffer,
    seq,
)

SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=list(HealthCheck))


def round_trip(obj):
    text = to_text(obj)
    back = parse(text)
    assert_structural_equal(back, obj)
    assert to_text(back) == text
    return text


def wrap_expr(e):
    """A function evaluating `e`, whose free variables become scalar parameters."""
    found, bound = [], set()
    sf.ir.functor.post_order_visit(e, lambda n: found.append(n) if isinstance(n, Var) else None)
    sf.ir.functor.post_order_visit(e, lambda n: bound.add(id(n.var)) if isinstance(n, E.Let) else None)
    params = []
    for v in found:
        if id(v) not in bound and not any(v is p for p in params) and v.dtype != DataType("handle"):
            params.append(v)
    return PrimFunc(tuple(params), Evaluate(e))


@SETTINGS
@given(prim_funcs())
def test_executable_funcs_round_trip(func):
    round_trip(func)


@SETTINGS
@given(ir_prim_funcs())
def test_funcs_of_every_kind_round_trip(func):
    round_trip(func)


@settings(deadline=None, max_examples=15, suppress_health_check=list(HealthCheck))
@given(st.lists(ir_prim_funcs(max_depth=2), min_size=0, max_size=3), st.booleans())
def test_modules_round_trip(funcs, with_attrs):
    mod = IRModule({f"f{k}": f for k, f in enumerate(funcs)}, {"version": (1, 2)} if with_attrs else {})
    round_trip(mod)


@SETTINGS
@given(
    st.sampled_from(ALL_SCALAR_DTYPES).flatmap(
        lambda d: st.sampled_from([d, f"{d}x4"]).flatmap(
            lambda dt: exprs(dt, vars=[Var("x", "int64"), Var("y", dt)], safe=False)
        )
    )
)
def test_expressions_of_every_dtype_round_trip(e):
    round_trip(wrap_expr(e))


@pytest.mark.parametrize("name", sorted(INTRINSICS))
def test_every_intrinsic_prints_short_and_round_trips(name):
    intrinsic = INTRINSICS[name]
    dtype = DataType("int32" if intrinsic.operand_kind == "int" else "float32")
    args = tuple(Var(f"a{k}", dtype) for k in range(intrinsic.arity))
    call = E.Call(intrinsic.result_dtype([dtype] * intrinsic.arity), name, args)
    text = round_trip(wrap_expr(call))
    assert f"T.{name}(a0" in text


def test_call_with_other_dtype_prints_generic_form():
    x = Var("x", "float32")
    text = round_trip(wrap_expr(E.Call(DataType("float64"), "exp", (x,))))
    assert "T.call(\"float64\", 'exp', x)" in text


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda a, b, c: E.Sub(a, E.Sub(b, c)), "a - (b - c)"),
        (lambda a, b, c: E.Sub(E.Sub(a, b), c), "a - b - c"),
        (lambda a, b, c: E.FloorDiv(a, E.Mul(b, c)), "a // (b * c)"),
        (lambda a, b, c: E.Mul(E.Add(a, b), c), "(a + b) * c"),
        (lambda a, b, c: E.Sub(E.IntImm("int64", 0), a), "0 - a"),
        (lambda a, b, c: E.Add(a, E.IntImm("int64", -3)), "a + -3"),
        (lambda a, b, c: E.Mul(E.IntImm("int64", -3), a), "-3 * a"),
        (lambda a, b, c: E.FloorMod(E.IntImm("int64", -9223372036854775808), a), "-9223372036854775808 % a"),
        (lambda a, b, c: E.LT(E.LT(a, b), E.LT(b, c)), "(a < b) < (b < c)"),
        (lambda a, b, c: E.And(E.LT(a, b), E.Or(E.LT(b, c), E.EQ(a, c))), "a < b and (b < c or a == c)"),
        (lambda a, b, c: E.Not(E.And(E.LT(a, b), E.GE(b, c))), "not (a < b and b >= c)"),
        (lambda a, b, c: E.Or(E.Or(E.LT(a, b), E.LT(b, c)), E.NE(a, c)), "a < b or b < c or a != c"),
        (lambda a, b, c: E.And(E.LT(a, b), E.And(E.LT(b, c), E.EQ(a, c))), "a < b and (b < c and a == c)"),
        (lambda a, b, c: E.Div(a, b), "T.truncdiv(a, b)"),
        (lambda a, b, c: E.Mod(a, E.Min(b, c)), "T.truncmod(a, T.min(b, c))"),
    ],
)
def test_precedence_and_exact_spelling(build, expected):
    a, b, c = Var("a"), Var("b"), Var("c")
    e = build(a, b, c)
    assert to_text(e) == expected
    round_trip(wrap_expr(e))


@pytest.mark.parametrize(
    "value, spelling",
    [
        (0.5, "T.float32(0.5)"),
        (1e-07, "T.float32(1e-07)"),
        (-0.0, "T.float32(-0.0)"),
        (float("inf"), 'T.float32("inf")'),
        (float("-inf"), 'T.float32("-inf")'),
        (float("nan"), 'T.float32("nan")'),
        (0.1 + 0.2, "T.float32(0.30000000000000004)"),
    ],
)
def test_float_constants_are_exact(value, spelling):
    e = E.FloatImm("float32", value)
    assert to_text(e) == spelling
    back = parse(to_text(wrap_expr(e))).body.value
    assert math.copysign(1, back.value) == math.copysign(1, value) or math.isnan(value)
    assert structural_equal(back, e)


def test_int_constants_of_other_dtypes():
    assert to_text(E.IntImm("int32", 5)) == "T.int32(5)"
    assert to_text(E.IntImm("uint64", 2**64 - 1)) == f"T.uint64({2**64 - 1})"
    assert to_text(E.IntImm("bool", 1)) == "True"
    round_trip(wrap_expr(E.Add(E.IntImm("int8", -128), E.IntImm("int8", 127))))


def test_names_are_unique_and_never_keywords():
    x1, x2, kw, t = Var("x"), Var("x"), Var("lambda"), Var("T")
    A = decl_buffer((x1,), "float32", "x")
    body = seq(
        For(x2, 0, x1, ForKind.SERIAL, BufferStore(A, E.FloatImm("float32", 1.0), (x2,))),
        For(kw, 0, x1, ForKind.SERIAL, For(t, 0, kw, ForKind.SERIAL, BufferStore(A, A[t], (kw,)))),
    )
    text = round_trip(PrimFunc((A,), body))
    assert "for lambda " not in text and "for T " not in text
    assert "x: T.Buffer((x_1,)" in text and "for x_2 in" in text


def test_buffers_with_every_option_and_shared_data():
    n = Var("n")
    A = decl_buffer((n, 4), "float16", "A", strides=(8, 1), elem_offset=n, scope="shared", align=16)
    flat = decl_buffer((n * 8,), "float16", "A_flat", data=A.data)
    body = sf.ir.tir.DeclBuffer(flat, BufferStore(flat, A[0, 1], (n,)))
    text = round_trip(PrimFunc((A,), body))
    assert "T.Buffer((n, 4), \"float16\", strides=(8, 1), elem_offset=n, scope='shared', align=16)" in text
    assert "data=A.data) as A_flat:" in text


def test_int32_dimension_declared_as_free_variable():
    k = Var("k", "int32")
    A = decl_buffer((k,), "float32", "A")
    text = round_trip(PrimFunc((A,), Evaluate(E.IntImm("int32", 0))))
    assert 'k = T.var("int32")' in text


def test_attrs_distinguish_python_values_from_ir():
    n = Var("n")
    A = decl_buffer((n,), "float32", "A")
    attrs = {
        "global_symbol": "f",
        "ints": (1, -2, [3, {"k": None}]),
        "imm": E.IntImm("int64", 5),
        "flag": E.IntImm("bool", 1),
        "expr": n + 1,
        "floats": (float("inf"), float("nan"), -0.0, 2.5),
        "buffer": A,
    }
    text = round_trip(PrimFunc((A,), Evaluate(E.IntImm("int32", 0)), attrs))
    back = parse(text).attrs
    assert back["ints"] == (1, -2, [3, {"k": None}]) and isinstance(back["imm"], E.IntImm)
    assert "'imm': T.int64(5)" in text and "'flag': T.bool(1)" in text


def test_bare_block_and_doc_example():
    block = Block("b", (), (), (), Evaluate(E.IntImm("int32", 0)))
    round_trip(PrimFunc((), block))
    realize = BlockRealize((), E.IntImm("bool", 0), block)
    assert "T.where(False)" in round_trip(PrimFunc((), realize))
    doc = open("docs/text-format.md").read()
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    mod = parse(example)
    assert isinstance(mod, IRModule) and list(mod.functions) == ["rowsum"]
    assert parse(mod.script()).script() == mod.script()
    assert structural_equal(parse(mod.script()), mod)


def test_fragments_and_repr():
    i = Var("i")
    A = decl_buffer((4,), "float32", "A")
    assert repr(A[i + 1]) == "A[i + 1]"
    store = For(i, 0, 4, ForKind.UNROLLED, BufferStore(A, A[i] * 2.0, (i,)))
    assert to_text(store) == "for i in T.unroll(0, 4):\n    A[i] = A[i] * T.float32(2.0)"
    assert sf.ir.parse is parse
