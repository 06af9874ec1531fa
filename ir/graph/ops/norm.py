"""Normalizations over trailing axes: layer_norm and rms_norm (inference form, no running statistics)."""

from __future__ import annotations

import numpy as np

from shapeflow.ir.graph.ops.common import normalize_axes, require_float, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_float, attr_ints, register_op
from shapeflow.ir.graph.shape import compare_dims, format_dim
from shapeflow.ir.graph.types import TensorType, Type


def _check_scale(info: CallInfo, x: TensorType, scale: TensorType, axes: tuple[int, ...], which: str) -> None:
    """A scale or shift parameter has the shape of x's normalized axes."""
    if scale.known_rank and scale.ndim != len(axes):
        raise info.fail(f"{which} must have rank {len(axes)} (the normalized axes), got rank {scale.ndim}")
    if x.shape is None or scale.shape is None:
        return
    for i, axis in enumerate(axes):
        if compare_dims(x.shape[axis], scale.shape[i]) is False:
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


_NORM_ATTRS = (Attr("axes", attr_ints, (-1,)), Attr("epsilon", attr_float, 1e-5))
register_op(
    "layer_norm",
    num_args=3,
    attrs=_NORM_ATTRS,
    infer_type=_norm_infer(("gamma", "beta")),
    reference=_layer_norm,
    pattern="reduction",
    doc="(x - mean) / sqrt(var + epsilon) * gamma + beta over `axes`.",
)
register_op(
    "rms_norm",
    num_args=2,
    attrs=_NORM_ATTRS,
    infer_type=_norm_infer(("weight",)),
    reference=_rms_norm,
    pattern="reduction",
    doc="x / sqrt(mean(x^2) + epsilon) * weight over `axes`.",
)
