"""max_pool2d_indices: where each 2-D max pooling window's maximum is (ONNX MaxPool's Indices output).

The index is flat over the whole (N, C, H, W) input, row-major (`column_major`: h + w * H inside each
(n, c) plane, ONNX storage_order=1); padding never wins; among equal maxima the first in scan order (rows,
then columns) is taken, as onnxruntime. Legalized as the window maximum, then the smallest scan position
holding it.
"""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_float
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_ints, register_op
from shapeflow.ir.graph.shape import simplify
from shapeflow.ir.graph.types import TensorType, Type

_BIG = 2**62


def _out_dim(size, k, stride, lo, hi, dilation):
    return simplify(E.floordiv(size + (lo + hi - dilation * (k - 1) - 1), stride) + 1)


def _infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    require_float(info, x)
    k, s, p, d = (info.attrs[a] for a in ("pool_size", "strides", "padding", "dilation"))
    if len(k) != 2 or len(s) != 2 or len(d) != 2 or len(p) != 4:
        raise info.fail(
            "pool_size, strides, dilation need 2 entries and padding 4 (top, left, bottom, right)"
        )
    if min((*k, *s, *d)) < 1 or min(p) < 0:
        raise info.fail("sizes, strides and dilations must be positive and padding non-negative")
    if x.shape is None:
        return TensorType(None, "int64", 4)
    if len(x.shape) != 4:
        raise info.fail(f"input must be (N, C, H, W), got rank {len(x.shape)}")
    n, c, h, w = x.shape
    return TensorType(
        (n, c, _out_dim(h, k[0], s[0], p[0], p[2], d[0]), _out_dim(w, k[1], s[1], p[1], p[3], d[1])), "int64"
    )


def _reference(x, pool_size, strides, padding, dilation, column_major):
    n, c, h, w = x.shape
    oh = (h + padding[0] + padding[2] - dilation[0] * (pool_size[0] - 1) - 1) // strides[0] + 1
    ow = (w + padding[1] + padding[3] - dilation[1] * (pool_size[1] - 1) - 1) // strides[1] + 1
    out = np.full((n, c, oh, ow), -1, np.int64)
    for b, ch, i, j in np.ndindex(n, c, oh, ow):
        best, where = None, None
        for kh in range(pool_size[0]):
            y = i * strides[0] - padding[0] + kh * dilation[0]
            for kw in range(pool_size[1]):
                z = j * strides[1] - padding[1] + kw * dilation[1]
                if 0 <= y < h and 0 <= z < w and (best is None or x[b, ch, y, z] > best):
                    best, where = x[b, ch, y, z], (y, z)
        if where is not None:
            inner = where[0] + where[1] * h if column_major else where[0] * w + where[1]
            out[b, ch, i, j] = (b * c + ch) * h * w + inner
    return out


def _legalize(inputs, out, pool_size, strides, padding, dilation, column_major):
    x = inputs[0]
    n, c, h, w = x.shape
    zero = T.const(0, "int64")

    def at(i, j, kh, kw):
        y = i * strides[0] - T.const(padding[0], "int64") + kh * dilation[0]
        z = j * strides[1] - T.const(padding[1], "int64") + kw * dilation[1]
        inside = E.logical_and(E.logical_and(y >= zero, y < h), E.logical_and(z >= zero, z < w))
        ys = te.max(te.min(y, h - T.const(1, "int64")), zero)
        zs = te.max(te.min(z, w - T.const(1, "int64")), zero)
        return inside, ys, zs

    lowest = te.min_value(x.dtype)

    def window_max(b, ch, i, j):
        kh, kw = te.reduce_axis((0, pool_size[0]), name="kh"), te.reduce_axis((0, pool_size[1]), name="kw")
        inside, ys, zs = at(i, j, kh, kw)
        return te.max(E.select(inside, x[b, ch, ys, zs], lowest), axis=[kh, kw])

    best = te.compute(T.out_shape(out), window_max, name="pool_max")

    def first(b, ch, i, j):
        kh, kw = te.reduce_axis((0, pool_size[0]), name="kh"), te.reduce_axis((0, pool_size[1]), name="kw")
        inside, ys, zs = at(i, j, kh, kw)
        hit = E.logical_and(inside, E.EQ(x[b, ch, ys, zs], best[b, ch, i, j]))
        position = T.cast(kh, "int64") * pool_size[1] + T.cast(kw, "int64")
        return te.min(E.select(hit, position, T.const(_BIG, "int64")), axis=[kh, kw])

    scan = te.compute(T.out_shape(out), first, name="pool_first")

    def index(b, ch, i, j):
        p = scan[b, ch, i, j]
        found = p < T.const(_BIG, "int64")
        p = E.select(found, p, zero)
        _, ys, zs = at(i, j, te.floordiv(p, pool_size[1]), te.floormod(p, pool_size[1]))
        inner = ys + zs * h if column_major else ys * w + zs
        return E.select(found, (b * c + ch) * h * w + inner, T.const(-1, "int64"))

    return te.compute(T.out_shape(out), index, name="max_pool2d_indices")


register_op(
    "max_pool2d_indices",
    num_args=1,
    attrs=(
        Attr("pool_size", attr_ints),
        Attr("strides", attr_ints, (1, 1)),
        Attr("padding", attr_ints, (0, 0, 0, 0)),
        Attr("dilation", attr_ints, (1, 1)),
        Attr("column_major", attr_bool, False),
    ),
    infer_type=_infer,
    reference=_reference,
    legalize=_legalize,
    pattern="opaque",
    doc="Flat input indices of 2-D max pooling windows' maxima (ONNX MaxPool's Indices output).",
)
