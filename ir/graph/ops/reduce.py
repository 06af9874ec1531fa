"""Reductions (sum, mean, max, min, prod, argmax, argmin) and softmax / log_softmax."""

from __future__ import annotations

import numpy as np

from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm
from shapeflow.ir.graph.ops.common import normalize_axes, normalize_axis, require_float
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_bool,
    attr_int,
    attr_ints,
    optional,
    register_op,
)
from shapeflow.ir.graph.types import TensorType, Type


def reduced_type(info: CallInfo, t: TensorType, axes, keepdims: bool, dtype) -> TensorType:
    """The type of reducing `t` over `axes` (None: all axes)."""
    if not t.known_rank:
        return TensorType(None, dtype)
    axes = tuple(range(t.ndim)) if axes is None else normalize_axes(info, axes, t.ndim)
    if t.shape is None:
        return TensorType(None, dtype, t.ndim if keepdims else t.ndim - len(axes))
    out = []
    for i, dim in enumerate(t.shape):
        if i not in axes:
            out.append(dim)
        elif keepdims:
            out.append(IntImm("int64", 1))
    return TensorType(tuple(out), dtype)


def _reduce_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    if info.op == "mean":
        require_float(info, t)
    return reduced_type(info, t, info.attrs["axis"], info.attrs["keepdims"], t.dtype)


def _reduce_reference(fn):
    def reference(x, axis, keepdims):
        return np.asarray(fn(x, axis=axis, keepdims=keepdims)).astype(x.dtype, copy=False)

    return reference


_REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}
for _name, _fn in _REDUCE.items():
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", optional(attr_ints), None), Attr("keepdims", attr_bool, False)),
        infer_type=_reduce_infer,
        reference=_reduce_reference(_fn),
        pattern="reduction",
    )


def _arg_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    axis = info.attrs["axis"]
    return reduced_type(info, t, None if axis is None else (axis,), info.attrs["keepdims"], DataType("int64"))


def _arg_reference(fn):
    def reference(x, axis, keepdims):
        return np.asarray(fn(x, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)

    return reference


for _name, _fn in {"argmax": np.argmax, "argmin": np.argmin}.items():
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", optional(attr_int), None), Attr("keepdims", attr_bool, False)),
        infer_type=_arg_infer,
        reference=_arg_reference(_fn),
        pattern="reduction",
    )


def _softmax_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    require_float(info, t)
    if t.known_rank:
        normalize_axis(info, info.attrs["axis"], t.ndim)
    return t


def _softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))).astype(x.dtype, copy=False)


for _name, _fn in {"softmax": _softmax, "log_softmax": _log_softmax}.items():
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", attr_int, -1),),
        infer_type=_softmax_infer,
        reference=_fn,
        pattern="reduction",
    )
