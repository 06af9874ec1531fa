"""Indexing ops: take (gather along one axis, the embedding lookup)."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import normalize_axis
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_int, register_op
from shapeflow.ir.graph.types import TensorType, Type


def _take_infer(info: CallInfo) -> Type:
    x, indices = info.tensor(0), info.tensor(1)
    if indices.dtype is not None and not indices.dtype.is_integer:
        raise info.fail(f"indices must have an integer dtype, got {indices.dtype}")
    if not (x.known_rank and indices.known_rank):
        return TensorType(None, x.dtype)
    if x.ndim == 0:
        raise info.fail("cannot take from a rank-0 tensor")
    axis = normalize_axis(info, info.attrs["axis"], x.ndim)
    if x.shape is None or indices.shape is None:
        return TensorType(None, x.dtype, x.ndim - 1 + indices.ndim)
    return TensorType((*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]), x.dtype)


def _take_reference(x, indices, axis):
    # Indices are checked (numpy raises IndexError out of range); negative ones count from the end.
    return np.take(x, indices, axis=axis)


def _take_legalize(inputs, out, axis):
    x, indices = inputs
    axis = axis % x.ndim

    def body(*idx):
        where = T.cast(indices[idx[axis : axis + indices.ndim]], "int64")
        where = E.select(where < T.const(0, "int64"), where + x.shape[axis], where)
        return x[(*idx[:axis], where, *idx[axis + indices.ndim :])]

    return te.compute(T.out_shape(out), body, name="take")


def _take_index_checks(inputs, axis):
    x, indices = inputs
    n = x.shape[axis % x.ndim]
    return [T.IndexCheck(indices, n, f"op 'take': an index is out of range [-n, n) for axis {axis}")]


register_op(
    "take",
    legalize=_take_legalize,
    index_checks=_take_index_checks,
    num_args=2,
    attrs=(Attr("axis", attr_int, 0),),
    infer_type=_take_infer,
    reference=_take_reference,
    pattern="injective",
    doc="x[..., indices, ...] along `axis` (default 0: rows, as an embedding lookup).",
)
