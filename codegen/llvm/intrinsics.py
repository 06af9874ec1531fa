"""Lowering of the intrinsics of `shapeflow.ir.tir.intrinsics.INTRINSICS` to LLVM, one rule per name.

Float math on float16 is computed in float32 and rounded back (as the reference computes in float64 and
rounds); bfloat16 is already a float in registers. exp, tanh, erf and sigmoid on float32 use the inline
approximations of mathfuncs.py so that loops vectorize; float64 uses LLVM intrinsics or libm. log1p calls
libm (log1pf/log1p) lane by lane.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from shapeflow.codegen.llvm.arith import call_intrinsic
from shapeflow.codegen.llvm.mathfuncs import erf_f32, exp_f32, tanh_f32
from shapeflow.codegen.llvm.types import F32, I1, I32, element_of, splat, with_element
from shapeflow.errors import UnsupportedError
from shapeflow.ir.expr import Call

INTRINSIC_RULES: dict[str, Callable] = {}


def intrinsic_rule(*names: str):
    def register(fn):
        for name in names:
            INTRINSIC_RULES[name] = fn
        return fn

    return register


def emit_intrinsic(ctx, call: Call) -> ir.Value:
    rule = INTRINSIC_RULES.get(call.op)
    if rule is None:
        raise UnsupportedError(f"intrinsic '{call.op}' is not supported by the LLVM (CPU) backend")
    args = [ctx.emit_expr(a) for a in call.args]
    return rule(ctx, call, args)


def _is_f32(value: ir.Value) -> bool:
    return isinstance(element_of(value.type), ir.FloatType)


def _is_f64(value: ir.Value) -> bool:
    return isinstance(element_of(value.type), ir.DoubleType)


def _in_float32(fn):
    """Run `fn` on float32 operands: float16 arguments are widened and the result narrowed back."""

    def rule(ctx, call, args):
        if not all(isinstance(element_of(a.type), (ir.HalfType, ir.FloatType, ir.DoubleType)) for a in args):
            raise UnsupportedError(f"intrinsic '{call.op}' needs float operands, got {call.args[0].dtype}")
        if isinstance(element_of(args[0].type), ir.HalfType):
            wide = [ctx.builder.fpext(a, with_element(a.type, F32)) for a in args]
            out = fn(ctx, call, wide)
            return ctx.builder.fptrunc(out, args[0].type) if out.type != with_element(out.type, I1) else out
        return fn(ctx, call, args)

    return rule


def _libm(ctx, name32: str, name64: str, x: ir.Value) -> ir.Value:
    """A libm call per lane."""
    elem = element_of(x.type)
    fn = ctx.mod.declare(name32 if isinstance(elem, ir.FloatType) else name64, elem, [elem])
    b = ctx.builder
    if not isinstance(x.type, ir.VectorType):
        return b.call(fn, [x])
    out = ir.Constant(x.type, ir.Undefined)
    for lane in range(x.type.count):
        index = ir.Constant(I32, lane)
        out = b.insert_element(out, b.call(fn, [b.extract_element(x, index)]), index)
    return out


_LLVM_UNARY = {
    "exp2": "llvm.exp2",
    "log": "llvm.log",
    "log2": "llvm.log2",
    "sqrt": "llvm.sqrt",
    "sin": "llvm.sin",
    "cos": "llvm.cos",
    "floor": "llvm.floor",
    "ceil": "llvm.ceil",
    "trunc": "llvm.trunc",
    "round": "llvm.roundeven",
}


@intrinsic_rule(*_LLVM_UNARY)
@_in_float32
def _llvm_unary(ctx, call, args):
    return call_intrinsic(ctx, _LLVM_UNARY[call.op], args)


@intrinsic_rule("pow")
@_in_float32
def _pow(ctx, call, args):
    return call_intrinsic(ctx, "llvm.pow", args)


@intrinsic_rule("fma")
@_in_float32
def _fma(ctx, call, args):
    return call_intrinsic(ctx, "llvm.fma", args)


def _exp(ctx, x):
    return exp_f32(ctx, x) if _is_f32(x) else call_intrinsic(ctx, "llvm.exp", [x])


@intrinsic_rule("exp")
@_in_float32
def _exp_rule(ctx, call, args):
    return _exp(ctx, args[0])


@intrinsic_rule("tanh")
@_in_float32
def _tanh(ctx, call, args):
    return tanh_f32(ctx, args[0]) if _is_f32(args[0]) else _libm(ctx, "tanhf", "tanh", args[0])


@intrinsic_rule("erf")
@_in_float32
def _erf(ctx, call, args):
    return erf_f32(ctx, args[0]) if _is_f32(args[0]) else _libm(ctx, "erff", "erf", args[0])


@intrinsic_rule("log1p")
@_in_float32
def _log1p(ctx, call, args):
    return _libm(ctx, "log1pf", "log1p", args[0])


@intrinsic_rule("sigmoid")
@_in_float32
def _sigmoid(ctx, call, args):
    b = ctx.builder
    x = args[0]
    one = splat(x.type, 1.0)
    return b.fdiv(one, b.fadd(one, _exp(ctx, b.fneg(x))))


@intrinsic_rule("rsqrt")
@_in_float32
def _rsqrt(ctx, call, args):
    x = args[0]
    return ctx.builder.fdiv(splat(x.type, 1.0), call_intrinsic(ctx, "llvm.sqrt", [x]))


@intrinsic_rule("abs")
def _abs(ctx, call, args):
    x = args[0]
    dtype = call.args[0].dtype
    if dtype.is_float:
        return call_intrinsic(ctx, "llvm.fabs", [x])
    if dtype.is_int:
        # INT_MIN stays INT_MIN (wraps), as numpy's abs.
        return call_intrinsic(ctx, "llvm.abs", [x, ir.Constant(I1, 0)])
    return x


@intrinsic_rule("isnan")
def _isnan(ctx, call, args):
    return ctx.builder.fcmp_unordered("uno", args[0], args[0])


@intrinsic_rule("isinf")
def _isinf(ctx, call, args):
    x = args[0]
    return ctx.builder.fcmp_ordered("==", call_intrinsic(ctx, "llvm.fabs", [x]), splat(x.type, float("inf")))


def _check_integer(call):
    if not call.args[0].dtype.is_integer:
        raise UnsupportedError(f"intrinsic '{call.op}' needs integer operands, got {call.args[0].dtype}")


@intrinsic_rule("bitwise_and", "bitwise_or", "bitwise_xor")
def _bitwise(ctx, call, args):
    _check_integer(call)
    b = ctx.builder
    op = {"bitwise_and": b.and_, "bitwise_or": b.or_, "bitwise_xor": b.xor}[call.op]
    return op(*args)


@intrinsic_rule("bitwise_not")
def _bitwise_not(ctx, call, args):
    _check_integer(call)
    return ctx.builder.xor(args[0], splat(args[0].type, -1))


@intrinsic_rule("shift_left", "shift_right")
def _shift(ctx, call, args):
    """Shifts by an amount outside [0, bits) give 0 (or the sign fill for an arithmetic right shift)
    instead of LLVM's poison, as the reference defines."""
    _check_integer(call)
    b = ctx.builder
    a, amount = args
    dtype = call.args[0].dtype
    ty = a.type
    bits = dtype.bits
    bad = b.icmp_unsigned(">=", amount, splat(ty, bits))
    safe = b.select(bad, splat(ty, 0), amount)
    if call.op == "shift_left":
        return b.select(bad, splat(ty, 0), b.shl(a, safe))
    if dtype.is_int:
        return b.select(bad, b.ashr(a, splat(ty, bits - 1)), b.ashr(a, safe))
    return b.select(bad, splat(ty, 0), b.lshr(a, safe))
