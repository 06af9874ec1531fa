"""Convolution (conv1d, conv2d: NCW / NCHW, stride, padding, dilation, groups) and pooling (max, avg: NCHW or
NHWC; adaptive avg: NCHW). batch_norm and group_norm are in norm.py, im2col in im2col.py.

Padding is its own te stage (a compute whose out-of-bounds elements are the pad value): a Select inside a
reduction evaluates both branches, so reading x directly at padded positions would fault.
"""

from __future__ import annotations

import itertools

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_equal, require_float, same_dtype
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_bool,
    attr_int,
    attr_ints,
    attr_str,
    register_op,
)
from shapeflow.ir.graph.shape import format_dim, simplify
from shapeflow.ir.graph.types import TensorType, Type


def _spatial(info: CallInfo, name: str, rank: int, default: int) -> tuple[int, ...]:
    value = info.attrs[name]
    if value is None:
        return (default,) * rank
    if len(value) == 1:
        value = value * rank
    if len(value) != rank:
        raise info.fail(f"{name} needs {rank} values, got {value}")
    return value


def _padding(info: CallInfo, rank: int) -> tuple[int, ...]:
    """(before..., after...) per spatial dim; one value or one per dim is symmetric."""
    value = info.attrs["padding"]
    if len(value) == 1:
        value = value * (2 * rank)
    elif len(value) == rank:
        value = value + value
    if len(value) != 2 * rank or any(p < 0 for p in value):
        raise info.fail(f"padding needs 1, {rank} or {2 * rank} non-negative values, got {value}")
    return value


def _window_out(dim, k, stride, pad_lo, pad_hi, dilation):
    return simplify(E.floordiv(dim + (pad_lo + pad_hi - dilation * (k - 1) - 1), stride) + 1)


def _norm_spatial(info: CallInfo, rank: int) -> dict:
    strides = _spatial(info, "strides", rank, 1)
    dilation = _spatial(info, "dilation", rank, 1)
    if any(s <= 0 for s in (*strides, *dilation)):
        raise info.fail("strides and dilation must be positive")
    return dict(strides=strides, padding=_padding(info, rank), dilation=dilation)


def _conv_infer(rank: int):
    def infer(info: CallInfo) -> Type:
        x, w = info.tensor(0), info.tensor(1)
        dtype = same_dtype(info, (x, w))
        for t, what in ((x, "data"), (w, "weight")):
            if t.known_rank and t.ndim != rank + 2:
                raise info.fail(f"{what} must have rank {rank + 2}, got {t.ndim}")
        groups = info.attrs["groups"]
        if groups <= 0:
            raise info.fail("groups must be positive")
        sp = _norm_spatial(info, rank)
        if x.shape is None or w.shape is None:
            return TensorType(None, dtype, rank + 2)
        if not must_equal(
            info, x.shape[1], w.shape[1] * groups, "input channels != weight channels * groups", 1
        ):
            raise info.shape_error(
                "input channels do not match weight channels * groups",
                dimension=1,
                expected=format_dim(simplify(w.shape[1] * groups)),
                actual=format_dim(x.shape[1]),
            )
        out = [x.shape[0], w.shape[0]]
        for i in range(rank):
            out.append(
                _window_out(
                    x.shape[2 + i],
                    w.shape[2 + i],
                    sp["strides"][i],
                    sp["padding"][i],
                    sp["padding"][rank + i],
                    sp["dilation"][i],
                )
            )
        return TensorType(tuple(out), dtype)

    return infer


def _pad_np(x, padding, value=0.0):
    rank = x.ndim - 2
    pads = [(0, 0), (0, 0)] + [(padding[i], padding[rank + i]) for i in range(rank)]
    return np.pad(x, pads, constant_values=value)


def _full_padding(padding, rank):
    if len(padding) == 1:
        return padding * (2 * rank)
    return padding + padding if len(padding) == rank else padding


