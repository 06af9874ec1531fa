"""Let expressions and the simplifier: every Let is inlined (rule `let_inline`), values are preserved, and the
result is well formed even where a rewrite copies subtrees (the fuzzer found `let t = 2 in -2` distributed
over a sum, which bound the same Var twice and broke the text round trip)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.ir import (
    LT,
    Add,
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Max,
    Min,
    Mul,
    Select,
    Sub,
    Var,
    parse,
    structural_equal,
)
from shapeflow.ir.arith import Analyzer, EvaluationError, evaluate, simplify
from shapeflow.ir.functor import collect
from shapeflow.ir.tir import BufferStore, PrimFunc, decl_buffer, verify

X, Y = Var("x"), Var("y")
BOUNDS = {X: (-7, 7), Y: (0, 9)}
I64 = "int64"


def _c(value: int) -> IntImm:
    return IntImm(I64, value)


@st.composite
def let_exprs(draw, scope: tuple = (X, Y), depth: int = 4):
    """Integer expressions over x, y and the Let variables in `scope`; each Let binds a fresh Var."""
    if depth == 0 or draw(st.integers(0, 5)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(scope))
        return _c(draw(st.integers(-5, 5)))
    kind = draw(st.integers(0, 6))
    if kind <= 1:
        var = Var(f"t{depth}")
        value = draw(let_exprs(scope, depth - 1))
        return Let(var, value, draw(let_exprs((*scope, var), depth - 1)))
    a = draw(let_exprs(scope, depth - 1))
    b = draw(let_exprs(scope, depth - 1))
    if kind <= 4:
        return draw(st.sampled_from((Add, Sub, Mul, Min, Max)))(a, b)
    if kind == 5:
        return draw(st.sampled_from((FloorDiv, FloorMod)))(a, _c(draw(st.sampled_from((2, 3, -4)))))
    return Select(LT(a, b), a, b)


def _value(expr, env):
    try:
        return evaluate(expr, env)
    except EvaluationError:
        return None


def _analyzer() -> Analyzer:
    ana = Analyzer()
    for var, bound in BOUNDS.items():
        ana.bind(var, bound)
    return ana


def _in_function(expr) -> PrimFunc:
    out = decl_buffer((1,), I64, "out")
    return PrimFunc((X, Y, out), BufferStore(out, expr, (_c(0),)), {"global_symbol": "main"})


envs = st.lists(st.fixed_dictionaries({v: st.integers(lo, hi) for v, (lo, hi) in BOUNDS.items()}), max_size=8)


@settings(deadline=None, max_examples=200)
@given(let_exprs(), envs)
def test_simplify_inlines_lets_soundly_and_stays_well_formed(expr, sampled):
    # Multiplying by a sum makes the canonical form distribute, copying the (formerly Let-holding) atoms.
    wrapped = Mul(Let(Var("w"), _c(2), expr), Add(X, Y))
    simplified = _analyzer().simplify(wrapped)
    assert not collect(simplified, Let), simplified
    corners = [dict(zip(BOUNDS, combo)) for combo in itertools.product(*BOUNDS.values())]
    for env in corners + sampled:
        before = _value(wrapped, env)
        if before is not None:
            assert evaluate(simplified, env) == before, (wrapped, simplified, env)
    verify(_in_function(simplified))


def test_unused_let_is_dropped_before_its_parent_distributes():
    """The fuzzer's reproducer: each Let node would have been copied into both terms of the sum."""
    t = Var("t3", "int32")
    expr = Mul(Let(t, IntImm("int32", 2), _c(-2)), Add(X, Y))
    simplified = simplify(expr)
    assert not collect(simplified, Let)
    assert structural_equal(simplified, simplify(Mul(_c(-2), Add(X, Y))))
    func = _in_function(simplified)
    verify(func)
    assert structural_equal(parse(func.script()), func)


def test_used_let_is_substituted_with_its_simplified_value():
    t = Var("t")
    expr = Let(t, Add(Add(X, _c(1)), _c(-1)), Mul(t, Add(t, Y)))
    simplified = simplify(expr)
    assert not collect(simplified, Let)
    assert structural_equal(simplified, simplify(Mul(X, Add(X, Y))))


def test_shadowing_inner_let_keeps_its_own_binding():
    t = Var("t")
    expr = Let(t, X, Add(t, Let(t, Y, Mul(t, _c(2)))))  # ill-formed but meaningful: the inner t is y
    simplified = simplify(expr)
    for env in ({X: 3, Y: 5}, {X: -2, Y: 0}):
        assert evaluate(simplified, env) == evaluate(expr, env) == env[X] + 2 * env[Y]
