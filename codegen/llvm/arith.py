"""Arithmetic with the IR's exact meaning, where LLVM's instructions differ from it.

- Casts follow numpy for in-range values. Float to integer converts to int64 with saturation (NaN gives 0)
  and then wraps to the target width, so no conversion is poison; for values inside the target range this
  is exact truncation toward zero, as numpy does (numpy's results for out-of-range values are
  platform-specific and are not promised).
- Integer division by zero is defined, not undefined behaviour: `x / 0`, `x // 0`, `x % 0` and
  `T.truncmod(x, 0)` are all 0 (numpy's results). `INT_MIN / -1` wraps to INT_MIN and its remainder is 0.
- `//` and `%` are floor division and floor modulo (sign of the divisor) for signed integers and floats.
- bfloat16 values live in `float` registers; `round_bf16` rounds to nearest-even and is applied after every
  bfloat16 operation (see types.py).
"""

from __future__ import annotations

import llvmlite.ir as ir

from shapeflow.codegen.llvm.types import (
    F32,
    I1,
    I16,
    I32,
    I64,
    element_of,
    intrinsic_suffix,
    memory_type,
    register_type,
    splat,
    with_element,
)
from shapeflow.errors import UnsupportedError
from shapeflow.ir.dtype import DataType


def call_intrinsic(ctx, name: str, args: list[ir.Value], ret: ir.Type | None = None, flags=()) -> ir.Value:
    """Call the overloaded LLVM intrinsic `name` (e.g. "llvm.exp"), mangled by the first argument's type."""
    ty = args[0].type
    ret = ret or ty
    full = f"{name}.{intrinsic_suffix(ty)}"
    fn = ctx.mod.declare(full, ret, [a.type for a in args])
    return ctx.builder.call(fn, args, fastmath=flags)


# ---------------------------------------------------------------------------------------------
# bfloat16 and bool representations
# ---------------------------------------------------------------------------------------------


def bf16_bits(ctx, value: ir.Value) -> ir.Value:
    """float -> the i16 bits of the nearest bfloat16 (ties to even; NaN stays a quiet NaN)."""
    b = ctx.builder
    i32 = with_element(value.type, I32)
    bits = b.bitcast(value, i32)
    lsb = b.and_(b.lshr(bits, splat(i32, 16)), splat(i32, 1))
    rounded = b.add(bits, b.add(lsb, splat(i32, 0x7FFF)))
    nan = b.fcmp_unordered("uno", value, value)
    quiet = b.or_(bits, splat(i32, 0x400000))
    chosen = b.select(nan, quiet, rounded)
    return b.trunc(b.lshr(chosen, splat(i32, 16)), with_element(value.type, I16))


def bf16_from_bits(ctx, bits: ir.Value) -> ir.Value:
    b = ctx.builder
    i32 = with_element(bits.type, I32)
    return b.bitcast(b.shl(b.zext(bits, i32), splat(i32, 16)), with_element(bits.type, F32))


def round_bf16(ctx, value: ir.Value) -> ir.Value:
    """Round a float to the nearest bfloat16, keeping it a float."""
    return bf16_from_bits(ctx, bf16_bits(ctx, value))


def to_memory(ctx, value: ir.Value, dtype: DataType) -> ir.Value:
    """A register value of `dtype` as it is stored in a buffer."""
    if dtype.kind == "bool":
        return ctx.builder.zext(value, memory_type(dtype))
    if dtype.kind == "bfloat":
        return bf16_bits(ctx, value)
    return value


def from_memory(ctx, value: ir.Value, dtype: DataType) -> ir.Value:
    """A value loaded from a buffer as the register value of `dtype`."""
    if dtype.kind == "bool":
        return ctx.builder.icmp_unsigned("!=", value, splat(value.type, 0))
    if dtype.kind == "bfloat":
        return bf16_from_bits(ctx, value)
    return value


# ---------------------------------------------------------------------------------------------
# Casts
# ---------------------------------------------------------------------------------------------


