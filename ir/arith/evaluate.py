"""Exact evaluation of scalar expressions, and the per-op semantics that constant folding shares.

The functions here define what the simplifier may fold: integers wrap to their dtype (two's complement),
`Div`/`Mod` truncate like C, `FloorDiv`/`FloorMod` floor like Python, and a division by zero (or the one
overflowing signed division, MIN / -1) is undefined, so it is never folded and evaluating it raises
`EvaluationError`. Floats round to their dtype after every operation (float64 arithmetic then one rounding is
correctly rounded for + - * / at float32 and float16 precision).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

from shapeflow.errors import Error
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
    FloatImm,
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
    PrimExpr,
    Select,
    Sub,
    Var,
)


class EvaluationError(Error, ArithmeticError):
    """The expression has no defined value (division by zero, an unbound variable, an unsupported node)."""


_RANGES: dict[DataType, tuple[int, int]] = {}


def wrap(value: int, dtype: DataType) -> int:
    """`value` reduced into the range of an integer or bool dtype, two's complement for signed kinds."""
    found = _RANGES.get(dtype)
    if found is None:
        found = _RANGES.setdefault(dtype, (dtype.min_value(), dtype.max_value()))
    if found[0] <= value <= found[1]:  # the common case: nothing to wrap
        return value
    if dtype.is_bool:
        return 1 if value else 0
    bits = dtype.bits
    v = value & ((1 << bits) - 1)
    if dtype.is_int and v >> (bits - 1):
        v -= 1 << bits
    return v


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def trunc_mod(a: int, b: int) -> int:
    return a - b * trunc_div(a, b)


INT_BINARY: dict[type, Callable[[int, int], int]] = {
    Add: operator.add,
    Sub: operator.sub,
    Mul: operator.mul,
    Div: trunc_div,
    Mod: trunc_mod,
    FloorDiv: operator.floordiv,
    FloorMod: operator.mod,
    Min: min,
    Max: max,
}
DIVISIONS = (Div, Mod, FloorDiv, FloorMod)
COMPARE: dict[type, Callable] = {
    EQ: operator.eq,
    NE: operator.ne,
    LT: operator.lt,
    LE: operator.le,
    GT: operator.gt,
    GE: operator.ge,
}


def int_binary(cls: type, a: int, b: int, dtype: DataType) -> int | None:
    """The exact result of an integer binary op, or None where it is undefined."""
    if cls in DIVISIONS:
        if b == 0 or (dtype.is_int and b == -1 and a == dtype.min_value()):
            return None
    return wrap(INT_BINARY[cls](a, b), dtype)


def _shift_left(a: int, b: int, dtype: DataType) -> int:
    return 0 if b < 0 or b >= dtype.bits else wrap(a << b, dtype)


def _shift_right(a: int, b: int, dtype: DataType) -> int:
    if b < 0 or b >= dtype.bits:
        return -1 if a < 0 else 0
    return a >> b  # a is already in range: arithmetic shift for int, logical for uint


INT_INTRINSICS: dict[str, Callable[..., int]] = {
    "bitwise_and": lambda a, b, dt: wrap(a & b, dt),
    "bitwise_or": lambda a, b, dt: wrap(a | b, dt),
    "bitwise_xor": lambda a, b, dt: wrap(a ^ b, dt),
    "bitwise_not": lambda a, dt: wrap(~a, dt),
    "shift_left": _shift_left,
    "shift_right": _shift_right,
}

_NUMPY_FLOAT = {16: np.float16, 32: np.float32, 64: np.float64}


def round_float(value: float, dtype: DataType) -> float | None:
    """`value` rounded to a float dtype; None for kinds we cannot round exactly (bfloat16)."""
    if dtype.kind != "float":
        return None
    with np.errstate(all="ignore"):
        return float(_NUMPY_FLOAT[dtype.bits](value))


def float_binary(cls: type, a: float, b: float, dtype: DataType) -> float | None:
    """IEEE result of + - * / at `dtype`; None for ops we do not fold (division by zero, min/max)."""
    x, y = np.float64(a), np.float64(b)
    with np.errstate(all="ignore"):
        if cls is Add:
            r = x + y
        elif cls is Sub:
            r = x - y
        elif cls is Mul:
            r = x * y
        elif cls is Div and b != 0.0:
            r = x / y
        else:
            return None
    return round_float(float(r), dtype)


