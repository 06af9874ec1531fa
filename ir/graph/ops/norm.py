"""Normalizations over trailing axes: layer_norm and rms_norm (inference form, no running statistics)."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_equal, normalize_axes, require_float, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_float, attr_ints, register_op
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
