"""cumprod: running product along an axis, with ONNX CumProd's exclusive and reverse options (cumsum's
sibling; cumsum lives with the creation ops in create.py)."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import normalize_axis
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_int, register_op
from shapeflow.ir.graph.types import Type


def _cumprod_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    if t.dtype is not None and t.dtype.is_bool:
        raise info.fail("input must be numeric, got bool")
    if t.known_rank:
        normalize_axis(info, info.attrs["axis"], t.ndim)
    return t


def _cumprod_reference(x, axis, exclusive, reverse):
    y = np.flip(x, axis) if reverse else x
    out = np.cumprod(y, axis=axis, dtype=x.dtype)
    if exclusive:
        out = np.moveaxis(out, axis, 0)
        out = np.concatenate([np.ones_like(out[:1]), out[:-1]], axis=0)
        out = np.moveaxis(out, 0, axis)
    return np.ascontiguousarray(np.flip(out, axis) if reverse else out)


def _cumprod_legalize(inputs, out, axis, exclusive, reverse):
    """A product over the whole axis under a condition (O(n^2), as cumsum's legalization)."""
    x = inputs[0]
    axis = axis % x.ndim

    def body(*i):
        r = te.reduce_axis((0, x.shape[axis]), name="r")
        pos = i[axis]
        if reverse:
            cond = r > pos if exclusive else r >= pos
        else:
            cond = r < pos if exclusive else r <= pos
        index = list(i)
        index[axis] = r
        return te.prod(E.select(cond, x[tuple(index)], T.const(1, x.dtype)), axis=r)

    return te.compute(x.shape, body, name="cumprod")


register_op(
    "cumprod",
    num_args=1,
    attrs=(Attr("axis", attr_int, 0), Attr("exclusive", attr_bool, False), Attr("reverse", attr_bool, False)),
    infer_type=_cumprod_infer,
    reference=_cumprod_reference,
    pattern="opaque",
    doc="Running product along `axis` (ONNX CumProd: exclusive and reverse options).",
    legalize=_cumprod_legalize,
)
