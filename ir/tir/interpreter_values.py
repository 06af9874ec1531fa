"""What each loop-IR operator computes, per dtype: the value semantics behind the reference interpreter.

Representation of values while interpreting (chosen so that every operation rounds or wraps exactly as the
IR's dtype says, and so that the common scalar case stays cheap):

- integer and bool scalars are Python ints / bools, wrapped to the dtype's width after every operation
  (two's complement, as C on every target we generate code for);
- float scalars (float16/32/64, bfloat16) are numpy scalars of that dtype, so each operation rounds to the
  dtype (a float32 add is rounded to float32, not carried in float64);
- vectors (lanes > 1) are 1-D numpy arrays of length `lanes` in the element dtype.

Each `*_fn` factory is called once per IR node when a function is compiled to closures, so the choice of
implementation happens at compile time and the returned function does only the arithmetic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from shapeflow.errors import Error, UnsupportedError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.tir.intrinsics import INTRINSICS


class InterpreterError(Error):
    """A run-time fault of the interpreted program: out-of-bounds access, a failed assertion, bad binding."""


class AssertionFailed(InterpreterError):
    """An `AssertStmt` whose condition was false; `message` is the statement's message."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def numpy_dtype(dtype: DataType) -> np.dtype:
    return dtype.element_of().to_numpy()


def int_wrapper(dtype: DataType) -> Callable[[int], int]:
    """Reduce a Python int to the value the dtype holds (two's complement wrap; bool keeps bit 0)."""
    bits = dtype.bits
    if dtype.is_bool:
        return lambda v: bool(int(v) & 1)
    mask = (1 << bits) - 1
    if dtype.is_uint:
        return lambda v: v & mask
    half = 1 << (bits - 1)

    def wrap(v: int) -> int:
        return v if -half <= v < half else ((v + half) & mask) - half

    return wrap


def _truncdiv(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _truncmod(a: int, b: int) -> int:
    return 0 if b == 0 else a - b * _truncdiv(a, b)


def _floordiv(a: int, b: int) -> int:
    return 0 if b == 0 else a // b


def _floormod(a: int, b: int) -> int:
    return 0 if b == 0 else a % b


# Integer semantics on Python ints (wrapped afterwards). Div/Mod truncate as C; FloorDiv/FloorMod floor.
# INT_MIN / -1 overflows in C (undefined); here it wraps to INT_MIN. Division by zero is defined as 0 for
# all four (numpy's result, and what the CPU backend emits; see codegen/llvm/arith.py), not an error.
_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mul": operator.mul,
    "Div": _truncdiv,
    "Mod": _truncmod,
    "FloorDiv": _floordiv,
    "FloorMod": _floormod,
    "Min": min,
    "Max": max,
    "And": lambda a, b: bool(a) and bool(b),
    "Or": lambda a, b: bool(a) or bool(b),
}


def _float_floordiv(a, b):
    return np.floor(a / b)


def _float_floormod(a, b):
    # a - floor(a / b) * b, each step rounded in the dtype (what the code generators emit).
    return a - np.floor(a / b) * b


# Float semantics on numpy scalars or arrays of the dtype; they work unchanged on vectors. Min/Max propagate
# NaN (IEEE 754-2019 minimum/maximum, LLVM's llvm.minimum), Mod is C's fmod.
_FLOAT_OPS: dict[str, Callable] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mul": operator.mul,
    "Div": operator.truediv,
    "Mod": np.fmod,
    "FloorDiv": _float_floordiv,
    "FloorMod": _float_floormod,
    "Min": np.minimum,
    "Max": np.maximum,
    "And": np.logical_and,
    "Or": np.logical_or,
}

# Integer vector ops that numpy already computes with C wrap-around; the rest go lane by lane.
_INT_VECTOR_NUMPY: dict[str, Callable] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Min": np.minimum,
    "Max": np.maximum,
}

_BOOL_OPS: dict[str, Callable] = {
    "And": lambda a, b: bool(a) and bool(b),
    "Or": lambda a, b: bool(a) or bool(b),
}

CMP_OPS: dict[str, Callable] = {
    "EQ": operator.eq,
    "NE": operator.ne,
    "LT": operator.lt,
    "LE": operator.le,
    "GT": operator.gt,
    "GE": operator.ge,
}


