"""Emitters of expressions, one rule per node class (registered in `EXPR_RULES`)."""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from shapeflow.codegen.llvm.arith import (
    call_intrinsic,
    cast,
    const_divisor,
    float_floor_ops,
    int_divide,
    round_bf16,
)
from shapeflow.codegen.llvm.context import expr_rule
from shapeflow.codegen.llvm.intrinsics import emit_intrinsic
from shapeflow.codegen.llvm.memory import emit_load, splat_value
from shapeflow.codegen.llvm.types import I1, register_type, splat
from shapeflow.errors import UnsupportedError
from shapeflow.ir.dtype import to_numpy_dtype
from shapeflow.ir.expr import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    NE,
    Add,
    And,
    Broadcast,
    BufferLoad,
    Call,
    Cast,
    Div,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Max,
    Min,
    Mod,
    Mul,
    Not,
    Or,
    Ramp,
    Select,
    StringImm,
    Sub,
    Var,
)


def _bf16(ctx, expr, value: ir.Value) -> ir.Value:
    """Round results of bfloat16 arithmetic to bfloat16 (see types.py)."""
    return round_bf16(ctx, value) if expr.dtype.kind == "bfloat" else value


@expr_rule(Var)
def _var(ctx, expr: Var):
    return ctx.lookup(expr)


@expr_rule(IntImm)
def _int_imm(ctx, expr: IntImm):
    ty = register_type(expr.dtype)
    value = expr.value
    if expr.dtype.is_uint and value >= 1 << (expr.dtype.bits - 1):
        value -= 1 << expr.dtype.bits  # LLVM constants are written signed
    return ir.Constant(ty, value)


@expr_rule(FloatImm)
def _float_imm(ctx, expr: FloatImm):
    # A FloatImm holds a Python float; the constant is that value rounded to its dtype (a float16 5e29 is
    # inf, as the interpreter reads it), and llvmlite cannot even print an out-of-range half/float constant.
    via = np.float32 if expr.dtype.kind == "bfloat" else np.float64
    with np.errstate(over="ignore"):
        value = float(np.asarray(expr.value, dtype=via).astype(to_numpy_dtype(expr.dtype)))
    return ir.Constant(register_type(expr.dtype), value)


@expr_rule(StringImm)
def _string_imm(ctx, expr: StringImm):
    raise UnsupportedError("a string constant cannot be used as a value in generated CPU code")


@expr_rule(Cast)
def _cast(ctx, expr: Cast):
    return cast(ctx, ctx.emit_expr(expr.value), expr.value.dtype, expr.dtype)


# ---------------------------------------------------------------------------------------------
# Binary arithmetic: one table of (integer op, float op) per node class
# ---------------------------------------------------------------------------------------------


def _int_minmax(pred):
    def emit(ctx, a, b, dtype):
        cmp = ctx.builder.icmp_signed if dtype.is_int else ctx.builder.icmp_unsigned
        return ctx.builder.select(cmp(pred, a, b), a, b)

    return emit


def _float_minmax(name):
    # llvm.minimum/maximum propagate NaN and order -0 < +0, like numpy's minimum/maximum.
    return lambda ctx, a, b, flags: call_intrinsic(ctx, name, [a, b], flags=flags)


# Float emitters take (ctx, a, b, flags): `flags` are ctx.float_flags(expr), so a reduction's accumulator
# update gets reassociation and everything else the ordinary flags of the float mode.
_ARITH = {
    Add: (lambda c, a, b, d: c.builder.add(a, b), lambda c, a, b, f: c.builder.fadd(a, b, flags=f)),
    Sub: (lambda c, a, b, d: c.builder.sub(a, b), lambda c, a, b, f: c.builder.fsub(a, b, flags=f)),
    Mul: (lambda c, a, b, d: c.builder.mul(a, b), lambda c, a, b, f: c.builder.fmul(a, b, flags=f)),
    Div: (None, lambda c, a, b, f: c.builder.fdiv(a, b, flags=f)),
    Mod: (None, lambda c, a, b, f: c.builder.frem(a, b)),
    FloorDiv: (None, lambda c, a, b, f: float_floor_ops(c, a, b, "floordiv")),
    FloorMod: (None, lambda c, a, b, f: float_floor_ops(c, a, b, "floormod")),
    Min: (_int_minmax("<"), _float_minmax("llvm.minimum")),
    Max: (_int_minmax(">"), _float_minmax("llvm.maximum")),
}
_INT_DIVISION = {Div: "truncdiv", Mod: "truncmod", FloorDiv: "floordiv", FloorMod: "floormod"}


