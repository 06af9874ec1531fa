"""Rule sets that need no bounds: constant folding with exact IR semantics, exact float identities,
boolean logic, select and cast, and variable bindings (analyzer bindings and Let expressions)."""

from __future__ import annotations

import math

from shapeflow.ir.arith.evaluate import (
    COMPARE,
    INT_BINARY,
    INT_INTRINSICS,
    cast_value,
    float_binary,
    int_binary,
    round_float,
)
from shapeflow.ir.arith.rule import RuleSet
from shapeflow.ir.expr import (
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
    FloatImm,
    IntImm,
    Let,
    Mul,
    Not,
    Or,
    Select,
    Sub,
    Var,
)
from shapeflow.ir.functor import Mutator

CONST_FOLD = RuleSet("const_fold")
FLOAT_IDENTITY = RuleSet("float_identity")
LOGIC = RuleSet("logic")
BINDING = RuleSet("binding")


def _bool(value: bool) -> IntImm:
    return IntImm("bool", 1 if value else 0)


def _float_value(node: FloatImm) -> float | None:
    return round_float(node.value, node.dtype)


# -- constant folding -----------------------------------------------------------------------------


@CONST_FOLD.rule("fold_int_binary", *INT_BINARY, law="op(c1, c2) -> exact wrapped value; x/0 is left alone")
def fold_int_binary(node, ctx):
    a, b = node.a, node.b
    if type(a) is IntImm and type(b) is IntImm and node.dtype.is_integer:
        value = int_binary(type(node), a.value, b.value, node.dtype)
        if value is not None:
            return IntImm(node.dtype, value)
    return None


@CONST_FOLD.rule("fold_float_binary", Add, Sub, Mul, Div, law="f1 op f2 -> IEEE result at the dtype (not /0)")
def fold_float_binary(node, ctx):
    a, b = node.a, node.b
    if type(a) is FloatImm and type(b) is FloatImm:
        x, y = _float_value(a), _float_value(b)
        if x is not None and y is not None:
            value = float_binary(type(node), x, y, node.dtype)
            if value is not None:
                return FloatImm(node.dtype, value)
    return None


@CONST_FOLD.rule("fold_compare", *COMPARE, law="cmp(c1, c2) -> bool (IEEE for floats: NaN compares false)")
def fold_compare(node, ctx):
    a, b = node.a, node.b
    if node.dtype.lanes != 1:
        return None
    if type(a) is IntImm and type(b) is IntImm:
        return _bool(COMPARE[type(node)](a.value, b.value))
    if type(a) is FloatImm and type(b) is FloatImm:
        x, y = _float_value(a), _float_value(b)
        if x is not None and y is not None:
            return _bool(COMPARE[type(node)](x, y))
    return None


@CONST_FOLD.rule("fold_and_or", And, Or, law="and(1,x)->x, and(0,x)->0, or(0,x)->x, or(1,x)->1")
def fold_and_or(node, ctx):
    if node.dtype.lanes != 1:
        return None
    absorbing = 0 if type(node) is And else 1
    for this, other in ((node.a, node.b), (node.b, node.a)):
        if type(this) is IntImm:
            return this if this.value == absorbing else other
    return None


@CONST_FOLD.rule("fold_not", Not, law="not(c) -> 1 - c")
def fold_not(node, ctx):
    if type(node.a) is IntImm:
        return _bool(not node.a.value)
    return None


@CONST_FOLD.rule("fold_select", Select, law="select(1, a, b) -> a; select(0, a, b) -> b")
def fold_select(node, ctx):
    cond = node.condition
    if type(cond) is IntImm:
        return node.true_value if cond.value else node.false_value
    return None


@CONST_FOLD.rule("fold_cast", Cast, law="cast(c) -> the cast value, where defined")
def fold_cast(node, ctx):
    value = node.value
    if node.dtype.lanes != 1 or type(value) not in (IntImm, FloatImm):
        return None
    src = value.value if type(value) is IntImm else _float_value(value)
    if src is None:
        return None
    out = cast_value(src, value.dtype, node.dtype)
    if out is None:
        return None
    return FloatImm(node.dtype, out) if node.dtype.is_float else IntImm(node.dtype, out)


@CONST_FOLD.rule("fold_intrinsic", Call, law="bitwise and/or/xor/not and shifts of constants")
def fold_intrinsic(node, ctx):
    fn = INT_INTRINSICS.get(node.op)
    if fn is None or not node.dtype.is_integer or node.dtype.lanes != 1:
        return None
    if not all(type(a) is IntImm for a in node.args):
        return None
    return IntImm(node.dtype, fn(*(a.value for a in node.args), node.dtype))


@CONST_FOLD.rule("cast_noop", Cast, law="cast(t, x) -> x when x already has dtype t")
def cast_noop(node, ctx):
    return node.value if node.value.dtype == node.dtype else None


