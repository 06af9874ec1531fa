"""LowerInitBlock: make a block's `init` explicit as `if <every reduce iter var == its min>: init`.

A block's init runs before the first step of its reduction. Once blocks become plain loops there is no
"first step" any more, so the condition is spelled out: all reduction iteration variables are at the start
of their domains. A block with an init but no reduction variables runs the init on every iteration (the
reduction has one step). Blocks keep their other fields; ConvertBlocksToLoops removes them later.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import logical_and
from shapeflow.ir.functor import Mutator
from shapeflow.ir.node import replace
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Block, IfThenElse, IterType, seq
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass


def lower_block_init(block: Block) -> Block:
    """`block` with its init folded into its body under the first-reduction-step condition."""
    if block.init is None:
        return block
    reduce_ivs = [iv for iv in block.iter_vars if iv.iter_type == IterType.REDUCE]
    if reduce_ivs:
        first_step = logical_and(*(iv.var == iv.dom.min.astype(iv.var.dtype) for iv in reduce_ivs))
        init = IfThenElse(first_step, block.init)
    else:
        init = block.init
    return replace(block, init=None, body=seq(init, block.body))


class _LowerInit(Mutator):
    mutate_buffers = False

    def visit_Block(self, op: Block):
        return lower_block_init(self.generic_visit(op))


@register_pass
@dataclasses.dataclass(frozen=True)
class LowerInitBlock(PrimFuncPass):
    """Turn every block init into a guarded statement at the start of the block body."""

    name = "lower-init-block"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = _LowerInit().visit(func.body)
        return func if body is func.body else func.with_body(body)
