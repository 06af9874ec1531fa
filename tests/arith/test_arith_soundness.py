"""Property tests: the simplifier, the prover and the bound analysis never contradict exact evaluation.

Random integer expression trees over three bounded int64 variables use every integer op (division and modulo
by constants and by a variable bounded away from zero, min/max, select, comparisons, logic, casts, shifts,
bitwise-and); each is evaluated exactly before and after simplification at the corners of the bounds and at
random points.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.ir import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    NE,
    Add,
    And,
    Call,
    Cast,
    Div,
    FloorDiv,
    FloorMod,
    IntImm,
    Max,
    Min,
    Mod,
    Mul,
    Not,
    Or,
    Select,
    Sub,
    Var,
)
from shapeflow.ir.arith import Analyzer, EvaluationError, evaluate

X, Y, Z = Var("x"), Var("y"), Var("z")
BOUNDS = {X: (-9, 9), Y: (0, 15), Z: (1, 6)}  # z never 0: it is a divisor
I64 = "int64"

INT_OPS = (Add, Sub, Mul, Min, Max)
DIV_OPS = (FloorDiv, FloorMod, Div, Mod)
CMP_OPS = (EQ, NE, LT, LE, GT, GE)


def _const(value: int) -> IntImm:
    return IntImm(I64, value)


@st.composite
def int_exprs(draw, depth: int = 3):
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from((X, Y, Z)))
        return _const(draw(st.integers(-10, 10)))
    kind = draw(st.integers(0, 9))
    a = draw(int_exprs(depth - 1))
    if kind <= 3:
        return draw(st.sampled_from(INT_OPS))(a, draw(int_exprs(depth - 1)))
    if kind <= 5:
        divisor = draw(
            st.sampled_from((_const(draw(st.sampled_from((1, 2, 3, 4, 8, -3, 16)))), Z, Sub(_const(0), Z)))
        )
        return draw(st.sampled_from(DIV_OPS))(a, divisor)
    if kind == 6:
        return Select(draw(bool_exprs(depth - 1)), a, draw(int_exprs(depth - 1)))
    if kind == 7:
        return Cast(I64, Cast("int32", a))
    if kind == 8:
        op = draw(st.sampled_from(("shift_right", "bitwise_and", "shift_left")))
        return Call(I64, op, (a, _const(draw(st.integers(0, 3)))))
    return Mul(a, _const(draw(st.integers(-4, 4))))


@st.composite
def bool_exprs(draw, depth: int = 2):
    kind = draw(st.integers(0, 5))
    if depth == 0 or kind <= 2:
        return draw(st.sampled_from(CMP_OPS))(
            draw(int_exprs(max(depth - 1, 0))), draw(int_exprs(max(depth - 1, 0)))
        )
    if kind == 3:
        return Not(draw(bool_exprs(depth - 1)))
    return draw(st.sampled_from((And, Or)))(draw(bool_exprs(depth - 1)), draw(bool_exprs(depth - 1)))


def _corners():
    return [dict(zip(BOUNDS, combo)) for combo in itertools.product(*BOUNDS.values())]


envs = st.lists(
    st.fixed_dictionaries({v: st.integers(lo, hi) for v, (lo, hi) in BOUNDS.items()}), max_size=12
)


def _analyzer() -> Analyzer:
    ana = Analyzer()
    for v, b in BOUNDS.items():
        ana.bind(v, b)
    return ana


def _value(expr, env):
    try:
        return evaluate(expr, env)
    except EvaluationError:
        return None


@settings(deadline=None, max_examples=400)
@given(int_exprs(4), envs)
def test_simplify_preserves_integer_values(expr, sampled):
    simplified = _analyzer().simplify(expr)
    for env in _corners() + sampled:
        before = _value(expr, env)
        if before is None:  # undefined before: anything goes
            continue
        assert evaluate(simplified, env) == before, (expr, simplified, env)


@settings(deadline=None, max_examples=300)
@given(bool_exprs(3), envs)
def test_simplify_preserves_conditions_and_prove_is_sound(cond, sampled):
    ana = _analyzer()
    simplified = ana.simplify(cond)
    proved = ana.can_prove(cond)
    for env in _corners() + sampled:
        before = _value(cond, env)
        if before is None:
            continue
        assert evaluate(simplified, env) == before, (cond, simplified, env)
        if proved:
            assert before == 1, (cond, env)


@settings(deadline=None, max_examples=300)
@given(int_exprs(4), envs)
def test_const_int_bound_contains_every_value(expr, sampled):
    bound = _analyzer().const_int_bound(expr)
    for env in _corners() + sampled:
        value = _value(expr, env)
        if value is not None:
            assert bound.contains(value), (expr, bound, env, value)


@settings(deadline=None, max_examples=150)
@given(int_exprs(3), int_exprs(3), envs)
def test_constraint_facts_are_used_soundly(a, b, sampled):
    """Under `a < b`, whatever is proved holds at every sampled point that satisfies a < b."""
    ana = _analyzer()
    goal = LE(Add(a, _const(1)), b)
    with ana.constraint(LT(a, b)):
        proved = ana.can_prove(goal)
        simplified = ana.simplify(Min(a, b))
    for env in _corners() + sampled:
        va, vb = _value(a, env), _value(b, env)
        if va is None or vb is None or not va < vb:
            continue
        if proved:
            assert evaluate(goal, env) == 1
        assert evaluate(simplified, env) == va


def test_simplify_is_idempotent_and_keeps_unchanged_objects():
    ana = _analyzer()
    e = Add(Mul(X, _const(4)), FloorDiv(Y, _const(3)))
    once = ana.simplify(e)
    assert ana.simplify(once) is once
    assert Analyzer().simplify(X) is X
    already = FloorDiv(Add(X, Y), Z)
    assert Analyzer().simplify(already) is already
