"""Binary ops with numpy broadcasting, `where`, and `astype`.

Operands must have the same dtype (no implicit promotion: a mismatch is ill-typed, as in Relax); the
builder's `op` helpers turn Python scalars into constants of the other operand's dtype. Shapes broadcast
by numpy's rules over symbolic dims (see shapeflow.ir.graph.shape for what is proved at build time and what
is left to run time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_bool, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_dtype, register_op
from shapeflow.ir.graph.shape import broadcast_shapes
from shapeflow.ir.graph.types import TensorType, Type


def broadcast_type(info: CallInfo, tensors: Sequence[TensorType], dtype) -> TensorType:
    """The broadcast of several tensor types, with result `dtype`."""
    if all(t.shape is not None for t in tensors):
        return TensorType(broadcast_shapes([t.shape for t in tensors], info.op), dtype)
    if all(t.known_rank for t in tensors):
        return TensorType(None, dtype, max(t.ndim for t in tensors))
    return TensorType(None, dtype)


def _trunc_divide(a, b):
    if a.dtype.kind in "iu":
        q = np.floor_divide(a, b)
        fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return (q + fix).astype(a.dtype, copy=False)
    return np.true_divide(a, b).astype(a.dtype, copy=False)


def _te_power(a, b):
    if a.dtype.is_float:
        return te.pow(a, b)
    return T.cast(te.pow(T.cast(a, "float64"), T.cast(b, "float64")), a.dtype)


# name -> (numpy reference, accepted operand kind, result kind: "same" or "bool", te element expression)
_BINARY = {
    "add": (np.add, "number", "same", lambda a, b: a + b),
    "subtract": (np.subtract, "number", "same", lambda a, b: a - b),
    "multiply": (np.multiply, "number", "same", lambda a, b: a * b),
    "divide": (_trunc_divide, "number", "same", lambda a, b: a / b),
    "floor_divide": (np.floor_divide, "number", "same", E.floordiv),
    "floor_mod": (np.remainder, "number", "same", E.floormod),
    "power": (np.power, "number", "same", _te_power),
    "maximum": (np.maximum, "number", "same", E.max_expr),
    "minimum": (np.minimum, "number", "same", E.min_expr),
    "equal": (np.equal, "any", "bool", E.EQ),
    "not_equal": (np.not_equal, "any", "bool", E.NE),
    "less": (np.less, "any", "bool", E.LT),
    "less_equal": (np.less_equal, "any", "bool", E.LE),
    "greater": (np.greater, "any", "bool", E.GT),
    "greater_equal": (np.greater_equal, "any", "bool", E.GE),
    "logical_and": (np.logical_and, "bool", "same", E.logical_and),
    "logical_or": (np.logical_or, "bool", "same", E.logical_or),
    "logical_xor": (np.logical_xor, "bool", "same", E.NE),
}


def _binary_infer(kind: str, result: str):
    def infer(info: CallInfo) -> Type:
        a, b = info.tensor(0), info.tensor(1)
        dtype = same_dtype(info, (a, b))
        if dtype is not None:
            if kind == "bool" and not dtype.is_bool:
                raise info.fail(f"operands must have dtype bool, got {dtype}")
            if kind == "number" and dtype.is_bool:
                raise info.fail("operands must be numeric, got bool")
        return broadcast_type(info, (a, b), DataType("bool") if result == "bool" else dtype)

    return infer


def _binary_reference(fn, result: str):
    def reference(a, b):
        out = np.asarray(fn(a, b))
        return out if result == "bool" else out.astype(np.result_type(a, b), copy=False)

    return reference


def _elementwise_legalize(fn, name: str):
    def legalize(inputs, out, **attrs):
        return T.elementwise(inputs, out, lambda *xs: fn(*xs, **attrs), name=name)

    return legalize


for _name, (_fn, _kind, _result, _te_fn) in _BINARY.items():
    register_op(
        _name,
        num_args=2,
        infer_type=_binary_infer(_kind, _result),
        reference=_binary_reference(_fn, _result),
        pattern="broadcast",
        legalize=_elementwise_legalize(_te_fn, _name),
    )


def _where_infer(info: CallInfo) -> Type:
    cond, x, y = info.tensor(0), info.tensor(1), info.tensor(2)
    require_bool(info, cond, "condition")
    return broadcast_type(info, (cond, x, y), same_dtype(info, (x, y)))


register_op(
    "where",
    num_args=3,
    infer_type=_where_infer,
    reference=lambda cond, x, y: np.where(cond, x, y),
    pattern="broadcast",
    legalize=_elementwise_legalize(E.select, "where"),
    doc="x where cond else y, all three broadcast together.",
)


def _astype_infer(info: CallInfo) -> Type:
    t = info.tensor(0)
    return TensorType(t.shape, info.attrs["dtype"], t.ndim)


register_op(
    "astype",
    num_args=1,
    attrs=(Attr("dtype", attr_dtype),),
    infer_type=_astype_infer,
    reference=lambda x, dtype: x.astype(dtype.to_numpy()),
    pattern="elementwise",
    legalize=_elementwise_legalize(lambda x, dtype: T.cast(x, dtype), "astype"),
)
