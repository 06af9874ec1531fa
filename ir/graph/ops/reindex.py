"""Ops that read elements at computed positions: gather_nd (ONNX GatherND), reverse_sequence (ONNX
ReverseSequence) and tensor_scatter (ONNX TensorScatter, a KV-cache write), each a compute over its output
whose index expressions are clamped into the buffer they read."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import normalize_axis
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_int, attr_str, register_op
from shapeflow.ir.graph.ops.scatter import _clamp, _index_k, _int_indices, _nd_checks, _wrap
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType, Type

# ---------------------------------------------------------------------------------------------
# gather_nd
# ---------------------------------------------------------------------------------------------


def _gather_nd_infer(info: CallInfo) -> Type:
    data, indices = info.tensor(0), info.tensor(1)
    _int_indices(info, indices)
    b = info.attrs["batch_dims"]
    if data.shape is None or indices.shape is None:
        return TensorType(None, data.dtype)
    k = as_int(indices.shape[-1])
    if k is None or k < 1 or b + k > data.ndim or b >= indices.ndim:
        raise info.fail(
            f"indices of shape {indices.shape} (batch_dims {b}) do not index data of rank {data.ndim}"
        )
    return TensorType((*indices.shape[:-1], *data.shape[b + k :]), data.dtype)


def _gather_nd_reference(data, indices, batch_dims):
    b = batch_dims
    k = indices.shape[-1]
    out_shape = (*indices.shape[:-1], *data.shape[b + k :])
    out = np.empty(out_shape, dtype=data.dtype)
    for pos in np.ndindex(*indices.shape[:-1]):
        where = []
        for m in range(k):
            i = int(indices[pos][m])
            n = data.shape[b + m]
            if not -n <= i < n:
                raise IndexError(f"gather_nd: index {i} is out of range for axis {b + m}")
            where.append(i % n)
        out[pos] = data[(*pos[:b], *where)]
    return out


def _gather_nd_legalize(inputs, out, batch_dims):
    data, indices = inputs
    b = batch_dims
    k = _index_k(indices)
    lead = indices.ndim - 1

    def body(*idx):
        pos = idx[:lead]
        where = [
            _clamp(_wrap(indices[(*pos, T.const(m, "int64"))], data.shape[b + m]), data.shape[b + m])
            for m in range(k)
        ]
        return data[(*pos[:b], *where, *idx[lead:])]

    return te.compute(T.out_shape(out), body, name="gather_nd")


register_op(
    "gather_nd",
    num_args=2,
    attrs=(Attr("batch_dims", attr_int, 0),),
    infer_type=_gather_nd_infer,
    reference=_gather_nd_reference,
    legalize=_gather_nd_legalize,
    index_checks=_nd_checks("gather_nd"),
    pattern="injective",
    doc="ONNX GatherND: out[p] = data[batch(p), indices[p]] for the leading index positions p.",
)


# ---------------------------------------------------------------------------------------------
# reverse_sequence
# ---------------------------------------------------------------------------------------------


def _reverse_sequence_infer(info: CallInfo) -> Type:
    x, lengths = info.tensor(0), info.tensor(1)
    _int_indices(info, lengths, "sequence lengths")
    if x.known_rank and x.ndim < 2:
        raise info.fail(f"input must have rank >= 2, got {x.ndim}")
    if lengths.known_rank and lengths.ndim != 1:
        raise info.fail(f"sequence lengths must have rank 1, got {lengths.ndim}")
    return x


def _reverse_sequence_reference(x, lengths, batch_axis, time_axis):
    out = np.array(x, copy=True)
    for b in range(x.shape[batch_axis]):
        n = int(lengths[b])
        if not 0 <= n <= x.shape[time_axis]:
            raise IndexError(f"reverse_sequence: length {n} is out of range")
        src = [slice(None)] * x.ndim
        src[batch_axis] = b
        src[time_axis] = slice(0, n)
        out[tuple(src)] = np.flip(x[tuple(src)], axis=time_axis - (batch_axis < time_axis))
    return out


def _reverse_sequence_legalize(inputs, out, batch_axis, time_axis):
    x, lengths = inputs

    def body(*idx):
        n = te.min(T.cast(lengths[idx[batch_axis]], "int64"), x.shape[time_axis])
        t = idx[time_axis]
        src = E.select(t < n, n - T.const(1, "int64") - t, t)
        return x[(*idx[:time_axis], src, *idx[time_axis + 1 :])]

    return te.compute(T.out_shape(out), body, name="reverse_sequence")


register_op(
    "reverse_sequence",
    num_args=2,
    attrs=(Attr("batch_axis", attr_int, 1), Attr("time_axis", attr_int, 0)),
    infer_type=_reverse_sequence_infer,
    reference=_reverse_sequence_reference,
    legalize=_reverse_sequence_legalize,
    pattern="injective",
    doc="ONNX ReverseSequence: the first lengths[b] steps along time_axis of each batch entry reversed.",
)


# ---------------------------------------------------------------------------------------------
# tensor_scatter: a KV-cache write
# ---------------------------------------------------------------------------------------------


def _tensor_scatter_infer(info: CallInfo) -> Type:
    cache, update, where = info.tensor(0), info.tensor(1), info.tensor(2)
    _int_indices(info, where, "write indices")
    if info.attrs["mode"] not in ("linear", "circular"):
        raise info.fail(f"mode must be 'linear' or 'circular', got {info.attrs['mode']!r}")
    if cache.dtype is not None and update.dtype is not None and cache.dtype != update.dtype:
        raise info.fail(f"update ({update.dtype}) must have the cache's dtype ({cache.dtype})")
    if cache.known_rank:
        axis = normalize_axis(info, info.attrs["axis"], cache.ndim)
        if axis == 0:
            raise info.fail("the sequence axis cannot be the batch axis 0")
        if update.known_rank and update.ndim != cache.ndim:
            raise info.fail(f"update must have the cache's rank {cache.ndim}, got {update.ndim}")
    return cache


def _tensor_scatter_reference(cache, update, where, axis, mode):
    out = np.array(cache, copy=True)
    axis = axis % cache.ndim
    n, seq = cache.shape[axis], update.shape[axis]
    for prefix in np.ndindex(*cache.shape[:axis]):
        for s in range(seq):
            t = int(where[prefix[0]]) + s
            t = t % n if mode == "circular" else t
            if not 0 <= t < n:
                raise IndexError(f"tensor_scatter: write position {t} is out of range [0, {n})")
            out[(*prefix, t)] = update[(*prefix, s)]
    return out


def _tensor_scatter_legalize(inputs, out, axis, mode):
    cache, update, where = inputs
    axis = axis % cache.ndim
    n, seq = cache.shape[axis], update.shape[axis]

    def body(*idx):
        offset = idx[axis] - T.cast(where[idx[0]], "int64")
        if mode == "circular":
            offset = te.floormod(offset, n)
        valid = E.logical_and(offset >= T.const(0, "int64"), offset < seq)
        src = (*idx[:axis], _clamp(offset, seq), *idx[axis + 1 :])
        return E.select(valid, update[src], cache[idx])

    return te.compute(T.out_shape(out), body, name="tensor_scatter")


register_op(
    "tensor_scatter",
    num_args=3,
    attrs=(Attr("axis", attr_int, -2), Attr("mode", attr_str, "linear")),
    infer_type=_tensor_scatter_infer,
    reference=_tensor_scatter_reference,
    legalize=_tensor_scatter_legalize,
    pattern="injective",
    doc="ONNX TensorScatter: update written into the cache along `axis` from write_indices[batch] on.",
)
