"""Elementwise operations of te: math intrinsics, selection, constants and integer division.

Math functions are made by one factory rather than written one by one: each builds a `Call` through
`shapeflow.ir.tir.intrinsics.call_intrinsic`, whose registry checks arity and operand kinds and defines the
meaning; te adds only the conversion of Python numbers.
"""

from __future__ import annotations

import builtins

import numpy as np

from shapeflow.errors import VerifyError
from shapeflow.ir import expr as _expr
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import PrimExpr, convert, make_const
from shapeflow.ir.tir.intrinsics import call_intrinsic


def _math_function(te_name: str, intrinsic: str):
    def apply(*args) -> PrimExpr:
        for arg in args:
            if not isinstance(arg, (PrimExpr, int, float, bool)):
                raise VerifyError(f"te.{te_name}: arguments must be expressions, got {arg!r}")
        if not builtins.any(isinstance(a, PrimExpr) for a in args):
            # All Python numbers: float32, as the rest of te uses for Python floats.
            args = tuple(make_const("float32", a) for a in args)
        return call_intrinsic(intrinsic, *args)

    apply.__name__ = te_name
    apply.__qualname__ = te_name
    apply.__doc__ = f"`{intrinsic}` applied elementwise (see shapeflow.ir.tir.intrinsics)."
    return apply


exp = _math_function("exp", "exp")
exp2 = _math_function("exp2", "exp2")
log = _math_function("log", "log")
log2 = _math_function("log2", "log2")
log1p = _math_function("log1p", "log1p")
sqrt = _math_function("sqrt", "sqrt")
rsqrt = _math_function("rsqrt", "rsqrt")
tanh = _math_function("tanh", "tanh")
sigmoid = _math_function("sigmoid", "sigmoid")
erf = _math_function("erf", "erf")
sin = _math_function("sin", "sin")
cos = _math_function("cos", "cos")
floor = _math_function("floor", "floor")
ceil = _math_function("ceil", "ceil")
trunc = _math_function("trunc", "trunc")
round = _math_function("round", "round")
abs = _math_function("abs", "abs")
isnan = _math_function("isnan", "isnan")
isinf = _math_function("isinf", "isinf")
pow = _math_function("pow", "pow")
fma = _math_function("fma", "fma")
power = _math_function("power", "pow")

# Every math function te offers, by name (the fuzzer and the tests iterate over it).
MATH_FUNCTIONS = {
    "exp": exp,
    "exp2": exp2,
    "log": log,
    "log2": log2,
    "log1p": log1p,
    "sqrt": sqrt,
    "rsqrt": rsqrt,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "erf": erf,
    "sin": sin,
    "cos": cos,
    "floor": floor,
    "ceil": ceil,
    "trunc": trunc,
    "round": round,
    "abs": abs,
    "isnan": isnan,
    "isinf": isinf,
    "pow": pow,
    "fma": fma,
    "power": power,
}


def if_then_else(cond, t, f) -> PrimExpr:
    """`t` where `cond` holds, else `f` (a Select). Both branches must have one dtype once Python numbers
    take the dtype of the other branch."""
    condition = convert(cond)
    if not condition.dtype.is_bool:
        raise VerifyError(f"te.if_then_else: the condition must be bool, got dtype {condition.dtype}")
    if isinstance(t, PrimExpr) and isinstance(f, PrimExpr) and t.dtype != f.dtype:
        raise VerifyError(f"te.if_then_else: branches have different dtypes ({t.dtype} and {f.dtype})")
    if not isinstance(t, PrimExpr) and not isinstance(f, PrimExpr):
        t, f = convert(t), convert(f)
        if t.dtype != f.dtype:
            raise VerifyError(f"te.if_then_else: branches have different dtypes ({t.dtype} and {f.dtype})")
    return _expr.select(condition, t, f)


def all(*conditions) -> PrimExpr:  # noqa: A001
    """The logical and of bool conditions (TVM's te.all)."""
    return _logical("all", _expr.logical_and, conditions)


def any(*conditions) -> PrimExpr:  # noqa: A001
    """The logical or of bool conditions (TVM's te.any)."""
    return _logical("any", _expr.logical_or, conditions)


def _logical(name: str, combine, conditions) -> PrimExpr:
    if not conditions:
        raise VerifyError(f"te.{name} needs at least one condition")
    exprs = [convert(c) for c in conditions]
    for e in exprs:
        if not e.dtype.is_bool:
            raise VerifyError(f"te.{name}: conditions must be bool, got dtype {e.dtype}")
    return combine(*exprs)


def const(value, dtype: str | DataType | None = None) -> PrimExpr:
    """A constant; without `dtype`, ints are int64, floats float32 and bools bool."""
    return _expr.const(value, dtype)


def max_value(dtype: str | DataType) -> PrimExpr:
    """The largest finite value of `dtype` (as TVM: 3.4028235e38 for float32, not infinity)."""
    dtype = DataType(dtype)
    if dtype.is_float:
        return make_const(dtype, float(np.finfo(dtype.to_numpy()).max))
    return make_const(dtype, dtype.max_value())


def min_value(dtype: str | DataType) -> PrimExpr:
    """The smallest finite value of `dtype` (as TVM: -3.4028235e38 for float32, not -infinity)."""
    dtype = DataType(dtype)
    if dtype.is_float:
        return make_const(dtype, float(np.finfo(dtype.to_numpy()).min))
    return make_const(dtype, dtype.min_value())


floordiv = _expr.floordiv
floormod = _expr.floormod
truncdiv = _expr.truncdiv
truncmod = _expr.truncmod


def cast(value, dtype: str | DataType) -> PrimExpr:
    """`value` converted to `dtype`."""
    return convert(value).astype(dtype)


__all__ = [
    *MATH_FUNCTIONS,
    "all",
    "any",
    "if_then_else",
    "const",
    "max_value",
    "min_value",
    "floordiv",
    "floormod",
    "truncdiv",
    "truncmod",
    "cast",
]
