"""Inverse trigonometric unary ops: atan, asin, acos.

The loop IR has no arctangent intrinsic, so atan is written out in te: Cephes' double-precision atan
(range reduction to |x| <= 0.66 through pi/4 and pi/2 offsets, then a degree-4/5 rational approximation
in x^2), evaluated in float64 and rounded to the input dtype. asin and acos reduce to it:
asin(x) = atan(x / sqrt((1 - x)(1 + x))) and acos(x) = 2 atan(sqrt((1 - x) / (1 + x))), both exact at
+-1 (an infinite argument gives +-pi/2) and NaN outside [-1, 1], as numpy.
"""

from __future__ import annotations

import math

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_float
from shapeflow.ir.graph.ops.registry import CallInfo, register_op
from shapeflow.ir.graph.types import Type

_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
      -1.228866684490136173410e2, -6.485021904942025371773e1)  # fmt: skip
_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
      4.853903996359136964868e2, 1.945506571482613964425e2)  # fmt: skip
_T3P8 = 2.41421356237309504880  # tan(3 pi / 8)
_MOREBITS = 6.123233995736765886130e-17  # pi/2 = 1.5707963267948966 + _MOREBITS


def _c(value: float):
    return T.const(value, "float64")


def _poly(z, coeffs, leading_one: bool):
    acc = _c(1.0) if leading_one else _c(coeffs[0])
    for c in coeffs if leading_one else coeffs[1:]:
        acc = acc * z + _c(c)
    return acc


def atan64(x):
    """arctan of a float64 te expression (Cephes atan: about 1 ulp)."""
    a = te.abs(x)
    big = a > _c(_T3P8)
    mid = E.logical_and(E.logical_not(big), a > _c(0.66))
    reduced = E.select(big, _c(-1.0) / a, E.select(mid, (a - _c(1.0)) / (a + _c(1.0)), a))
    offset = E.select(big, _c(math.pi / 2), E.select(mid, _c(math.pi / 4), _c(0.0)))
    extra = E.select(big, _c(_MOREBITS), E.select(mid, _c(0.5 * _MOREBITS), _c(0.0)))
    z = reduced * reduced
    z = z * _poly(z, _P, False) / _poly(z, _Q, True)
    result = offset + (reduced * z + reduced + extra)
    return E.select(x < _c(0.0), -result, result)


def _asin64(x):
    return atan64(x / te.sqrt((_c(1.0) - x) * (_c(1.0) + x)))


def _acos64(x):
    return _c(2.0) * atan64(te.sqrt((_c(1.0) - x) / (_c(1.0) + x)))


def _in_float64(fn):
    def legalize(inputs, out):
        return T.elementwise(inputs, out, lambda v: T.cast(fn(T.cast(v, "float64")), v.dtype), name="trig")

    return legalize


def _float_like(info: CallInfo) -> Type:
    t = info.tensor(0)
    require_float(info, t)
    return t


for _name, _reference, _fn in (
    ("atan", np.arctan, atan64),
    ("asin", np.arcsin, _asin64),
    ("acos", np.arccos, _acos64),
):
    register_op(
        _name,
        num_args=1,
        infer_type=_float_like,
        reference=lambda x, f=_reference: np.asarray(f(x)).astype(x.dtype, copy=False),
        legalize=_in_float64(_fn),
        pattern="elementwise",
        doc=f"numpy.{_reference.__name__}, elementwise (float dtypes).",
    )