@expr_rule(*_ARITH)
def _arith(ctx, expr):
    a = ctx.emit_expr(expr.a)
    b = ctx.emit_expr(expr.b)
    dtype = expr.dtype
    if dtype.is_float:
        return _bf16(ctx, expr, _ARITH[type(expr)][1](ctx, a, b, ctx.float_flags(expr)))
    if dtype.is_bool:
        if type(expr) in (Min, Max, Mul):  # min = and, max = or, product = and, on 0/1 values
            return ctx.builder.or_(a, b) if isinstance(expr, Max) else ctx.builder.and_(a, b)
        if type(expr) in (Add, Sub):
            return ctx.builder.xor(a, b)  # modulo 2, as the i1 wraps
        raise UnsupportedError(f"{type(expr).__name__} of bool operands is not supported by the LLVM backend")
    if type(expr) in _INT_DIVISION:
        return int_divide(ctx, a, b, dtype, const_divisor(expr.b), _INT_DIVISION[type(expr)])
    return _ARITH[type(expr)][0](ctx, a, b, dtype)


_COMPARE = {EQ: "==", NE: "!=", LT: "<", LE: "<=", GT: ">", GE: ">="}


@expr_rule(*_COMPARE)
def _compare(ctx, expr):
    a = ctx.emit_expr(expr.a)
    b = ctx.emit_expr(expr.b)
    op = _COMPARE[type(expr)]
    dtype = expr.a.dtype
    if dtype.is_float:
        # Ordered comparisons are false with a NaN operand; != is true (IEEE, as numpy).
        return ctx.builder.fcmp_unordered(op, a, b) if op == "!=" else ctx.builder.fcmp_ordered(op, a, b)
    if dtype.is_int:
        return ctx.builder.icmp_signed(op, a, b)
    if dtype.is_handle:
        raise UnsupportedError("comparison of handles is not supported by the LLVM backend")
    return ctx.builder.icmp_unsigned(op, a, b)


@expr_rule(And, Or)
def _logic(ctx, expr):
    a = ctx.emit_expr(expr.a)
    b = ctx.emit_expr(expr.b)
    if not expr.dtype.is_bool:
        raise UnsupportedError(f"logical {type(expr).__name__} of {expr.dtype} (bool expected)")
    return ctx.builder.and_(a, b) if isinstance(expr, And) else ctx.builder.or_(a, b)


@expr_rule(Not)
def _not(ctx, expr):
    value = ctx.emit_expr(expr.a)
    if expr.dtype.is_bool:
        return ctx.builder.xor(value, splat(value.type, 1))
    return ctx.builder.icmp_unsigned("==", value, splat(value.type, 0))


@expr_rule(Select)
def _select(ctx, expr: Select):
    cond = ctx.emit_expr(expr.condition)
    t = ctx.emit_expr(expr.true_value)
    f = ctx.emit_expr(expr.false_value)
    if cond.type != I1 and expr.dtype.lanes == 1:
        raise UnsupportedError("Select with a vector condition and scalar values")
    # A scalar condition with vector values selects whole vectors, which LLVM's select allows.
    return ctx.builder.select(cond, t, f)


@expr_rule(Ramp)
def _ramp(ctx, expr: Ramp):
    base = ctx.emit_expr(expr.base)
    stride = ctx.emit_expr(expr.stride)
    lanes = expr.lanes
    vec_ty = register_type(expr.dtype)
    elem = vec_ty.element
    if isinstance(elem, ir.IntType):
        steps = ir.Constant(vec_ty, [ir.Constant(elem, i) for i in range(lanes)])
        scaled = ctx.builder.mul(splat_value(ctx, stride, lanes), steps)
        return ctx.builder.add(splat_value(ctx, base, lanes), scaled)
    steps = ir.Constant(vec_ty, [ir.Constant(elem, float(i)) for i in range(lanes)])
    scaled = ctx.builder.fmul(splat_value(ctx, stride, lanes), steps)
    return _bf16(ctx, expr, ctx.builder.fadd(splat_value(ctx, base, lanes), scaled))


@expr_rule(Broadcast)
def _broadcast(ctx, expr: Broadcast):
    return splat_value(ctx, ctx.emit_expr(expr.value), expr.lanes)


@expr_rule(Let)
def _let(ctx, expr: Let):
    value = ctx.emit_expr(expr.value)
    with ctx.bind(expr.var, value):
        return ctx.emit_expr(expr.body)


@expr_rule(BufferLoad)
def _buffer_load(ctx, expr: BufferLoad):
    return emit_load(ctx, expr.buffer, expr.indices, expr.dtype)


@expr_rule(Call)
def _call(ctx, expr: Call):
    return _bf16(ctx, expr, emit_intrinsic(ctx, expr))
