"""Elementwise unary ops: the result has the input's type. One table row per op."""

from __future__ import annotations

import math

import numpy as np

from shapeflow.ir.graph.ops.common import require_bool, require_float
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_float, optional, register_op
from shapeflow.ir.graph.types import Type


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf  # noqa: PLC0415
    except ImportError:  # scipy is optional: fall back to math.erf element by element
        return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)
    return erf(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


# name -> (numpy reference, which dtypes it accepts)
_UNARY = {
    "exp": (np.exp, "float"),
    "log": (np.log, "float"),
    "sqrt": (np.sqrt, "float"),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), "float"),
    "tanh": (np.tanh, "float"),
    "sigmoid": (_sigmoid, "float"),
    "erf": (_erf, "float"),
    "sin": (np.sin, "float"),
    "cos": (np.cos, "float"),
    "floor": (np.floor, "float"),
    "ceil": (np.ceil, "float"),
    "round": (np.round, "float"),
    "gelu": (_gelu, "float"),
    "gelu_tanh": (_gelu_tanh, "float"),
    "silu": (lambda x: x * _sigmoid(x), "float"),
    "abs": (np.abs, "number"),
    "neg": (np.negative, "number"),
    "square": (np.square, "number"),
    "sign": (np.sign, "number"),
    "relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), "number"),
    "logical_not": (np.logical_not, "bool"),
}


def _same_as_input(kind: str):
    def infer(info: CallInfo) -> Type:
        t = info.tensor(0)
        if kind == "float":
            require_float(info, t)
        elif kind == "bool":
            require_bool(info, t)
        elif t.dtype is not None and t.dtype.is_bool:
            raise info.fail("input must be numeric, got bool")
        return t

    return infer


def _keep_dtype(fn):
    def reference(x):
        return np.asarray(fn(x)).astype(x.dtype, copy=False)

    return reference


for _name, (_fn, _kind) in _UNARY.items():
    register_op(
        _name,
        num_args=1,
        infer_type=_same_as_input(_kind),
        reference=_keep_dtype(_fn),
        pattern="elementwise",
    )


def _clip_reference(x, min, max):  # noqa: A002 - attribute names are the op's
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.clip(x, lo, hi).astype(x.dtype, copy=False)


register_op(
    "clip",
    num_args=1,
    attrs=(Attr("min", optional(attr_float), None), Attr("max", optional(attr_float), None)),
    infer_type=_same_as_input("number"),
    reference=_clip_reference,
    pattern="elementwise",
    doc="Clamp to [min, max]; a missing bound is unbounded.",
)