# -- float identities that are exact in IEEE arithmetic --------------------------------------------


def _is_float_const(node, value: float, negative_zero: bool = False) -> bool:
    if type(node) is not FloatImm or node.value != value:
        return False
    return value != 0.0 or (math.copysign(1.0, node.value) < 0) == negative_zero


@FLOAT_IDENTITY.rule("float_mul_one", Mul, law="x * 1.0 -> x and 1.0 * x -> x (floats)")
def float_mul_one(node, ctx):
    if not node.dtype.is_float:
        return None
    if _is_float_const(node.b, 1.0):
        return node.a
    if _is_float_const(node.a, 1.0):
        return node.b
    return None


@FLOAT_IDENTITY.rule("float_add_neg_zero", Add, law="x + (-0.0) -> x (x + 0.0 is not exact for x = -0.0)")
def float_add_neg_zero(node, ctx):
    if not node.dtype.is_float:
        return None
    if _is_float_const(node.b, 0.0, negative_zero=True):
        return node.a
    if _is_float_const(node.a, 0.0, negative_zero=True):
        return node.b
    return None


@FLOAT_IDENTITY.rule("float_sub_zero", Sub, law="x - 0.0 -> x (floats)")
def float_sub_zero(node, ctx):
    if node.dtype.is_float and _is_float_const(node.b, 0.0):
        return node.a
    return None


@FLOAT_IDENTITY.rule("float_div_one", Div, law="x / 1.0 -> x (floats)")
def float_div_one(node, ctx):
    if node.dtype.is_float and _is_float_const(node.b, 1.0):
        return node.a
    return None


# -- boolean logic and select ----------------------------------------------------------------------

_NEGATED = {LT: GE, LE: GT, GT: LE, GE: LT, EQ: NE, NE: EQ}


@LOGIC.rule("not_not", Not, law="not(not(x)) -> x")
def not_not(node, ctx):
    return node.a.a if type(node.a) is Not else None


@LOGIC.rule("not_compare", Not, law="not(a < b) -> a >= b, ... (integers only: NaN breaks it for floats)")
def not_compare(node, ctx):
    inner = node.a
    flipped = _NEGATED.get(type(inner))
    if flipped is None or not (inner.a.dtype.is_integer or inner.a.dtype.is_bool):
        return None
    return flipped(inner.a, inner.b)


@LOGIC.rule("and_or_same", And, Or, law="x && x -> x; x || x -> x")
def and_or_same(node, ctx):
    return node.a if ctx.canon.same(node.a, node.b) else None


@LOGIC.rule("and_or_complement", And, Or, law="x && !x -> 0; x || !x -> 1")
def and_or_complement(node, ctx):
    if node.dtype.lanes != 1:
        return None
    a, b = node.a, node.b
    if (type(b) is Not and ctx.canon.same(a, b.a)) or (type(a) is Not and ctx.canon.same(b, a.a)):
        return _bool(type(node) is Or)
    return None


@LOGIC.rule("select_same_branches", Select, law="select(c, a, a) -> a")
def select_same_branches(node, ctx):
    return node.true_value if ctx.canon.same(node.true_value, node.false_value) else None


@LOGIC.rule("select_not_condition", Select, law="select(!c, a, b) -> select(c, b, a)")
def select_not_condition(node, ctx):
    cond = node.condition
    if type(cond) is Not:
        return Select(cond.a, node.false_value, node.true_value)
    return None


# -- variables bound to expressions ----------------------------------------------------------------


@BINDING.rule("var_binding", Var, law="v -> e where the analyzer was told bind(v, e)")
def var_binding(node, ctx):
    return ctx.binding(node)


class _InlineLet(Mutator):
    """Replace one Var by an expression, respecting an inner Let that binds the same Var again (shadowing).
    The Var a Let binds is never replaced: it is a binder, not a use."""

    mutate_buffers = False  # a Let-bound variable cannot occur in a buffer declared outside the Let

    def __init__(self, var: Var, value):
        super().__init__()
        self.var = var
        self.value = value

    def visit_Var(self, node: Var):
        return self.value if node is self.var else node

    def visit_Let(self, node: Let):
        value = self.visit(node.value)
        body = node.body if node.var is self.var else self.visit(node.body)
        if value is node.value and body is node.body:
            return node
        return Let(node.var, value, body)


@BINDING.rule(
    "let_inline", Let, law="let v = e in b -> b[v := e] (expressions are pure; b alone if v is unused)"
)
def let_inline(node, ctx):
    """Expressions have no side effects, so a Let only names a value. Eliminating every Let (bottom-up, so no
    simplified subtree holds one) keeps later rewrites from copying a binder: distributing
    `let t = 2 in -2` over a sum would otherwise bind the same Var twice, which is ill-formed."""
    return _InlineLet(node.var, node.value).visit(node.body)
