"""LegalizeOps and AnnotateOpPattern: op calls become call_tir of PrimFuncs, and each PrimFunc is labelled
with the pattern FuseOps reads.

Patterns, from most to least fusable (the op registry's names, `shapeflow.ir.graph.ops.registry.PATTERNS`):
- "elementwise": one spatial block; output and every input indexed by the block's iteration variables in
  order (exp, add of equal shapes);
- "broadcast": as elementwise, but an input may be indexed by a subsequence of the variables or by
  constants (add of (n, 4) and (4,));
- "injective": one spatial block with other index expressions (transpose, reshape, take);
- "reduction": blocks with reduce iteration variables (sum, max), one of them at most;
- "out_elementwise_fusable": a reduction whose update multiplies two loads (matmul, conv): its output can
  take an elementwise epilogue but it should not be fused into its producers;
- "opaque": anything else (several reductions, no blocks at all).

The label is the PrimFunc attribute "op_pattern"; a PrimFunc that already has one keeps it.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.ir.graph.legalize import legalize_module
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Block, BufferStore, IterType
from shapeflow.passes.infra import Pass, PassContext, PrimFuncPass, register_pass

PATTERN_RANK = {
    "elementwise": 0,
    "broadcast": 1,
    "injective": 2,
    "reduction": 3,
    "out_elementwise_fusable": 4,
    "opaque": 5,
}
ANCHORS = ("reduction", "out_elementwise_fusable")


def _is_var(index, variables) -> bool:
    return isinstance(index, E.Var) and any(index is v for v in variables)


def _spatial_pattern(block: Block, store: BufferStore) -> str:
    variables = [iv.var for iv in block.iter_vars]
    out_idx = store.indices
    if not all(_is_var(i, variables) for i in out_idx) or len({id(i) for i in out_idx}) != len(out_idx):
        return "injective"
    pattern = "elementwise"
    for load in collect(store.value, E.BufferLoad):
        idx = load.indices
        if len(idx) == len(out_idx) and all(a is b for a, b in zip(idx, out_idx)):
            continue
        used = [i for i in idx if not isinstance(i, E.IntImm)]
        positions = [next((k for k, o in enumerate(out_idx) if o is i), None) for i in used]
        if any(p is None for p in positions) or positions != sorted(set(positions)):
            return "injective"
        pattern = "broadcast"
    return pattern


def _block_pattern(block: Block) -> str:
    stores = collect(block.body, BufferStore)
    if len(stores) != 1:
        return "opaque"
    store = stores[0]
    if any(iv.iter_type == IterType.REDUCE for iv in block.iter_vars):
        out_buffer = store.buffer
        for mul in collect(store.value, E.Mul):
            loads = [
                x
                for x in (mul.a, mul.b)
                for x in ([x.value] if isinstance(x, E.Cast) else [x])
                if isinstance(x, E.BufferLoad) and x.buffer is not out_buffer
            ]
            if len(loads) == 2:
                return "out_elementwise_fusable"
        return "reduction"
    return _spatial_pattern(block, store)


def analyze_op_pattern(func: PrimFunc) -> str:
    """The fusion pattern of a PrimFunc, from its blocks (see the module docstring)."""
    blocks = [b for b in collect(func.body, Block) if b.iter_vars]
    if not blocks:
        return "opaque"
    patterns = [_block_pattern(b) for b in blocks]
    if sum(p in ANCHORS for p in patterns) > 1:
        return "opaque"
    return max(patterns, key=PATTERN_RANK.__getitem__)


@register_pass
@dataclasses.dataclass(frozen=True)
class AnnotateOpPattern(PrimFuncPass):
    """Set the "op_pattern" attribute of every PrimFunc that has none."""

    name = "graph.annotate_op_pattern"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        if "op_pattern" in func.attrs:
            return func
        return func.with_attr("op_pattern", analyze_op_pattern(func))


@register_pass
@dataclasses.dataclass(frozen=True)
class LegalizeOps(Pass):
    """Every op call with a legalization becomes a call_tir of a PrimFunc added to the module (equal kernels
    shared); `strict` makes a call that cannot be legalized an UnsupportedError instead of leaving it."""

    name = "graph.legalize_ops"
    strict: bool = False

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        out = legalize_module(mod, strict=self.strict)
        same = all(out.functions.get(k) is v for k, v in mod.items()) and len(out) == len(mod)
        return mod if same else out
