"""Normalizations: layer_norm and rms_norm over trailing axes, and over channels batch_norm (inference form,
with given running statistics) and group_norm. None of them keeps running statistics."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_equal, normalize_axes, require_float, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_float, attr_int, attr_ints, register_op
from shapeflow.ir.graph.shape import format_dim
from shapeflow.ir.graph.types import TensorType, Type


def _check_scale(info: CallInfo, x: TensorType, scale: TensorType, axes: tuple[int, ...], which: str) -> None:
    """A scale or shift parameter has the shape of x's normalized axes."""
    if scale.known_rank and scale.ndim != len(axes):
        raise info.fail(f"{which} must have rank {len(axes)} (the normalized axes), got rank {scale.ndim}")
    if x.shape is None or scale.shape is None:
        return
    for i, axis in enumerate(axes):
        if not must_equal(
            info, scale.shape[i], x.shape[axis], f"{which} dimension {i} != input dimension {axis}", i
        ):
            raise info.shape_error(
                f"{which} dimension {i} does not match input dimension {axis}",
                dimension=i,
                expected=format_dim(x.shape[axis]),
                actual=format_dim(scale.shape[i]),
            )


def _norm_infer(params: tuple[str, ...]):
    def infer(info: CallInfo) -> Type:
        x = info.tensor(0)
        require_float(info, x)
        tensors = [info.tensor(i) for i in range(len(info.types))]
        same_dtype(info, tensors)
        if x.known_rank:
            axes = tuple(sorted(normalize_axes(info, info.attrs["axes"], x.ndim)))
            for which, t in zip(params, tensors[1:]):
                _check_scale(info, x, t, axes, which)
        return x

    return infer


def _expand(param, x, axes):
    """Reshape a parameter over the normalized axes so that it broadcasts against x."""
    axes = sorted(a % x.ndim for a in axes)
    shape = [1] * x.ndim
    for i, a in enumerate(axes):
        shape[a] = param.shape[i]
    return param.reshape(shape)


def _layer_norm(x, gamma, beta, axes, epsilon):
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    return ((x - mean) / np.sqrt(var + epsilon) * _expand(gamma, x, axes) + _expand(beta, x, axes)).astype(
        x.dtype, copy=False
    )


def _rms_norm(x, weight, axes, epsilon):
    ms = np.mean(np.square(x), axis=axes, keepdims=True)
    return (x / np.sqrt(ms + epsilon) * _expand(weight, x, axes)).astype(x.dtype, copy=False)


def _moments(x, axes, centered: bool):
    """mean over `axes` (keepdims) and the mean of squares of x - mean (centered) or of x."""
    count = T.const(1, "int64")
    for a in axes:
        count = count * x.shape[a]
    n = T.cast(count, x.dtype)
    mean = None
    if centered:
        total = T.reduction(x, axes, True, lambda idx, rvs: te.sum(x[tuple(idx)], axis=rvs), "sum")
        mean = te.compute(total.shape, lambda *i: total[i] / n, name="mean")

    def square(idx, rvs):
        v = x[tuple(idx)] - mean[T.keep_index(idx, axes)] if centered else x[tuple(idx)]
        return te.sum(v * v, axis=rvs)

    squares = T.reduction(x, axes, True, square, "sum_sq")
    var = te.compute(squares.shape, lambda *i: squares[i] / n, name="var")
    return mean, var


def _param(p, idx, axes):
    return p[tuple(idx[a] for a in axes)]


def _layer_norm_legalize(inputs, out, axes, epsilon):
    x, gamma, beta = inputs
    axes = sorted(a % x.ndim for a in axes)
    mean, var = _moments(x, axes, True)

    def body(*i):
        k = T.keep_index(i, axes)
        normed = (x[i] - mean[k]) / te.sqrt(var[k] + epsilon)
        return normed * _param(gamma, i, axes) + _param(beta, i, axes)

    return te.compute(x.shape, body, name="layer_norm")


def _rms_norm_legalize(inputs, out, axes, epsilon):
    x, weight = inputs
    axes = sorted(a % x.ndim for a in axes)
    _, ms = _moments(x, axes, False)

    def body(*i):
        return x[i] / te.sqrt(ms[T.keep_index(i, axes)] + epsilon) * _param(weight, i, axes)

    return te.compute(x.shape, body, name="rms_norm")


_NORM_ATTRS = (Attr("axes", attr_ints, (-1,)), Attr("epsilon", attr_float, 1e-5))
register_op(
    "layer_norm",
    num_args=3,
    attrs=_NORM_ATTRS,
    infer_type=_norm_infer(("gamma", "beta")),
    reference=_layer_norm,
    pattern="reduction",
    legalize=_layer_norm_legalize,
    doc="(x - mean) / sqrt(var + epsilon) * gamma + beta over `axes`.",
)
register_op(
    "rms_norm",
    num_args=2,
    attrs=_NORM_ATTRS,
    infer_type=_norm_infer(("weight",)),
    reference=_rms_norm,
    pattern="reduction",
    legalize=_rms_norm_legalize,
    doc="x / sqrt(mean(x^2) + epsilon) * weight over `axes`.",
)


# -- batch_norm (inference) and group_norm ---------------------------------------------------------


