"""StorageRewrite: let allocations whose lifetimes do not overlap share one allocation.

After lowering, the intermediates of a function are nested `Allocate`s around one sequence of stages
(`Allocate(T1, Allocate(T2, seq(stage1, stage2, stage3)))`), so their lexical lifetimes all overlap even when
T1 is dead before T2 is first written. This pass computes, for each allocation of such a chain, the first and
last statement of the sequence that uses it, and greedily gives an allocation the storage of an earlier one
that is dead by then, with the same dtype and scope, sizing the shared allocation for the larger.

Kept deliberately simple (and so obviously correct): only 1-D compact allocations of constant size (what
FlattenBuffer produces for constant shapes) take part, and only when no other buffer views their storage.
A storage is never shared by two allocations that are both live in one statement of the sequence. The new
owner's old contents are visible to the next one, which is fine for programs that write before they read
(reading fresh storage before writing it has no defined value in compiled code).
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import IntImm, is_const_int
from shapeflow.ir.functor import Mutator, collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Allocate, SeqStmt
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import var_ids


def _shareable(buffer: Buffer) -> bool:
    return (
        buffer.ndim == 1
        and isinstance(buffer.shape[0], IntImm)
        and not buffer.strides
        and is_const_int(buffer.elem_offset, 0)
    )


@dataclasses.dataclass
class _Storage:
    members: list[Buffer]
    last: int
    size: int


def plan_storage(chain: list[Buffer], body: SeqStmt) -> dict[int, Buffer]:
    """{id(buffer): shared buffer} for the allocations of `chain` that can reuse earlier storage."""
    uses = [var_ids(s) for s in body.seq]
    viewers = collect(body, Buffer)
    live: list[tuple[int, int, Buffer]] = []
    for b in chain:
        if not _shareable(b) or any(v is not b and v.data is b.data for v in viewers):
            continue
        positions = [k for k, ids in enumerate(uses) if id(b.data) in ids]
        if positions:
            live.append((positions[0], positions[-1], b))
    storages: list[_Storage] = []
    for first, last, b in sorted(live, key=lambda t: t[0]):
        home = next(
            (
                s
                for s in storages
                if s.last < first and s.members[0].dtype == b.dtype and s.members[0].scope == b.scope
            ),
            None,
        )
        if home is None:
            storages.append(_Storage([b], last, b.shape[0].value))
        else:
            home.members.append(b)
            home.last = last
            home.size = max(home.size, b.shape[0].value)
    out: dict[int, Buffer] = {}
    for s in storages:
        if len(s.members) < 2:
            continue
        owner = s.members[0]
        shared = Buffer(owner.name, (s.size,), owner.dtype, (), 0, owner.scope, owner.data, owner.align)
        for m in s.members:
            out[id(m)] = shared
    return out


class _StorageRewrite(Mutator):
    mutate_buffers = False

    def visit_PrimExpr(self, expr):
        return expr

    def visit_Allocate(self, op: Allocate):
        chain: list[Buffer] = []
        stmt = op
        while isinstance(stmt, Allocate):
            chain.append(stmt.buffer)
            stmt = stmt.body
        inner = self.visit(stmt)
        plan = plan_storage(chain, inner) if isinstance(inner, SeqStmt) and len(chain) > 1 else {}
        if plan:
            replacer = Mutator()
            replacer.buffer_map.update(plan)
            inner = replacer.visit(inner)
        if not plan and inner is stmt:
            return op
        declared: set[int] = set()
        for b in reversed(chain):
            new = plan.get(id(b), b)
            if id(new) in declared:
                continue
            declared.add(id(new))
            inner = Allocate(new, inner)
        return inner


@register_pass
@dataclasses.dataclass(frozen=True)
class StorageRewrite(PrimFuncPass):
    """Share constant-size 1-D allocations between intermediates whose lifetimes do not overlap."""

    name = "storage-rewrite"
    opt_level = 2

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = _StorageRewrite().visit(func.body)
        return func if body is func.body else func.with_body(body)
