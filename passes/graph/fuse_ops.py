"""FuseOps: group the call_tir's of a dataflow block into fusable groups; each group becomes a call of a new
private graph sub-function marked "Primitive" (which FuseTIR then turns into one kernel).

The grouping follows TVM's FuseOps, over the dataflow graph of one block (nodes: bindings; edges: a
variable bound by one binding and used by another). It needs the "op_pattern" of each callee PrimFunc
(AnnotateOpPattern). For each node in order, its immediate post-dominator `d` is found with
`networkx.immediate_dominators` on the reversed graph (rooted at a sink that every block output and every
unused value flows to). The node, `d` and every node on a path between them fuse when:
- the node is elementwise/broadcast/injective, the nodes between are at most injective and `d` is at most a
  reduction (injective chains fuse into their producers' consumers, reductions take injective inputs);
- the node is a reduction or out_elementwise_fusable (matmul, conv) and the nodes between and `d` are at
  most broadcast: an elementwise epilogue.
A group holds at most one reduction-like node, and a merge that would make the graph of groups cyclic is
refused (a value leaving the group and coming back). Post-domination means the values computed between the
node and `d` are used only inside the group, so most groups have one output; groups with several outputs
return a tuple. Bindings that are not call_tir of an annotated PrimFunc are never fused.

The block is then re-emitted in a topological order of its groups (legal: a dataflow block is pure),
keeping the original order where dependencies allow.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.builder import type_vars
from shapeflow.ir.graph.types import ShapeType, TupleType
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.passes.graph.common import rename_vars, used_vars
from shapeflow.passes.graph.op_pattern import ANCHORS, PATTERN_RANK
from shapeflow.passes.infra import Pass, PassContext, register_pass

_SINK = -1


def binding_pattern(binding: G.Binding, mod: IRModule) -> str | None:
    """The op_pattern of a binding's call_tir callee, or None when the binding cannot be fused."""
    value = binding.value
    if not isinstance(binding, G.VarBinding) or not isinstance(value, G.Call):
        return None
    if not isinstance(value.op, G.Op) or value.op.name != "call_tir":
        return None
    if isinstance(value.type_args[0], TupleType):
        return None
    callee = mod.functions.get(value.args[0].name)
    if not isinstance(callee, PrimFunc):
        return None
    return callee.attrs.get("op_pattern")


class _Groups:
    """Union-find over the nodes of one block, with the block's dependency edges for cycle checks."""

    def __init__(self, count: int, edges: list[tuple[int, int]], patterns: list[str | None], max_size: int):
        self.parent = list(range(count))
        self.max_size = max_size
        self.edges = edges
        self.anchors = [int(p in ANCHORS) for p in patterns]

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def try_merge(self, nodes) -> bool:
        roots = {self.find(i) for i in nodes}
        if len(roots) < 2:
            return False
        if sum(self.anchors[r] for r in roots) > 1:
            return False
        if sum(1 for i in range(len(self.parent)) if self.find(i) in roots) > self.max_size:
            return False
        target = min(roots)
        trial = list(self.parent)
        for r in roots:
            trial[r] = target

        def root(i):
            while trial[i] != i:
                i = trial[i]
            return i

        quotient = nx.DiGraph()
        quotient.add_edges_from((root(a), root(b)) for a, b in self.edges if root(a) != root(b))
        if not nx.is_directed_acyclic_graph(quotient):
            return False
        self.anchors[target] = sum(self.anchors[r] for r in roots)
        self.parent = trial
        for i in range(len(self.parent)):
            self.parent[i] = root(i)
        return True


def _block_graph(block: G.DataflowBlock):
    """Edges (producer, consumer) of the block, through graph variables and symbolic Vars."""
    index = {id(b.var): i for i, b in enumerate(block.bindings)}
    definers: dict[int, int] = {}
    edges = set()
    for i, b in enumerate(block.bindings):
        for v in used_vars(b.value):
            if id(v) in index:
                edges.add((index[id(v)], i))
        for sym in collect((b.value, b.var.type), Var):
            if id(sym) in definers and definers[id(sym)] != i:
                edges.add((definers[id(sym)], i))
        if isinstance(b, G.MatchCast):
            for sym in type_vars(b.type):
                definers.setdefault(id(sym), i)
    return sorted(edges)


def plan_groups(block: G.DataflowBlock, mod: IRModule, max_group_size: int = 64) -> list[list[int]]:
    """The fused groups of a dataflow block: lists of binding indices (only groups of two or more, at most
    `max_group_size` kernels each)."""
    bindings = block.bindings
    count = len(bindings)
    patterns = [binding_pattern(b, mod) for b in bindings]
    edges = _block_graph(block)
    forward = nx.DiGraph()
    forward.add_nodes_from(range(count))
    forward.add_edges_from(edges)
    reverse = nx.DiGraph()
    reverse.add_nodes_from([_SINK, *range(count)])
    reverse.add_edges_from((b, a) for a, b in edges)
    for i, b in enumerate(bindings):
        if not isinstance(b.var, G.DataflowVar) or forward.out_degree(i) == 0:
            reverse.add_edge(_SINK, i)
    ipdom = nx.immediate_dominators(reverse, _SINK)
    groups = _Groups(count, edges, patterns, max_group_size)
    for i in range(count):
        p = patterns[i]
        if p is None or p == "opaque":
            continue
        d = ipdom.get(i, _SINK)
        if d == _SINK or patterns[d] is None:
            continue
        between = nx.descendants(forward, i) & nx.ancestors(forward, d)
        ranks = [PATTERN_RANK.get(patterns[k], 99) if patterns[k] else 99 for k in between]
        if p in ANCHORS:
            ok = all(r <= PATTERN_RANK["broadcast"] for r in [*ranks, PATTERN_RANK[patterns[d]]])
        else:
            ok = all(r <= PATTERN_RANK["injective"] for r in ranks) and (
                PATTERN_RANK[patterns[d]] <= PATTERN_RANK["reduction"]
            )
        if ok:
            groups.try_merge([i, d, *between])
    members: dict[int, list[int]] = {}
    for i in range(count):
        members.setdefault(groups.find(i), []).append(i)
    return [sorted(m) for m in members.values() if len(m) > 1]


