"""Concrete simplifications and proofs that shape code relies on."""

from __future__ import annotations

import pytest

from shapeflow.ir import (
    Add,
    Cast,
    Div,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Mod,
    Mul,
    Select,
    Sub,
    Var,
    assert_structural_equal,
    const,
    max_expr,
    min_expr,
    structural_equal,
)
from shapeflow.ir.arith import Analyzer, ConstIntBound, const_int_bound, prove, simplify, substitute
from shapeflow.ir.tir import Range

n, m, i, j, x, y = (Var(name) for name in ("n", "m", "i", "j", "x", "y"))


def c(value: int) -> IntImm:
    return IntImm("int64", value)


def test_padded_size_minus_size_is_between_0_and_3():
    ana = Analyzer()
    with ana.constraint(n >= 1):
        bound = ana.const_int_bound((n + 3) // 4 * 4 - n)
        assert (bound.min_value, bound.max_value) == (0, 3)
        assert ana.can_prove((n + 3) // 4 * 4 >= n)
        assert ana.can_prove((n + 3) // 4 * 4 - n < 4)
    assert_structural_equal(simplify((n + 3) // 4 * 4 - n), 3 - (n + 3) % 4)


def test_split_index_recombines():
    bounds = {j: (0, 3)}
    assert_structural_equal(simplify((i * 4 + j) // 4, bounds), i)
    assert_structural_equal(simplify((i * 4 + j) % 4, bounds), j)
    assert_structural_equal(simplify((i * 4 + j) // 4 * 4 + (i * 4 + j) % 4, bounds), i * 4 + j)
    assert_structural_equal(simplify((x * 8 + y) // 4, {y: (0, 7)}), x * 2 + y // 4)
    assert_structural_equal(simplify((x * 8 + y) // 4, {y: (0, 3)}), x * 2)


def test_linear_terms_collect_to_structurally_equal_results():
    assert simplify(n * 2 - n) is n
    assert_structural_equal(simplify(x + y - x), y)
    assert_structural_equal(simplify((x + 1) * 3 - 3), x * 3)
    assert structural_equal(simplify(x + y), simplify(y + x))
    assert structural_equal(simplify((x + 2) * (y + 1)), simplify(x * y + y * 2 + x + 2))
    assert_structural_equal(simplify(x - x), c(0))


def test_div_mod_by_constants():
    assert simplify(x // 1) is x
    assert_structural_equal(simplify(x % 1), c(0))
    assert_structural_equal(simplify((x * 4 + 3) % 4), c(3))
    assert_structural_equal(simplify((x // 4) // 8), x // 32)
    assert_structural_equal(simplify((x % 16) % 4), x % 4)
    assert_structural_equal(simplify((x * 6 + 4) // 4), x * 3 // 2 + 1)
    assert_structural_equal(simplify(Div(x, c(1))), x)
    assert_structural_equal(simplify(Div(i, c(4)), {i: (0, 100)}), i // 4)
    assert_structural_equal(simplify(i // n, {i: Range(0, n), n: (1, 64)}), c(0))


def test_min_max_under_bounds():
    ana = Analyzer()
    ana.bind(i, Range(0, n))
    assert ana.simplify(min_expr(i, n)) is i
    assert ana.simplify(max_expr(i, 0)) is i
    assert ana.simplify(min_expr(max_expr(i, 0), n)) is i
    inner = min_expr(x, y)
    assert ana.simplify(min_expr(inner, y)) is inner
    assert_structural_equal(ana.simplify(max_expr(x + 1, x + 3)), x + 3)
    assert structural_equal(simplify(min_expr(y, x)), simplify(min_expr(x, y)))


def test_comparisons_decided_by_bounds():
    ana = Analyzer()
    ana.bind(i, Range(0, n))
    assert ana.can_prove(i < n)
    assert ana.can_prove(i >= 0)
    assert not ana.can_prove(i < n - 1)
    assert_structural_equal(ana.simplify(i >= n), const(False))
    assert prove(x + 1 > x)
    assert not prove(x > 0)
    assert not prove(x * x >= 1, {x: (-3, 3)})


def test_constraints_are_scoped():
    ana = Analyzer()
    assert not ana.can_prove(i < n)
    with ana.constraint((i < n) & (n <= 128)):
        assert ana.can_prove(i < n)
        assert ana.can_prove(i <= 127)
        assert ana.can_prove(i + 1 <= n)
    assert not ana.can_prove(i < n)


def test_bind_forms():
    ana = Analyzer()
    ana.bind(x, (2, 5))
    assert ana.const_int_bound(x * 2 + 1) == ConstIntBound(5, 11)
    ana.bind(y, x * 2)
    assert_structural_equal(ana.simplify(y - x), x)
    ana.bind(i, Range(c(3), c(4)))
    assert ana.const_int_bound(i) == ConstIntBound(3, 6)
    ana.bind(m, ConstIntBound(0, 9))
    assert ana.can_prove(m % 16 == m)


def test_const_int_bound_through_ops():
    b = {x: (-4, 10), y: (1, 5)}
    assert const_int_bound(x // 4, b) == ConstIntBound(-1, 2)
    assert const_int_bound(x % 4, b) == ConstIntBound(0, 3)
    assert const_int_bound(Mod(x, y), b) == ConstIntBound(-4, 4)
    assert const_int_bound(Div(x, c(3)), b) == ConstIntBound(-1, 3)
    assert const_int_bound(min_expr(x, y), b) == ConstIntBound(-4, 5)
    assert const_int_bound(Select(x < 0, y, x * 2), b) == ConstIntBound(-8, 20)
    assert const_int_bound(y >> 1, b) == ConstIntBound(0, 2)
    assert const_int_bound(y << 2, b) == ConstIntBound(4, 20)
    assert const_int_bound(x & 6, b) == ConstIntBound(0, 6)
    assert const_int_bound(Cast("int32", y), b) == ConstIntBound(1, 5)
    unbounded = const_int_bound(n)
    assert unbounded.min_value == ConstIntBound.NEG_INF and unbounded.max_value == ConstIntBound.POS_INF
    assert const_int_bound(Cast("uint8", x), b).max_value == 255  # may wrap: the whole uint8 range


def test_constant_folding_is_exact():
    i64_max = 2**63 - 1
    assert simplify(Add(c(i64_max), c(1))).value == -(2**63)  # wraps
    assert simplify(Div(c(-7), c(2))).value == -3  # C truncation
    assert simplify(Mod(c(-7), c(2))).value == -1
    assert simplify(FloorDiv(c(-7), c(2))).value == -4
    assert simplify(FloorMod(c(-7), c(2))).value == 1
    for op in (Div, Mod, FloorDiv, FloorMod):  # never fold a division by zero
        assert isinstance(simplify(op(c(5), c(0))), op)
    assert simplify(IntImm("int32", 2**31 - 1) + IntImm("int32", 1)).value == -(2**31)
    assert simplify(Cast("int8", c(300))).value == 44
    assert simplify(Cast("float32", c(16777217))).value == 16777216.0
    assert isinstance(simplify(Cast("int32", FloatImm("float32", 1e20))), Cast)  # out of range: undefined


def test_float_identities_only_when_exact():
    f = Var("f", "float32")
    assert simplify(f * 1.0) is f
    assert simplify(f - 0.0) is f
    assert simplify(f + FloatImm("float32", -0.0)) is f
    assert isinstance(simplify(f + 0.0), Add)  # -0.0 + 0.0 is +0.0
    assert isinstance(simplify(f * 0.0), Mul)  # NaN * 0 is NaN
    assert isinstance(simplify(f - f), Sub)
    assert simplify(FloatImm("float32", 0.1) + FloatImm("float32", 0.2)).value == pytest.approx(0.3, rel=1e-6)


def test_logic_and_select_folding():
    b = Var("b", "bool")
    assert simplify(b & const(True)) is b
    assert_structural_equal(simplify(b | const(True)), const(True))
    assert_structural_equal(simplify(b & ~b), const(False))
    assert simplify(~~b) is b
    assert simplify(Select(b, x, x)) is x
    assert_structural_equal(simplify(Select(x < x + 1, y, x)), y)
    assert_structural_equal(simplify(~(x < y)), x >= y)


def test_substitute_then_simplify():
    e = (i * 4 + j) // 4
    out = substitute(e, {i: n + 1}, simplify=True, bounds={j: (0, 3)})
    assert_structural_equal(out, n + 1)
    assert substitute(e, {}) is e


def test_speed_is_reasonable():
    """Not a timing assertion: just that a few hundred index expressions simplify (the real check is
    scripts run by hand; see the report)."""
    ana = Analyzer()
    ana.bind(j, (0, 3))
    for k in range(200):
        out = ana.simplify((i * 4 + j + k * 4) // 4 + min_expr(i, n) - i)
        assert out is not None
