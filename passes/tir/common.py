"""Helpers shared by the loop-IR passes: unique definitions after duplicating code, variable queries.

Passes that duplicate code (loop partitioning, unrolling) must not leave one variable defined twice: the
verifier treats every loop variable, let variable and allocation as defined once. `unique_definitions`
renames the repeated ones afterwards, so the duplicating passes can share subtrees while they work.
"""

from __future__ import annotations

from shapeflow.ir.expr import BufferLoad, Let, Var
from shapeflow.ir.functor import Mutator, Visitor
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import (
    Allocate,
    Block,
    BlockRealize,
    DeclBuffer,
    For,
    IterVar,
    LetStmt,
    Stmt,
)


class _Uniquify(Mutator):
    """Rename the second and later definitions of a variable or buffer, scoped to what they define."""

    def __init__(self):
        super().__init__()
        self.seen: set[int] = set()
        self.var_map: dict[int, Var] = {}
        self.keep: list = []

    def visit_Var(self, var: Var):
        return self.var_map.get(id(var), var)

    def _define(self, var: Var) -> tuple[Var, object]:
        """The variable to define in place of `var`, and an undo token."""
        old = self.var_map.get(id(var))
        if id(var) not in self.seen:
            self.seen.add(id(var))
            self.keep.append(var)
            self.var_map.pop(id(var), None)
            return var, (var, old)
        new = Var(var.name, var.dtype)
        self.seen.add(id(new))
        self.keep.append(new)
        self.var_map[id(var)] = new
        return new, (var, old)

    def _undo(self, token) -> None:
        var, old = token
        if old is None:
            self.var_map.pop(id(var), None)
        else:
            self.var_map[id(var)] = old

    def _define_buffer(self, buffer: Buffer, owns_data: bool):
        tokens = []
        if owns_data:
            _, token = self._define(buffer.data)
            tokens.append(token)
        saved = self.buffer_map.pop(id(buffer), None)
        new = self.generic_visit(buffer)
        if id(buffer) in self.seen and new is buffer:
            new = replace(buffer)
            self.buffer_map[id(buffer)] = new
        self.seen.add(id(buffer))
        self.keep.append(buffer)
        return new, (buffer, saved, tokens)

    def _undo_buffer(self, token) -> None:
        buffer, saved, tokens = token
        self.buffer_map.pop(id(buffer), None)
        if saved is not None:
            self.buffer_map[id(buffer)] = saved
        for t in reversed(tokens):
            self._undo(t)

    def visit_For(self, op: For):
        lo, extent = self.visit(op.min), self.visit(op.extent)
        var, token = self._define(op.loop_var)
        body = self.visit(op.body)
        self._undo(token)
        if var is op.loop_var and lo is op.min and extent is op.extent and body is op.body:
            return op
        return replace(op, loop_var=var, min=lo, extent=extent, body=body)

    def _let(self, op, cls):
        value = self.visit(op.value)
        var, token = self._define(op.var)
        body = self.visit(op.body)
        self._undo(token)
        if var is op.var and value is op.value and body is op.body:
            return op
        return cls(var, value, body)

    def visit_LetStmt(self, op: LetStmt):
        return self._let(op, LetStmt)

    def visit_Let(self, op: Let):
        return self._let(op, Let)

    def _buffer_scope(self, op, owns_data: bool):
        buffer, token = self._define_buffer(op.buffer, owns_data)
        body = self.visit(op.body)
        self._undo_buffer(token)
        if buffer is op.buffer and body is op.body:
            return op
        return type(op)(buffer, body)

    def visit_Allocate(self, op: Allocate):
        return self._buffer_scope(op, owns_data=True)

    def visit_DeclBuffer(self, op: DeclBuffer):
        return self._buffer_scope(op, owns_data=False)

    def visit_Block(self, op: Block):
        tokens, iter_vars = [], []
        for iv in op.iter_vars:
            dom = self.visit(iv.dom)
            var, token = self._define(iv.var)
            tokens.append(token)
            iter_vars.append(iv if var is iv.var and dom is iv.dom else IterVar(var, dom, iv.iter_type))
        buffer_tokens, allocs = [], []
        for b in op.alloc_buffers:
            new, token = self._define_buffer(b, owns_data=True)
            allocs.append(new)
            buffer_tokens.append(token)
        out = self.generic_visit(replace(op, iter_vars=tuple(iter_vars), alloc_buffers=tuple(allocs)))
        for t in reversed(buffer_tokens):
            self._undo_buffer(t)
        for t in reversed(tokens):
            self._undo(t)
        return out


def unique_definitions(stmt: Stmt, defined_outside=()) -> Stmt:
    """`stmt` with every variable and buffer defined at most once (later definitions get fresh copies).

    Passes that duplicate code (partitioning, unrolling) reuse definitions freely and call this once at the
    end. `defined_outside` (parameters, shape variables) count as already defined.
    """
    mutator = _Uniquify()
    for obj in defined_outside:
        mutator.seen.add(id(obj))
        mutator.keep.append(obj)
    return mutator.visit(stmt)


class _VarUses(Visitor):
    def __init__(self):
        super().__init__()
        self.vars: set[int] = set()
        self.loads = False

    def visit_Var(self, var: Var):
        self.vars.add(id(var))

    def visit_BufferLoad(self, op: BufferLoad):
        self.loads = True
        self.generic_visit(op)


def var_ids(obj) -> set[int]:
    """ids of every Var referenced below `obj` (buffer shapes and data pointers included)."""
    uses = _VarUses()
    uses.visit(obj)
    return uses.vars


def uses_any(obj, variables) -> bool:
    ids = {id(v) for v in variables}
    return bool(ids & var_ids(obj)) if ids else False


def has_load(expr) -> bool:
    uses = _VarUses()
    uses.visit(expr)
    return uses.loads


class _Definitions(Visitor):
    def __init__(self):
        super().__init__()
        self.defined: list[Var] = []

    def visit_For(self, op: For):
        self.defined.append(op.loop_var)
        self.generic_visit(op)

    def visit_LetStmt(self, op: LetStmt):
        self.defined.append(op.var)
        self.generic_visit(op)

    def visit_Let(self, op: Let):
        self.defined.append(op.var)
        self.generic_visit(op)

    def visit_Allocate(self, op: Allocate):
        self.defined.append(op.buffer.data)
        self.generic_visit(op)

    def visit_Block(self, op: Block):
        self.defined.extend(iv.var for iv in op.iter_vars)
        self.defined.extend(b.data for b in op.alloc_buffers)
        self.generic_visit(op)


def defined_vars(stmt) -> list[Var]:
    """Every variable defined inside `stmt` (loop, let, block iteration and allocation variables)."""
    found = _Definitions()
    found.visit(stmt)
    return found.defined


def contains(stmt, node_types) -> bool:
    """True if some node below `stmt` is an instance of `node_types`."""

    class _Found(Exception):
        pass

    class _Search(Visitor):
        visit_buffers = False

        def generic_visit(self, node):
            if isinstance(node, node_types):
                raise _Found
            super().generic_visit(node)

    try:
        _Search().visit(stmt)
    except _Found:
        return True
    return False


BLOCK_NODES = (Block, BlockRealize)
