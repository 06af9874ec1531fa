"""Graph code converting between numbers and the bit patterns of the low-precision storage types
(see lowp.py for why they are storage types).

Encoding uses exact float arithmetic only: the exponent of |x| is found by comparing with powers of two and
scaling by them (exact), the significand is rounded once with `round` (round half to even), and the code is
`(exponent - emin) * 2**mantissa + significand`, which also carries a rounding that overflows the
significand into the next exponent, and the subnormals (exponent emin, significand below 2**mantissa).
Every intermediate is an emitted binding: the values are used several times, and a nested tree would
repeat them.
"""

from __future__ import annotations

from shapeflow.frontend.onnx.context import Context, scalar
from shapeflow.frontend.onnx.lowp import STORAGE, LowpType
from shapeflow.ir.dtype import DataType
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.infer import type_of


def dtype_of(expr) -> DataType:
    return type_of(expr).dtype


def decode(ctx: Context, bits, t: LowpType):
    """float32 values of storage bits: a gather from the type's 256-entry table (exact)."""
    table = G.Constant.from_array(t.table())
    return ctx.emit(op.take(table, ctx.emit(op.astype(bits, "int32")), axis=0))


def encode(ctx: Context, value, t: LowpType, saturate: bool = True, round_mode: str = "up", negative=None):
    """Storage bits of `value` (any number dtype) as ONNX Cast to `t` computes them. `negative` (bool
    tensor), when given, is the sign of `value`: known from the bits of a storage-typed source, it carries
    the sign of a NaN too."""
    if t.kind == "int":
        return _encode_int_wrapping(ctx, value, t)
    if t.kind == "e8m0":
        return _encode_e8m0(ctx, value, saturate, round_mode)
    return encode_float(ctx, value, t, saturate, negative)


def sign_of_bits(ctx: Context, bits, t: LowpType):
    """The sign bit of storage bits of `t` (a bool tensor), NaN codes included."""
    mask = scalar(t.sign_bit, STORAGE)
    return ctx.emit(op.not_equal(op.bitwise_and(bits, mask), scalar(0, STORAGE)))


def _compute_dtype(dtype: DataType) -> str:
    """float32: ml_dtypes (so onnx.reference) converts float64 and integers through float32 first, and
    float32 holds every float16/bfloat16 exactly."""
    return "float32"


def _isnan(ctx: Context, v):
    return ctx.emit(op.not_equal(v, v))


def _is_negative(ctx: Context, v, dtype: str):
    """v < 0, -0.0 included (1 / -0.0 is -inf)."""
    zero = scalar(0, dtype)
    negative_zero = op.logical_and(op.equal(v, zero), op.less(op.divide(scalar(1, dtype), v), zero))
    return ctx.emit(op.logical_or(op.less(v, zero), negative_zero))


def _log2_steps(ctx: Context, t, span: int, dtype: str):
    """(t / 2**k, k) for the largest k <= 2**(bits of span) - 1 with t / 2**k >= 1 (k = 0 when t < 1)."""
    steps = [1 << b for b in range(span.bit_length() - 1, -1, -1)]
    k = scalar(0, dtype)
    for step in steps:
        cond = ctx.emit(op.greater_equal(t, scalar(2.0**step, dtype)))
        k = ctx.emit(op.add(k, op.where(cond, scalar(step, dtype), scalar(0, dtype))))
        t = ctx.emit(op.where(cond, op.multiply(t, scalar(2.0**-step, dtype)), t))
    return t, k


def encode_float(ctx: Context, value, t: LowpType, saturate: bool, negative=None):
    """Round to nearest even into the float type `t`; overflow (infinities included) gives the largest
    finite value when saturating, else the type's overflow code (NaN, or infinity for E5M2); NaN gives NaN."""
    dtype = _compute_dtype(dtype_of(value))
    v = ctx.emit(op.astype(value, dtype)) if str(dtype_of(value)) != dtype else value
    a = ctx.emit(op.abs(v))
    negative = _is_negative(ctx, v, dtype) if negative is None else negative
    scaled = ctx.emit(op.multiply(a, scalar(2.0**-t.emin, dtype)))  # exact: a power of two, scaling up
    span = t.emax + 1 - t.emin  # exponents above emin that still need distinguishing from overflow
    t_norm, exponent = _log2_steps(ctx, scaled, span, dtype)
    significand = ctx.emit(op.round(op.multiply(t_norm, scalar(2.0**t.mantissa, dtype))))
    code = ctx.emit(op.add(op.multiply(exponent, scalar(2.0**t.mantissa, dtype)), significand))
    overflow_code = t.max_code if saturate else t.overflow_code
    mag = ctx.emit(op.where(op.greater(code, scalar(t.max_code, dtype)), scalar(overflow_code, dtype), code))
    signable = negative
    if t.unsigned_zero:  # no -0; the overflow code is NaN, which has no sign either
        zero_or_nan = op.logical_or(op.equal(mag, scalar(0, dtype)), op.equal(mag, scalar(t.nan_code, dtype)))
        signable = ctx.emit(op.logical_and(negative, op.logical_not(zero_or_nan)))
    bits = op.where(signable, op.add(mag, scalar(t.sign_bit, dtype)), mag)
    nan = scalar(t.nan_code, dtype)
    if not t.unsigned_zero and t.bits == 8:  # float4's "NaN" is a zero of the opposite sign (ml_dtypes)
        nan = op.where(negative, scalar(t.nan_code | t.sign_bit, dtype), nan)
    elif not t.unsigned_zero:
        nan = op.where(negative, scalar(t.nan_code & ~t.sign_bit, dtype), nan)
    bits = op.where(_isnan(ctx, v), nan, bits)
    return op.astype(ctx.emit(bits), STORAGE)


