"""RemoveNoOp: delete statements that do nothing, which lowering and simplification leave behind.

- `Evaluate` of an expression without calls (e.g. `Evaluate(0)`, what a removed statement becomes);
- a store of a buffer element to the same element (`A[i] = A[i]`);
- a loop whose body does nothing or whose extent is a constant <= 0;
- an `if` whose branches both do nothing (conditions have no side effects); an empty then-branch with
  a non-empty else-branch becomes the negated condition;
- a let, allocation or buffer declaration around nothing, and an allocation whose storage is never used.
Assertions are kept: they can fail. Sequences shrink to what is left.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import BufferLoad, Call, IntImm, Not
from shapeflow.ir.functor import Mutator, Visitor
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import (
    Allocate,
    BufferStore,
    DeclBuffer,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    SeqStmt,
    no_op,
    seq,
)
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import contains


def is_nothing(stmt) -> bool:
    return isinstance(stmt, Evaluate) and not contains(stmt.value, Call)


class _UsedVars(Visitor):
    """ids of the variables a function uses, not counting an allocation's own declaration."""

    def __init__(self):
        super().__init__()
        self.used: set[int] = set()

    def visit_Var(self, var):
        self.used.add(id(var))

    def visit_Allocate(self, op: Allocate):
        self.visit(op.buffer.shape)
        self.visit(op.body)


class _RemoveNoOp(Mutator):
    mutate_buffers = False

    def __init__(self, used: set[int]):
        super().__init__()
        self.used = used  # computed once: asking per allocation would be quadratic in nested allocations

    def visit_PrimExpr(self, expr):
        return expr

    def visit_SeqStmt(self, op: SeqStmt):
        items = [self.visit(s) for s in op.seq]
        kept = [s for s in items if not is_nothing(s)]
        if len(kept) == len(op.seq) and all(a is b for a, b in zip(kept, op.seq)):
            return op
        return seq(*kept)

    def visit_BufferStore(self, op: BufferStore):
        value = op.value
        if (
            isinstance(value, BufferLoad)
            and value.buffer.data is op.buffer.data
            and structural_equal(value.buffer, op.buffer)
            and structural_equal(value.indices, op.indices)
        ):
            return no_op()
        return op

    def visit_For(self, op: For):
        body = self.visit(op.body)
        empty = isinstance(op.extent, IntImm) and op.extent.value <= 0
        if (is_nothing(body) or empty) and op.kind != ForKind.THREAD_BINDING:
            return no_op()
        return op if body is op.body else dataclasses.replace(op, body=body)

    def visit_IfThenElse(self, op: IfThenElse):
        then_case = self.visit(op.then_case)
        else_case = self.visit(op.else_case) if op.else_case is not None else None
        if else_case is not None and is_nothing(else_case):
            else_case = None
        if is_nothing(then_case):
            if else_case is None:
                return no_op()
            return IfThenElse(Not(op.condition), else_case)
        if then_case is op.then_case and else_case is op.else_case:
            return op
        return IfThenElse(op.condition, then_case, else_case)

    def visit_LetStmt(self, op: LetStmt):
        body = self.visit(op.body)
        if is_nothing(body):
            return no_op()
        return op if body is op.body else LetStmt(op.var, op.value, body)

    def visit_Allocate(self, op: Allocate):
        body = self.visit(op.body)
        if is_nothing(body) or id(op.buffer.data) not in self.used:
            return body
        return op if body is op.body else Allocate(op.buffer, body)

    def visit_DeclBuffer(self, op: DeclBuffer):
        body = self.visit(op.body)
        if is_nothing(body):
            return body
        return op if body is op.body else DeclBuffer(op.buffer, body)


@register_pass
@dataclasses.dataclass(frozen=True)
class RemoveNoOp(PrimFuncPass):
    """Delete statements without effect (see the module docstring for the list)."""

    name = "remove-no-op"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        used = _UsedVars()
        used.visit(func.body)
        body = _RemoveNoOp(used.used).visit(func.body)
        return func if body is func.body else func.with_body(body)
