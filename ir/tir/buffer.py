"""Buffers: typed, shaped views of memory, with symbolic shapes, strides and a memory scope."""

from __future__ import annotations

import dataclasses

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import LE, BufferLoad, IntImm, Max, Or, PrimExpr, Select, Var, convert, is_const_int
from shapeflow.ir.node import Node, node, set_computed

SCOPES = ("global", "shared", "local", "warp", "shared.dyn", "local.fragment")


@node
class Buffer(Node):
    """A multi-dimensional view of the memory `data` points to.

    `strides` empty means compact row-major. `elem_offset` is counted in elements. Two Buffers that share
    `data` alias the same storage (the flattening pass declares a 1-D alias of each n-D buffer this way).
    """

    name: str
    shape: tuple[PrimExpr, ...]
    dtype: DataType = DataType("float32")
    strides: tuple[PrimExpr, ...] = ()
    elem_offset: PrimExpr = dataclasses.field(default_factory=lambda: IntImm(DataType("int64"), 0))
    scope: str = "global"
    data: Var | None = None
    align: int = 64

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))
        set_computed(self, "shape", tuple(convert(s, "int64") for s in self.shape))
        set_computed(self, "strides", tuple(convert(s, "int64") for s in self.strides))
        set_computed(self, "elem_offset", convert(self.elem_offset, "int64"))
        if self.data is None:
            set_computed(self, "data", Var(self.name, DataType("handle")))
        if self.strides and len(self.strides) != len(self.shape):
            raise VerifyError(
                f"buffer {self.name}: {len(self.strides)} strides for {len(self.shape)} dimensions", self
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices) -> PrimExpr:
        if not isinstance(indices, tuple):
            indices = (indices,)
        return BufferLoad(self, tuple(convert(i, "int64") for i in indices))

    def load(self, indices) -> BufferLoad:
        return BufferLoad(self, tuple(convert(i, "int64") for i in indices))

    def elem_strides(self) -> tuple[PrimExpr, ...]:
        """Strides in elements: the explicit ones, or those of a compact row-major layout."""
        if self.strides:
            return self.strides
        out: list[PrimExpr] = []
        acc: PrimExpr = IntImm(DataType("int64"), 1)
        for extent in reversed(self.shape):
            out.append(acc)
            acc = acc * extent if not (isinstance(acc, IntImm) and acc.value == 1) else extent
        return tuple(reversed(out))


def _product(values) -> PrimExpr:
    out: PrimExpr = IntImm("int64", 1)
    for v in values:
        out = v if is_const_int(out, 1) else out * v
    return out


def flat_extent(buffer: Buffer) -> PrimExpr:
    """Elements the 1-D alias must span: the product of the shape for compact layouts, else one past the
    last addressable element (offset included). A view's extent is only descriptive (the storage exists):
    for an empty strided buffer it can be negative, see `allocation_extent`."""
    if not buffer.strides and is_const_int(buffer.elem_offset, 0):
        return _product(buffer.shape)
    last: PrimExpr = buffer.elem_offset
    for extent, stride in zip(buffer.shape, buffer.elem_strides()):
        last = last + (extent - 1) * stride
    return last + 1


def allocation_extent(buffer: Buffer) -> PrimExpr:
    """Elements to allocate for `buffer` once flattened: `flat_extent`, but 0 when some extent is <= 0 and
    never negative, as the interpreter's allocator sizes storage.

    The span formula alone goes negative for an empty buffer (shape (n, 8), strides (12, 1) at n = 0 gives
    (0 - 1) * 12 + 8 = -4), an allocation the interpreter refuses."""
    span = flat_extent(buffer)
    if not buffer.strides and is_const_int(buffer.elem_offset, 0):
        return span  # a product of non-negative extents
    zero = IntImm(span.dtype, 0)
    if any(is_const_int(extent) and extent.value <= 0 for extent in buffer.shape):
        return zero
    if not (is_const_int(span) and span.value >= 0):
        span = Max(span, zero)
    empty: PrimExpr | None = None
    for extent in buffer.shape:
        if not is_const_int(extent):
            test = LE(extent, IntImm(extent.dtype, 0))
            empty = test if empty is None else Or(empty, test)
    return span if empty is None else Select(empty, zero, span)


def decl_buffer(
    shape, dtype="float32", name="buf", *, strides=(), elem_offset=0, scope="global", data=None, align=64
) -> Buffer:
    """Declare a buffer (TVM's name); shapes may be Python ints or int64 expressions."""
    if isinstance(shape, (int, PrimExpr)):
        shape = (shape,)
    return Buffer(name, tuple(shape), DataType(dtype), tuple(strides), elem_offset, scope, data, align)
