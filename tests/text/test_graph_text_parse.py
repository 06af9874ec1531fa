"""Reading hand-written graph text: what each spelling builds, inference of unannotated bindings, mixed
modules that run, and ParseError positions for bad text (also fuzzed by mutating printed modules)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph_text_roundtrip import build_attention, build_mixed, build_mlp, graph_programs

from shapeflow.errors import ParseError
from shapeflow.ir import IRModule, Var, structural_equal
from shapeflow.ir.graph import (
    BindingBlock,
    BlockBuilder,
    Constant,
    DataflowBlock,
    DataflowVar,
    GraphFunction,
    GraphVar,
    If,
    MatchCast,
    SeqExpr,
    TensorType,
    op,
    run,
    verify,
)
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir import PrimFunc

MODULE = """
@I.ir_module
class Module:
    @R.function
    def main(x: R.Tensor((n, 8), "float32"), w: R.Tensor((8, 16), "float32")) -> R.Tensor((n, 16), "float32"):
        R.func_attr({"var_bounds": {"n": (1, 2048)}})
        with R.dataflow():
            lv = R.matmul(x, w)
            lv1 = R.gelu(lv)
            gv = R.call_tir(Module.double, (lv1,), out=R.Tensor((n, 16), "float32"))
            R.output(gv)
        return gv

    @T.prim_func
    def double(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n, 16), "float32")):
        for i in T.serial(0, n):
            for j in T.serial(0, 16):
                B[i, j] = A[i, j] * T.float32(2.0)
"""


def test_hand_written_mixed_module_parses_types_and_runs():
    mod = parse(MODULE)
    assert isinstance(mod, IRModule) and isinstance(mod["double"], PrimFunc)
    main = mod["main"]
    assert isinstance(main, GraphFunction) and main.attrs == {"var_bounds": {"n": (1, 2048)}}
    (block,) = main.body.blocks
    assert isinstance(block, DataflowBlock)
    lv, lv1, gv = (b.var for b in block.bindings)
    assert type(lv) is DataflowVar and type(lv1) is DataflowVar and type(gv) is GraphVar
    n = main.params[0].type.shape[0]
    # unannotated bindings get the inferred type, over the parameter's symbolic dim
    assert lv.type.shape[0] is n and lv.type.shape[1].value == 16 and str(lv.type.dtype) == "float32"
    verify(mod)
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(3, 8)
    w = np.full((8, 16), 0.125, "float32")
    h = (x @ w).astype("float64")
    gelu = 0.5 * h * (1 + np.vectorize(math.erf)(h / np.sqrt(2)))
    np.testing.assert_allclose(run(mod, x, w), 2 * gelu, rtol=1e-5, atol=1e-6)
    # the printed form is the same module, and prints stably
    assert structural_equal(parse(to_text(mod)), mod)


def test_annotations_positional_attributes_and_explicit_forms():
    text = """
@R.function
def f(x: R.Tensor((n, 4), "float32"), flag: R.Tensor((), "bool")) -> R.Tensor((n, 4), "float32"):
    y: R.Tensor((n, 4), "float32") = R.softmax(x, 0)
    z = R.call_op("sum", y, (1,), True)
    if flag:
        a = R.exp(z)
        r: R.Tensor((n, 1), "float32") = a
    else:
        r: R.Tensor((n, 1), "float32") = z
    m = R.match_cast(x, R.Tensor((k, 4), "float32"))
    return R.add(m, r)
"""
    f = parse(text)
    assert isinstance(f, GraphFunction)
    y_bind, z_bind, r_bind, m_bind = f.body.blocks[0].bindings
    assert y_bind.value.attrs["axis"] == 0
    assert z_bind.value.op.name == "sum" and z_bind.value.attrs == {"axis": (1,), "keepdims": True}
    assert isinstance(r_bind.value, If) and isinstance(r_bind.value.true_branch, SeqExpr)
    assert isinstance(m_bind, MatchCast) and m_bind.var.type.shape[0].name == "k"
    # k is new, defined by the match_cast, and distinct from n
    assert m_bind.var.type.shape[0] is not f.params[0].type.shape[0]
    verify(f)
    xs = np.arange(8, dtype="float32").reshape(2, 4)
    soft = np.exp(xs - xs.max(axis=0)) / np.exp(xs - xs.max(axis=0)).sum(axis=0)
    rows = soft.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run(f, xs, np.array(False)), xs + rows, rtol=1e-5)
    np.testing.assert_allclose(run(f, xs, np.array(True)), xs + np.exp(rows), rtol=1e-5)
    again = parse(to_text(f))
    assert structural_equal(again, f) and to_text(again) == to_text(f)


def test_lone_function_with_metadata_and_a_header_comment():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((Var("n"), 64), "float32"))
    table = np.arange(64, dtype="float32")
    with bb.function("main", [x]):
        bb.emit_func_output(op.add(x, table))
    func = bb.get()["main"]
    text = to_text(func)
    assert (
        text.startswith("# shapeflow.ir v1\n@R.function")
        and '\nI.metadata({\n    "c0": ("float32", (64,)' in text
    )
    back = parse(text)
    assert isinstance(back, GraphFunction) and structural_equal(back, func)
    constant = back.body.blocks[0].bindings[0].value.args[1]
    assert isinstance(constant, Constant) and np.array_equal(constant.array, table)


def test_plain_blocks_merge_and_dataflow_blocks_do_not():
    text = """