def _batch_norm_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    require_float(info, x)
    same_dtype(info, [info.tensor(i) for i in range(5)])
    for i in range(1, 5):
        p = info.tensor(i)
        if p.known_rank and p.ndim != 1:
            raise info.fail(f"parameter {i} must have rank 1, got {p.ndim}")
        if x.shape is not None and p.shape is not None:
            axis = info.attrs["axis"] % x.ndim
            if not must_equal(info, p.shape[0], x.shape[axis], f"parameter {i} != channel dimension", axis):
                raise info.shape_error(
                    f"parameter {i} does not match channel dimension {axis}",
                    dimension=axis,
                    expected=format_dim(x.shape[axis]),
                    actual=format_dim(p.shape[0]),
                )
    return x


def _batch_norm_reference(x, gamma, beta, mean, var, axis, epsilon):
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    r = [a.reshape(shape) for a in (gamma, beta, mean, var)]
    return ((x - r[2]) / np.sqrt(r[3] + epsilon) * r[0] + r[1]).astype(x.dtype)


def _batch_norm_legalize(inputs, out, axis, epsilon):
    x, gamma, beta, mean, var = inputs
    axis = axis % x.ndim

    def body(*i):
        c = i[axis]
        return (x[i] - mean[c]) / te.sqrt(var[c] + epsilon) * gamma[c] + beta[c]

    return te.compute(x.shape, body, name="batch_norm")


register_op(
    "batch_norm",
    num_args=5,
    attrs=(Attr("axis", attr_int, 1), Attr("epsilon", attr_float, 1e-5)),
    infer_type=_batch_norm_infer,
    reference=_batch_norm_reference,
    pattern="elementwise",
    doc="Inference batch_norm(x, gamma, beta, moving_mean, moving_var): per-channel affine normalization.",
    legalize=_batch_norm_legalize,
)


def _group_norm_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    require_float(info, x)
    same_dtype(info, [info.tensor(i) for i in range(3)])
    groups = info.attrs["num_groups"]
    if groups <= 0:
        raise info.fail("num_groups must be positive")
    if x.known_rank and x.ndim < 2:
        raise info.fail("data must have rank >= 2 (N, C, ...)")
    if x.shape is not None:
        c = x.shape[1]
        if not must_equal(info, E.floormod(c, groups), 0, f"channels not divisible into {groups} groups", 1):
            raise info.shape_error(
                f"channels are not divisible into {groups} groups",
                dimension=1,
                expected=f"a multiple of {groups}",
                actual=format_dim(c),
            )
        for i in (1, 2):  # gamma and beta are read at the channel index
            p = info.tensor(i)
            if p.known_rank and p.ndim != 1:
                raise info.fail(f"parameter {i} must have rank 1, got {p.ndim}")
            if p.shape is not None and not must_equal(info, p.shape[0], c, f"parameter {i} != channels", 1):
                raise info.shape_error(
                    f"parameter {i} does not match the channels", 1, format_dim(c), format_dim(p.shape[0])
                )
    return x


def _group_norm_reference(x, gamma, beta, num_groups, epsilon):
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1).astype(np.float64)
    normed = (g - g.mean(axis=2, keepdims=True)) / np.sqrt(g.var(axis=2, keepdims=True) + epsilon)
    shape = [1, c] + [1] * (x.ndim - 2)
    return (normed.reshape(x.shape) * gamma.reshape(shape) + beta.reshape(shape)).astype(x.dtype)


def _group_norm_legalize(inputs, out, num_groups, epsilon):
    x, gamma, beta = inputs
    cg = E.floordiv(x.shape[1], num_groups)
    spatial = x.shape[2:]
    count = cg
    for d in spatial:
        count = count * d
    n_elems = T.cast(count, x.dtype)

    def group_reduce(value, name):
        def body(n, g):
            c = te.reduce_axis((0, cg), name="c")
            ks = [te.reduce_axis((0, d), name=f"s{i}") for i, d in enumerate(spatial)]
            return te.sum(value((n, g * cg + c, *ks)), axis=[c, *ks])

        return te.compute((x.shape[0], num_groups), body, name=name)

    total = group_reduce(lambda i: x[i], "group_sum")
    mean = te.compute(total.shape, lambda n, g: total[n, g] / n_elems, name="group_mean")

    def centered(i):
        return x[i] - mean[i[0], E.floordiv(i[1], cg)]

    sq = group_reduce(lambda i: centered(i) * centered(i), "group_sum_sq")

    def body(*i):
        g = E.floordiv(i[1], cg)
        return centered(i) / te.sqrt(sq[i[0], g] / n_elems + epsilon) * gamma[i[1]] + beta[i[1]]

    return te.compute(x.shape, body, name="group_norm")


register_op(
    "group_norm",
    num_args=3,
    attrs=(Attr("num_groups", attr_int), Attr("epsilon", attr_float, 1e-5)),
    infer_type=_group_norm_infer,
    reference=_group_norm_reference,
    pattern="reduction",
    doc="group_norm(x (N, C, ...), gamma (C,), beta (C,)): normalize each group of C / num_groups channels.",
    legalize=_group_norm_legalize,
)
