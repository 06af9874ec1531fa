"""Symbolic shape reasoning for type inference: proving dims equal or different, broadcasting, products.

Proofs go to `shapeflow.ir.arith` (`Analyzer().can_prove`, `.simplify`) when it is importable. Without it
we still decide what needs no algebra: constants, the same expression on both sides (structurally), and
products that share factors. An answer is three-valued: True (proved), False (refuted), None (unknown).

Broadcasting two dims `a`, `b` (numpy rules) is decided as follows:
- proved equal, or one side the literal 1: the other side;
- proved different with both sides provably not 1: ShapeError at build time, naming the op and dims;
- one side provably not 1: that side (the other must be 1 or equal to it; checked at run time);
- otherwise `max(a, b)`, which is the exact numpy result whenever the broadcast is valid. Validity is
  checked at run time: the interpreter reports numpy's broadcast failure as a ShapeError, and checks each
  binding's value against its inferred type.

Run-time requirements: what inference could neither prove nor refute but a kernel relies on (a broadcast
above, contracted dims that must agree, ...) is passed to `require`. Outside `record_requirements()` that
does nothing; inside, the requirements are collected, which is how the compiler derives the VM's run-time
guards from each op's own inference (shapeflow.runtime.vm.guards) instead of keeping a list per op.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

from shapeflow.errors import ShapeError
from shapeflow.ir import expr as E
from shapeflow.ir.expr import IntImm, PrimExpr, Var, const_value, convert
from shapeflow.ir.node import Node, fields_of

_ANALYZER_CLASS = None


def analyzer(*exprs):
    """An arith Analyzer that knows the Vars of `exprs` are shape dims (>= 0), or None while
    `shapeflow.ir.arith` is not available."""
    global _ANALYZER_CLASS
    if _ANALYZER_CLASS is None:
        try:
            from shapeflow.ir.arith import Analyzer  # noqa: PLC0415
        except ImportError:
            return None
        _ANALYZER_CLASS = Analyzer
    ana = _ANALYZER_CLASS()
    for v in free_vars(exprs):
        ana.bind(v, (0, _DIM_MAX))
    return ana


_DIM_MAX = 2**62


def same_expr(a, b) -> bool:
    """Syntactic equality in which Vars are compared by identity (structural_equal would pair free Vars
    up to renaming, which is not what a proof about one scope needs)."""
    if a is b:
        return True
    if isinstance(a, Var) or isinstance(b, Var) or type(a) is not type(b):
        return False
    if isinstance(a, Node):
        return all(same_expr(getattr(a, f), getattr(b, f)) for f in fields_of(type(a)))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_expr(x, y) for x, y in zip(a, b))
    return a == b


_INFIX = {E.Add: "+", E.Sub: "-", E.Mul: "*", E.FloorDiv: "//", E.FloorMod: "%", E.Div: "/"}


def format_dim(expr) -> str:
    """A short, readable form of a shape expression for error messages (`n * 4`, `max(n, m)`)."""
    if isinstance(expr, int):
        return str(expr)
    if isinstance(expr, Var):
        return expr.name
    value = const_value(expr)
    if value is not None:
        return str(value)
    if type(expr) in _INFIX:
        return f"({format_dim(expr.a)} {_INFIX[type(expr)]} {format_dim(expr.b)})"
    if isinstance(expr, (E.Min, E.Max)):
        return f"{type(expr).__name__.lower()}({format_dim(expr.a)}, {format_dim(expr.b)})"
    return type(expr).__name__


def format_shape(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(format_dim(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def as_int(expr: PrimExpr) -> int | None:
    value = const_value(expr)
    return value if isinstance(value, int) else None


def _fold(expr: PrimExpr) -> PrimExpr:
    """Constant folding and unit rules only; what the arith library would do far better."""
    if isinstance(expr, (E.Add, E.Sub, E.Mul, E.FloorDiv, E.FloorMod, E.Min, E.Max)):
        a, b = _fold(expr.a), _fold(expr.b)
        ca, cb = as_int(a), as_int(b)
        if ca is not None and cb is not None:
            folded = _CONST_FOLD[type(expr)](ca, cb) if cb != 0 or type(expr) in _NO_DIV else None
            if folded is not None:
                return IntImm(expr.dtype, folded)
        if isinstance(expr, E.Mul) and (ca == 1 or cb == 1):
            return b if ca == 1 else a
        if isinstance(expr, E.Add) and (ca == 0 or cb == 0):
            return b if ca == 0 else a
        if isinstance(expr, (E.Sub,)) and cb == 0:
            return a
        if isinstance(expr, E.FloorDiv) and cb == 1:
            return a
        if isinstance(expr, (E.Min, E.Max)) and same_expr(a, b):
            return a
        if a is expr.a and b is expr.b:
            return expr
        return type(expr)(a, b)
    return expr


_CONST_FOLD: dict[type, Callable[[int, int], int]] = {
    E.Add: lambda a, b: a + b,
    E.Sub: lambda a, b: a - b,
    E.Mul: lambda a, b: a * b,
    E.FloorDiv: lambda a, b: a // b,
    E.FloorMod: lambda a, b: a % b,
    E.Min: min,
    E.Max: max,
}
_NO_DIV = {E.Add, E.Sub, E.Mul, E.Min, E.Max}


def simplify(expr) -> PrimExpr:
    """Simplify an int64 shape expression (arith when available, else constant folding)."""
    expr = convert(expr, "int64")
    ana = analyzer(expr)
    if ana is not None:
        return ana.simplify(expr)
    return _fold(expr)


def prove(cond: PrimExpr) -> bool:
    """True if `cond` (a comparison of int64 shape expressions) is proved for all values of its Vars."""
    if isinstance(cond, E.CmpOp):
        a, b = _fold(cond.a), _fold(cond.b)
        ca, cb = as_int(a), as_int(b)
        if ca is not None and cb is not None:
            return bool(_CMP[type(cond)](ca, cb))
        if same_expr(a, b):
            return type(cond) in (E.EQ, E.LE, E.GE)
    ana = analyzer(cond)
    if ana is None:
        return False
    return bool(ana.can_prove(cond))


_CMP = {
    E.EQ: lambda a, b: a == b,
    E.NE: lambda a, b: a != b,
    E.LT: lambda a, b: a < b,
    E.LE: lambda a, b: a <= b,
    E.GT: lambda a, b: a > b,
    E.GE: lambda a, b: a >= b,
}


def compare_dims(a, b) -> bool | None:
    """True if `a == b` is proved, False if `a != b` is proved, None if unknown."""
    a, b = convert(a, "int64"), convert(b, "int64")
    if prove(E.EQ(a, b)):
        return True
    if prove(E.NE(a, b)):
        return False
    return None


@dataclasses.dataclass(frozen=True)
class Requirement:
    """A condition on shape values that must hold at run time for a kernel to stay in bounds:
    kind "equal": value == other; "broadcast": value == 1 or value == other; "le": value <= other.
    `what` says what it is about, naming the op ("op 'matmul': contracted dimensions")."""

    kind: str
    value: PrimExpr
    other: PrimExpr
    what: str
    dimension: int | None = None


_RECORDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("shape_requirements", default=None)


@contextlib.contextmanager
def record_requirements() -> Iterator[list[Requirement]]:
    """Collect the `require` calls made inside the block (inference of one call, typically)."""
    found: list[Requirement] = []
    token = _RECORDING.set(found)
    try:
        yield found
    finally:
        _RECORDING.reset(token)


def require(kind: str, value, other, what: str, dimension: int | None = None) -> None:
    """Note a run-time requirement (see `Requirement`); a no-op unless requirements are being recorded."""
    found = _RECORDING.get()
    if found is not None:
        found.append(Requirement(kind, convert(value, "int64"), convert(other, "int64"), what, dimension))


def broadcast_dim(a: PrimExpr, b: PrimExpr, op: str, axis: int) -> PrimExpr:
    """The numpy broadcast of two dims (see the module docstring for the rules)."""
    a, b = convert(a, "int64"), convert(b, "int64")
    if compare_dims(a, b) is True or as_int(b) == 1:
        return a
    if as_int(a) == 1:
        return b
    a_not_one, b_not_one = prove(E.NE(a, IntImm("int64", 1))), prove(E.NE(b, IntImm("int64", 1)))
    if a_not_one and b_not_one and compare_dims(a, b) is False:
        raise ShapeError(
            f"op '{op}': cannot broadcast dimension {format_dim(a)} against {format_dim(b)}",
            dimension=axis,
            expected=format_dim(a),
            actual=format_dim(b),
        )
    what = f"op '{op}': operands cannot be broadcast together"
    if a_not_one:
        require("broadcast", b, a, what, axis)
        return a
    if b_not_one:
        require("broadcast", a, b, what, axis)
        return b
    out = simplify(E.Max(a, b))
    require("broadcast", a, out, what, axis)
    require("broadcast", b, out, what, axis)
    return out


def broadcast_shapes(shapes: Sequence[Sequence[PrimExpr]], op: str) -> tuple[PrimExpr, ...]:
    """Numpy broadcasting of several symbolic shapes (dimension numbers in errors count from the right's
    result rank, i.e. they index the result)."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[PrimExpr] = []
    for axis in range(rank):
        dim = None
        for shape in shapes:
            k = axis - (rank - len(shape))
            if k < 0:
                continue
            dim = shape[k] if dim is None else broadcast_dim(dim, shape[k], op, axis)
        out.append(dim)
    return tuple(out)


