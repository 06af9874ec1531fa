"""scaled_dot_product_attention (batch, heads, seq, dim), gather_elements (ONNX GatherElements) and pad
(constant mode)."""

from __future__ import annotations

import math

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import (
    must_be_at_most,
    must_equal,
    normalize_axis,
    require_float,
    same_dtype,
)
from shapeflow.ir.graph.ops.nn import pad_stage
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_bool,
    attr_float,
    attr_int,
    attr_ints,
    optional,
    register_op,
)
from shapeflow.ir.graph.shape import format_dim, simplify
from shapeflow.ir.graph.types import TensorType, Type


def _sdpa_infer(info: CallInfo) -> Type:
    q, k, v = info.tensor(0), info.tensor(1), info.tensor(2)
    dtype = same_dtype(info, (q, k, v))
    require_float(info, q)
    for t, what in ((q, "q"), (k, "k"), (v, "v")):
        if t.known_rank and t.ndim != 4:
            raise info.fail(f"{what} must have rank 4 (batch, heads, seq, dim), got {t.ndim}")
    if q.shape is None or k.shape is None or v.shape is None:
        return TensorType(None, dtype, 4)
    # The kernel reads k and v at q's batch and head indices, and v along k's length.
    for a, b, what, d in (
        (q.shape[0], k.shape[0], "q and k batch sizes", 0),
        (q.shape[1], k.shape[1], "q and k head counts", 1),
        (q.shape[0], v.shape[0], "q and v batch sizes", 0),
        (q.shape[1], v.shape[1], "q and v head counts", 1),
        (q.shape[3], k.shape[3], "q and k head dims", 3),
        (k.shape[2], v.shape[2], "k and v lengths", 2),
    ):
        if not must_equal(info, b, a, f"{what} differ", d):
            raise info.shape_error(
                f"{what} differ", dimension=d, expected=format_dim(a), actual=format_dim(b)
            )
    return TensorType((q.shape[0], q.shape[1], q.shape[2], v.shape[3]), dtype)


def _sdpa_reference(q, k, v, causal, scale):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.matmul(q.astype(np.float64), np.swapaxes(k, -1, -2).astype(np.float64)) * scale
    if causal:  # top-left aligned, as torch's is_causal: query i sees keys j <= i
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    p = s / s.sum(axis=-1, keepdims=True)
    return np.matmul(p, v.astype(np.float64)).astype(q.dtype)


def _sdpa_legalize(inputs, out, causal, scale):
    q, k, v = inputs
    factor = T.const(scale, q.dtype) if scale is not None else 1.0 / te.sqrt(T.cast(q.shape[3], q.dtype))
    lowest = T.const(float(np.finfo(q.dtype.to_numpy()).min), q.dtype)
    shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])

    def score(b, h, i, j):
        d = te.reduce_axis((0, q.shape[3]), name="d")
        return te.sum(q[b, h, i, d] * k[b, h, j, d], axis=d)

    raw = te.compute(shape, score, name="scores")

    def masked(b, h, i, j):
        value = raw[b, h, i, j] * factor
        return E.select(j <= i, value, lowest) if causal else value

    scores = te.compute(shape, masked, name="scaled")

    def row_max(b, h, i):
        j = te.reduce_axis((0, k.shape[2]), name="j")
        return te.max(scores[b, h, i, j], axis=j)

    top = te.compute(shape[:3], row_max, name="row_max")

    def row_sum(b, h, i):
        j = te.reduce_axis((0, k.shape[2]), name="j")
        return te.sum(te.exp(scores[b, h, i, j] - top[b, h, i]), axis=j)

    total = te.compute(shape[:3], row_sum, name="row_sum")

    def attend(b, h, i, e):
        j = te.reduce_axis((0, k.shape[2]), name="j")
        weight = te.exp(scores[b, h, i, j] - top[b, h, i]) / total[b, h, i]
        return te.sum(weight * v[b, h, j, e], axis=j)

    return te.compute(T.out_shape(out), attend, name="attention")