def _float_to_int(ctx, value: ir.Value, dst: DataType) -> ir.Value:
    b = ctx.builder
    if isinstance(element_of(value.type), ir.HalfType):
        value = b.fpext(value, with_element(value.type, F32))
    wide_ty = with_element(value.type, I64)
    if dst.is_uint and dst.bits == 64:
        return _sat(ctx, "llvm.fptoui.sat", value, wide_ty)
    wide = _sat(ctx, "llvm.fptosi.sat", value, wide_ty)
    return wide if dst.bits == 64 else b.trunc(wide, with_element(wide.type, element_of(register_type(dst))))


def _sat(ctx, name: str, value: ir.Value, ret: ir.Type) -> ir.Value:
    full = f"{name}.{intrinsic_suffix(ret)}.{intrinsic_suffix(value.type)}"
    fn = ctx.mod.declare(full, ret, [value.type])
    return ctx.builder.call(fn, [value])


def cast(ctx, value: ir.Value, src: DataType, dst: DataType) -> ir.Value:
    """Convert a register value of dtype `src` to dtype `dst` (same lanes)."""
    if src == dst:
        return value
    if src.lanes != dst.lanes:
        raise UnsupportedError(f"cast from {src} to {dst} changes the number of lanes")
    b = ctx.builder
    target = register_type(dst)
    s, d = src.element_of(), dst.element_of()
    if d.is_bool:
        if s.is_float:
            return b.fcmp_unordered("!=", value, splat(value.type, 0.0))
        return b.icmp_unsigned("!=", value, splat(value.type, 0))
    if d.is_integer:
        if s.is_float:
            return _float_to_int(ctx, value, d)
        if s.bits == d.bits:
            return value
        if s.bits > d.bits:
            return b.trunc(value, target)
        return b.sext(value, target) if s.is_int else b.zext(value, target)
    if d.is_float:
        if s.is_float:
            if d.kind == "bfloat" and s.bits == 64:
                return round_bf16(ctx, double_to_float_round_odd(ctx, value))
            out = _float_convert(ctx, value, target)
        else:
            # Integers convert to half through float (exact wherever the half result is finite), so no
            # runtime-library call is needed.
            via = with_element(target, F32) if d.bits == 16 else target
            out = b.sitofp(value, via) if s.is_int else b.uitofp(value, via)  # uint and bool: unsigned
            if via != target:
                out = b.fptrunc(out, target)
        return round_bf16(ctx, out) if d.kind == "bfloat" else out
    raise UnsupportedError(f"cast from {src} to {dst} is not supported by the LLVM backend")


def _float_convert(ctx, value: ir.Value, target: ir.Type) -> ir.Value:
    """fpext/fptrunc that never needs a runtime-library call: half <-> double goes through float (exact for
    extension; round-to-odd for truncation, so the final rounding to half is still correct)."""
    width = {"half": 16, "float": 32, "double": 64}
    b = ctx.builder
    src_w = width[str(element_of(value.type))]
    dst_w = width[str(element_of(target))]
    if src_w == dst_w:
        return value
    if dst_w > src_w:
        if src_w == 16 and dst_w == 64:
            value = b.fpext(value, with_element(value.type, F32))
        return b.fpext(value, target)
    if src_w == 64 and dst_w == 16:
        return b.fptrunc(double_to_float_round_odd(ctx, value), target)
    return b.fptrunc(value, target)


def double_to_float_round_odd(ctx, value: ir.Value) -> ir.Value:
    """double -> float rounded to odd: an inexact result is truncated toward zero and its last bit set.
    A second rounding from it (to half or bfloat16) then equals one correct rounding of the double."""
    b = ctx.builder
    f32 = with_element(value.type, F32)
    i32 = with_element(value.type, I32)
    nearest = b.fptrunc(value, f32)
    back = b.fpext(nearest, value.type)
    inexact = b.fcmp_ordered("!=", back, value)
    abs_fn = "llvm.fabs"
    away = b.fcmp_ordered(">", call_intrinsic(ctx, abs_fn, [back]), call_intrinsic(ctx, abs_fn, [value]))
    bits = b.bitcast(nearest, i32)
    bits = b.select(away, b.sub(bits, splat(i32, 1)), bits)
    bits = b.select(inexact, b.or_(bits, splat(i32, 1)), b.bitcast(nearest, i32))
    return b.bitcast(bits, f32)