def _conv_reference(x, w, strides, padding, dilation, groups):
    rank = x.ndim - 2
    strides = strides * rank if len(strides) == 1 else strides
    dilation = dilation * rank if len(dilation) == 1 else dilation
    xp = _pad_np(x.astype(np.float64), _full_padding(padding, rank))
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    ks = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - dilation[i] * (ks[i] - 1) - 1) // strides[i] + 1 for i in range(rank)]
    out = np.zeros((x.shape[0], w.shape[0], *(max(o, 0) for o in out_sp)))
    if min(out_sp, default=1) <= 0:
        return out.astype(x.dtype)
    for g in range(groups):
        for kpos in np.ndindex(*ks):
            window = tuple(
                slice(
                    kpos[i] * dilation[i],
                    kpos[i] * dilation[i] + strides[i] * (out_sp[i] - 1) + 1,
                    strides[i],
                )
                for i in range(rank)
            )
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg), *window)]
            wk = w[(slice(g * og, (g + 1) * og), slice(None), *kpos)].astype(np.float64)
            out[:, g * og : (g + 1) * og] += np.einsum("nc...,oc->no...", patch, wk)
    return out.astype(x.dtype)


def pad_stage(x, before, after, value, name="pad"):
    """x with `before`/`after` elements of `value` around each dim (lists of ints, one per dim)."""
    if not any(before) and not any(after):
        return x
    shape = [d + b + a for d, b, a in zip(x.shape, before, after)]

    def body(*idx):
        inside = [E.logical_and(i >= b, i < b + d) for i, b, d in zip(idx, before, x.shape) if True]
        cond = inside[0]
        for c in inside[1:]:
            cond = E.logical_and(cond, c)
        return te.if_then_else(cond, x[tuple(i - b for i, b in zip(idx, before))], T.const(value, x.dtype))

    return te.compute(shape, body, name=name)


def _conv_legalize(inputs, out, strides, padding, dilation, groups):
    x, w = inputs
    rank = x.ndim - 2
    strides = strides * rank if len(strides) == 1 else strides
    dilation = dilation * rank if len(dilation) == 1 else dilation
    padding = _full_padding(padding, rank)
    xp = pad_stage(x, [0, 0, *padding[:rank]], [0, 0, *padding[rank:]], 0.0)
    cg = w.shape[1]
    og = E.floordiv(w.shape[0], groups)

    def body(n, o, *p):
        c = te.reduce_axis((0, cg), name="c")
        ks = [te.reduce_axis((0, w.shape[2 + i]), name=f"k{i}") for i in range(rank)]
        g = E.floordiv(o, og)
        xi = [p[i] * strides[i] + ks[i] * dilation[i] for i in range(rank)]
        return te.sum(xp[(n, g * cg + c, *xi)] * w[(o, c, *ks)], axis=[c, *ks])

    return te.compute(T.out_shape(out), body, name=f"conv{rank}d")


def _conv_attrs(rank: int):
    return (
        Attr("strides", attr_ints, (1,) * rank),
        Attr("padding", attr_ints, (0,) * rank),
        Attr("dilation", attr_ints, (1,) * rank),
        Attr("groups", attr_int, 1),
    )


for _rank in (1, 2):
    register_op(
        f"conv{_rank}d",
        num_args=2,
        attrs=_conv_attrs(_rank),
        infer_type=_conv_infer(_rank),
        reference=_conv_reference,
        pattern="out_elementwise_fusable",
        doc="Convolution of data (N, C, *spatial) with weight (O, C / groups, *kernel); padding is "
        "(before..., after...) or one value per spatial dim.",
        legalize=_conv_legalize,
    )


# -- pooling ------------------------------------------------------------------------------------------
# NCHW, or NHWC ("layout"): the conv-as-GEMM rewrite keeps activations channels-last between convolutions
# and pools them there rather than transposing around the pool.

POOL_SPATIAL_AXES = {"NCHW": (2, 3), "NHWC": (1, 2)}


def _pool_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    layout = info.attrs["layout"]
    if layout not in POOL_SPATIAL_AXES:
        raise info.fail(f"layout must be one of {tuple(POOL_SPATIAL_AXES)}, got {layout!r}")
    if x.known_rank and x.ndim != 4:
        raise info.fail(f"data must have rank 4 ({layout}), got {x.ndim}")
    size = _spatial(info, "pool_size", 2, 1)
    sp = _norm_spatial(info, 2)
    if x.shape is None:
        return TensorType(None, x.dtype, 4)
    out = list(x.shape)
    for i, axis in enumerate(POOL_SPATIAL_AXES[layout]):
        out[axis] = _window_out(
            x.shape[axis],
            size[i],
            sp["strides"][i],
            sp["padding"][i],
            sp["padding"][2 + i],
            sp["dilation"][i],
        )
    return TensorType(tuple(out), x.dtype)


