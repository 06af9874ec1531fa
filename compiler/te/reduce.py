"""Reductions: reduce axes, commutative reducers (`te.comm_reducer`) and the standard ones.

A reducer is declared once by its combine function and its identity; `te.sum`, `te.prod`, `te.max` and
`te.min` are instances, and a user's custom reducer goes through the same path to the same TensorIR
(an `init` block storing the identity, an update storing `combine(acc, value)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm, PrimExpr, convert, make_const, max_expr, min_expr
from shapeflow.ir.tir.stmt import Range
from shapeflow.te.tensor import Reduce, ReduceAxis, Tensor


def reduce_axis(dom, name: str = "rv") -> ReduceAxis:
    """A reduction axis over `dom`: a `(lo, hi)` pair (half-open, as TVM's Range) or a Range."""
    if not isinstance(name, str) or not name:
        raise VerifyError(f"te.reduce_axis needs a non-empty str name, got {name!r}")
    if isinstance(dom, Range):
        rng = dom
    elif isinstance(dom, (tuple, list)) and len(dom) == 2:
        lo, hi = (_bound(v, name) for v in dom)
        rng = Range(lo, _extent(lo, hi))
    else:
        raise VerifyError(f"te.reduce_axis {name!r}: domain must be a (lo, hi) pair or a Range, got {dom!r}")
    for end in (rng.min, rng.extent):
        if not end.dtype.is_integer:
            raise VerifyError(f"te.reduce_axis {name!r}: domain bounds must be integers, got {end.dtype}")
    return ReduceAxis(name, DataType("int64"), rng)


def _bound(value, name: str) -> PrimExpr:
    if isinstance(value, bool) or not isinstance(value, (int, PrimExpr)):
        raise VerifyError(
            f"te.reduce_axis {name!r}: domain bounds must be ints or int expressions, got {value!r}"
        )
    return convert(value, "int64")


def _extent(lo: PrimExpr, hi: PrimExpr) -> PrimExpr:
    """hi - lo, folded when both are constants or lo is 0 (so that printed extents stay readable)."""
    if isinstance(lo, IntImm) and isinstance(hi, IntImm):
        if hi.value <= lo.value:
            # A block's init runs with the first reduction step, so an empty domain would leave the
            # output unwritten (as in TVM); refuse the constant case, where it is surely a mistake.
            raise VerifyError(
                f"te.reduce_axis: empty domain ({lo.value}, {hi.value}); reductions need a step"
            )
        return IntImm(hi.dtype, hi.value - lo.value)
    if isinstance(lo, IntImm) and lo.value == 0:
        return hi
    return hi - lo


@dataclass(frozen=True)
class CommReducer:
    """A commutative, associative reduction: `combine(acc, value)` and `identity(dtype)`.

    Calling it, `reducer(expr, axis=k, where=cond, init=value)`, builds a reduction of `expr` over the
    reduce axis `k` (or a list of them) for use as the whole body of a `te.compute`.
    """

    name: str
    combine: Callable[[PrimExpr, PrimExpr], PrimExpr]
    identity: Callable[[DataType], PrimExpr]

    def __call__(self, expr, axis=None, where=None, init=None) -> PrimExpr:
        axes = _axes(axis, self.name)
        if isinstance(expr, Tensor):
            raise VerifyError(f"te.{self.name}: reduce an element of {expr.name!r} (e.g. {expr.name}[i, k])")
        if isinstance(expr, (tuple, list)):
            raise VerifyError(f"te.{self.name}: reductions of several values at once are not supported")
        source = convert(expr)
        if not isinstance(source, PrimExpr):
            raise VerifyError(f"te.{self.name}: cannot reduce {expr!r}")
        condition = None
        if where is not None:
            condition = convert(where)
            if not condition.dtype.is_bool:
                raise VerifyError(
                    f"te.{self.name}: where= must be a bool condition, got dtype {condition.dtype}"
                )
        init_expr = None
        if init is not None:
            init_expr = convert(init, source.dtype)
            if init_expr.dtype != source.dtype:
                raise VerifyError(
                    f"te.{self.name}: init has dtype {init_expr.dtype} but the reduced values are "
                    f"{source.dtype}"
                )
        return Reduce(self, source, axes, condition, init_expr)

    def identity_of(self, dtype: DataType) -> PrimExpr:
        value = self.identity(dtype)
        value = convert(value, dtype)
        if value.dtype != dtype:
            raise VerifyError(f"reducer {self.name!r}: identity has dtype {value.dtype}, expected {dtype}")
        return value

    def combine_of(self, acc: PrimExpr, value: PrimExpr) -> PrimExpr:
        out = self.combine(acc, value)
        if isinstance(out, (bool, int, float)):
            out = convert(out, acc.dtype)
        if not isinstance(out, PrimExpr):
            raise VerifyError(f"reducer {self.name!r}: combine must return an expression, got {out!r}")
        if out.dtype != acc.dtype:
            raise VerifyError(
                f"reducer {self.name!r}: combine returns dtype {out.dtype} for {acc.dtype} operands"
            )
        return out


def _axes(axis, reducer_name: str) -> tuple[ReduceAxis, ...]:
    items = axis if isinstance(axis, (tuple, list)) else [axis]
    if not items:
        raise VerifyError(f"te.{reducer_name}: axis must name at least one reduce axis")
    for item in items:
        if not isinstance(item, ReduceAxis):
            raise VerifyError(
                f"te.{reducer_name}: axis must be a te.reduce_axis or a list of them, got {item!r}"
            )
    if len({id(a) for a in items}) != len(items):
        raise VerifyError(f"te.{reducer_name}: the same reduce axis is listed twice")
    return tuple(items)


def comm_reducer(fcombine: Callable, fidentity: Callable, name: str = "reduce") -> CommReducer:
    """A custom reducer: `fcombine(x, y)` combines two values, `fidentity(dtype)` is its neutral element."""
    if not callable(fcombine) or not callable(fidentity):
        raise VerifyError(f"te.comm_reducer {name!r}: fcombine and fidentity must be callable")
    return CommReducer(name, fcombine, lambda dtype: fidentity(str(dtype)))


sum = CommReducer("sum", lambda x, y: x + y, lambda dtype: make_const(dtype, 0))  # noqa: A001
prod = CommReducer("prod", lambda x, y: x * y, lambda dtype: make_const(dtype, 1))
_max_reducer = CommReducer("max", max_expr, lambda dtype: make_const(dtype, dtype.min_value()))
_min_reducer = CommReducer("min", min_expr, lambda dtype: make_const(dtype, dtype.max_value()))


def max(expr, axis=None, where=None, init=None) -> PrimExpr:  # noqa: A001
    """`te.max(x, axis=k)` reduces; `te.max(a, b)` with two expressions is their elementwise maximum."""
    if axis is not None and not _is_axis_arg(axis):
        return max_expr(expr, axis)
    return _max_reducer(expr, axis, where, init)


def min(expr, axis=None, where=None, init=None) -> PrimExpr:  # noqa: A001
    """`te.min(x, axis=k)` reduces; `te.min(a, b)` with two expressions is their elementwise minimum."""
    if axis is not None and not _is_axis_arg(axis):
        return min_expr(expr, axis)
    return _min_reducer(expr, axis, where, init)


def _is_axis_arg(axis) -> bool:
    if isinstance(axis, (tuple, list)):
        return True
    return isinstance(axis, ReduceAxis) or not isinstance(axis, (PrimExpr, int, float))


def maximum(a, b) -> PrimExpr:
    """Elementwise maximum of two expressions."""
    return max_expr(a, b)


def minimum(a, b) -> PrimExpr:
    """Elementwise minimum of two expressions."""
    return min_expr(a, b)
