"""Memory planning of graph functions: StaticPlanBlockMemory and KillAfterLastUse.

Both read the top-level bindings of a graph function (every block of its body SeqExpr, in order; values
inside If branches are not planned) after legalization, when tensors are made by destination-passing calls
(`call_tir`, `call_dps_library`) whose outputs the caller allocates.

A *planned tensor* is a variable bound to such a call with one tensor output, whose only uses are as direct
inputs of later destination-passing calls: it is not returned, not put in a tuple, not aliased by another
binding, not passed to a graph function. Those are the intermediates whose storage the caller may reuse.
Variable names are the keys of the plan (they are unique in what the BlockBuilder and the graph passes
make); a tensor whose name is not unique in its function is not planned.

StaticPlanBlockMemory sets the function attribute "memory_plan" (read it with `memory_plan(func)`):

    {"storage": (size0, size1, ...),     # bytes of each storage token: int, or an int64 PrimExpr over the
                                        #   function's symbolic Vars when some Var has no declared bound
     "tensors": {var_name: token},      # the token each planned tensor lives in (at offset 0)
     "planned_bytes": total,            # sum of the storage sizes (int or PrimExpr)
     "intermediate_bytes": total}       # sum of the sizes of all planned tensors (int or PrimExpr)

Tokens are assigned in binding order: a tensor's storage returns to the free list after the binding of its
last use, and the outputs of a binding are assigned before the inputs it reads are released, so a call never
writes over its own inputs. Sizes come from the tensor types: when every Var of a size has a declared bound
in the function's "var_bounds" attribute ({name: (lo, hi)}), the size is its maximum over those bounds (the
largest value at a corner of the box, exact for the products and sums of dims that shapes are), so storage
can be allocated once; otherwise the symbolic size is kept, computed at run time, and a token is shared
only by tensors of the same symbolic size. Constant-size tokens grow to the largest tensor they hold.

KillAfterLastUse sets "kill_after": {binding var name: (tensor names ...)}: the planned tensors whose last
use is that binding, which the VM may free right after it, and "kill_storage_after": {binding var name:
(tokens ...)}: storage tokens of the memory plan that no later binding uses.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from shapeflow.ir.expr import PrimExpr, convert
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.shape import as_int, evaluate, free_vars, same_expr, simplify
from shapeflow.ir.graph.types import TensorType
from shapeflow.passes.graph.common import GraphFunctionPass, used_vars
from shapeflow.passes.infra import PassContext, register_pass

_DPS = ("call_tir", "call_dps_library")


@dataclasses.dataclass
class Liveness:
    """The top-level bindings of a function, where each planned tensor is defined and last used."""

    bindings: list[G.Binding]
    planned: list[G.GraphVar]
    defined_at: dict[int, int]
    last_use: dict[int, int]


def _is_dps(value: G.Expr) -> bool:
    return isinstance(value, G.Call) and isinstance(value.op, G.Op) and value.op.name in _DPS


def analyze_liveness(func: G.GraphFunction) -> Liveness:
    body = func.body
    bindings = [b for block in body.blocks for b in block.bindings] if isinstance(body, G.SeqExpr) else []
    escaping: set[int] = {id(v) for v in used_vars(body.body if isinstance(body, G.SeqExpr) else body)}
    last_use: dict[int, int] = {}
    for i, b in enumerate(bindings):
        direct = set()
        if _is_dps(b.value) and isinstance(b, G.VarBinding):
            direct = {id(f) for f in b.value.args[1].fields if isinstance(f, G.GraphVar)}
        for v in used_vars(b.value):
            last_use[id(v)] = i
            if id(v) not in direct:
                escaping.add(id(v))
    names: dict[str, int] = {}
    for b in bindings:
        names[b.var.name] = names.get(b.var.name, 0) + 1
    planned, defined_at = [], {}
    for i, b in enumerate(bindings):
        t = b.var.type
        if (
            isinstance(b, G.VarBinding)
            and _is_dps(b.value)
            and isinstance(t, TensorType)
            and t.shape is not None
            and t.dtype is not None
            and id(b.var) not in escaping
            and names[b.var.name] == 1
        ):
            planned.append(b.var)
            defined_at[id(b.var)] = i
            last_use.setdefault(id(b.var), i)
    return Liveness(bindings, planned, defined_at, last_use)


def tensor_bytes(t: TensorType) -> PrimExpr:
    """The size of a tensor of type `t` in bytes, as an int64 expression."""
    size = convert(t.dtype.to_numpy().itemsize, "int64")
    for d in t.shape:
        size = size * d
    return simplify(size)


def upper_bound(size: PrimExpr, bounds: dict) -> int | PrimExpr:
    """`size` as an int: its maximum over the declared bounds of its Vars, when they all have one."""
    constant = as_int(size)
    if constant is not None:
        return constant
    variables = free_vars([size])
    if not variables or any(v.name not in bounds for v in variables):
        return size
    corners = itertools.product(*[tuple(bounds[v.name]) for v in variables])
    return max(int(evaluate(size, dict(zip(variables, corner)))) for corner in corners)


def _total(sizes) -> int | PrimExpr:
    ints = sum(s for s in sizes if isinstance(s, (int, np.integer)))
    symbolic = [s for s in sizes if not isinstance(s, (int, np.integer))]
    if not symbolic:
        return int(ints)
    total = convert(int(ints), "int64")
    for s in symbolic:
        total = total + s
    return simplify(total)


def plan_memory(func: G.GraphFunction) -> dict:
    """The memory plan of `func` (see the module docstring)."""
    live = analyze_liveness(func)
    bounds = func.attrs.get("var_bounds") or {}
    dying: dict[int, list[G.GraphVar]] = {}
    for v in live.planned:
        dying.setdefault(live.last_use[id(v)], []).append(v)
    planned_at = {live.defined_at[id(v)]: v for v in live.planned}
    storage: list = []
    free: list[int] = []
    tensors: dict[str, int] = {}
    sizes: list = []
    for i in range(len(live.bindings)):
        var = planned_at.get(i)
        if var is not None:
            size = upper_bound(tensor_bytes(var.type), bounds)
            sizes.append(size)
            tensors[var.name] = _assign(size, storage, free)
        for v in dying.get(i, ()):
            free.append(tensors[v.name])
    return {
        "storage": tuple(storage),
        "tensors": tensors,
        "planned_bytes": _total(storage),
        "intermediate_bytes": _total(sizes),
    }


def _assign(size, storage: list, free: list[int]) -> int:
    """A token for a tensor of `size` bytes: a free one that fits (best fit), else one to grow, else new."""
    if isinstance(size, int):
        fits = [t for t in free if isinstance(storage[t], int) and storage[t] >= size]
        if fits:
            token = min(fits, key=lambda t: storage[t])
        else:
            growable = [t for t in free if isinstance(storage[t], int)]
            token = max(growable, key=lambda t: storage[t]) if growable else None
            if token is not None:
                storage[token] = size
    else:
        token = next(
            (t for t in free if not isinstance(storage[t], int) and same_expr(storage[t], size)), None
        )
    if token is None:
        storage.append(size)
        return len(storage) - 1
    free.remove(token)
    return token


def memory_plan(func: G.GraphFunction) -> dict | None:
    """The "memory_plan" attribute of `func`, or None when StaticPlanBlockMemory has not run."""
    return func.attrs.get("memory_plan")


def planned_bytes(func: G.GraphFunction, dims: dict | None = None) -> tuple[int, int]:
    """(planned storage bytes, sum of intermediate tensor bytes) of `func`'s plan, with symbolic sizes
    evaluated at `dims` ({var name: value})."""
    plan = memory_plan(func) or plan_memory(func)

    def value(x):
        if isinstance(x, int):
            return x
        variables = {v: (dims or {})[v.name] for v in free_vars([x])}
        return int(evaluate(x, variables))

    return value(plan["planned_bytes"]), value(plan["intermediate_bytes"])


@register_pass
@dataclasses.dataclass(frozen=True)
class StaticPlanBlockMemory(GraphFunctionPass):
    """Assign the intermediate tensors of each function to reusable storage tokens (module docstring)."""

    name = "graph.static_plan_block_memory"

    def transform_function(self, func, mod, ctx: PassContext):
        if func.attrs.get("Primitive"):
            return func
        return G.GraphFunction(
            func.params, func.body, func.ret_type, {**func.attrs, "memory_plan": plan_memory(func)}
        )


def kill_points(func: G.GraphFunction) -> tuple[dict, dict]:
    """({binding name: tensors dead after it}, {binding name: storage tokens dead after it})."""
    live = analyze_liveness(func)
    kill: dict[str, tuple[str, ...]] = {}
    for v in live.planned:
        name = live.bindings[live.last_use[id(v)]].var.name
        kill[name] = (*kill.get(name, ()), v.name)
    plan = memory_plan(func)
    kill_storage: dict[str, tuple[int, ...]] = {}
    if plan is not None:
        token_last: dict[int, int] = {}
        for v in live.planned:
            token = plan["tensors"].get(v.name)
            if token is not None:
                token_last[token] = max(token_last.get(token, -1), live.last_use[id(v)])
        for token, i in sorted(token_last.items()):
            name = live.bindings[i].var.name
            kill_storage[name] = (*kill_storage.get(name, ()), token)
    return kill, kill_storage


@register_pass
@dataclasses.dataclass(frozen=True)
class KillAfterLastUse(GraphFunctionPass):
    """Record where each intermediate tensor (and storage token) can be freed (module docstring)."""

    name = "graph.kill_after_last_use"

    def transform_function(self, func, mod, ctx: PassContext):
        if func.attrs.get("Primitive"):
            return func
        kill, kill_storage = kill_points(func)
        attrs = {**func.attrs, "kill_after": kill, "kill_storage_after": kill_storage}
        return G.GraphFunction(func.params, func.body, func.ret_type, attrs)