def product(dims: Sequence[PrimExpr]) -> PrimExpr:
    out: PrimExpr = IntImm("int64", 1)
    for d in dims:
        out = out * d
    return simplify(out)


def _factors(dims: Sequence[PrimExpr]) -> tuple[int, list[PrimExpr]]:
    """Split a product of dims into its constant part and its symbolic factors (Mul trees flattened)."""
    constant, symbolic = 1, []
    stack = list(dims)
    while stack:
        d = _fold(stack.pop())
        c = as_int(d)
        if c is not None:
            constant *= c
        elif isinstance(d, E.Mul):
            stack.extend((d.a, d.b))
        else:
            symbolic.append(d)
    return constant, symbolic


def divide_products(numer: Sequence[PrimExpr], denom: Sequence[PrimExpr]) -> PrimExpr:
    """product(numer) / product(denom), cancelling shared symbolic factors first, so that
    (n, 4, m) / (4, m) is exactly `n` without any algebra library."""
    cn, fn = _factors(numer)
    cd, fd = _factors(denom)
    remaining = list(fn)
    leftover = []
    for factor in fd:
        for i, candidate in enumerate(remaining):
            if same_expr(candidate, factor):
                del remaining[i]
                break
        else:
            leftover.append(factor)
    if cd != 0 and cn % cd == 0:
        cn, cd = cn // cd, 1
    top = product([IntImm("int64", cn), *remaining])
    bottom = product([IntImm("int64", cd), *leftover])
    if as_int(bottom) == 1:
        return top
    return simplify(E.FloorDiv(top, bottom))


