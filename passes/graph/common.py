"""Shared machinery of the graph passes: the GraphFunctionPass base, variable uses, renaming, hashable keys.

Graph passes rewrite each GraphFunction of a module (PrimFuncs are left alone unless a pass says otherwise).
The helpers here are small on purpose: each pass reads top to bottom over the bindings of a SeqExpr, which
is where the graph IR's structure lives (blocks of bindings, a result).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from shapeflow.ir.expr import Var
from shapeflow.ir.functor import Mutator, Visitor
from shapeflow.ir.graph import expr as G
from shapeflow.ir.module import IRModule
from shapeflow.ir.node import Node, fields_of
from shapeflow.passes.infra import Pass, PassContext


@dataclasses.dataclass(frozen=True)
class GraphFunctionPass(Pass):
    """A pass that rewrites each GraphFunction of a module on its own (PrimFuncs are kept).

    `transform_function(func, mod, ctx)` returns the function, or the very same object when nothing
    changed; the module is returned unchanged (the same object) when no function changed."""

    def transform_function(self, func: G.GraphFunction, mod: IRModule, ctx: PassContext) -> G.GraphFunction:
        raise NotImplementedError(f"pass {self.name} does not implement transform_function()")

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        changed = {}
        for gname, func in mod.items():
            if isinstance(func, G.GraphFunction):
                new = self.transform_function(func, mod, ctx)
                if new is not func:
                    changed[gname] = new
        if not changed:
            return mod
        return IRModule({k: changed.get(k, v) for k, v in mod.items()}, mod.attrs)


class UseCounter(Visitor):
    """Counts uses of graph variables (by id); binding sites and parameters are not uses."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}

    def visit_GraphVar(self, var: G.GraphVar) -> None:
        self.counts[id(var)] = self.counts.get(id(var), 0) + 1

    def visit_VarBinding(self, binding: G.VarBinding) -> None:
        self.visit(binding.value)

    def visit_MatchCast(self, binding: G.MatchCast) -> None:
        self.visit(binding.value)

    def visit_GraphFunction(self, func: G.GraphFunction) -> None:
        self.visit(func.body)


def use_counts(obj) -> dict[int, int]:
    """{id(var): number of uses} of the graph variables used in `obj`."""
    counter = UseCounter()
    counter.visit(obj)
    return counter.counts


def used_vars(obj) -> list[G.GraphVar]:
    """The graph variables used in `obj` (not bound there), each once, in first-use order."""
    seen: dict[int, G.GraphVar] = {}

    class _Collect(UseCounter):
        def visit_GraphVar(self, var):
            seen.setdefault(id(var), var)

    _Collect().visit(obj)
    return list(seen.values())


class VarRenamer(Mutator):
    """Replaces graph variables (by id) with expressions, in uses and binding sites alike."""

    def __init__(self, mapping: dict[int, G.Expr]):
        super().__init__()
        self.mapping = mapping

    def visit_GraphVar(self, var: G.GraphVar):
        return self.mapping.get(id(var), var)


def rename_vars(obj, mapping: dict[int, G.Expr]):
    """`obj` with graph variables replaced per `mapping` ({id(var): replacement})."""
    return VarRenamer(mapping).visit(obj) if mapping else obj


def key_of(obj):
    """A hashable key equal for syntactically equal expressions, in which variables (graph and symbolic)
    are compared by identity: what CSE and memo tables within one function need."""
    if isinstance(obj, (G.GraphVar, Var)):
        return ("var", id(obj))
    if isinstance(obj, Node):
        return (type(obj).__name__, tuple(key_of(getattr(obj, f)) for f in fields_of(type(obj))))
    if isinstance(obj, (tuple, list)):
        return tuple(key_of(x) for x in obj)
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((str(k), key_of(v)) for k, v in obj.items())))
    try:
        hash(obj)
    except TypeError:
        return ("repr", repr(obj))
    return (type(obj).__name__, obj)


def is_public(name: str, func) -> bool:
    """Public functions are entry points: "main" and every function carrying a global_symbol attribute."""
    return name == "main" or bool(getattr(func, "attrs", {}).get("global_symbol"))


def iter_bindings(blocks: Iterable[G.BindingBlock]):
    for block in blocks:
        yield from block.bindings


def with_body(func: G.GraphFunction, body: G.Expr, **attrs) -> G.GraphFunction:
    new_attrs = {**func.attrs, **attrs}
    return G.GraphFunction(func.params, body, func.ret_type, new_attrs)


__all__ = [
    "GraphFunctionPass",
    "UseCounter",
    "use_counts",
    "used_vars",
    "VarRenamer",
    "rename_vars",
    "key_of",
    "is_public",
    "iter_bindings",
    "with_body",
]
