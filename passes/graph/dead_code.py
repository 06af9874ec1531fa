"""DeadCodeElimination: remove bindings whose variables are never used, and functions never called.

A binding is removed when its variable is unused and evaluating it has no effect other than its value:
everything in a dataflow block (pure by definition); outside one, atoms, tuples and calls of registered ops
other than `call_dps_library` (whose library function may do anything). A match_cast that defines symbolic
Vars stays (later types may name them), other unused match_casts go with their run-time check, as in TVM.

Functions: the entry points are `entry_functions` when given, else "main" and every function with a
global_symbol; functions not reachable from an entry point through GlobalName references are removed
(the private "Primitive" sub-functions FuseOps made, the PrimFuncs FuseTIR replaced). A module without graph
functions is a kernel library and is kept whole.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.functor import collect
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.builder import type_vars
from shapeflow.ir.module import IRModule
from shapeflow.passes.graph.common import is_public, use_counts
from shapeflow.passes.infra import Pass, PassContext, register_pass


def _is_pure(value: G.Expr) -> bool:
    if isinstance(value, G.Call):
        return isinstance(value.op, G.Op) and value.op.name != "call_dps_library"
    return not isinstance(value, (G.If, G.SeqExpr))


def _removable(binding: G.Binding, in_dataflow: bool) -> bool:
    if isinstance(binding, G.MatchCast):
        return not type_vars(binding.type)
    return in_dataflow or _is_pure(binding.value)


def _sweep_seq(seq: G.SeqExpr, uses: dict) -> tuple[G.SeqExpr, bool]:
    """Remove dead bindings from `seq`, last to first, updating `uses` as bindings go."""
    changed = False
    blocks = []
    for block in reversed(seq.blocks):
        kept = []
        dataflow = isinstance(block, G.DataflowBlock)
        for binding in reversed(block.bindings):
            if uses.get(id(binding.var), 0) == 0 and _removable(binding, dataflow):
                for var_id, count in use_counts(binding.value).items():
                    uses[var_id] -= count
                changed = True
                continue
            value = binding.value
            if isinstance(value, G.If):
                true_branch, c1 = (
                    _sweep_seq(value.true_branch, uses)
                    if isinstance(value.true_branch, G.SeqExpr)
                    else (value.true_branch, False)
                )
                false_branch, c2 = (
                    _sweep_seq(value.false_branch, uses)
                    if isinstance(value.false_branch, G.SeqExpr)
                    else (value.false_branch, False)
                )
                if c1 or c2:
                    changed = True
                    value = G.If(value.cond, true_branch, false_branch)
                    binding = (
                        G.VarBinding(binding.var, value)
                        if isinstance(binding, G.VarBinding)
                        else G.MatchCast(binding.var, value, binding.type)
                    )
            kept.append(binding)
        if kept:
            blocks.append(type(block)(tuple(reversed(kept))))
        else:
            changed = True
    return (G.SeqExpr(tuple(reversed(blocks)), seq.body) if changed else seq), changed


def eliminate_dead_bindings(func: G.GraphFunction) -> G.GraphFunction:
    """`func` without unused pure bindings (the same object when none)."""
    if not isinstance(func.body, G.SeqExpr):
        return func
    # Sweeping repeats until nothing changes: removing a binding can make its inputs dead.
    body, changed_any = func.body, False
    while True:
        body, changed = _sweep_seq(body, use_counts(body))
        if not changed:
            break
        changed_any = True
    return G.GraphFunction(func.params, body, func.ret_type, func.attrs) if changed_any else func


def reachable_functions(mod: IRModule, entries) -> set[str]:
    """Names of the functions reachable from `entries` through GlobalName references."""
    seen: set[str] = set()
    stack = [e for e in entries if e in mod]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        func = mod[name]
        if isinstance(func, G.GraphFunction):
            stack.extend(g.name for g in collect(func.body, G.GlobalName) if g.name in mod)
    return seen


@register_pass
@dataclasses.dataclass(frozen=True)
class DeadCodeElimination(Pass):
    """Remove unused bindings and unreachable functions (see the module docstring)."""

    name = "graph.dead_code_elimination"
    entry_functions: tuple[str, ...] = ()

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        functions = {}
        changed = False
        for name, func in mod.items():
            new = eliminate_dead_bindings(func) if isinstance(func, G.GraphFunction) else func
            changed |= new is not func
            functions[name] = new
        graph_names = [n for n, f in functions.items() if isinstance(f, G.GraphFunction)]
        if graph_names:
            entries = self.entry_functions or [
                n
                for n in graph_names
                if is_public(n, functions[n]) and not functions[n].attrs.get("Primitive")
            ]
            live = reachable_functions(IRModule(functions), entries)
            if len(live) < len(functions):
                functions = {n: f for n, f in functions.items() if n in live}
                changed = True
        return IRModule(functions, mod.attrs) if changed else mod
