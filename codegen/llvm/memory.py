"""Buffer accesses: linearize n-D indices, then pick plain, vector, broadcast or element-wise memory ops.

The code generator does not depend on which lowering passes ran: an n-D access is linearized here with the
buffer's element strides and offset, so flattened (1-D DeclBuffer alias) and unflattened IR both work. A
vector index is analyzed as `base + stride * lane`; stride 1 is one vector load/store, stride 0 one scalar
access broadcast, anything else one access per lane (LLVM may combine those into gathers).
"""

from __future__ import annotations

import llvmlite.ir as ir

from shapeflow.codegen.llvm.arith import from_memory, to_memory
from shapeflow.codegen.llvm.types import I32, I64, memory_type
from shapeflow.errors import CompileError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Add, Broadcast, IntImm, Mul, PrimExpr, Ramp, Sub, convert, is_const_int
from shapeflow.ir.tir.buffer import Buffer


def linear_index(buffer: Buffer, indices: tuple[PrimExpr, ...]) -> PrimExpr:
    """The element offset of `buffer[indices]` from the buffer's data pointer."""
    if len(indices) != len(buffer.shape):
        raise CompileError(
            f"buffer '{buffer.name}' has {len(buffer.shape)} dimensions "
            f"but is accessed with {len(indices)} indices"
        )
    indices = tuple(convert(index, "int64") for index in indices)
    total: PrimExpr | None = None
    if not is_const_int(buffer.elem_offset, 0):
        total = buffer.elem_offset
    for index, stride in zip(indices, buffer.elem_strides()):
        term = index if is_const_int(stride, 1) else index * stride
        total = term if total is None else total + term
    if total is None:  # a 0-d buffer
        total = IntImm(buffer.elem_offset.dtype, 0)
    return total


def affine_lanes(expr: PrimExpr) -> tuple[PrimExpr, int] | None:
    """`(base, stride)` when the vector `expr` is `base + stride * lane` with a constant stride, else None."""
    if expr.dtype.lanes == 1:
        return expr, 0
    if isinstance(expr, Ramp):
        return (expr.base, expr.stride.value) if isinstance(expr.stride, IntImm) else None
    if isinstance(expr, Broadcast):
        return expr.value, 0
    if isinstance(expr, (Add, Sub)):
        left, right = affine_lanes(expr.a), affine_lanes(expr.b)
        if left is None or right is None:
            return None
        if isinstance(expr, Add):
            return left[0] + right[0], left[1] + right[1]
        return left[0] - right[0], left[1] - right[1]
    if isinstance(expr, Mul):
        for vec, factor in ((expr.a, expr.b), (expr.b, expr.a)):
            if isinstance(factor, Broadcast) and isinstance(factor.value, IntImm):
                inner = affine_lanes(vec)
                if inner is not None:
                    return inner[0] * factor.value, inner[1] * factor.value.value
        return None
    return None


def splat_value(ctx, scalar: ir.Value, lanes: int) -> ir.Value:
    """A vector with `scalar` in every lane."""
    b = ctx.builder
    vec_ty = ir.VectorType(scalar.type, lanes)
    one = b.insert_element(ir.Constant(vec_ty, ir.Undefined), scalar, ir.Constant(I32, 0))
    return b.shuffle_vector(
        one, ir.Constant(vec_ty, ir.Undefined), ir.Constant(ir.VectorType(I32, lanes), None)
    )


def _as_i64(ctx, value: ir.Value, dtype: DataType) -> ir.Value:
    width = value.type.element.width if isinstance(value.type, ir.VectorType) else value.type.width
    if width == 64:
        return value
    target = ir.VectorType(I64, value.type.count) if isinstance(value.type, ir.VectorType) else I64
    return (
        ctx.builder.zext(value, target) if dtype.is_uint or dtype.is_bool else ctx.builder.sext(value, target)
    )


def _address(ctx, buffer: Buffer, index: PrimExpr) -> ir.Value:
    offset = _as_i64(ctx, ctx.emit_expr(index), index.dtype)
    return ctx.builder.gep(
        ctx.lookup(buffer.data), [offset], source_etype=memory_type(buffer.dtype.element_of())
    )


def _lane_addresses(ctx, buffer: Buffer, index: PrimExpr) -> list[ir.Value]:
    offsets = _as_i64(ctx, ctx.emit_expr(index), index.dtype)
    elem = memory_type(buffer.dtype.element_of())
    base = ctx.lookup(buffer.data)
    b = ctx.builder
    return [
        b.gep(base, [b.extract_element(offsets, ir.Constant(I32, lane))], source_etype=elem)
        for lane in range(index.dtype.lanes)
    ]


def emit_load(ctx, buffer: Buffer, indices: tuple[PrimExpr, ...], dtype: DataType) -> ir.Value:
    """Load `buffer[indices]` as a register value of `dtype` (vector when an index is a vector)."""
    b = ctx.builder
    align = buffer.dtype.bytes
    elem_dtype = buffer.dtype.element_of()
    index = linear_index(buffer, indices)
    lanes = dtype.lanes
    if lanes == 1:
        raw = b.load(_address(ctx, buffer, index), typ=memory_type(elem_dtype), align=align)
        return from_memory(ctx, raw, elem_dtype)
    pattern = affine_lanes(index)
    if pattern is not None and pattern[1] == 1:
        raw = b.load(_address(ctx, buffer, pattern[0]), typ=memory_type(dtype), align=align)
        return from_memory(ctx, raw, dtype)
    if pattern is not None and pattern[1] == 0:
        raw = b.load(_address(ctx, buffer, pattern[0]), typ=memory_type(elem_dtype), align=align)
        return splat_value(ctx, from_memory(ctx, raw, elem_dtype), lanes)
    vec = ir.Constant(memory_type(dtype), ir.Undefined)
    for lane, pointer in enumerate(_lane_addresses(ctx, buffer, index)):
        element = b.load(pointer, typ=memory_type(elem_dtype), align=align)
        vec = b.insert_element(vec, element, ir.Constant(I32, lane))
    return from_memory(ctx, vec, dtype)


def emit_store(ctx, buffer: Buffer, indices: tuple[PrimExpr, ...], value: PrimExpr) -> None:
    """Store `value` at `buffer[indices]`; a scalar value stored at a vector index is broadcast."""
    b = ctx.builder
    align = buffer.dtype.bytes
    elem_dtype = buffer.dtype.element_of()
    index = linear_index(buffer, indices)
    reg = ctx.emit_expr(value)
    lanes = max(index.dtype.lanes, value.dtype.lanes)
    if value.dtype.lanes == 1 and lanes > 1:
        reg = splat_value(ctx, reg, lanes)
    vdtype = elem_dtype.with_lanes(lanes)
    raw = to_memory(ctx, reg, vdtype)
    if lanes == 1:
        b.store(raw, _address(ctx, buffer, index), align=align)
        return
    pattern = affine_lanes(index)
    if pattern is not None and pattern[1] == 1:
        b.store(raw, _address(ctx, buffer, pattern[0]), align=align)
        return
    if pattern is not None and pattern[1] == 0 and index.dtype.lanes == 1:
        b.store(raw, _address(ctx, buffer, pattern[0]), align=align)  # a vector value at a scalar index
        return
    for lane, pointer in enumerate(_lane_addresses(ctx, buffer, index)):
        b.store(b.extract_element(raw, ir.Constant(I32, lane)), pointer, align=align)
