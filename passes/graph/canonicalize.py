"""CanonicalizeBindings: remove variable-to-variable aliases and match_casts that check nothing.

- `v = w` (w a variable whose type says at least what v's does): later uses of v become uses of w and the
  binding goes. A dataflow block's output alias `gv = lv` (lv bound in the same block) is folded the
  other way: lv's own binding now defines gv, since gv must stay visible after the block.
- `v = match_cast(value, T)` where value's type is already T (same symbolic Vars, so no Var is defined
  and nothing can fail at run time) becomes `v = value`, and then an alias as above.
"""

from __future__ import annotations

import dataclasses

from shapeflow.errors import Error
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.shape import same_expr
from shapeflow.ir.graph.types import ObjectType
from shapeflow.passes.graph.common import GraphFunctionPass, rename_vars, use_counts
from shapeflow.passes.infra import PassContext, register_pass


def _alias_ok(var: G.GraphVar, target: G.GraphVar) -> bool:
    """Whether uses of `var` may read `target` instead: its type must be at least as specific."""
    return isinstance(var.type, ObjectType) or same_expr(var.type, target.type)


def _trivial_match_cast(binding: G.MatchCast, mod) -> bool:
    try:
        return same_expr(type_of(binding.value, mod), binding.type)
    except Error:  # an untypable value keeps its check
        return False


def _canonicalize_block(block: G.BindingBlock, mod, remap: dict, uses: dict) -> G.BindingBlock:
    bindings = list(block.bindings)
    # Output aliases first: `gv = lv` with lv bound here by a VarBinding and used only by this alias.
    if isinstance(block, G.DataflowBlock):
        defined = {id(b.var): i for i, b in enumerate(bindings) if isinstance(b, G.VarBinding)}
        for i, b in enumerate(bindings):
            value = b.value
            if (
                isinstance(b, G.VarBinding)
                and isinstance(value, G.DataflowVar)
                and not isinstance(b.var, G.DataflowVar)
                and id(value) in defined
                and uses.get(id(value), 0) == 1
                and _alias_ok(b.var, value)
            ):
                j = defined[id(value)]
                bindings[j] = G.VarBinding(b.var, bindings[j].value)
                bindings[i] = None
    out = []
    for b in bindings:
        if b is None:
            continue
        b = rename_vars(b, remap)
        if isinstance(b, G.MatchCast) and _trivial_match_cast(b, mod):
            b = G.VarBinding(b.var, b.value)
        if isinstance(b, G.VarBinding) and isinstance(b.value, G.GraphVar) and _alias_ok(b.var, b.value):
            # A GraphVar may not be replaced by a DataflowVar (it is visible after the block).
            if isinstance(b.var, G.DataflowVar) or not isinstance(b.value, G.DataflowVar):
                remap[id(b.var)] = b.value
                continue
        out.append(b)
    return type(block)(tuple(out))


class _Canonicalizer:
    def __init__(self, mod, uses):
        self.mod = mod
        self.uses = uses
        self.remap: dict[int, G.Expr] = {}

    def seq(self, seq: G.SeqExpr) -> G.SeqExpr:
        blocks = []
        for block in seq.blocks:
            block = _canonicalize_block(self.nested(block), self.mod, self.remap, self.uses)
            if block.bindings:
                blocks.append(block)
        return G.SeqExpr(tuple(blocks), rename_vars(self.nested(seq.body), self.remap))

    def nested(self, obj):
        """Canonicalize SeqExprs nested in If branches of `obj` (a block or an expression)."""
        if isinstance(obj, G.BindingBlock):
            new = [self.nested(b) for b in obj.bindings]
            return obj if all(a is b for a, b in zip(new, obj.bindings)) else type(obj)(tuple(new))
        if isinstance(obj, G.VarBinding):
            value = self.nested(obj.value)
            return obj if value is obj.value else G.VarBinding(obj.var, value)
        if isinstance(obj, G.If):
            return G.If(obj.cond, self.nested(obj.true_branch), self.nested(obj.false_branch))
        if isinstance(obj, G.SeqExpr):
            return self.seq(obj)
        return obj


def canonicalize_function(func: G.GraphFunction, mod) -> G.GraphFunction:
    if not isinstance(func.body, G.SeqExpr):
        return func
    canon = _Canonicalizer(mod, use_counts(func))
    body = canon.seq(func.body)
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415

    if structural_equal(body, func.body):
        return func
    return G.GraphFunction(func.params, body, func.ret_type, func.attrs)


@register_pass
@dataclasses.dataclass(frozen=True)
class CanonicalizeBindings(GraphFunctionPass):
    """Remove variable aliases and trivial match_casts (see the module docstring)."""

    name = "graph.canonicalize_bindings"

    def transform_function(self, func, mod, ctx: PassContext):
        return canonicalize_function(func, mod)
