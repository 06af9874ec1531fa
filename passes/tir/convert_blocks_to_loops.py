"""ConvertBlocksToLoops: remove Block and BlockRealize, leaving plain loops over plain statements.

Code generators know loops, not blocks. A realized block is replaced by its body with each iteration
variable substituted by its binding; its predicate becomes an `if`; the buffers it allocates become
`Allocate` statements around the body (so they live exactly as long as the block did); its init is lowered
first as LowerInitBlock does. Read/write regions and annotations are schedule information and are dropped.
The root block (no iteration variables) is handled the same way.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import IntImm, Let, Var
from shapeflow.ir.functor import Mutator, collect, substitute
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Allocate, Block, BlockRealize, IfThenElse, LetStmt
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.lower_init_block import lower_block_init


def _block_to_stmt(block: Block, bindings: dict, predicate=None):
    block = lower_block_init(block)
    body = block.body
    for buffer in reversed(block.alloc_buffers):
        body = Allocate(buffer, body)
    # A value holding a Let is bound once by a LetStmt: substituted into each use, later passes would copy
    # it and define the Let's variable more than once. Inside the predicate's `if` (the value may load
    # where only the predicate makes it valid), unless the predicate reads the variable.
    bound = {var: value for var, value in bindings.items() if collect(value, Let)}
    guarded = predicate is not None and not (isinstance(predicate, IntImm) and predicate.value == 1)
    outside = guarded and bool({id(v) for v in bound} & {id(v) for v in collect(predicate, Var)})
    if not outside:
        body = _let_stmts(bound, body)
    if guarded:
        body = IfThenElse(predicate, body)
    if outside:
        body = _let_stmts(bound, body)
    # One substitution over the whole result, so an allocated buffer stays one object in all its uses.
    return substitute(body, {var: value for var, value in bindings.items() if var not in bound})


def _let_stmts(bound: dict, body):
    for var, value in reversed(bound.items()):
        body = LetStmt(var, value, body)
    return body


class _BlocksToLoops(Mutator):
    mutate_buffers = False

    def visit_BlockRealize(self, op: BlockRealize):
        block = op.block
        inner = self.visit(block.body)
        init = self.visit(block.init) if block.init is not None else None
        block = dataclasses.replace(block, body=inner, init=init)
        bindings = {iv.var: value.astype(iv.var.dtype) for iv, value in zip(block.iter_vars, op.iter_values)}
        return _block_to_stmt(block, bindings, op.predicate)

    def visit_Block(self, op: Block):
        # A block with no realize around it (a bare root block) has nothing to bind.
        block = dataclasses.replace(
            op,
            body=self.visit(op.body),
            init=self.visit(op.init) if op.init is not None else None,
        )
        return _block_to_stmt(block, {})


@register_pass
@dataclasses.dataclass(frozen=True)
class ConvertBlocksToLoops(PrimFuncPass):
    """Replace every BlockRealize/Block by loops, ifs and allocations with the same meaning."""

    name = "convert-blocks-to-loops"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = _BlocksToLoops().visit(func.body)
        return func if body is func.body else func.with_body(body)
