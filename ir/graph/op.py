"""Functions that build op calls: `op.add(x, y)`, `op.sum(x, axis=1)`, `op.reshape(x, (n, -1))`.

One function per registered op, generated from the registry (so a new op needs no edit here). Positional
arguments beyond the op's tensor operands fill its attributes in declaration order; Python scalars become
constants of the dtype of the first tensor operand whose dtype is known. A single list or tuple of
expressions passed to a variadic op (concat) is its operand list.
"""

from __future__ import annotations

from collections.abc import Sequence

from shapeflow.errors import VerifyError
from shapeflow.ir.graph import ops as _ops
from shapeflow.ir.graph.expr import Call, Constant, Expr, ExternFunc, GlobalName, ShapeExpr, Tuple
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.types import TensorType, Type


def _scalar_dtype(args) -> str | None:
    for a in args:
        if isinstance(a, Expr):
            try:
                t = type_of(a)
            except VerifyError:
                continue
            if isinstance(t, TensorType) and t.dtype is not None:
                return str(t.dtype)
    return None


def _make_builder(name: str):
    op_def = _ops.get_op_def(name)
    max_args = op_def.num_args if isinstance(op_def.num_args, int) else op_def.num_args[1]

    def build(*args, **attrs) -> Call:
        if max_args is None and len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        operands, extra = (args, ()) if max_args is None else (args[:max_args], args[max_args:])
        operands = [a for a in operands if a is not None]
        if len(extra) > len(op_def.attrs):
            raise VerifyError(f"op '{name}' got {len(args)} positional arguments")
        for attr, value in zip(op_def.attrs, extra):
            if attr.name in attrs:
                raise VerifyError(f"op '{name}': attribute {attr.name!r} given twice")
            attrs[attr.name] = value
        dtype = _scalar_dtype(operands)
        operands = [
            a
            if isinstance(a, Expr)
            else Constant.from_array(a, dtype if isinstance(a, (int, float)) else None)
            for a in operands
        ]
        return _ops.make_call(name, operands, attrs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = op_def.doc or f"A call of the graph op '{name}'."
    return build


for _name in _ops.list_ops():
    if _name not in ("call_tir", "call_dps_library"):
        globals()[_name] = _make_builder(_name)


def call_tir(callee: str | GlobalName, args: Sequence[Expr], out_type: Type, tir_vars=None) -> Call:
    """A destination-passing call of PrimFunc `callee` of the module; `out_type` is a TensorType (or a
    TupleType of them) from which the outputs are allocated; `tir_vars` fill the PrimFunc's scalar
    parameters after the buffers."""
    callee = GlobalName(callee) if isinstance(callee, str) else callee
    call_args = [callee, Tuple(tuple(args))]
    if tir_vars is not None:
        call_args.append(tir_vars if isinstance(tir_vars, ShapeExpr) else ShapeExpr(tuple(tir_vars)))
    return _ops.make_call("call_tir", call_args, type_args=(out_type,))


def call_dps_library(name: str, args: Sequence[Expr], out_type: Type) -> Call:
    """A destination-passing call of a function registered with `register_library_function`."""
    return _ops.make_call("call_dps_library", [ExternFunc(name), Tuple(tuple(args))], type_args=(out_type,))


def call(callee: str | GlobalName, *args: Expr) -> Call:
    """A call of a graph function of the module (the builder fills in its return type)."""
    return Call(GlobalName(callee) if isinstance(callee, str) else callee, tuple(args))


__all__ = [n for n in _ops.list_ops() if n not in ("call_tir", "call_dps_library")] + [
    "call_tir",
    "call_dps_library",
    "call",
]
