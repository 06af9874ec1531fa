"""Elementwise unary ops: the result has the input's type. One table row per op."""

from __future__ import annotations

import math

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
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


def _te_gelu(x):
    return x * 0.5 * (1.0 + te.erf(x * (1.0 / math.sqrt(2.0))))


def _te_gelu_tanh(x):
    return 0.5 * x * (1.0 + te.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


def _te_sign(x):
    """np.sign: 1, -1, +0 for either zero, and NaN for NaN. Comparisons with NaN are false, so the float
    form ends in `x` itself where x is neither positive, negative nor zero (NaN), instead of 0."""
    zero, one, minus_one = T.const(0, x.dtype), T.const(1, x.dtype), T.const(-1, x.dtype)
    rest = E.select(x == zero, zero, x) if x.dtype.is_float else zero
    return E.select(x > zero, one, E.select(x < zero, minus_one, rest))


def _te_neg(x):
    """np.negative. `-x` in the IR is `0 - x`, which gives +0 for x = +0 where numpy gives -0; multiplying by
    -1 flips the sign exactly for every float (zeros, infinities; NaN stays NaN)."""
    return x * T.const(-1, x.dtype) if x.dtype.is_float else -x


# name -> (numpy reference, which dtypes it accepts, te expression of one element)
_UNARY = {
    "exp": (np.exp, "float", te.exp),
    "log": (np.log, "float", te.log),
    "sqrt": (np.sqrt, "float", te.sqrt),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), "float", lambda x: 1.0 / te.sqrt(x)),
    "tanh": (np.tanh, "float", te.tanh),
    "sigmoid": (_sigmoid, "float", lambda x: 1.0 / (1.0 + te.exp(-x))),
    "erf": (_erf, "float", te.erf),
    "sin": (np.sin, "float", te.sin),
    "cos": (np.cos, "float", te.cos),
    "floor": (np.floor, "float", te.floor),
    "ceil": (np.ceil, "float", te.ceil),
    "round": (np.round, "float", te.round),
    "gelu": (_gelu, "float", _te_gelu),
    "gelu_tanh": (_gelu_tanh, "float", _te_gelu_tanh),
    "silu": (lambda x: x * _sigmoid(x), "float", lambda x: x / (1.0 + te.exp(-x))),
    "abs": (np.abs, "number", te.abs),
    "neg": (np.negative, "number", _te_neg),
    "square": (np.square, "number", lambda x: x * x),
    "sign": (np.sign, "number", _te_sign),
    "relu": (
        lambda x: np.maximum(x, np.zeros((), x.dtype)),
        "number",
        lambda x: te.max(x, T.const(0, x.dtype)),
    ),
    "logical_not": (np.logical_not, "bool", E.logical_not),
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


def _unary_legalize(fn, name: str):
    def legalize(inputs, out):
        return T.elementwise(inputs, out, fn, name=name)

    return legalize


for _name, (_fn, _kind, _te_fn) in _UNARY.items():
    register_op(
        _name,
        num_args=1,
        infer_type=_same_as_input(_kind),
        reference=_keep_dtype(_fn),
        pattern="elementwise",
        legalize=_unary_legalize(_te_fn, _name),
    )


def _clip_reference(x, min, max):  # noqa: A002 - attribute names are the op's
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.clip(x, lo, hi).astype(x.dtype, copy=False)


def _clamp_to(w, bound: float, below: bool):
    """`w` raised to `bound` (below=True) or lowered to it. Compare-and-select returns `w` itself wherever
    it is not beyond the bound, so NaN passes through and a zero keeps its sign, as np.clip does (a
    maximum/minimum would turn clip(-0.0, min=0.0) into +0.0). A NaN bound makes every element NaN, as
    in numpy; maximum/minimum propagate it."""
    limit = T.const(bound, w.dtype)
    if math.isnan(bound):
        return te.max(w, limit) if below else te.min(w, limit)
    return E.select(w < limit if below else w > limit, limit, w)


def _clip_legalize(inputs, out, min, max):  # noqa: A002
    x = inputs[0]

    def clip(v):
        # Integers clip in float64 and truncate back, as numpy's clip with float bounds then astype does.
        w = v if v.dtype.is_float else T.cast(v, "float64")
        if min is not None:
            w = _clamp_to(w, min, below=True)
        if max is not None:
            w = _clamp_to(w, max, below=False)
        return T.cast(w, v.dtype)

    return T.elementwise([x], out, clip, name="clip")


register_op(
    "clip",
    legalize=_clip_legalize,
    num_args=1,
    attrs=(Attr("min", optional(attr_float), None), Attr("max", optional(attr_float), None)),
    infer_type=_same_as_input("number"),
    reference=_clip_reference,
    pattern="elementwise",
    doc="Clamp to [min, max]; a missing bound is unbounded.",
)
