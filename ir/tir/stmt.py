"""Statements of the loop IR: TensorIR-style blocks over plain loops, stores, allocation and control.

A `Block` is the unit schedules work on: named iteration variables (spatial or reduction) bound to loop
expressions by its `BlockRealize`, the regions it reads and writes, an optional `init` run before the first
reduction step, and buffers it allocates. Lowering turns blocks into plain loops (`shapeflow.passes.tir`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm, PrimExpr, Var, convert
from shapeflow.ir.node import Node, node, set_computed
from shapeflow.ir.tir.buffer import Buffer


class Stmt(Node):
    __slots__ = ()


class ForKind(str, enum.Enum):
    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unroll"
    THREAD_BINDING = "thread_binding"

    def __str__(self) -> str:
        return self.value


class IterType(str, enum.Enum):
    SPATIAL = "spatial"
    REDUCE = "reduce"

    def __str__(self) -> str:
        return self.value


@node
class Range(Node):
    """The half-open interval [min, min + extent)."""

    min: PrimExpr
    extent: PrimExpr

    def __post_init__(self):
        set_computed(self, "min", convert(self.min, "int64"))
        set_computed(self, "extent", convert(self.extent, "int64"))

    @staticmethod
    def from_extent(extent) -> Range:
        extent = convert(extent, "int64")
        return Range(IntImm(extent.dtype, 0), extent)


@node
class IterVar(Node):
    """A block iteration variable: `var` ranges over `dom`; spatial or reduction."""

    var: Var
    dom: Range
    iter_type: IterType = IterType.SPATIAL

    def __post_init__(self):
        set_computed(self, "iter_type", IterType(self.iter_type))


@node
class BufferRegion(Node):
    """A rectangular region of a buffer: one Range per dimension."""

    buffer: Buffer
    region: tuple[Range, ...]

    def __post_init__(self):
        set_computed(self, "region", tuple(self.region))

    @staticmethod
    def full(buffer: Buffer) -> BufferRegion:
        return BufferRegion(buffer, tuple(Range.from_extent(s) for s in buffer.shape))


@node
class BufferStore(Stmt):
    """`buffer[indices] = value`; a Ramp index makes a vector store."""

    buffer: Buffer
    value: PrimExpr
    indices: tuple[PrimExpr, ...]

    def __post_init__(self):
        set_computed(self, "indices", tuple(self.indices))
        if not isinstance(self.value, PrimExpr):
            raise VerifyError("BufferStore.value must be a PrimExpr", self)


@node
class Evaluate(Stmt):
    """Evaluate an expression for its effect (or as a no-op, `Evaluate(0)`)."""

    value: PrimExpr


@node
class LetStmt(Stmt):
    var: Var
    value: PrimExpr
    body: Stmt


@node
class AssertStmt(Stmt):
    """Fail with `message` when `condition` is false; execution continues otherwise."""

    condition: PrimExpr
    message: str


@node
class IfThenElse(Stmt):
    condition: PrimExpr
    then_case: Stmt
    else_case: Stmt | None = None


@node
class For(Stmt):
    """`for loop_var in [min, min + extent)`; `kind` says how iterations may run."""

    loop_var: Var
    min: PrimExpr
    extent: PrimExpr
    kind: ForKind
    body: Stmt
    thread_tag: str = ""
    annotations: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_computed(self, "kind", ForKind(self.kind))
        set_computed(self, "min", convert(self.min, self.loop_var.dtype))
        set_computed(self, "extent", convert(self.extent, self.loop_var.dtype))
        set_computed(self, "annotations", dict(self.annotations))
        if (self.kind == ForKind.THREAD_BINDING) != bool(self.thread_tag):
            raise VerifyError("a thread_binding loop needs a thread tag, and only it may have one", self)


@node
class SeqStmt(Stmt):
    """Statements in order. Nested sequences are flattened; use `seq()` to build one from a list."""

    seq: tuple[Stmt, ...]

    def __post_init__(self):
        flat: list[Stmt] = []
        for s in self.seq:
            if isinstance(s, SeqStmt):
                flat.extend(s.seq)
            else:
                flat.append(s)
        if len(flat) < 2:
            raise VerifyError("SeqStmt needs at least two statements; use shapeflow.ir.tir.seq()", self)
        set_computed(self, "seq", tuple(flat))


@node
class Allocate(Stmt):
    """Storage for `buffer` (in its scope) that lives for `body`, zero-filled each time the Allocate runs."""

    buffer: Buffer
    body: Stmt


@node
class DeclBuffer(Stmt):
    """Declare `buffer` as a view of storage already defined (its `data` var is in scope) for `body`."""

    buffer: Buffer
    body: Stmt


@node
class Block(Stmt):
    """A TensorIR block; see the module docstring."""

    name: str
    iter_vars: tuple[IterVar, ...]
    reads: tuple[BufferRegion, ...]
    writes: tuple[BufferRegion, ...]
    body: Stmt
    init: Stmt | None = None
    alloc_buffers: tuple[Buffer, ...] = ()
    annotations: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_computed(self, "iter_vars", tuple(self.iter_vars))
        set_computed(self, "reads", tuple(self.reads))
        set_computed(self, "writes", tuple(self.writes))
        set_computed(self, "alloc_buffers", tuple(self.alloc_buffers))
        set_computed(self, "annotations", dict(self.annotations))


@node
class BlockRealize(Stmt):
    """Run `block` with its iteration variables bound to `iter_values`, when `predicate` holds."""

    iter_values: tuple[PrimExpr, ...]
    predicate: PrimExpr
    block: Block

    def __post_init__(self):
        set_computed(self, "iter_values", tuple(self.iter_values))
        set_computed(self, "predicate", convert(self.predicate, "bool"))


def seq(*stmts) -> Stmt:
    """A statement running `stmts` in order: flattens lists and nested sequences, drops nothing."""
    flat: list[Stmt] = []
    for s in stmts:
        if isinstance(s, (list, tuple)):
            flat.extend(s)
        elif s is not None:
            flat.append(s)
    if not flat:
        return Evaluate(IntImm(DataType("int32"), 0))
    if len(flat) == 1:
        return flat[0]
    return SeqStmt(tuple(flat))


def no_op() -> Stmt:
    return Evaluate(IntImm(DataType("int32"), 0))


def is_no_op(stmt: Stmt) -> bool:
    return isinstance(stmt, Evaluate) and isinstance(stmt.value, IntImm)
