"""Bitwise ops on integer (and, for and/or/xor/not, bool) tensors, with numpy broadcasting.

Shifts follow the loop IR's shift intrinsics: a shift amount outside [0, bits) gives 0 (or -1 for a right
shift of a negative signed value), so the numpy reference and compiled code agree on every input.
"""

from __future__ import annotations

import numpy as np

from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.binary import broadcast_type
from shapeflow.ir.graph.ops.common import same_dtype
from shapeflow.ir.graph.ops.registry import CallInfo, register_op
from shapeflow.ir.graph.types import Type
from shapeflow.ir.tir.intrinsics import _shift_left, _shift_right


def _integer_infer(allow_bool: bool):
    def infer(info: CallInfo) -> Type:
        tensors = [info.tensor(i) for i in range(len(info.types))]
        dtype = same_dtype(info, tensors)
        if dtype is not None and not (dtype.is_integer or (allow_bool and dtype.is_bool)):
            raise info.fail(f"operands must be integers, got {dtype}")
        if len(tensors) == 1:
            return tensors[0]
        return broadcast_type(info, tensors, dtype)

    return infer


def _same_dtype_reference(fn):
    def reference(*xs):
        return np.asarray(fn(*np.broadcast_arrays(*xs))).astype(xs[0].dtype, copy=False)

    return reference


# name -> (numpy reference, te element expression, bool operands allowed)
_BITWISE = {
    "bitwise_and": (np.bitwise_and, lambda a, b: a & b, True),
    "bitwise_or": (np.bitwise_or, lambda a, b: a | b, True),
    "bitwise_xor": (np.bitwise_xor, lambda a, b: a ^ b, True),
    "left_shift": (_shift_left, lambda a, b: a << b, False),
    "right_shift": (_shift_right, lambda a, b: a >> b, False),
}


def _legalize(fn, name: str):
    return lambda inputs, out: T.elementwise(inputs, out, fn, name=name)


for _name, (_fn, _te_fn, _bool) in _BITWISE.items():
    register_op(
        _name,
        num_args=2,
        infer_type=_integer_infer(_bool),
        reference=_same_dtype_reference(_fn),
        pattern="broadcast",
        legalize=_legalize(_te_fn, _name),
    )

register_op(
    "bitwise_not",
    num_args=1,
    infer_type=_integer_infer(False),
    reference=_same_dtype_reference(np.invert),
    pattern="elementwise",
    legalize=lambda inputs, out: T.elementwise(inputs, out, lambda a: ~a, name="bitwise_not"),
)
