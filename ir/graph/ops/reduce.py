"""Reductions (sum, mean, max, min, prod, argmax, argmin) and softmax / log_softmax."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm
from shapeflow.ir.graph.ops import te_util as T
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


def _axes(x, axis) -> list[int]:
    return list(range(x.ndim)) if axis is None else sorted(a % x.ndim for a in axis)


def _reduce_legalize(reducer, name: str):
    def legalize(inputs, out, axis, keepdims):
        x = inputs[0]
        axes = _axes(x, axis)
        total = T.reduction(x, axes, keepdims, lambda idx, rvs: reducer(x[tuple(idx)], axis=rvs), name)
        if name != "mean":
            return total
        count = T.const(1, "int64")
        for a in axes:
            count = count * x.shape[a]
        return te.compute(total.shape, lambda *i: total[i] / T.cast(count, x.dtype), name="mean_div")

    return legalize


_REDUCE = {
    "sum": (np.sum, te.sum),
    "mean": (np.mean, te.sum),
    "max": (np.max, te.max),
    "min": (np.min, te.min),
    "prod": (np.prod, te.prod),
}
for _name, (_fn, _te_reducer) in _REDUCE.items():
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", optional(attr_ints), None), Attr("keepdims", attr_bool, False)),
        infer_type=_reduce_infer,
        reference=_reduce_reference(_fn),
        pattern="reduction",
        legalize=_reduce_legalize(_te_reducer, _name),
    )


def _arg_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    axis = info.attrs["axis"]
    return reduced_type(info, t, None if axis is None else (axis,), info.attrs["keepdims"], DataType("int64"))


def _arg_reference(fn):
    def reference(x, axis, keepdims):
        return np.asarray(fn(x, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)

    return reference


def _arg_legalize(extreme, name: str):
    """Two reductions (te has no tuple reductions): the extreme value, then the smallest flat index (over
    the reduced axes, C order) holding it, which is numpy's first occurrence."""

    def legalize(inputs, out, axis, keepdims):
        x = inputs[0]
        axes = _axes(x, None if axis is None else (axis,))
        best = T.reduction(x, axes, True, lambda idx, rvs: extreme(x[tuple(idx)], axis=rvs), f"{name}_value")

        def first_index(idx, rvs):
            flat = T.const(0, "int64")
            for a, rv in zip(axes, rvs):
                flat = flat * x.shape[a] + rv
            hit = E.EQ(x[tuple(idx)], best[T.keep_index(idx, axes)])
            return te.min(E.select(hit, flat, T.const(2**62, "int64")), axis=rvs)

        return T.reduction(x, axes, keepdims, first_index, name)

    return legalize


for _name, _fn, _te_fn in (("argmax", np.argmax, te.max), ("argmin", np.argmin, te.min)):
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", optional(attr_int), None), Attr("keepdims", attr_bool, False)),
        infer_type=_arg_infer,
        reference=_arg_reference(_fn),
        pattern="reduction",
        legalize=_arg_legalize(_te_fn, _name),
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


def _softmax_legalize(log: bool):
    """Numerically stable: exponentials of x - max(x), so large inputs do not overflow."""

    def legalize(inputs, out, axis):
        x = inputs[0]
        axes = [axis % x.ndim]
        top = T.reduction(x, axes, True, lambda idx, rvs: te.max(x[tuple(idx)], axis=rvs), "max")

        def shifted(idx):
            return x[tuple(idx)] - top[T.keep_index(idx, axes)]

        total = T.reduction(x, axes, True, lambda idx, rvs: te.sum(te.exp(shifted(idx)), axis=rvs), "sum_exp")
        if log:
            return te.compute(
                x.shape, lambda *i: shifted(i) - te.log(total[T.keep_index(i, axes)]), name="log_softmax"
            )
        return te.compute(
            x.shape, lambda *i: te.exp(shifted(i)) / total[T.keep_index(i, axes)], name="softmax"
        )

    return legalize


for _name, _fn in {"softmax": _softmax, "log_softmax": _log_softmax}.items():
    register_op(
        _name,
        num_args=1,
        attrs=(Attr("axis", attr_int, -1),),
        infer_type=_softmax_infer,
        reference=_fn,
        pattern="reduction",
        legalize=_softmax_legalize(_name == "log_softmax"),
    )
