"""Symbolic shape expressions as Python source, for the argument checkers of compiled kernels.

Shapes, strides and offsets of kernel parameters are integer expressions over symbolic dimensions. The
checker evaluates them in Python, so they are rendered once (at build time) to Python source through a
table keyed by node class; integer semantics follow the IR (`//` and `%` floor, Div/Mod truncate).
"""

from __future__ import annotations

from collections.abc import Callable

from shapeflow.errors import UnsupportedError
from shapeflow.ir.expr import (
    Add,
    Cast,
    Div,
    FloorDiv,
    FloorMod,
    IntImm,
    Max,
    Min,
    Mod,
    Mul,
    PrimExpr,
    Sub,
    Var,
)


def truncdiv(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def truncmod(a: int, b: int) -> int:
    return 0 if b == 0 else a - truncdiv(a, b) * b


def floordiv(a: int, b: int) -> int:
    return 0 if b == 0 else a // b


def floormod(a: int, b: int) -> int:
    return 0 if b == 0 else a % b


HELPERS = {"_truncdiv": truncdiv, "_truncmod": truncmod, "_floordiv": floordiv, "_floormod": floormod}

# Integer ops a shape expression may use, by name (the VM's serialized shape code uses these names too),
# and the Python source each renders to.
OP_NAMES: dict[type, str] = {
    Add: "add",
    Sub: "sub",
    Mul: "mul",
    FloorDiv: "floordiv",
    FloorMod: "floormod",
    Div: "div",
    Mod: "mod",
    Min: "min",
    Max: "max",
}

RENDER: dict[str, Callable[[str, str], str]] = {
    "add": lambda a, b: f"({a} + {b})",
    "sub": lambda a, b: f"({a} - {b})",
    "mul": lambda a, b: f"({a} * {b})",
    "floordiv": lambda a, b: f"_floordiv({a}, {b})",
    "floormod": lambda a, b: f"_floormod({a}, {b})",
    "div": lambda a, b: f"_truncdiv({a}, {b})",
    "mod": lambda a, b: f"_truncmod({a}, {b})",
    "min": lambda a, b: f"min({a}, {b})",
    "max": lambda a, b: f"max({a}, {b})",
}


def to_python(expr: PrimExpr, names: dict[int, str]) -> str:
    """Python source computing the integer `expr`; `names` maps id(Var) to a Python name."""
    if isinstance(expr, IntImm):
        return str(expr.value)
    if isinstance(expr, Var):
        name = names.get(id(expr))
        if name is None:
            raise UnsupportedError(f"shape variable '{expr.name}' cannot be determined from the arguments")
        return name
    if isinstance(expr, Cast) and expr.dtype.is_integer:
        return to_python(expr.value, names)
    name = OP_NAMES.get(type(expr))
    if name is None or not expr.dtype.is_integer:
        raise UnsupportedError(
            f"shape expression {type(expr).__name__} ({expr.dtype}) is not supported in a parameter"
        )
    return RENDER[name](to_python(expr.a, names), to_python(expr.b, names))