def free_vars(exprs) -> list[Var]:
    """The Vars in shape expressions, in order of first appearance (each once)."""
    from shapeflow.ir.functor import collect  # noqa: PLC0415

    seen: dict[int, Var] = {}
    for e in exprs:
        for v in collect(e, Var):
            seen.setdefault(id(v), v)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# Evaluation of shape expressions at run time (for the interpreter and boundary checks)
# ---------------------------------------------------------------------------------------------

_EVAL: dict[type, Callable] = {
    **{
        cls: (lambda f: lambda e, env: f(evaluate(e.a, env), evaluate(e.b, env)))(fn)
        for cls, fn in _CMP.items()
    },
    **{
        cls: (lambda f: lambda e, env: f(evaluate(e.a, env), evaluate(e.b, env)))(fn)
        for cls, fn in _CONST_FOLD.items()
    },
    E.Div: lambda e, env: _trunc_div(evaluate(e.a, env), evaluate(e.b, env)),
    E.Mod: lambda e, env: _trunc_mod(evaluate(e.a, env), evaluate(e.b, env)),
    E.IntImm: lambda e, env: e.value,
    E.FloatImm: lambda e, env: e.value,
    E.Cast: lambda e, env: (float if e.dtype.is_float else int)(evaluate(e.value, env)),
    E.Select: lambda e, env: evaluate(e.true_value if evaluate(e.condition, env) else e.false_value, env),
    E.And: lambda e, env: bool(evaluate(e.a, env)) and bool(evaluate(e.b, env)),
    E.Or: lambda e, env: bool(evaluate(e.a, env)) or bool(evaluate(e.b, env)),
    E.Not: lambda e, env: not evaluate(e.a, env),
}


def _trunc_div(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a / b
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _trunc_mod(a, b):
    return a - _trunc_div(a, b) * b


def evaluate(expr: PrimExpr, env: Mapping[Var, int]):
    """The value of a shape expression with its Vars bound by `env` (KeyError names an unbound Var)."""
    if isinstance(expr, Var):
        if expr not in env:
            raise KeyError(expr.name)
        return env[expr]
    fn = _EVAL.get(type(expr))
    if fn is None:
        raise ShapeError(f"cannot evaluate {type(expr).__name__} in a shape expression")
    return fn(expr, env)
