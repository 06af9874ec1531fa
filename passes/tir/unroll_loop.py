"""UnrollLoop: replace small loops of constant extent by copies of their body.

Loops marked `unroll` by a schedule (and, with `explicit_only=False`, innermost serial loops) whose extent
is a constant of at most `max_extent` become a sequence of copies of the body, each with the loop variable
replaced by its value; later simplification folds the constants. Larger or symbolic unroll loops are left
as they are: the code generator treats them as serial loops and LLVM may still unroll them. Copies define
their inner variables afresh (every variable is defined once).
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import IntImm
from shapeflow.ir.functor import Mutator, substitute
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import For, ForKind, no_op, seq
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import contains, unique_definitions


class _Unroller(Mutator):
    mutate_buffers = False

    def __init__(self, max_extent: int, explicit_only: bool):
        super().__init__()
        self.max_extent = max_extent
        self.explicit_only = explicit_only

    def visit_PrimExpr(self, expr):
        return expr

    def _wanted(self, op: For) -> bool:
        if not (isinstance(op.min, IntImm) and isinstance(op.extent, IntImm)):
            return False
        if op.extent.value > self.max_extent:
            return False
        if op.kind == ForKind.UNROLLED:
            return True
        return not self.explicit_only and op.kind == ForKind.SERIAL and not contains(op.body, For)

    def visit_For(self, op: For):
        body = self.visit(op.body)
        if not self._wanted(op):
            return op if body is op.body else dataclasses.replace(op, body=body)
        if op.extent.value <= 0:
            return no_op()
        dtype = op.loop_var.dtype
        copies = [
            substitute(body, {op.loop_var: IntImm(dtype, op.min.value + k)}) for k in range(op.extent.value)
        ]
        return seq(*copies)


@register_pass
@dataclasses.dataclass(frozen=True)
class UnrollLoop(PrimFuncPass):
    """Unroll `unroll` loops (and small innermost serial loops unless `explicit_only`) of constant extent."""

    name = "unroll-loop"
    max_extent: int = 16
    explicit_only: bool = True

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = _Unroller(self.max_extent, self.explicit_only).visit(func.body)
        if body is func.body:
            return func
        return func.with_body(unique_definitions(body, func.params))
