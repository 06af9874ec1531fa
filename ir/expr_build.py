"""Construction helpers of `shapeflow.ir.expr`: constants, conversion of Python values, type promotion and
the builders behind the Python operators (`a + b`, `a // b`, `a & b`) and the named ones (`floordiv`,
`select`, `logical_and`, ...). They live apart from the node classes only to keep each file small;
`shapeflow.ir.expr` re-exports every name, so import them from there.
"""

from __future__ import annotations

import math

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import (
    And,
    Broadcast,
    Call,
    Cast,
    Div,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Max,
    Min,
    Mod,
    Not,
    Or,
    PrimExpr,
    Select,
)
from shapeflow.ir.node import Node

ExprLike = PrimExpr | int | float | bool


def _check_expr(owner: Node, field: str, value) -> None:
    if not isinstance(value, PrimExpr):
        raise VerifyError(
            f"{type(owner).__name__}.{field} must be a PrimExpr, got {type(value).__name__} {value!r}", owner
        )


def make_const(dtype, value) -> PrimExpr:
    """A constant of `dtype` (a Broadcast of a scalar constant for vector dtypes)."""
    dtype = DataType(dtype)
    if dtype.is_vector:
        return Broadcast(make_const(dtype.element_of(), value), dtype.lanes)
    if dtype.is_float:
        return FloatImm(dtype, float(value))
    if dtype.is_bool:
        return IntImm(dtype, 1 if value else 0)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise VerifyError(f"cannot make an {dtype} constant from {value!r}")
    return IntImm(dtype, int(value))


def const(value, dtype=None) -> PrimExpr:
    """A constant from a Python value; ints default to int64, floats to float32, bools to bool."""
    if dtype is None:
        if isinstance(value, bool):
            dtype = "bool"
        elif isinstance(value, int):
            dtype = "int64"
        elif isinstance(value, float):
            dtype = "float32"
        else:
            raise VerifyError(f"cannot make a constant from {type(value).__name__} {value!r}")
    return make_const(dtype, value)


def convert(value, dtype_hint=None) -> PrimExpr:
    """Turn a Python scalar into a constant (of `dtype_hint` when given); expressions pass through."""
    if isinstance(value, PrimExpr):
        return value
    if isinstance(value, (bool, int, float)):
        if dtype_hint is not None:
            hint = DataType(dtype_hint)
            if isinstance(value, bool):
                return make_const("bool", value) if not hint.is_bool else make_const(hint, value)
            if isinstance(value, float) and not hint.is_float:
                return make_const(
                    "float32" if hint.is_vector is False else hint.with_kind("float", 32), value
                )
            return make_const(hint, value)
        return const(value)
    raise VerifyError(f"cannot convert {type(value).__name__} {value!r} to an expression")


def _promote(a: PrimExpr, b: PrimExpr) -> tuple[PrimExpr, PrimExpr]:
    """Make two operands agree in dtype: widen integers, int→float, scalar→vector."""
    da, db = a.dtype, b.dtype
    if da == db:
        return a, b
    if da.lanes != db.lanes:
        if da.lanes == 1:
            a = Broadcast(a, db.lanes)
        elif db.lanes == 1:
            b = Broadcast(b, da.lanes)
        else:
            raise VerifyError(f"lanes mismatch: {da} and {db}")
        return _promote(a, b)
    ea, eb = da.element_of(), db.element_of()
    if ea == eb:
        return a, b
    if ea.is_float and not eb.is_float:
        return a, Cast(da, b)
    if eb.is_float and not ea.is_float:
        return Cast(db, a), b
    if ea.bits >= eb.bits:
        return a, Cast(da, b)
    return Cast(db, a), b


def _binary(cls, a, b) -> PrimExpr:
    if not isinstance(a, PrimExpr):
        a = convert(a, b.dtype.element_of() if isinstance(b, PrimExpr) else None)
    if not isinstance(b, PrimExpr):
        b = convert(b, a.dtype.element_of())
    a, b = _promote(a, b)
    return cls(a, b)


def _bitwise(op: str, a, b) -> PrimExpr:
    if not isinstance(b, PrimExpr):
        b = convert(b, a.dtype.element_of())
    a, b = _promote(a, b)
    return Call(a.dtype, op, (a, b))


def min_expr(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(Min, a, b)


def max_expr(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(Max, a, b)


def truncdiv(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(Div, a, b)


def truncmod(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(Mod, a, b)


def floordiv(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(FloorDiv, a, b)


def floormod(a: ExprLike, b: ExprLike) -> PrimExpr:
    return _binary(FloorMod, a, b)


def select(condition: ExprLike, true_value: ExprLike, false_value: ExprLike) -> PrimExpr:
    if not isinstance(true_value, PrimExpr) and isinstance(false_value, PrimExpr):
        true_value = convert(true_value, false_value.dtype)
    if not isinstance(false_value, PrimExpr) and isinstance(true_value, PrimExpr):
        false_value = convert(false_value, true_value.dtype)
    t, f = _promote(convert(true_value), convert(false_value))
    return Select(convert(condition), t, f)


def logical_and(*conds: ExprLike) -> PrimExpr:
    out = convert(conds[0])
    for c in conds[1:]:
        out = And(out, convert(c))
    return out


def logical_or(*conds: ExprLike) -> PrimExpr:
    out = convert(conds[0])
    for c in conds[1:]:
        out = Or(out, convert(c))
    return out


def logical_not(cond: ExprLike) -> PrimExpr:
    return Not(convert(cond))


def is_const_int(expr, value: int | None = None) -> bool:
    """True for an integer constant (equal to `value` when given), vector broadcasts included."""
    if isinstance(expr, Broadcast):
        expr = expr.value
    return isinstance(expr, IntImm) and (value is None or expr.value == value)


def const_value(expr):
    """The Python value of a constant (IntImm, FloatImm or a Broadcast of one), else None."""
    if isinstance(expr, Broadcast):
        expr = expr.value
    if isinstance(expr, (IntImm, FloatImm)):
        return expr.value
    return None
