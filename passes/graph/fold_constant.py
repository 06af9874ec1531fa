"""FoldConstant: evaluate op calls whose arguments are all constants, with the op's numpy reference.

A variable bound to a constant is replaced by the constant in later call arguments, so chains fold in one
pass. Results larger than `max_elements` are not folded (a model's weights times a constant would otherwise
grow the module), nor are calls whose attributes still hold symbolic values, ops without a reference
(call_tir, call_dps_library) or whose reference refuses the operands (the error stays for run time).
The folded value is cast to the dtype inference gave the call, so types do not change.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shapeflow.ir.expr import PrimExpr
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops.registry import get_op_def
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType
from shapeflow.passes.graph.common import GraphFunctionPass
from shapeflow.passes.infra import PassContext, register_pass

_NO_FOLD = ("call_tir", "call_dps_library")


def _constant_attr(value):
    """The attribute with int PrimExprs turned into ints; None (a marker) when a symbolic value remains."""
    if isinstance(value, PrimExpr):
        return as_int(value)
    if isinstance(value, tuple) and any(isinstance(v, PrimExpr) for v in value):
        items = tuple(_constant_attr(v) for v in value)
        return None if any(i is None for i in items) else items
    return value


def try_fold(call: G.Call, max_elements: int) -> G.Constant | None:
    """The constant value of `call` if all its arguments are constants and the result is small."""
    if not isinstance(call.op, G.Op) or call.op.name in _NO_FOLD:
        return None
    if not all(isinstance(a, G.Constant) for a in call.args):
        return None
    op_def = get_op_def(call.op)
    if op_def.reference is None:
        return None
    out_type = type_of(call)
    if not isinstance(out_type, TensorType) or out_type.shape is None or out_type.dtype is None:
        return None
    dims = [as_int(d) for d in out_type.shape]
    if any(d is None for d in dims) or int(np.prod(dims, dtype=np.int64)) > max_elements:
        return None
    attrs = {}
    for k, v in op_def.normalize_attrs(call.attrs).items():
        folded = _constant_attr(v)
        if folded is None and v is not None:
            return None
        attrs[k] = folded
    try:
        with np.errstate(all="ignore"):
            value = op_def.reference(*[a.array for a in call.args], **attrs)
    except (ValueError, IndexError, TypeError, ZeroDivisionError):
        return None
    if isinstance(value, tuple):
        return None
    value = np.asarray(value).astype(out_type.dtype.to_numpy())
    if tuple(value.shape) != tuple(dims):
        return None
    return G.Constant.from_array(value)


class _Folder:
    def __init__(self, max_elements: int):
        self.max_elements = max_elements
        self.constants: dict[int, G.Constant] = {}
        self.changed = False

    def arg(self, a: G.Expr) -> G.Expr:
        if isinstance(a, G.GraphVar) and id(a) in self.constants:
            self.changed = True
            return self.constants[id(a)]
        if isinstance(a, G.Tuple):
            fields = tuple(self.arg(f) for f in a.fields)
            return a if all(x is y for x, y in zip(fields, a.fields)) else G.Tuple(fields)
        return a

    def value(self, value: G.Expr) -> G.Expr:
        if isinstance(value, G.Call):
            args = tuple(self.arg(a) for a in value.args)
            if any(x is not y for x, y in zip(args, value.args)):
                value = G.Call(value.op, args, value.attrs, value.type_args)
            folded = try_fold(value, self.max_elements)
            if folded is not None:
                self.changed = True
                return folded
            return value
        if isinstance(value, G.If):
            return G.If(value.cond, self.seq(value.true_branch), self.seq(value.false_branch))
        if isinstance(value, G.SeqExpr):
            return self.seq(value)
        return value

    def seq(self, seq: G.Expr) -> G.Expr:
        if not isinstance(seq, G.SeqExpr):
            return seq
        blocks = []
        for block in seq.blocks:
            out = []
            for b in block.bindings:
                value = self.value(b.value)
                if isinstance(b, G.VarBinding):
                    if isinstance(value, G.Constant):
                        self.constants[id(b.var)] = value
                    out.append(b if value is b.value else G.VarBinding(b.var, value))
                else:
                    out.append(b if value is b.value else G.MatchCast(b.var, value, b.type))
            blocks.append(type(block)(tuple(out)))
        return G.SeqExpr(tuple(blocks), seq.body)


def fold_function(func: G.GraphFunction, max_elements: int = 4096) -> G.GraphFunction:
    folder = _Folder(max_elements)
    body = folder.seq(func.body)
    if not folder.changed:
        return func
    return G.GraphFunction(func.params, body, func.ret_type, func.attrs)


@register_pass
@dataclasses.dataclass(frozen=True)
class FoldConstant(GraphFunctionPass):
    """Evaluate small all-constant op calls at compile time (see the module docstring)."""

    name = "graph.fold_constant"
    opt_level = 1
    max_elements: int = 4096

    def transform_function(self, func, mod, ctx: PassContext):
        return fold_function(func, self.max_elements)
