"""Constant integer bounds: the inclusive interval [min_value, max_value] an integer expression lies in.

Bounds are computed bottom-up through a table keyed by node class (one function per op). Intervals use
Python ints with two sentinels, `ConstIntBound.NEG_INF` and `POS_INF` (as in TVM: +-INT64_MAX), meaning
"unbounded"; arithmetic on a sentinel stays a sentinel. When a finite result leaves the range of a narrower
dtype (int32, uint8, ...) the op may wrap, so the bound widens to the whole dtype. For int64 index arithmetic
the analysis assumes no overflow, as every symbolic-shape simplifier does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from shapeflow.ir.dtype import DataType
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
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Max,
    Min,
    Mod,
    Mul,
    Not,
    Or,
    Select,
    Sub,
)

POS_INF = (1 << 63) - 1
NEG_INF = -POS_INF


@dataclass(frozen=True, slots=True)
class ConstIntBound:
    """Inclusive bounds of an integer expression; NEG_INF / POS_INF mean unbounded on that side."""

    min_value: int
    max_value: int

    POS_INF: ClassVar[int] = POS_INF
    NEG_INF: ClassVar[int] = NEG_INF

    def is_const(self) -> bool:
        return self.min_value == self.max_value and not is_inf(self.min_value)

    def contains(self, value: int) -> bool:
        lo_ok = self.min_value == NEG_INF or self.min_value <= value
        hi_ok = self.max_value == POS_INF or value <= self.max_value
        return lo_ok and hi_ok


Interval = tuple[int, int]


def is_inf(v: int) -> bool:
    return v >= POS_INF or v <= NEG_INF


def _clamp(v: int) -> int:
    return POS_INF if v >= POS_INF else NEG_INF if v <= NEG_INF else v


def _add(x: int, y: int) -> int:
    if is_inf(x):
        return x
    if is_inf(y):
        return y
    return _clamp(x + y)


def _mul(x: int, y: int) -> int:
    if x == 0 or y == 0:
        return 0
    if is_inf(x) or is_inf(y):
        return POS_INF if (x > 0) == (y > 0) else NEG_INF
    return _clamp(x * y)


def _floordiv_pos(x: int, y: int) -> int:
    """floor(x / y) for y > 0, with sentinels."""
    if is_inf(x):
        return x
    if is_inf(y):
        return 0 if x >= 0 else -1
    return x // y


def _truncdiv_pos(x: int, y: int) -> int:
    """trunc(x / y) for y > 0, with sentinels."""
    if is_inf(x):
        return x
    if is_inf(y):
        return 0
    q = abs(x) // y
    return q if x >= 0 else -q


def dtype_range(dtype: DataType) -> Interval:
    """Everything a value of `dtype` can be (int64 maps to the unbounded sentinels)."""
    if dtype.is_bool:
        return (0, 1)
    if dtype.is_integer:
        return (max(dtype.min_value(), NEG_INF), min(dtype.max_value(), POS_INF))
    return (NEG_INF, POS_INF)


def finalize(iv: Interval, dtype: DataType) -> Interval:
    """Widen to the whole dtype if the interval escapes it (the op may have wrapped)."""
    lo, hi = iv
    dlo, dhi = dtype_range(dtype)
    if (lo < dlo and not lo == NEG_INF) or (hi > dhi and not hi == POS_INF) or lo > hi:
        return (dlo, dhi)
    return (max(lo, dlo), min(hi, dhi))


# ------------------------------------------------------------------------------------------------
# Interval arithmetic (exported: the simplifier bounds canonical sums with it)
# ------------------------------------------------------------------------------------------------


def iv_add(a: Interval, b: Interval) -> Interval:
    return (_add(a[0], b[0]), _add(a[1], b[1]))


def iv_neg(a: Interval) -> Interval:
    return (-a[1], -a[0])


def iv_sub(a: Interval, b: Interval) -> Interval:
    return iv_add(a, iv_neg(b))


def iv_mul(a: Interval, b: Interval) -> Interval:
    corners = (_mul(a[0], b[0]), _mul(a[0], b[1]), _mul(a[1], b[0]), _mul(a[1], b[1]))
    return (min(corners), max(corners))


def _magnitude(a: Interval) -> int:
    return max(abs(a[0]), abs(a[1]))


def iv_floordiv(a: Interval, b: Interval) -> Interval:
    if b[0] > 0:
        lo = _floordiv_pos(a[0], b[1] if a[0] >= 0 else b[0])
        hi = _floordiv_pos(a[1], b[0] if a[1] >= 0 else b[1])
        return (lo, hi)
    if b[1] < 0:  # floor(a / b) == floor(-a / -b)
        return iv_floordiv(iv_neg(a), iv_neg(b))
    m = _magnitude(a)  # |b| >= 1 wherever the division is defined, so |floor(a / b)| <= |a|
    return (-m, m)


def iv_truncdiv(a: Interval, b: Interval) -> Interval:
    if b[0] > 0:
        lo = _truncdiv_pos(a[0], b[0] if a[0] < 0 else b[1])
        hi = _truncdiv_pos(a[1], b[0] if a[1] >= 0 else b[1])
        return (lo, hi)
    if b[1] < 0:  # trunc(a / b) == -trunc(a / -b)
        return iv_neg(iv_truncdiv(a, iv_neg(b)))
    m = _magnitude(a)
    return (-m, m)


def iv_floormod(a: Interval, b: Interval) -> Interval:
    if b[0] == b[1] and b[0] > 0 and not is_inf(a[0]) and not is_inf(a[1]):
        c = b[0]
        if a[0] // c == a[1] // c:  # one period: no wrap-around inside the interval
            k = a[0] // c * c
            return (a[0] - k, a[1] - k)
    if b[0] > 0:
        hi = _add(b[1], -1)
        if a[0] >= 0:
            hi = min(hi, a[1])
        return (0, hi)
    if b[1] < 0:
        lo = _add(b[0], 1)
        if a[1] <= 0:
            lo = max(lo, a[0])
        return (lo, 0)
    m = _add(_magnitude(b), -1)
    return (-m, m)


def iv_truncmod(a: Interval, b: Interval) -> Interval:
    m = _add(_magnitude(b), -1)  # |r| < |b| and |r| <= |a|, sign of a
    lo = 0 if a[0] >= 0 else max(a[0], -m)
    hi = 0 if a[1] <= 0 else min(a[1], m)
    return (lo, hi)


def iv_union(a: Interval, b: Interval) -> Interval:
    return (min(a[0], b[0]), max(a[1], b[1]))


def iv_intersect(a: Interval, b: Interval) -> Interval:
    return (max(a[0], b[0]), min(a[1], b[1]))


# ------------------------------------------------------------------------------------------------
# The table: node class -> bound function. `bound` is the recursive bound of a child.
# ------------------------------------------------------------------------------------------------

BoundFn = Callable[[object, Callable[[object], Interval]], Interval]

_BINARY: dict[type, Callable[[Interval, Interval], Interval]] = {
    Add: iv_add,
    Sub: iv_sub,
    Mul: iv_mul,
    FloorDiv: iv_floordiv,
    FloorMod: iv_floormod,
    Div: iv_truncdiv,
    Mod: iv_truncmod,
    Min: lambda a, b: (min(a[0], b[0]), min(a[1], b[1])),
    Max: lambda a, b: (max(a[0], b[0]), max(a[1], b[1])),
}


def _binary_bound(node, bound) -> Interval:
    return _BINARY[type(node)](bound(node.a), bound(node.b))


def _select_bound(node: Select, bound) -> Interval:
    cond = bound(node.condition)
    if cond == (1, 1):
        return bound(node.true_value)
    if cond == (0, 0):
        return bound(node.false_value)
    return iv_union(bound(node.true_value), bound(node.false_value))


def _cast_bound(node: Cast, bound) -> Interval:
    src = node.value.dtype
    if not (src.is_integer or src.is_bool):
        return dtype_range(node.dtype)
    if node.dtype.is_bool:
        inner = bound(node.value)
        return (1, 1) if inner[0] > 0 or inner[1] < 0 else (0, 0) if inner == (0, 0) else (0, 1)
    return bound(node.value)  # finalize() widens it if it does not fit the target


def _const_arg(node: Call, bound, i: int) -> int | None:
    iv = bound(node.args[i])
    return iv[0] if iv[0] == iv[1] and not is_inf(iv[0]) else None


def _call_bound(node: Call, bound) -> Interval:
    if not node.dtype.is_integer or len(node.args) != 2:
        return dtype_range(node.dtype)
    bits = node.dtype.bits
    if node.op in ("shift_left", "shift_right"):
        c = _const_arg(node, bound, 1)
        if c is None or not 0 <= c < bits:
            return dtype_range(node.dtype)
        scale = (1 << c, 1 << c)
        a = bound(node.args[0])
        return iv_mul(a, scale) if node.op == "shift_left" else iv_floordiv(a, scale)
    if node.op == "bitwise_and":
        a, b = bound(node.args[0]), bound(node.args[1])
        his = [iv[1] for iv in (a, b) if iv[0] >= 0]
        if his:  # x & y with y >= 0 lies in [0, y]
            return (0, min(his))
    return dtype_range(node.dtype)


def _bool_bound(node, bound) -> Interval:
    return (0, 1)


BOUND_RULES: dict[type, BoundFn] = {
    IntImm: lambda node, bound: (_clamp(node.value), _clamp(node.value)),
    Select: _select_bound,
    Cast: _cast_bound,
    Call: _call_bound,
    Let: lambda node, bound: bound(node.body),
    **{cls: _binary_bound for cls in _BINARY},
    **{cls: _bool_bound for cls in (EQ, NE, LT, LE, GT, GE, And, Or, Not)},
}
