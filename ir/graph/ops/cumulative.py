"""cumsum and cumprod: running sums and products along an axis, with ONNX CumSum/CumProd's exclusive and
reverse options. Both are one definition over (numpy scan, te reducer, identity)."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import normalize_axis
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_int, register_op
from shapeflow.ir.graph.types import Type


def _declare_cumulative(name: str, scan, reducer, identity: int, *, allow_bool: bool, doc: str) -> None:
    def infer(info: CallInfo) -> Type:
        t = info.tensor(0)
        if not allow_bool and t.dtype is not None and t.dtype.is_bool:
            raise info.fail("input must be numeric, got bool")
        if t.known_rank:
            normalize_axis(info, info.attrs["axis"], t.ndim)
        return t

    def reference(x, axis, exclusive, reverse):
        y = np.flip(x, axis) if reverse else x
        out = scan(y, axis=axis, dtype=x.dtype)
        if exclusive:
            out = np.moveaxis(out, axis, 0)
            first = np.full_like(out[:1], identity)
            out = np.concatenate([first, out[:-1]], axis=0)
            out = np.moveaxis(out, 0, axis)
        return np.ascontiguousarray(np.flip(out, axis) if reverse else out)

    def legalize(inputs, out, axis, exclusive, reverse):
        """A reduction over the whole axis under a condition (O(n^2); schedules may rewrite it as a scan)."""
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
            return reducer(E.select(cond, x[tuple(index)], T.const(identity, x.dtype)), axis=r)

        return te.compute(x.shape, body, name=name)

    register_op(
        name,
        num_args=1,
        attrs=(
            Attr("axis", attr_int, 0),
            Attr("exclusive", attr_bool, False),
            Attr("reverse", attr_bool, False),
        ),
        infer_type=infer,
        reference=reference,
        pattern="opaque",
        doc=doc,
        legalize=legalize,
    )


_declare_cumulative(
    "cumsum", np.cumsum, te.sum, 0, allow_bool=True,
    doc="Running sum along `axis` (ONNX CumSum: exclusive and reverse options).",
)  # fmt: skip
_declare_cumulative(
    "cumprod", np.cumprod, te.prod, 1, allow_bool=False,
    doc="Running product along `axis` (ONNX CumProd: exclusive and reverse options).",
)  # fmt: skip
