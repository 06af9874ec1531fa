"""Binary ops with numpy broadcasting, `where`, and `astype`.

Operands must have the same dtype (no implicit promotion: a mismatch is ill-typed, as in Relax); the
builder's `op` helpers turn Python scalars into constants of the other operand's dtype. Shapes broadcast
by numpy's rules over symbolic dims (see shapeflow.ir.graph.shape for what is proved at build time and what
is left to run time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shapeflow.ir.dtype import DataType
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


# name -> (numpy reference, accepted operand kind, result kind: "same" or "bool")
_BINARY = {
    "add": (np.add, "number", "same"),
    "subtract": (np.subtract, "number", "same"),
    "multiply": (np.multiply, "number", "same"),
    "divide": (_trunc_divide, "number", "same"),
    "floor_divide": (np.floor_divide, "number", "same"),
    "floor_mod": (np.remainder, "number", "same"),
    "power": (np.power, "number", "same"),
    "maximum": (np.maximum, "number", "same"),
    "minimum": (np.minimum, "number", "same"),
    "equal": (np.equal, "any", "bool"),
    "not_equal": (np.not_equal, "any", "bool"),
    "less": (np.less, "any", "bool"),
    "less_equal": (np.less_equal, "any", "bool"),
    "greater": (np.greater, "any", "bool"),
    "greater_equal": (np.greater_equal, "any", "bool"),
    "logical_and": (np.logical_and, "bool", "same"),
    "logical_or": (np.logical_or, "bool", "same"),
    "logical_xor": (np.logical_xor, "bool", "same"),
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


for _name, (_fn, _kind, _result) in _BINARY.items():
    register_op(
        _name,
        num_args=2,
        infer_type=_binary_infer(_kind, _result),
        reference=_binary_reference(_fn, _result),
        pattern="broadcast",
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
)