def _channels_last(reference):
    """`reference` (NCHW) taking a layout attribute: NHWC data is transposed in and the result back."""

    def run(x, *args, layout="NCHW", **kwargs):
        if layout == "NCHW":
            return reference(x, *args, **kwargs)
        out = reference(np.transpose(x, (0, 3, 1, 2)), *args, **kwargs)
        return np.ascontiguousarray(np.transpose(out, (0, 2, 3, 1)))

    return run


def _pool_windows(x, pool_size, strides, padding, dilation, fill):
    size = pool_size * 2 if len(pool_size) == 1 else pool_size
    strides = strides * 2 if len(strides) == 1 else strides
    dilation = dilation * 2 if len(dilation) == 1 else dilation
    xp = _pad_np(x, _full_padding(padding, 2), fill)
    oh = (xp.shape[2] - dilation[0] * (size[0] - 1) - 1) // strides[0] + 1
    ow = (xp.shape[3] - dilation[1] * (size[1] - 1) - 1) // strides[1] + 1
    for kh, kw in itertools.product(range(size[0]), range(size[1])):
        h0, w0 = kh * dilation[0], kw * dilation[1]
        yield xp[
            :,
            :,
            h0 : h0 + strides[0] * (oh - 1) + 1 : strides[0],
            w0 : w0 + strides[1] * (ow - 1) + 1 : strides[1],
        ]


def _max_pool_reference(x, pool_size, strides, padding, dilation):
    return np.max(
        np.stack(list(_pool_windows(x, pool_size, strides, padding, dilation, -np.inf))), axis=0
    ).astype(x.dtype)


def _avg_pool_reference(x, pool_size, strides, padding, dilation, count_include_pad):
    total = sum(w.astype(np.float64) for w in _pool_windows(x, pool_size, strides, padding, dilation, 0.0))
    if count_include_pad:
        size = pool_size * 2 if len(pool_size) == 1 else pool_size
        return (total / (size[0] * size[1])).astype(x.dtype)
    count = sum(_pool_windows(np.ones_like(x, np.float64), pool_size, strides, padding, dilation, 0.0))
    return (total / count).astype(x.dtype)


def _pool_legalize(kind: str):
    def legalize(inputs, out, pool_size, strides, padding, dilation, count_include_pad=True, layout="NCHW"):
        x = inputs[0]
        ah, aw = POOL_SPATIAL_AXES[layout]
        size = pool_size * 2 if len(pool_size) == 1 else pool_size
        strides = strides * 2 if len(strides) == 1 else strides
        dilation = dilation * 2 if len(dilation) == 1 else dilation
        padding = _full_padding(padding, 2)
        fill = float(np.finfo(x.dtype.to_numpy()).min) if kind == "max" else 0.0
        before, after = [0, 0, 0, 0], [0, 0, 0, 0]
        before[ah], before[aw], after[ah], after[aw] = padding
        xp = pad_stage(x, before, after, fill)

        def window(idx, kh, kw):
            out = list(idx)
            out[ah] = idx[ah] * strides[0] + kh * dilation[0]
            out[aw] = idx[aw] * strides[1] + kw * dilation[1]
            return tuple(out)

        def body(*idx):
            kh, kw = te.reduce_axis((0, size[0]), name="kh"), te.reduce_axis((0, size[1]), name="kw")
            reducer = te.max if kind == "max" else te.sum
            return reducer(xp[window(idx, kh, kw)], axis=[kh, kw])

        pooled = te.compute(T.out_shape(out), body, name=f"{kind}_pool2d")
        if kind == "max":
            return pooled
        if count_include_pad:
            return te.compute(pooled.shape, lambda *i: pooled[i] / float(size[0] * size[1]), name="avg")

        def count(*idx):
            kh, kw = te.reduce_axis((0, size[0]), name="kh"), te.reduce_axis((0, size[1]), name="kw")
            where = window(idx, kh, kw)
            ph, pw = where[ah], where[aw]
            valid = E.logical_and(
                E.logical_and(ph >= padding[0], ph < padding[0] + x.shape[ah]),
                E.logical_and(pw >= padding[1], pw < padding[1] + x.shape[aw]),
            )
            return te.sum(E.select(valid, T.const(1.0, x.dtype), T.const(0.0, x.dtype)), axis=[kh, kw])

        counts = te.compute(pooled.shape, count, name="valid_count")
        return te.compute(pooled.shape, lambda *i: pooled[i] / counts[i], name="avg")

    return legalize


