"""FlattenBuffer: every buffer access becomes a one-dimensional access at a computed element offset.

Code generators address memory through a pointer and one element index. Flattening computes that index
from the buffer's strides in elements (`Buffer.elem_strides()`, symbolic or compact row-major) plus its
`elem_offset`, so later passes (Simplify, VectorizeLoop) see and improve the address arithmetic itself.

- A parameter keeps its n-D Buffer in the signature (the runtime checks shapes against it); the body is
  wrapped in `DeclBuffer` of a 1-D alias sharing the parameter's `data`, and uses only the alias.
- `Allocate` of an n-D buffer becomes `Allocate` of a 1-D buffer of the product of its extents.
- `DeclBuffer` of an n-D view becomes `DeclBuffer` of its 1-D alias.
A buffer that is already 1-D, compact and at offset 0 is left as it is. Functions that still contain blocks
are left unchanged: block regions are n-D by nature (run ConvertBlocksToLoops first).
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import BufferLoad, IntImm, PrimExpr, is_const_int
from shapeflow.ir.functor import Mutator
from shapeflow.ir.tir.buffer import Buffer, allocation_extent, flat_extent
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Allocate, BufferStore, DeclBuffer
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import BLOCK_NODES, contains


def needs_flattening(buffer: Buffer) -> bool:
    compact_strides = not buffer.strides or (len(buffer.strides) == 1 and is_const_int(buffer.strides[0], 1))
    return buffer.ndim != 1 or not compact_strides or not is_const_int(buffer.elem_offset, 0)


def flat_alias(buffer: Buffer, allocated: bool = False) -> Buffer:
    """A compact 1-D buffer over the same `data` as `buffer` (sized to allocate when `allocated`)."""
    extent = allocation_extent(buffer) if allocated else flat_extent(buffer)
    return Buffer(buffer.name, (extent,), buffer.dtype, (), 0, buffer.scope, buffer.data, buffer.align)


def flat_index(buffer: Buffer, indices) -> PrimExpr:
    index: PrimExpr | None = None
    for i, stride in zip(indices, buffer.elem_strides()):
        term = i if is_const_int(stride, 1) else i * stride
        index = term if index is None else index + term
    if index is None:
        index = IntImm("int64", 0)
    if not is_const_int(buffer.elem_offset, 0):
        index = index + buffer.elem_offset
    return index


class _Flatten(Mutator):
    mutate_buffers = False

    def __init__(self, aliases: dict[int, Buffer]):
        super().__init__()
        self.aliases = aliases
        self.used: set[int] = set()

    def alias_of(self, buffer: Buffer) -> Buffer:
        self.used.add(id(buffer))
        found = self.aliases.get(id(buffer))
        if found is None:
            found = flat_alias(buffer)
            self.aliases[id(buffer)] = found
        return found

    def visit_BufferLoad(self, op: BufferLoad):
        indices = self.visit(op.indices)
        if not needs_flattening(op.buffer):
            return op if indices is op.indices else BufferLoad(op.buffer, indices)
        return BufferLoad(self.alias_of(op.buffer), (flat_index(op.buffer, indices),))

    def visit_BufferStore(self, op: BufferStore):
        value, indices = self.visit(op.value), self.visit(op.indices)
        if not needs_flattening(op.buffer):
            if value is op.value and indices is op.indices:
                return op
            return BufferStore(op.buffer, value, indices)
        return BufferStore(self.alias_of(op.buffer), value, (flat_index(op.buffer, indices),))

    def visit_Allocate(self, op: Allocate):
        if needs_flattening(op.buffer):  # before the body's accesses make the (view-sized) alias
            self.aliases.setdefault(id(op.buffer), flat_alias(op.buffer, allocated=True))
        body = self.visit(op.body)
        if not needs_flattening(op.buffer):
            return op if body is op.body else Allocate(op.buffer, body)
        return Allocate(self.alias_of(op.buffer), body)

    def visit_DeclBuffer(self, op: DeclBuffer):
        body = self.visit(op.body)
        if not needs_flattening(op.buffer):
            return op if body is op.body else DeclBuffer(op.buffer, body)
        return DeclBuffer(self.alias_of(op.buffer), body)


@register_pass
@dataclasses.dataclass(frozen=True)
class FlattenBuffer(PrimFuncPass):
    """Rewrite all buffer accesses to 1-D; parameters get 1-D aliases declared at the top of the body."""

    name = "flatten-buffer"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        if contains(func.body, BLOCK_NODES):
            return func
        params = [p for p in func.buffer_params if needs_flattening(p)]
        mutator = _Flatten({id(p): flat_alias(p) for p in params})
        body = mutator.visit(func.body)
        if body is func.body:
            return func
        for p in reversed(params):
            if id(p) in mutator.used:
                body = DeclBuffer(mutator.aliases[id(p)], body)
        return func.with_body(body)
