"""Destination-passing calls: `call_tir` (a PrimFunc of the same module) and `call_dps_library` (a function
of the library registry below). Both take the callee, a Tuple of inputs and, in `type_args`, the output
types; the caller allocates the outputs from those types and the callee writes them.

    Call(get_op("call_tir"), (GlobalName("add_one"), Tuple((x,)), [ShapeExpr((n,))]), {}, (out_type,))

The optional ShapeExpr passes values for the PrimFunc's scalar Var parameters, in order.
"""

from __future__ import annotations

from collections.abc import Callable

from shapeflow.errors import UnsupportedError
from shapeflow.ir.graph.expr import ExternFunc, GlobalName, ShapeExpr, Tuple
from shapeflow.ir.graph.ops.registry import CallInfo, register_op
from shapeflow.ir.graph.types import TensorType, TupleType, Type


def _out_type(info: CallInfo) -> Type:
    if len(info.type_args) != 1:
        raise info.fail(f"needs exactly one output type in type_args, got {len(info.type_args)}")
    out = info.type_args[0]
    fields = out.fields if isinstance(out, TupleType) else (out,)
    for i, field in enumerate(fields):
        if not isinstance(field, TensorType) or field.shape is None or field.dtype is None:
            raise info.fail(f"output {i} must be a tensor type with known shape and dtype, got {field!r}")
    return out


def _dps_infer(callee_kind: type):
    def infer(info: CallInfo) -> Type:
        if not isinstance(info.args[0], callee_kind):
            raise info.fail(f"argument 0 must be a {callee_kind.__name__}, got {type(info.args[0]).__name__}")
        if not isinstance(info.args[1], Tuple):
            raise info.fail(f"argument 1 must be a Tuple of inputs, got {type(info.args[1]).__name__}")
        if len(info.args) == 3 and not isinstance(info.args[2], ShapeExpr):
            raise info.fail(f"argument 2 must be a ShapeExpr, got {type(info.args[2]).__name__}")
        return _out_type(info)

    return infer


register_op(
    "call_tir",
    num_args=(2, 3),
    infer_type=_dps_infer(GlobalName),
    reference=None,  # the interpreter runs the PrimFunc through the loop-level interpreter
    pattern="opaque",
)
register_op(
    "call_dps_library",
    num_args=2,
    infer_type=_dps_infer(ExternFunc),
    reference=None,  # the interpreter calls the registered function
    pattern="opaque",
)


# ---------------------------------------------------------------------------------------------
# The library registry: native or Python functions callable in destination-passing style
# ---------------------------------------------------------------------------------------------

_LIBRARY: dict[str, Callable[..., None]] = {}


def register_library_function(name: str, fn: Callable[..., None], *, override: bool = False) -> None:
    """Register `fn(*inputs, *outputs)`, which writes its outputs in place."""
    if name in _LIBRARY and not override:
        raise UnsupportedError(f"library function {name!r} is already registered")
    _LIBRARY[name] = fn


def get_library_function(name: str) -> Callable[..., None]:
    try:
        return _LIBRARY[name]
    except KeyError:
        raise UnsupportedError(f"unknown library function {name!r}") from None
