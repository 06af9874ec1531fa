"""Normalize: the graph IR's normal form, which every later graph pass assumes.

In normal form
- every nested call (and If, SeqExpr, TupleGetItem) used as an argument is bound to its own variable, in
  order, just before the binding that uses it (a call_tir's input Tuple stays inline: it is a list of
  arguments, not a value);
- every function body is a SeqExpr whose result is an atom (a variable, constant, tuple of atoms...);
- If branches are SeqExprs;
- variables declared with an unknown type (ObjectType, or a tensor type without shape) get the inferred
  type, and so does a function's unknown return type.

Hand-written IR (and IR built directly from nodes rather than with the BlockBuilder) reaches this form here.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.infer import type_mismatch, type_of
from shapeflow.ir.graph.types import ObjectType, TensorType, Type
from shapeflow.ir.module import IRModule
from shapeflow.passes.graph.common import GraphFunctionPass
from shapeflow.passes.infra import PassContext, register_pass

_COMPOUND = (G.Call, G.If, G.SeqExpr, G.TupleGetItem)


def _better_type(declared: Type, inferred: Type) -> bool:
    """Whether `inferred` should replace `declared` (which says less about the value)."""
    if isinstance(inferred, ObjectType):
        return False
    if isinstance(declared, ObjectType):
        return True
    if isinstance(declared, TensorType) and isinstance(inferred, TensorType) and declared.shape is None:
        return inferred.shape is not None and type_mismatch(declared, inferred) is None
    return False


class _Normalizer:
    def __init__(self, mod: IRModule):
        self.mod = mod
        self.remap: dict[int, G.GraphVar] = {}
        self.bindings: list[G.Binding] = []
        self.in_dataflow = False
        self.counter = 0
        self.changed = False

    # -- scopes ----------------------------------------------------------------------------------
    def seq(self, expr: G.Expr) -> G.SeqExpr:
        outer = (self.bindings, self.in_dataflow)
        if not isinstance(expr, G.SeqExpr):
            self.changed = True
            expr = G.SeqExpr((), expr)
        blocks: list[G.BindingBlock] = []
        for block in expr.blocks:
            self.bindings, self.in_dataflow = [], isinstance(block, G.DataflowBlock)
            for binding in block.bindings:
                self.bindings.append(self.binding(binding))
            if self.bindings:
                blocks.append(type(block)(tuple(self.bindings)))
        self.bindings, self.in_dataflow = [], False
        body = self.atom(self.expr(expr.body))
        if self.bindings:
            blocks.append(G.BindingBlock(tuple(self.bindings)))
        self.bindings, self.in_dataflow = outer
        return G.SeqExpr(tuple(blocks), body)

    def binding(self, binding: G.Binding) -> G.Binding:
        value = self.expr(binding.value)
        var = binding.var
        if isinstance(binding, G.MatchCast):
            return G.MatchCast(var, value, binding.type)
        inferred = type_of(value, self.mod)
        if _better_type(var.type, inferred):
            new_var = type(var)(var.name, inferred)
            self.remap[id(var)] = new_var
            var = new_var
            self.changed = True
        return G.VarBinding(var, value)

    # -- expressions -----------------------------------------------------------------------------
    def expr(self, e: G.Expr) -> G.Expr:
        if isinstance(e, G.GraphVar):
            return self.remap.get(id(e), e)
        if isinstance(e, G.Call):
            args = tuple(self.arg(a) for a in e.args)
            op = self.expr(e.op) if isinstance(e.op, G.GraphVar) else e.op
            return G.Call(op, args, e.attrs, e.type_args)
        if isinstance(e, G.Tuple):
            return G.Tuple(tuple(self.atom(self.expr(f)) for f in e.fields))
        if isinstance(e, G.TupleGetItem):
            return G.TupleGetItem(self.atom(self.expr(e.tuple_value)), e.index)
        if isinstance(e, G.If):
            cond = self.atom(self.expr(e.cond))
            return G.If(cond, self.seq(e.true_branch), self.seq(e.false_branch))
        if isinstance(e, G.SeqExpr):
            return self.seq(e)
        return e

    def arg(self, a: G.Expr) -> G.Expr:
        if isinstance(a, G.Tuple):
            return self.expr(a)
        return self.atom(self.expr(a))

    def atom(self, e: G.Expr) -> G.Expr:
        if not isinstance(e, _COMPOUND):
            return e
        self.changed = True
        self.counter += 1
        cls = G.DataflowVar if self.in_dataflow else G.GraphVar
        var = cls(f"nv{self.counter}", type_of(e, self.mod))
        self.bindings.append(G.VarBinding(var, e))
        return var


def normalize_function(func: G.GraphFunction, mod: IRModule) -> G.GraphFunction:
    """`func` in normal form (the same object when it already was)."""
    normalizer = _Normalizer(mod)
    body = normalizer.seq(func.body)
    ret_type = func.ret_type
    if _better_type(ret_type, type_of(body, mod)):
        ret_type = type_of(body, mod)
        normalizer.changed = True
    if not normalizer.changed:
        return func
    return G.GraphFunction(func.params, body, ret_type, func.attrs)


@register_pass
@dataclasses.dataclass(frozen=True)
class Normalize(GraphFunctionPass):
    """Bind nested calls to variables and fill in inferred types (see the module docstring)."""

    name = "graph.normalize"

    def transform_function(self, func, mod, ctx: PassContext):
        return normalize_function(func, mod)