def _encode_e8m0(ctx: Context, value, saturate: bool, round_mode: str):
    """float32 -> E8M0 as onnx.numpy_helper.to_float8e8m0: the float32 exponent field, rounded "up" (any
    fraction), "down" (truncated) or "nearest" (half up); NaN and infinities give NaN (0xFF); the sign is
    dropped. With saturation, rounding never goes past the largest exponent (254)."""
    if round_mode not in ("up", "down", "nearest"):
        raise ValueError(round_mode)  # checked by the converter
    f32 = "float32"
    v = ctx.emit(op.astype(value, f32)) if str(dtype_of(value)) != f32 else value
    a = ctx.emit(op.abs(v))
    special = ctx.emit(op.logical_or(_isnan(ctx, v), op.equal(a, scalar(float("inf"), f32))))
    subnormal = ctx.emit(op.less(a, scalar(2.0**-126, f32)))
    up, k_up = _log2_steps(ctx, a, 127, f32)  # a >= 1: up in [1, 2)
    t, k_down = up, scalar(0, f32)
    for step in (64, 32, 16, 8, 4, 2, 1):  # a < 1: doubled into [1, 2)
        cond = ctx.emit(op.less(t, scalar(2.0 ** (1 - step), f32)))
        k_down = ctx.emit(op.add(k_down, op.where(cond, scalar(step, f32), scalar(0, f32))))
        t = ctx.emit(op.where(cond, op.multiply(t, scalar(2.0**step, f32)), t))
    field = ctx.emit(op.where(subnormal, scalar(0, f32), op.add(op.subtract(k_up, k_down), scalar(127, f32))))
    fraction = ctx.emit(op.multiply(a, scalar(2.0**126, f32)))  # the subnormal's significand, in [0, 1)
    if round_mode == "up":
        round_up = op.where(subnormal, op.greater(fraction, scalar(0, f32)), op.greater(t, scalar(1, f32)))
    elif round_mode == "nearest":
        round_up = op.where(
            subnormal, op.greater(fraction, scalar(0.5, f32)), op.greater_equal(t, scalar(1.5, f32))
        )
    else:
        round_up = op.less(a, scalar(0, f32))  # never
    round_up = ctx.emit(round_up)
    if saturate:
        round_up = ctx.emit(op.logical_and(round_up, op.not_equal(field, scalar(254, f32))))
    code = op.add(field, op.where(round_up, scalar(1, f32), scalar(0, f32)))
    code = op.where(special, scalar(255, f32), code)
    return op.astype(ctx.emit(code), STORAGE)


def _encode_int_wrapping(ctx: Context, value, t: LowpType):
    """Cast to int4/uint4/int2/uint2 as ml_dtypes does: truncate toward zero, keep the low bits (two's
    complement); NaN and infinities give 0."""
    dtype = dtype_of(value)
    modulus = 1 << t.bits
    if dtype.is_bool:
        return op.astype(value, STORAGE)
    if dtype.is_integer:
        return op.astype(op.bitwise_and(value, scalar(modulus - 1, dtype)), STORAGE)
    f64 = "float64"
    v = ctx.emit(op.astype(value, f64))
    finite = op.logical_and(op.equal(v, v), op.less(op.abs(v), scalar(float("inf"), f64)))
    w = ctx.emit(op.where(finite, v, scalar(0, f64)))
    truncated = ctx.emit(op.where(op.less(w, scalar(0, f64)), op.ceil(w), op.floor(w)))
    wraps = op.floor(op.multiply(truncated, scalar(1.0 / modulus, f64)))
    low = op.subtract(truncated, op.multiply(wraps, scalar(float(modulus), f64)))
    return op.astype(ctx.emit(low), STORAGE)


def encode_int_saturating(ctx: Context, q, t: LowpType):
    """Bits of the integer-valued floats `q` clamped to the range of int type `t` (QuantizeLinear). NaN
    gives the minimum (deterministically: the reference casts NaN to int32, which is undefined)."""
    dtype = str(dtype_of(q))
    lo, hi = t.info()
    q = ctx.emit(op.where(_isnan(ctx, q), scalar(lo, dtype), q))
    clamped = ctx.emit(op.clip(q, float(lo), float(hi)))
    low = op.where(op.less(clamped, scalar(0, dtype)), op.add(clamped, scalar(1 << t.bits, dtype)), clamped)
    return op.astype(ctx.emit(low), STORAGE)
