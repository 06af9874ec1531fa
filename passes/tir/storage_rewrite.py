"""StorageRewrite: let allocations whose lifetimes do not overlap share one allocation.

After lowering, the intermediates of a function are nested `Allocate`s around one sequence of stages
(`Allocate(T1, Allocate(T2, seq(stage1, stage2, stage3)))`), so their lexical lifetimes all overlap even when
T1 is dead before T2 is first written. This pass computes, for each allocation of such a chain, the first and
last statement of the sequence that uses it, and greedily gives an allocation the storage of an earlier one
that is dead by then, with the same dtype and scope, sizing the shared allocation for the larger.

Kept deliberately simple (and so obviously correct): only 1-D compact allocations of constant size (what
FlattenBuffer produces for constant shapes) take part, and only when no other buffer views their storage.
A storage is never shared by two allocations that are both live in one statement of the sequence.

An `Allocate` is zero-filled each time it runs (ir/tir/stmt.py), and a program may rely on that (read
before it writes, accumulate into fresh storage). A later owner of shared storage would instead see the
earlier owner's data, so the pass puts a loop storing zeros over the later owner's extent right before the
first statement that uses it: the meaning stays exactly that of separate allocations, and LLVM removes the
fill where the next stage provably overwrites it.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import IntImm, Var, is_const_int, make_const
from shapeflow.ir.functor import Mutator, collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Allocate, BufferStore, For, ForKind, SeqStmt, Stmt, seq
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
    firsts: list[int]  # the first statement of the sequence using each member
    last: int
    size: int


@dataclasses.dataclass(frozen=True)
class StoragePlan:
    """Which allocations share storage, and where later owners need their zero fill.

    `shared`: {id(buffer): the shared buffer}; `fills`: {statement position: [(shared buffer, extent)]},
    the later owners whose lifetime starts at that statement of the sequence."""

    shared: dict[int, Buffer]
    fills: dict[int, list[tuple[Buffer, int]]]


def plan_storage(chain: list[Buffer], body: SeqStmt) -> StoragePlan:
    """The sharing plan for the allocations of `chain` that can reuse earlier storage."""
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
            storages.append(_Storage([b], [first], last, b.shape[0].value))
        else:
            home.members.append(b)
            home.firsts.append(first)
            home.last = last
            home.size = max(home.size, b.shape[0].value)
    out: dict[int, Buffer] = {}
    fills: dict[int, list[tuple[Buffer, int]]] = {}
    for s in storages:
        if len(s.members) < 2:
            continue
        owner = s.members[0]
        shared = Buffer(owner.name, (s.size,), owner.dtype, (), 0, owner.scope, owner.data, owner.align)
        for m in s.members:
            out[id(m)] = shared
        for m, first in zip(s.members[1:], s.firsts[1:]):
            fills.setdefault(first, []).append((shared, m.shape[0].value))
    return StoragePlan(out, fills)


def zero_fill(buffer: Buffer, extent: int) -> Stmt:
    """`for i in [0, extent): buffer[i] = 0`, what a fresh Allocate of `extent` elements would hold."""
    i = Var("i_zero", "int64")
    store = BufferStore(buffer, make_const(buffer.dtype, 0), (i,))
    return For(i, 0, extent, ForKind.SERIAL, store)


def _with_fills(body: SeqStmt, fills: dict[int, list[tuple[Buffer, int]]]) -> Stmt:
    stmts: list[Stmt] = []
    for k, stmt in enumerate(body.seq):
        stmts.extend(zero_fill(buffer, extent) for buffer, extent in fills.get(k, ()))
        stmts.append(stmt)
    return seq(stmts)


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
        plan = plan_storage(chain, inner) if isinstance(inner, SeqStmt) and len(chain) > 1 else None
        if plan is not None and plan.shared:
            replacer = Mutator()
            replacer.buffer_map.update(plan.shared)
            inner = _with_fills(replacer.visit(inner), plan.fills)
            plan = plan.shared
        else:
            plan = {}
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