@R.function
def f(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
    a = R.exp(x)
    b = R.exp(a)
    with R.dataflow():
        c = R.exp(b)
        d = R.exp(c)
        R.output(d)
    with R.bindings():
        e = R.exp(d)
    g = R.exp(e)
    return g
"""
    f = parse(text)
    kinds = [(type(b).__name__, len(b.bindings)) for b in f.body.blocks]
    assert kinds == [("BindingBlock", 2), ("DataflowBlock", 2), ("BindingBlock", 1), ("BindingBlock", 1)]
    assert isinstance(f.body.blocks[0], BindingBlock) and not isinstance(f.body.blocks[0], DataflowBlock)


GOOD = MODULE.replace("\n@I.ir_module", "@I.ir_module", 1)


def _replace(old, new):
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, line, column, needle",
    [
        (_replace("R.gelu(lv)", "R.gelu(lvv)"), 8, 26, "undefined name 'lvv'"),
        (_replace("R.gelu(lv)", "R.nope(lv)"), 8, 19, "unknown name R.nope"),
        (_replace("R.gelu(lv)", "R.softmax(lv, axis=1.5)"), 8, 19, "attribute 'axis'"),
        (_replace("R.gelu(lv)", "R.softmax(lv, axes=1)"), 8, 19, "no attribute 'axes'"),
        (_replace("Module.double", "Module.doubel"), 9, 29, "no function 'doubel'"),
        (_replace("R.output(gv)", "R.output(gz)"), 10, 22, "'gz'"),
        (_replace("return gv", "gv2 = gv"), 11, 9, "ends with `return value`"),
        (_replace('"float32"), w', '"floot32"), w'), 4, 17, "floot32"),
        (_replace("-> R.Tensor(", "-> R.Tensr("), 4, 82, "expected a type"),
        (_replace("R.matmul(x, w)", "R.matmul(x, n)"), 7, 30, "symbolic variable"),
        (_replace("R.matmul(x, w)", "R.matmul(x, R.prim_value(x))"), 7, 43, "graph variable"),
        (_replace("R.matmul(x, w)", 'R.matmul(x, R.const_ref("c9"))'), 7, 30, "no constant 'c9'"),
        (_replace("R.matmul(x, w)", 'R.add(x, R.const([[1, 2]], "float32"))'), 7, 13, "annotate it"),
        (_replace("R.matmul(x, w)", "R.match_cast(x)"), 7, 18, "R.match_cast takes 2"),
        (_replace("lv = R.matmul(x, w)", "if x:\n                lv = x"), 7, 13, "needs an else"),
        (_replace("return gv", "return R.bare(gv)"), 11, 16, "R.bare"),
        (_replace("lv1 = R.gelu(lv)", "lv1 = R.Tensor((4,))"), 8, 19, "is a type"),
        (_replace("@R.function", "@R.functio"), 3, 6, "@R.function"),
        (GOOD + "    I.metadata({'c0': ('float32', (2,), 'AAA')})\n", 18, 23, "base64"),
        (GOOD + "    I.metadata({'c0': ('float32', (3,), 'AAAAAAAAAAA=')})\n", 18, 23, "needs 12 bytes"),
    ],
)
def test_errors_have_positions(text, line, column, needle):
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert needle in str(err), str(err)
    assert (err.line, err.column) == (line, column), str(err)


def _mutate(text: str, data) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.integers(0, 3))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        if kind == 0 and chars:
            del chars[pos]
        elif kind == 1:
            chars.insert(pos, data.draw(st.sampled_from(list("()[]:,.=+-*/<>\"' \n0123456789aRIT_xnlvg"))))
        elif kind == 2 and chars:
            chars[pos] = data.draw(st.characters())
        else:  # move a token-sized chunk elsewhere
            end = min(len(chars), pos + data.draw(st.integers(1, 12)))
            chunk = chars[pos:end]
            del chars[pos:end]
            chars[data.draw(st.integers(0, len(chars))) : 0] = chunk
    return "".join(chars)


SEEDS = [to_text(build()) for build in (build_mlp, build_attention, build_mixed)]


@settings(deadline=None, max_examples=150, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.sampled_from(SEEDS), graph_programs().map(to_text)), st.data())
def test_fuzzed_graph_text_parses_or_raises_parse_error(text, data):
    mutated = _mutate(text, data)
    try:
        result = parse(mutated)
    except ParseError as err:
        assert err.line is None or err.line >= 1
        return
    # Whatever parsed must print and parse back to itself.
    again = parse(to_text(result))
    assert to_text(again) == to_text(result)
