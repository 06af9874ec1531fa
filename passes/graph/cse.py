"""CommonSubexpressionElimination: inside a dataflow block, a pure op call equal to an earlier one (same op,
structurally equal arguments — variables by identity — attributes and output types) is not computed again;
its variable is replaced by the earlier one's.

Only dataflow blocks: their bindings are pure by definition, so two equal calls give equal values. Calls of
`call_dps_library` are excluded (a library function need not be pure). A GraphVar (a block output) bound to a
repeated call becomes an alias of the earlier variable rather than disappearing, so it stays visible after
the block; CanonicalizeBindings folds such aliases.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.graph import expr as G
from shapeflow.passes.graph.common import GraphFunctionPass, key_of, rename_vars
from shapeflow.passes.infra import PassContext, register_pass


def _cse_block(block: G.DataflowBlock, remap: dict) -> G.DataflowBlock:
    seen: dict = {}
    out = []
    for binding in block.bindings:
        binding = rename_vars(binding, remap)
        value = binding.value
        if (
            isinstance(binding, G.VarBinding)
            and isinstance(value, G.Call)
            and isinstance(value.op, G.Op)
            and value.op.name != "call_dps_library"
        ):
            key = key_of(value)
            earlier = seen.get(key)
            if earlier is not None:
                if isinstance(binding.var, G.DataflowVar):
                    remap[id(binding.var)] = earlier
                    continue
                binding = G.VarBinding(binding.var, earlier)
            else:
                seen[key] = binding.var
        out.append(binding)
    return G.DataflowBlock(tuple(out))


def cse_function(func: G.GraphFunction) -> G.GraphFunction:
    if not isinstance(func.body, G.SeqExpr):
        return func
    remap: dict = {}
    blocks = []
    changed = False
    for block in func.body.blocks:
        if isinstance(block, G.DataflowBlock):
            new = _cse_block(block, remap)
            changed |= len(new.bindings) != len(block.bindings) or any(
                a is not b for a, b in zip(new.bindings, block.bindings)
            )
        else:
            new = rename_vars(block, remap)
        blocks.append(new)
    if not changed:
        return func
    body = G.SeqExpr(tuple(blocks), rename_vars(func.body.body, remap))
    return G.GraphFunction(func.params, body, func.ret_type, func.attrs)


@register_pass
@dataclasses.dataclass(frozen=True)
class CommonSubexpressionElimination(GraphFunctionPass):
    """Reuse equal pure op calls within a dataflow block (see the module docstring)."""

    name = "graph.cse"
    opt_level = 1

    def transform_function(self, func, mod, ctx: PassContext):
        return cse_function(func)