def cast_value(value, src: DataType, dst: DataType):
    """The value of Cast(dst, constant); None where the cast is undefined (float out of range, bfloat16)."""
    if src.kind == "bfloat" or dst.kind == "bfloat":
        return None
    if dst.is_bool:
        return 1 if value != 0 else 0
    if dst.is_integer:
        if src.is_float:
            if not math.isfinite(value):
                return None
            t = math.trunc(value)
            return t if dst.min_value() <= t <= dst.max_value() else None
        return wrap(int(value), dst)
    if src.is_float or src.is_bool:
        return round_float(float(value), dst)
    # int -> float: convert directly from the integer so that it is rounded once.
    np_src = np.int64 if src.is_int or src.is_bool else np.uint64
    with np.errstate(all="ignore"):
        return float(np.array(value, dtype=np_src).astype(_NUMPY_FLOAT[dst.bits]))


# ------------------------------------------------------------------------------------------------
# The evaluator
# ------------------------------------------------------------------------------------------------


def _eval_binary(node, env):
    a, b = evaluate(node.a, env), evaluate(node.b, env)
    dtype = node.dtype
    if dtype.is_float:
        if type(node) in (Min, Max):
            return float(np.fmin(a, b) if type(node) is Min else np.fmax(a, b))
        out = float_binary(type(node), a, b, dtype)
        if out is None:
            if type(node) is Div:  # IEEE division by zero
                with np.errstate(all="ignore"):
                    return round_float(float(np.float64(a) / np.float64(b)), dtype)
            raise EvaluationError(f"cannot evaluate {type(node).__name__} on {dtype}")
        return out
    out = int_binary(type(node), a, b, dtype)
    if out is None:
        raise EvaluationError(f"{type(node).__name__}({a}, {b}) is undefined")
    return out


def _eval_compare(node, env):
    return 1 if COMPARE[type(node)](evaluate(node.a, env), evaluate(node.b, env)) else 0


def _eval_call(node: Call, env):
    fn = INT_INTRINSICS.get(node.op)
    if fn is None or not node.dtype.is_integer:
        raise EvaluationError(f"cannot evaluate intrinsic {node.op}")
    return fn(*(evaluate(a, env) for a in node.args), node.dtype)


def _eval_var(node: Var, env):
    if node in env:
        return env[node]
    if node.name in env:
        return env[node.name]
    raise EvaluationError(f"variable {node.name} has no value")


def _eval_cast(node: Cast, env):
    out = cast_value(evaluate(node.value, env), node.value.dtype, node.dtype)
    if out is None:
        raise EvaluationError(f"cast to {node.dtype} is undefined here")
    return out


def _eval_let(node: Let, env):
    inner = dict(env)
    inner[node.var] = evaluate(node.value, env)
    return evaluate(node.body, inner)


_EVAL: dict[type, Callable] = {
    Var: _eval_var,
    IntImm: lambda n, env: n.value,
    FloatImm: lambda n, env: round_float(n.value, n.dtype) if n.dtype.kind == "float" else n.value,
    Cast: _eval_cast,
    Not: lambda n, env: 0 if evaluate(n.a, env) else 1,
    And: lambda n, env: 1 if (evaluate(n.a, env) and evaluate(n.b, env)) else 0,
    Or: lambda n, env: 1 if (evaluate(n.a, env) or evaluate(n.b, env)) else 0,
    Select: lambda n, env: evaluate(n.true_value if evaluate(n.condition, env) else n.false_value, env),
    Call: _eval_call,
    Let: _eval_let,
    **{cls: _eval_binary for cls in INT_BINARY},
    **{cls: _eval_compare for cls in COMPARE},
}


def evaluate(expr: PrimExpr, env: dict) -> int | float:
    """The exact value of a scalar expression; `env` maps Vars (or their names) to Python numbers.

    Bools evaluate to 0 or 1. Raises EvaluationError where the IR leaves the value undefined.
    Note that both branches of a Select are defined by the IR to be evaluated; here only the taken one is,
    so an undefined untaken branch does not raise.
    """
    fn = _EVAL.get(type(expr))
    if fn is None:
        raise EvaluationError(f"cannot evaluate {type(expr).__name__}")
    return fn(expr, env)