_POOL_ATTRS = (
    Attr("pool_size", attr_ints),
    Attr("strides", attr_ints, (1, 1)),
    Attr("padding", attr_ints, (0, 0)),
    Attr("dilation", attr_ints, (1, 1)),
)
_LAYOUT_ATTR = Attr("layout", attr_str, "NCHW")
register_op(
    "max_pool2d",
    num_args=1,
    attrs=(*_POOL_ATTRS, _LAYOUT_ATTR),
    infer_type=_pool_infer,
    reference=_channels_last(_max_pool_reference),
    pattern="out_elementwise_fusable",
    legalize=_pool_legalize("max"),
)
register_op(
    "avg_pool2d",
    num_args=1,
    attrs=(*_POOL_ATTRS, Attr("count_include_pad", attr_bool, True), _LAYOUT_ATTR),
    infer_type=_pool_infer,
    reference=_channels_last(_avg_pool_reference),
    pattern="out_elementwise_fusable",
    legalize=_pool_legalize("avg"),
)


def _adaptive_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    require_float(info, x)
    size = _spatial(info, "output_size", 2, 1)
    if x.known_rank and x.ndim != 4:
        raise info.fail(f"data must have rank 4 (NCHW), got {x.ndim}")
    if x.shape is None:
        return TensorType(None, x.dtype, 4)
    return TensorType((x.shape[0], x.shape[1], *size), x.dtype)


def _adaptive_reference(x, output_size):
    oh, ow = output_size * 2 if len(output_size) == 1 else output_size
    h, w = x.shape[2:]
    out = np.zeros((*x.shape[:2], oh, ow), x.dtype)
    for i, j in itertools.product(range(oh), range(ow)):
        hs, he = i * h // oh, -((-(i + 1) * h) // oh)
        ws, we = j * w // ow, -((-(j + 1) * w) // ow)
        out[:, :, i, j] = x[:, :, hs:he, ws:we].astype(np.float64).mean(axis=(2, 3))
    return out


def _adaptive_legalize(inputs, out, output_size):
    """Each window [floor(i*H/OH), ceil((i+1)*H/OH)) is a reduction over all of H under a condition (a
    reduction's domain cannot depend on the output index)."""
    x = inputs[0]
    oh, ow = output_size * 2 if len(output_size) == 1 else output_size
    h, w = x.shape[2], x.shape[3]

    def bounds(i, dim, o):
        return E.floordiv(i * dim, o), E.floordiv((i + 1) * dim + (o - 1), o)

    def window_sum(n, c, i, j, value):
        rh, rw = te.reduce_axis((0, h), name="rh"), te.reduce_axis((0, w), name="rw")
        (hs, he), (ws, we) = bounds(i, h, oh), bounds(j, w, ow)
        inside = E.logical_and(E.logical_and(rh >= hs, rh < he), E.logical_and(rw >= ws, rw < we))
        return te.sum(value(n, c, rh, rw), axis=[rh, rw], where=inside)

    shape = T.out_shape(out)
    total = te.compute(shape, lambda n, c, i, j: window_sum(n, c, i, j, lambda *k: x[k]), name="window_sum")

    def body(n, c, i, j):
        (hs, he), (ws, we) = bounds(i, h, oh), bounds(j, w, ow)
        return total[n, c, i, j] / T.cast((he - hs) * (we - ws), x.dtype)

    return te.compute(shape, body, name="adaptive_avg_pool2d")


register_op(
    "adaptive_avg_pool2d",
    num_args=1,
    attrs=(Attr("output_size", attr_ints),),
    infer_type=_adaptive_infer,
    reference=_adaptive_reference,
    pattern="reduction",
    legalize=_adaptive_legalize,
)


# im2col (channels-last patch matrix of conv-as-GEMM) is declared in its own module; importing it here
# registers it with the rest of the convolution family.
from shapeflow.ir.graph.ops import im2col as _im2col  # noqa: E402, F401