register_op(
    "scaled_dot_product_attention",
    num_args=3,
    attrs=(Attr("causal", attr_bool, False), Attr("scale", optional(attr_float), None)),
    infer_type=_sdpa_infer,
    reference=_sdpa_reference,
    pattern="opaque",
    doc="softmax(q @ k^T * scale [causal: key j > query i masked]) @ v; scale defaults to 1/sqrt(dim).",
    legalize=_sdpa_legalize,
)


def _gather_elements_infer(info: CallInfo) -> Type:
    x, indices = info.tensor(0), info.tensor(1)
    if indices.dtype is not None and not indices.dtype.is_integer:
        raise info.fail(f"indices must have an integer dtype, got {indices.dtype}")
    if x.known_rank and indices.known_rank and x.ndim != indices.ndim:
        raise info.fail(f"data and indices must have the same rank, got {x.ndim} and {indices.ndim}")
    if x.known_rank:
        axis = normalize_axis(info, info.attrs["axis"], x.ndim)
        if x.shape is not None and indices.shape is not None:
            # Off the axis, out[i] reads x[i]: indices may not be larger than x there.
            for d in range(x.ndim):
                if d != axis:
                    must_be_at_most(
                        info, indices.shape[d], x.shape[d], f"indices dimension {d} exceeds data", d
                    )
    return TensorType(indices.shape, x.dtype, indices.ndim)


def _gather_elements_legalize(inputs, out, axis):
    x, indices = inputs
    axis = axis % x.ndim

    def body(*i):
        where = T.cast(indices[i], "int64")
        where = E.select(where < T.const(0, "int64"), where + x.shape[axis], where)
        return x[(*i[:axis], where, *i[axis + 1 :])]

    return te.compute(T.out_shape(out), body, name="gather_elements")


register_op(
    "gather_elements",
    num_args=2,
    attrs=(Attr("axis", attr_int, 0),),
    infer_type=_gather_elements_infer,
    reference=lambda x, indices, axis: np.take_along_axis(
        x, np.where(indices < 0, indices + x.shape[axis], indices), axis
    ),
    pattern="injective",
    doc="ONNX GatherElements: out[i] = x[i with the axis coordinate replaced by indices[i]].",
    legalize=_gather_elements_legalize,
    index_checks=lambda inputs, axis: [
        T.IndexCheck(
            inputs[1],
            inputs[0].shape[axis % inputs[0].ndim],
            f"op 'gather_elements': an index is out of range [-n, n) for axis {axis}",
        )
    ],
)


def _pad_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    widths = info.attrs["pad_width"]
    if any(w < 0 for w in widths):
        raise info.fail(f"pad widths must be non-negative, got {widths}")
    if not x.known_rank:
        return TensorType(None, x.dtype)
    if len(widths) != 2 * x.ndim:
        raise info.fail(f"pad_width needs {2 * x.ndim} values (before, after per axis), got {len(widths)}")
    if x.shape is None:
        return TensorType(None, x.dtype, x.ndim)
    return TensorType(
        tuple(simplify(d + widths[2 * i] + widths[2 * i + 1]) for i, d in enumerate(x.shape)), x.dtype
    )


register_op(
    "pad",
    num_args=1,
    attrs=(Attr("pad_width", attr_ints), Attr("pad_value", attr_float, 0.0)),
    infer_type=_pad_infer,
    reference=lambda x, pad_width, pad_value: np.pad(
        x, [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(x.ndim)], constant_values=pad_value
    ),
    pattern="injective",
    doc="Constant padding; pad_width is (before_0, after_0, before_1, after_1, ...).",
    legalize=lambda inputs, out, pad_width, pad_value: pad_stage(
        inputs[0], list(pad_width[0::2]), list(pad_width[1::2]), pad_value
    ),
)
