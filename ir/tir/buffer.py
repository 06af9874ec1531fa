"""Buffers: typed, shaped views of memory, with symbolic shapes, strides and a memory scope."""

from __future__ import annotations

import dataclasses

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import BufferLoad, IntImm, PrimExpr, Var, convert
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


def decl_buffer(
    shape, dtype="float32", name="buf", *, strides=(), elem_offset=0, scope="global", data=None, align=64
) -> Buffer:
    """Declare a buffer (TVM's name); shapes may be Python ints or int64 expressions."""
    if isinstance(shape, (int, PrimExpr)):
        shape = (shape,)
    return Buffer(name, tuple(shape), DataType(dtype), tuple(strides), elem_offset, scope, data, align)