def binary_fn(op: str, dtype: DataType) -> Callable:
    """The function computing `a <op> b` for operands (and result) of `dtype`."""
    if dtype.is_handle:
        raise UnsupportedError(f"{op} on handle values cannot be interpreted")
    if dtype.is_float:
        return _FLOAT_OPS[op]
    if dtype.is_bool:
        if dtype.is_vector:
            table = {"And": np.logical_and, "Or": np.logical_or}
            if op in table:
                return table[op]
        elif op in _BOOL_OPS:
            return _BOOL_OPS[op]
    scalar = _INT_OPS[op]
    wrap = int_wrapper(dtype)
    if dtype.is_scalar:
        return lambda a, b: wrap(scalar(a, b))
    if op in _INT_VECTOR_NUMPY and not dtype.is_bool:
        return _INT_VECTOR_NUMPY[op]
    npdt = numpy_dtype(dtype)

    def lanewise(a, b):
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        return np.array([wrap(scalar(int(x), int(y))) for x, y in zip(a, b)], dtype=npdt)

    return lanewise


def const_value(dtype: DataType, value):
    """The interpreter value of a scalar constant of `dtype`."""
    if dtype.is_bool:
        return bool(value)
    if dtype.is_integer:
        return int(value)
    with np.errstate(over="ignore"):  # an out-of-range float constant is inf in its dtype, as compiled
        return numpy_dtype(dtype).type(value)


def to_value(array, dtype: DataType):
    """Convert a numpy result (array or scalar) to the interpreter's representation of `dtype`."""
    arr = np.asarray(array).astype(numpy_dtype(dtype), copy=False)
    if dtype.is_vector:
        return np.broadcast_to(arr, (dtype.lanes,)).copy()
    if dtype.is_bool:
        return bool(arr)
    if dtype.is_integer:
        return int(arr)
    return arr[()]


def cast_fn(src: DataType, dst: DataType) -> Callable:
    """`Cast(dst, x)` for x of dtype `src`.

    int -> int wraps; anything -> bool is `!= 0`; float -> int truncates toward zero. A float that is NaN or
    out of the target's range is undefined in C; here it is whatever numpy's `astype` gives on the host
    (platform-dependent, e.g. INT_MIN for int32 on x86-64), so tests must not compare such values.
    """
    if src.is_handle or dst.is_handle:
        raise UnsupportedError(f"cannot interpret a cast from {src} to {dst}")
    dst_np = numpy_dtype(dst)
    src_np = numpy_dtype(src)
    if dst.is_vector or src.is_vector:
        if dst.is_bool:
            return lambda x: np.asarray(x) != 0
        return lambda x: np.broadcast_to(np.asarray(x, dtype=src_np).astype(dst_np), (dst.lanes,)).copy()
    if dst.is_bool:
        return lambda x: bool(x != 0)
    if dst.is_integer:
        if src.is_integer or src.is_bool:
            wrap = int_wrapper(dst)
            return lambda x: wrap(int(x))
        return lambda x: int(np.asarray(x).astype(dst_np))
    # dst is a float.
    if src.is_integer or src.is_bool:
        ctor = dst_np.type
        limit = 1 << 53

        def int_to_float(x):
            x = int(x)
            if -limit <= x <= limit:  # exact in float64, so one rounding to the target
                return ctor(float(x))
            return np.asarray(x, dtype=src_np).astype(dst_np)[()]

        return int_to_float
    return dst_np.type


def call_fn(op: str, arg_dtypes: list[DataType], dtype: DataType) -> Callable:
    """The intrinsic `op` through its numpy `reference`, the result converted to the Call's dtype."""
    intrinsic = INTRINSICS.get(op)
    if intrinsic is None:
        raise UnsupportedError(f"unknown intrinsic {op!r} (known: {', '.join(sorted(INTRINSICS))})")
    arg_nps = [numpy_dtype(dt) for dt in arg_dtypes]
    reference = intrinsic.reference

    def call(*values):
        arrays = [np.asarray(v, dtype=npdt) for v, npdt in zip(values, arg_nps)]
        return to_value(reference(*arrays), dtype)

    return call


def compact_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides, in elements, of a compact array of `shape`."""
    strides = []
    acc = 1
    for extent in reversed(shape):
        strides.append(acc)
        acc *= extent
    return tuple(reversed(strides))
