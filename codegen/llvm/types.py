"""How IR dtypes map to LLVM types, in registers and in memory.

Two representations exist because two dtypes are not what LLVM computes with:

- `bool` is `i1` in registers (what comparisons produce and `br`/`select` take) and `i8` in memory (numpy's
  bool is one byte holding 0 or 1). Loads turn any nonzero byte into true.
- `bfloat16` is `float` in registers and `i16` in memory. Every bfloat16 arithmetic result is rounded to the
  nearest bfloat16 (ties to even) right away and kept in a float, so each operation gives exactly what
  ml_dtypes (and so the reference interpreter) computes: one float32 operation, then one rounding.

Vectors are LLVM vectors of the register (or memory) element type.
"""

from __future__ import annotations

from functools import cache

import llvmlite.ir as ir

from shapeflow.errors import UnsupportedError
from shapeflow.ir.dtype import DataType

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
F16 = ir.HalfType()
PTR = ir.PointerType()
VOID = ir.VoidType()


def _scalar_register(dtype: DataType) -> ir.Type:
    kind, bits = dtype.kind, dtype.bits
    if kind in ("int", "uint"):
        return ir.IntType(bits)
    if kind == "bool":
        return I1
    if kind == "float":
        return {16: F16, 32: F32, 64: F64}[bits]
    if kind == "bfloat":
        return F32
    if kind == "handle":
        return PTR
    raise UnsupportedError(f"dtype {dtype} has no LLVM representation")


def _scalar_memory(dtype: DataType) -> ir.Type:
    if dtype.kind == "bool":
        return I8
    if dtype.kind == "bfloat":
        return I16
    return _scalar_register(dtype)


@cache
def register_type(dtype: DataType) -> ir.Type:
    """The LLVM type an expression of `dtype` has while it is computed."""
    elem = _scalar_register(dtype.element_of())
    return elem if dtype.lanes == 1 else ir.VectorType(elem, dtype.lanes)


@cache
def memory_type(dtype: DataType) -> ir.Type:
    """The LLVM type one element (or vector of elements) of `dtype` has in a buffer."""
    elem = _scalar_memory(dtype.element_of())
    return elem if dtype.lanes == 1 else ir.VectorType(elem, dtype.lanes)


@cache
def abi_type(dtype: DataType) -> ir.Type:
    """How a scalar parameter of `dtype` is passed: integers and bools as i64, floats as double.

    A uniform ABI keeps the ctypes signature simple (c_int64 / c_double) for every scalar dtype, including
    float16 and bfloat16 which ctypes has no type for; the kernel narrows the value on entry.
    """
    if dtype.is_vector:
        raise UnsupportedError(f"vector scalar parameter of dtype {dtype} is not supported")
    if dtype.is_float:
        return F64
    if dtype.is_integer or dtype.is_bool:
        return I64
    raise UnsupportedError(f"scalar parameter of dtype {dtype} is not supported on the CPU target")


def intrinsic_suffix(ty: ir.Type) -> str:
    """LLVM's overload suffix for a type: f32, i64, v8f32 ..."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{intrinsic_suffix(ty.element)}"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    if isinstance(ty, ir.HalfType):
        return "f16"
    if isinstance(ty, ir.FloatType):
        return "f32"
    if isinstance(ty, ir.DoubleType):
        return "f64"
    raise UnsupportedError(f"no intrinsic suffix for LLVM type {ty}")


def with_element(ty: ir.Type, elem: ir.Type) -> ir.Type:
    """`ty` with its element type replaced (a scalar stays scalar, a vector keeps its lanes)."""
    return ir.VectorType(elem, ty.count) if isinstance(ty, ir.VectorType) else elem


def element_of(ty: ir.Type) -> ir.Type:
    return ty.element if isinstance(ty, ir.VectorType) else ty


def splat(ty: ir.Type, value) -> ir.Constant:
    """A constant of `ty` with every lane equal to `value`."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)
    return ir.Constant(ty, value)
