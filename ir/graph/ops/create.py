"""Tensor creation (full, zeros, ones, arange: symbolic extents) and tril/triu."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.expr import PrimExpr, convert
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_dtype,
    attr_float,
    attr_int,
    attr_shape,
    register_op,
)
from shapeflow.ir.graph.shape import simplify
from shapeflow.ir.graph.types import TensorType, Type


def attr_index(value) -> PrimExpr:
    """An int or an int64 expression (a symbolic bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, PrimExpr)):
        raise TypeError(f"expected an int or an int64 expression, got {value!r}")
    return convert(value, "int64")


def _full_infer(info: CallInfo) -> Type:
    return TensorType(info.attrs["shape"], info.attrs["dtype"])


def _fill(value: float | None):
    def legalize(inputs, out, shape, dtype, fill_value=None):
        v = fill_value if value is None else value
        return te.compute(T.out_shape(out), lambda *i: T.const(v, dtype), name="full")

    return legalize


def _full_reference(value: float | None):
    def reference(shape, dtype, fill_value=None):
        return np.full(shape, fill_value if value is None else value, dtype.to_numpy())

    return reference


_SHAPE_DTYPE = (Attr("shape", attr_shape), Attr("dtype", attr_dtype, "float32"))
for _name, _value in (("full", None), ("zeros", 0.0), ("ones", 1.0)):
    register_op(
        _name,
        num_args=0,
        attrs=(*_SHAPE_DTYPE, Attr("fill_value", attr_float)) if _value is None else _SHAPE_DTYPE,
        infer_type=_full_infer,
        reference=_full_reference(_value),
        pattern="injective",
        legalize=_fill(_value),
    )


def _arange_extent(start, end, step: int) -> PrimExpr:
    if step > 0:
        return simplify(E.max_expr(E.floordiv(end - start + (step - 1), step), 0))
    return simplify(E.max_expr(E.floordiv(start - end + (-step - 1), -step), 0))


def _arange_infer(info: CallInfo) -> Type:
    if info.attrs["step"] == 0:
        raise info.fail("step must not be 0")
    extent = _arange_extent(info.attrs["start"], info.attrs["end"], info.attrs["step"])
    return TensorType((extent,), info.attrs["dtype"])


def _arange_legalize(inputs, out, start, end, step, dtype):
    return te.compute(T.out_shape(out), lambda i: T.cast(start + i * step, dtype), name="arange")


register_op(
    "arange",
    num_args=0,
    attrs=(
        Attr("start", attr_index, 0),
        Attr("end", attr_index),
        Attr("step", attr_int, 1),
        Attr("dtype", attr_dtype, "int64"),
    ),
    infer_type=_arange_infer,
    reference=lambda start, end, step, dtype: np.arange(start, end, step).astype(dtype.to_numpy()),
    pattern="injective",
    doc="start, start + step, ... up to end (exclusive); start and end may be symbolic.",
    legalize=_arange_legalize,
)


def _tri_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    if t.known_rank and t.ndim < 2:
        raise info.fail(f"input must have rank >= 2, got {t.ndim}")
    return t


def _tri_legalize(lower: bool):
    def legalize(inputs, out, k):
        x = inputs[0]

        def body(*i):
            diff = i[-1] - i[-2]
            keep = diff <= k if lower else diff >= k
            return E.select(keep, x[i], T.const(0, x.dtype))

        return te.compute(x.shape, body, name="tril" if lower else "triu")

    return legalize


for _name, _fn in (("tril", np.tril), ("triu", np.triu)):
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("k", attr_int, 0),),
        infer_type=_tri_infer,
        reference=(lambda fn: lambda x, k: fn(x, k))(_fn),
        pattern="injective",
        legalize=_tri_legalize(_name == "tril"),
    )