# ---------------------------------------------------------------------------------------------
# Integer division
# ---------------------------------------------------------------------------------------------


def const_divisor(expr) -> int | None:
    from shapeflow.ir.expr import const_value  # noqa: PLC0415

    value = const_value(expr)
    return value if isinstance(value, int) else None


def int_divide(ctx, a: ir.Value, b: ir.Value, dtype: DataType, divisor_const: int | None, mode: str):
    """a op b for integers, op in {"truncdiv", "truncmod", "floordiv", "floormod"}, with defined results
    for a zero divisor (0) and for INT_MIN / -1 (wrapping)."""
    bld = ctx.builder
    ty = a.type
    zero = splat(ty, 0)
    signed = dtype.is_int
    if divisor_const == 0:
        return zero
    safe = divisor_const is not None and (not signed or divisor_const != -1)
    if safe:
        b_safe = b
    else:
        is_zero = bld.icmp_unsigned("==", b, zero)
        bad = is_zero
        if signed:
            is_minus_one = bld.icmp_signed("==", b, splat(ty, -1))
            bad = bld.or_(is_zero, is_minus_one)
        b_safe = bld.select(bad, splat(ty, 1), b)
    if not signed:
        result = bld.udiv(a, b_safe) if mode in ("truncdiv", "floordiv") else bld.urem(a, b_safe)
    else:
        if mode == "floordiv" and divisor_const is not None and divisor_const > 0:
            q = bld.sdiv(a, b_safe)
            r = bld.srem(a, b_safe)
            result = bld.sub(q, bld.zext(bld.icmp_signed("<", r, zero), ty))
        elif mode == "floormod" and divisor_const is not None and divisor_const > 0:
            r = bld.srem(a, b_safe)
            result = bld.select(bld.icmp_signed("<", r, zero), bld.add(r, b_safe), r)
        elif mode == "truncdiv":
            result = bld.sdiv(a, b_safe)
        elif mode == "truncmod":
            result = bld.srem(a, b_safe)
        else:
            q = bld.sdiv(a, b_safe)
            r = bld.srem(a, b_safe)
            # The remainder is nonzero and has the opposite sign of the divisor: floor is one lower.
            adjust = bld.and_(bld.icmp_signed("!=", r, zero), bld.icmp_signed("<", bld.xor(r, b_safe), zero))
            if mode == "floordiv":
                result = bld.sub(q, bld.zext(adjust, ty))
            else:
                result = bld.select(adjust, bld.add(r, b_safe), r)
    if safe:
        return result
    if signed:
        if mode in ("truncdiv", "floordiv"):
            result = bld.select(is_minus_one, bld.sub(zero, a), result)
        else:
            result = bld.select(is_minus_one, zero, result)
    return bld.select(is_zero, zero, result)


def float_floor_ops(ctx, a: ir.Value, b: ir.Value, mode: str) -> ir.Value:
    """floor(a / b) and a - floor(a / b) * b for floats (numpy's floor_divide / remainder up to rounding)."""
    bld = ctx.builder
    flags = ctx.float_flags()
    if mode == "floordiv":
        return call_intrinsic(ctx, "llvm.floor", [bld.fdiv(a, b, flags=flags)])
    r = bld.frem(a, b)
    zero = splat(a.type, 0.0)
    wrong_sign = bld.and_(
        bld.fcmp_ordered("!=", r, zero),
        bld.xor(bld.fcmp_ordered("<", r, zero), bld.fcmp_ordered("<", b, zero)),
    )
    return bld.select(wrong_sign, bld.fadd(r, b), r)


__all__ = [
    "I1",
    "bf16_bits",
    "bf16_from_bits",
    "call_intrinsic",
    "cast",
    "float_floor_ops",
    "from_memory",
    "int_divide",
    "round_bf16",
    "to_memory",
    "const_divisor",
]