def _unique_name(base: str, taken) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


class _BlockFuser:
    def __init__(self, mod: IRModule, functions: dict, max_group_size: int):
        self.mod = mod
        self.functions = functions
        self.max_group_size = max_group_size

    def fuse(self, block: G.DataflowBlock) -> G.DataflowBlock:
        groups = plan_groups(block, self.mod, self.max_group_size)
        if not groups:
            return block
        bindings = block.bindings
        group_of = {i: g for g, members in enumerate(groups) for i in members}
        unit_of = [("g", group_of[i]) if i in group_of else ("b", i) for i in range(len(bindings))]
        units = nx.DiGraph()
        units.add_nodes_from(set(unit_of))
        units.add_edges_from(
            (unit_of[a], unit_of[b]) for a, b in _block_graph(block) if unit_of[a] != unit_of[b]
        )
        last = {}
        for i, u in enumerate(unit_of):
            last[u] = i
        # Who uses each variable, once per block: asking every group to scan all other bindings was
        # quadratic (seconds on ResNet-50).
        users: dict[int, set[int]] = {}
        for k, b in enumerate(bindings):
            for v in used_vars(b.value):
                users.setdefault(id(v), set()).add(k)
        out: list[G.Binding] = []
        for unit in nx.lexicographical_topological_sort(units, key=lambda u: last[u]):
            if unit[0] == "b":
                out.append(bindings[unit[1]])
            else:
                out.extend(self.emit_group(block, groups[unit[1]], users))
        return G.DataflowBlock(tuple(out))

    def emit_group(
        self, block: G.DataflowBlock, members: list[int], users: dict[int, set[int]]
    ) -> list[G.Binding]:
        bindings = [block.bindings[i] for i in members]
        member_ids = {id(b.var) for b in bindings}
        inputs: list[G.GraphVar] = []
        for b in bindings:
            for v in used_vars(b.value):
                if id(v) not in member_ids and all(v is not w for w in inputs):
                    inputs.append(v)
        inside = set(members)
        outputs = [
            b.var
            for b in bindings
            if not isinstance(b.var, G.DataflowVar) or not users.get(id(b.var), set()) <= inside
        ]
        # Symbolic Vars the group needs that its inputs' types do not define travel as a shape argument.
        defined = {id(s) for v in inputs for s in type_vars(v.type)}
        needed: list[Var] = []
        for b in bindings:
            for s in collect((b.value, b.var.type), Var):
                if id(s) not in defined and all(s is not t for t in needed):
                    needed.append(s)
        params = [G.GraphVar(v.name, v.type) for v in inputs]
        args: list[G.Expr] = list(inputs)
        if needed:
            params.append(G.GraphVar("shape", ShapeType(tuple(needed))))
            args.append(G.ShapeExpr(tuple(needed)))
        mapping: dict[int, G.Expr] = {id(v): p for v, p in zip(inputs, params)}
        for b in bindings:
            is_output = any(b.var is o for o in outputs)
            cls = G.GraphVar if is_output else G.DataflowVar
            mapping[id(b.var)] = cls(b.var.name, b.var.type)
        body_bindings = tuple(rename_vars(b, mapping) for b in bindings)
        if len(outputs) == 1:
            result: G.Expr = mapping[id(outputs[0])]
            ret_type = outputs[0].type
        else:
            result = G.Tuple(tuple(mapping[id(o)] for o in outputs))
            ret_type = TupleType(tuple(o.type for o in outputs))
        names = [b.value.args[0].name for b in bindings]
        fname = _unique_name("fused_" + "_".join(names)[:60], self.functions)
        sub = G.GraphFunction(
            tuple(params),
            G.SeqExpr((G.DataflowBlock(body_bindings),), result),
            ret_type,
            {"Primitive": True},
        )
        self.functions[fname] = sub
        call = G.Call(G.GlobalName(fname), tuple(args), {}, (ret_type,))
        if len(outputs) == 1:
            return [G.VarBinding(outputs[0], call)]
        tuple_var = G.DataflowVar(fname, ret_type)
        return [G.VarBinding(tuple_var, call)] + [
            G.VarBinding(o, G.TupleGetItem(tuple_var, k)) for k, o in enumerate(outputs)
        ]


@register_pass
@dataclasses.dataclass(frozen=True)
class FuseOps(Pass):
    """Group fusable call_tir's of each dataflow block into "Primitive" sub-functions (module docstring)."""

    name = "graph.fuse_ops"
    opt_level = 1
    # The most kernels one group may hold (1 disables fusion); bounds compile time of the fused kernel.
    max_group_size: int = 64

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        functions = dict(mod.functions)
        fuser = _BlockFuser(mod, functions, self.max_group_size)
        changed = False
        for name, func in mod.items():
            if not isinstance(func, G.GraphFunction) or func.attrs.get("Primitive"):
                continue
            if not isinstance(func.body, G.SeqExpr):
                continue
            blocks = tuple(fuser.fuse(b) if isinstance(b, G.DataflowBlock) else b for b in func.body.blocks)
            if any(a is not b for a, b in zip(blocks, func.body.blocks)):
                changed = True
                body = G.SeqExpr(blocks, func.body.body)
                functions[name] = G.GraphFunction(func.params, body, func.ret_type, func.attrs)
        return IRModule(functions, mod.attrs) if changed else mod
