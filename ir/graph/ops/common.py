"""Helpers shared by the inference functions of the op families."""

from __future__ import annotations

from collections.abc import Sequence

from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.graph.ops.registry import CallInfo
from shapeflow.ir.graph.shape import compare_dims, format_dim, prove, require
from shapeflow.ir.graph.types import TensorType


def same_dtype(info: CallInfo, tensors: Sequence[TensorType]) -> DataType | None:
    """The common dtype of `tensors` (None if none is known); different known dtypes are ill-typed."""
    found: DataType | None = None
    for t in tensors:
        if t.dtype is None:
            continue
        if found is not None and t.dtype != found:
            raise info.fail(f"operands have different dtypes {found} and {t.dtype}")
        found = t.dtype
    return found


def require_float(info: CallInfo, t: TensorType, what: str = "input") -> None:
    if t.dtype is not None and not t.dtype.is_float:
        raise info.fail(f"{what} must have a float dtype, got {t.dtype}")


def require_bool(info: CallInfo, t: TensorType, what: str = "input") -> None:
    if t.dtype is not None and not t.dtype.is_bool:
        raise info.fail(f"{what} must have dtype bool, got {t.dtype}")


def normalize_axis(info: CallInfo, axis: int, ndim: int) -> int:
    """`axis` in [0, ndim) (negative axes count from the end); out of range is ill-typed."""
    if not -ndim <= axis < ndim:
        raise info.fail(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim


def normalize_axes(info: CallInfo, axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    out = tuple(normalize_axis(info, a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise info.fail(f"repeated axis in {tuple(axes)}")
    return out


def unknown_like(ndim: int, dtype) -> TensorType:
    """A tensor type whose shape is unknown but whose rank and dtype may be."""
    return TensorType(None, dtype, ndim)


def must_equal(info: CallInfo, a, b, what: str, dimension: int | None = None) -> bool:
    """Whether `a == b` may hold: False when `a != b` is proved (the caller raises its ShapeError).
    When it is not proved either, the kernel still relies on it, so it becomes a run-time requirement
    (checked by the VM before the kernel runs; see shapeflow.ir.graph.shape.require)."""
    verdict = compare_dims(a, b)
    if verdict is None:
        require("equal", a, b, f"op '{info.op}': {what}", dimension)
    return verdict is not False


def must_be_at_most(info: CallInfo, a, b, what: str, dimension: int | None = None) -> None:
    """`a <= b` (shape expressions): a ShapeError now when refuted, a run-time requirement when unproved."""
    a, b = E.convert(a, "int64"), E.convert(b, "int64")
    if prove(E.LE(a, b)):
        return
    if prove(E.GT(a, b)):
        raise info.shape_error(
            f"{what}: {format_dim(a)} > {format_dim(b)}", dimension, format_dim(b), format_dim(a)
        )
    require("le", a, b, f"op '{info.op}': {what}", dimension)
