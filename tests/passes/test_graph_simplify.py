"""Graph passes that simplify without changing the level of the IR: Normalize, CanonicalizeBindings,
FoldConstant, DeadCodeElimination, CommonSubexpressionElimination.

Each pass has before/expected pairs built with the BlockBuilder and compared by structural equality, and
before and after are run on the graph interpreter at several symbolic sizes (1 and primes) and must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.ir import IRModule, assert_structural_equal
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import (
    BindingBlock,
    BlockBuilder,
    Call,
    DataflowBlock,
    GraphFunction,
    GraphVar,
    If,
    MatchCast,
    ObjectType,
    SeqExpr,
    TensorType,
    VarBinding,
    const,
    op,
    run,
    verify,
)
from shapeflow.ir.graph.shape import evaluate
from shapeflow.passes import PASSES
from shapeflow.passes.graph import (
    CanonicalizeBindings,
    CommonSubexpressionElimination,
    DeadCodeElimination,
    FoldConstant,
    Normalize,
)

SIZES = (1, 3, 7)


def random_inputs(func: GraphFunction, size: int, rng) -> list[np.ndarray]:
    env = {}
    out = []
    for p in func.params:
        shape = []
        for d in p.type.shape:
            if isinstance(d, Var) and d not in env:
                env[d] = size
            shape.append(int(evaluate(d, env)))
        out.append(rng.standard_normal(shape).astype(str(p.type.dtype)))
    return out


def assert_same_meaning(before: IRModule, after: IRModule, sizes=SIZES) -> None:
    verify(after)
    rng = np.random.default_rng(0)
    for size in sizes:
        args = random_inputs(before["main"], size, rng)
        np.testing.assert_allclose(run(after, *args), run(before, *args), rtol=1e-5, atol=1e-6)


n = Var("n", "int64")


def x_param(name="x", shape=None):
    return GraphVar(name, TensorType(shape or (n, 4), "float32"))


def test_passes_are_registered_by_name():
    for name in (
        "graph.normalize",
        "graph.canonicalize_bindings",
        "graph.fold_constant",
        "graph.dead_code_elimination",
        "graph.cse",
    ):
        assert name in PASSES


# ---------------------------------------------------------------------------------------------
# Normalize
# ---------------------------------------------------------------------------------------------


def test_normalize_binds_nested_calls_and_fills_types():
    x = x_param()
    # Hand-built: a nested call, an untyped variable, an unknown return type, a body that is a call.
    inner = op.exp(x)
    y = GraphVar("y", ObjectType())
    body = SeqExpr((DataflowBlock((VarBinding(y, op.add(inner, x)),)),), op.neg(y))
    before = IRModule({"main": GraphFunction((x,), body, ObjectType(), {"global_symbol": "main"})})

    bb = BlockBuilder()
    x2 = x_param()
    with bb.function("main", [x2]):
        with bb.dataflow():
            a = bb.emit(op.exp(x2))
            b = bb.emit_output(op.add(a, x2))
        c = bb.emit(op.neg(b))
        bb.emit_func_output(c)
    expected = bb.get()

    after = Normalize()(before)
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)


def test_normalize_leaves_normal_form_alone():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op.exp(op.add(x, x)))
        bb.emit_func_output(out)
    mod = bb.get()
    assert Normalize()(mod) is mod


# ---------------------------------------------------------------------------------------------
# CanonicalizeBindings
# ---------------------------------------------------------------------------------------------


def test_canonicalize_removes_aliases_and_trivial_match_cast():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            b = bb.emit(a)  # alias
            c = bb.match_cast(b, TensorType((n, 4), "float32"))  # checks nothing
            d = bb.emit(op.add(c, b))
            out = bb.emit_output(d)  # output alias of d
        bb.emit_func_output(out)
    before = bb.get()

    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            out = bb.emit_output(op.add(a, a))
        bb.emit_func_output(out)
    expected = bb.get()

    after = CanonicalizeBindings()(before)
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)


def test_canonicalize_keeps_match_cast_that_defines_vars():
    m = Var("m", "int64")
    bb = BlockBuilder()
    x = GraphVar("x", TensorType(None, "float32", 2))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.match_cast(x, TensorType((m, 4), "float32"))
            out = bb.emit_output(op.exp(y))
        bb.emit_func_output(out)
    mod = bb.get()
    after = CanonicalizeBindings()(mod)
    assert after is mod
    kinds = [type(b) for b in after["main"].body.blocks[0].bindings]
    assert MatchCast in kinds


# ---------------------------------------------------------------------------------------------
# FoldConstant
# ---------------------------------------------------------------------------------------------


def test_fold_constant_folds_chains():
    c1 = np.arange(4, dtype="float32")
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.add(const(c1), const(c1)))
            b = bb.emit(op.exp(a))
            out = bb.emit_output(op.add(x, b))
        bb.emit_func_output(out)
    before = bb.get()

    folded_a = c1 + c1
    folded_b = np.exp(folded_a)
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            bb.emit(const(folded_a))
            bb.emit(const(folded_b))
            out = bb.emit_output(op.add(x, const(folded_b)))
        bb.emit_func_output(out)
    expected = bb.get()

    after = FoldConstant()(before)
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)
    # Then DCE drops the constant bindings.
    cleaned = DeadCodeElimination()(after)
    assert len(cleaned["main"].body.blocks[0].bindings) == 1


def test_fold_constant_respects_size_limit_and_symbolic_args():
    big = np.ones(100, "float32")
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.add(const(big), const(big)))
            b = bb.emit(op.exp(x))
            out = bb.emit_output(op.add(b, op.sum(a)))
        bb.emit_func_output(out)
    mod = bb.get()
    assert FoldConstant(max_elements=10)(mod) is mod
    assert FoldConstant(max_elements=1000)(mod) is not mod


@settings(deadline=None, max_examples=25)
@given(
    st.lists(
        st.sampled_from(["exp", "neg", "abs", "add", "multiply", "sum", "maximum"]), min_size=1, max_size=5
    ),
    st.integers(1, 5),
)
def test_fold_constant_matches_the_interpreter(ops, length):
    """A random chain over constants folds to the value the interpreter computes."""
    rng = np.random.default_rng(length)
    c = const(rng.standard_normal(length).astype("float32"))
    bb = BlockBuilder()
    x = x_param("x", (length,))
    with bb.function("main", [x]):
        with bb.dataflow():
            v = c
            for name in ops:
                fn = getattr(op, name)
                v = bb.emit(fn(v, c) if name in ("add", "multiply", "maximum") else fn(v))
            out = bb.emit_output(op.add(x, v))
        bb.emit_func_output(out)
    before = bb.get()
    after = DeadCodeElimination()(FoldConstant()(before))
    bindings = after["main"].body.blocks[0].bindings
    assert len(bindings) == 1  # everything but the use of x folded away
    args = [np.ones(length, "float32")]
    np.testing.assert_allclose(run(after, *args), run(before, *args), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# DeadCodeElimination
# ---------------------------------------------------------------------------------------------


def test_dce_removes_unused_bindings_and_functions():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("helper", [x], attrs={"global_symbol": None}):
        bb.emit_func_output(x)
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            bb.emit(op.neg(a))  # unused, and so is the exp behind it
            out = bb.emit_output(op.abs(x))
        bb.emit_func_output(out)
    before = bb.get()

    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op.abs(x))
        bb.emit_func_output(out)
    expected = bb.get()

    after = DeadCodeElimination()(before)
    assert sorted(after.functions) == ["main"]
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)
    assert DeadCodeElimination()(after) is after


def test_dce_keeps_public_functions_and_library_calls():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("other", [x]):  # public: has a global_symbol
        bb.emit_func_output(x)
    x = x_param()
    with bb.function("main", [x]):
        bb.emit(op.exp(x))  # unused but pure: goes
        bb.emit_func_output(x)
    mod = bb.get()
    after = DeadCodeElimination()(mod)
    assert sorted(after.functions) == ["main", "other"]
    assert after["main"].body.blocks == ()
    only_main = DeadCodeElimination(entry_functions=("main",))(mod)
    assert sorted(only_main.functions) == ["main"]


# ---------------------------------------------------------------------------------------------
# CommonSubexpressionElimination
# ---------------------------------------------------------------------------------------------


def test_cse_reuses_equal_pure_calls():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            b = bb.emit(op.exp(x))
            c = bb.emit(op.sum(a, axis=1))
            d = bb.emit(op.sum(b, axis=1))
            e = bb.emit(op.sum(b, axis=0))  # different attrs: stays
            out = bb.emit_output(op.add(op.add(c, d), op.sum(e)))
        bb.emit_func_output(out)
    before = bb.get()

    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            c = bb.emit(op.sum(a, axis=1))
            e = bb.emit(op.sum(a, axis=0))
            out = bb.emit_output(op.add(op.add(c, c), op.sum(e)))
        bb.emit_func_output(out)
    expected = bb.get()

    after = CommonSubexpressionElimination()(before)
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)


def test_cse_only_within_dataflow_blocks():
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        a = bb.emit(op.exp(x))
        b = bb.emit(op.exp(x))
        bb.emit_func_output(op.add(a, b))
    mod = bb.get()
    assert CommonSubexpressionElimination()(mod) is mod


@pytest.mark.parametrize("make_pass", [Normalize, CanonicalizeBindings, FoldConstant, DeadCodeElimination])
def test_passes_leave_a_call_free_module_alone(make_pass):
    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x]):
        bb.emit_func_output(x)
    mod = bb.get()
    assert make_pass()(mod) is mod
    assert isinstance(mod["main"].body, SeqExpr) and not isinstance(mod["main"].body.body, Call)


# ---------------------------------------------------------------------------------------------
# If branches and the text format
# ---------------------------------------------------------------------------------------------


def _if_module(true_branch, false_branch, x, cond, y):
    body = SeqExpr((BindingBlock((VarBinding(y, If(cond, true_branch, false_branch)),)),), y)
    return IRModule({"main": GraphFunction((x, cond), body, y.type, {"global_symbol": "main"})})


def test_normalize_makes_if_branches_sequences_and_dce_cleans_them():
    x = x_param()
    cond = GraphVar("cond", TensorType((), "bool"))
    t = TensorType((n, 4), "float32")
    before = _if_module(op.exp(op.abs(x)), op.neg(x), x, cond, GraphVar("y", t))

    a, b, c = GraphVar("a", t), GraphVar("b", t), GraphVar("c", t)
    expected = _if_module(
        SeqExpr((BindingBlock((VarBinding(a, op.abs(x)), VarBinding(b, op.exp(a)))),), b),
        SeqExpr((BindingBlock((VarBinding(c, op.neg(x)),)),), c),
        x,
        cond,
        GraphVar("y", t),
    )
    after = Normalize()(before)
    assert_structural_equal(after["main"], expected["main"])
    verify(after)
    xv = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    for flag in (True, False):
        np.testing.assert_allclose(run(after, xv, np.array(flag)), run(before, xv, np.array(flag)))

    # An unused pure binding inside a branch goes; the branch's result stays.
    dead = GraphVar("dead", t)
    branch = SeqExpr((BindingBlock((VarBinding(dead, op.exp(x)), VarBinding(c, op.neg(x)))),), c)
    with_dead = _if_module(branch, x, x, cond, GraphVar("y", t))
    cleaned = DeadCodeElimination()(with_dead)
    kept = cleaned["main"].body.blocks[0].bindings[0].value.true_branch.blocks[0].bindings
    assert [bd.var.name for bd in kept] == ["c"]


def test_pipeline_output_round_trips_through_the_text_format():
    from shapeflow.ir import parse
    from shapeflow.passes.graph import graph_pipeline

    bb = BlockBuilder()
    x = x_param()
    with bb.function("main", [x], attrs={"var_bounds": {"n": (1, 16)}}):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            s = bb.emit(op.sum(a, axis=1, keepdims=True))
            out = bb.emit_output(op.divide(a, s))
        bb.emit_func_output(out)
    mod = graph_pipeline(2)(bb.get())
    assert_structural_equal(parse(mod.script()), mod)
