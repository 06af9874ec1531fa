"""The registry of intrinsics a `Call` may name: arity, which dtypes they take, result dtype and the numpy
reference that defines their meaning. Backends keep their own lowering tables keyed by the same names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir.dtype import DataType


@dataclass(frozen=True)
class Intrinsic:
    name: str
    arity: int
    # "float": float operands only; "int": integer operands only; "any": numbers of any kind.
    operand_kind: str
    # The numpy function over arrays (vectorized); it defines the intrinsic's meaning.
    reference: Callable
    # Result is bool (predicates such as isnan) instead of the operand dtype.
    returns_bool: bool = False

    def result_dtype(self, arg_dtypes: list[DataType]) -> DataType:
        first = arg_dtypes[0]
        return DataType("bool").with_lanes(first.lanes) if self.returns_bool else first

    def check(self, arg_dtypes: list[DataType], where: object = None) -> None:
        if len(arg_dtypes) != self.arity:
            raise VerifyError(
                f"intrinsic {self.name} takes {self.arity} arguments, got {len(arg_dtypes)}", where
            )
        first = arg_dtypes[0]
        for dt in arg_dtypes[1:]:
            if dt != first:
                raise VerifyError(f"intrinsic {self.name}: argument dtypes differ ({first} vs {dt})", where)
        if self.operand_kind == "float" and not first.is_float:
            raise VerifyError(f"intrinsic {self.name} needs float arguments, got {first}", where)
        if self.operand_kind == "int" and not first.is_integer:
            raise VerifyError(f"intrinsic {self.name} needs integer arguments, got {first}", where)


def _erf(x):
    vec = np.vectorize(math.erf, otypes=[np.float64])
    return vec(np.asarray(x, dtype=np.float64)).astype(np.asarray(x).dtype)


def _sigmoid(x):
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


def _rsqrt(x):
    x = np.asarray(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 / np.sqrt(x.astype(np.float64))).astype(x.dtype)


def _round(x):
    # Round half to even, as LLVM's llvm.roundeven and numpy's rint.
    return np.rint(x)


def _shift_left(a, b):
    a = np.asarray(a)
    bits = a.dtype.itemsize * 8
    b = np.asarray(b).astype(np.int64)
    out = np.left_shift(a, np.clip(b, 0, bits - 1).astype(a.dtype))
    return np.where((b < 0) | (b >= bits), np.zeros_like(a), out)


def _shift_right(a, b):
    a = np.asarray(a)
    bits = a.dtype.itemsize * 8
    b = np.asarray(b).astype(np.int64)
    out = np.right_shift(a, np.clip(b, 0, bits - 1).astype(a.dtype))
    fill = np.where(a < 0, -1, 0).astype(a.dtype) if a.dtype.kind == "i" else np.zeros_like(a)
    return np.where((b < 0) | (b >= bits), fill, out)


def _float_unary(fn):
    def ref(x):
        x = np.asarray(x)
        with np.errstate(all="ignore"):
            return fn(x.astype(np.float64)).astype(x.dtype)

    return ref


def _pow(a, b):
    a = np.asarray(a)
    with np.errstate(all="ignore"):
        return np.power(a.astype(np.float64), np.asarray(b, np.float64)).astype(a.dtype)


def _fma(a, b, c):
    # Computed in float64, then rounded once: a fused multiply-add for float32 (and float16) operands.
    a = np.asarray(a)
    with np.errstate(all="ignore"):
        exact = a.astype(np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)
    return exact.astype(a.dtype)


INTRINSICS: dict[str, Intrinsic] = {}


def register(intrinsic: Intrinsic) -> Intrinsic:
    INTRINSICS[intrinsic.name] = intrinsic
    return intrinsic


for _name, _fn in {
    "exp": np.exp,
    "exp2": np.exp2,
    "log": np.log,
    "log2": np.log2,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
}.items():
    register(Intrinsic(_name, 1, "float", _float_unary(_fn)))

register(Intrinsic("rsqrt", 1, "float", _rsqrt))
register(Intrinsic("sigmoid", 1, "float", _sigmoid))
register(Intrinsic("erf", 1, "float", _erf))
register(Intrinsic("round", 1, "float", _round))
register(Intrinsic("pow", 2, "float", _pow))
register(Intrinsic("fma", 3, "float", _fma))
register(Intrinsic("abs", 1, "any", np.abs))
register(Intrinsic("isnan", 1, "float", np.isnan, returns_bool=True))
register(Intrinsic("isinf", 1, "float", np.isinf, returns_bool=True))
register(Intrinsic("bitwise_and", 2, "int", np.bitwise_and))
register(Intrinsic("bitwise_or", 2, "int", np.bitwise_or))
register(Intrinsic("bitwise_xor", 2, "int", np.bitwise_xor))
register(Intrinsic("bitwise_not", 1, "int", np.invert))
register(Intrinsic("shift_left", 2, "int", _shift_left))
register(Intrinsic("shift_right", 2, "int", _shift_right))


def get_intrinsic(name: str) -> Intrinsic:
    found = INTRINSICS.get(name)
    if found is None:
        raise UnsupportedError(f"unknown intrinsic {name!r} (known: {', '.join(sorted(INTRINSICS))})")
    return found


def call_intrinsic(name: str, *args):
    """Build `Call(name, args)` with the registry's result dtype (arguments promoted to a common dtype)."""
    from shapeflow.ir.expr import Call, _promote, convert  # noqa: PLC0415

    intrinsic = get_intrinsic(name)
    exprs = [convert(a) for a in args]
    if len(exprs) != intrinsic.arity:
        raise VerifyError(f"intrinsic {name} takes {intrinsic.arity} arguments, got {len(exprs)}")
    # Python scalars take the dtype of the first expression argument.
    anchor = next((a for a in args if not isinstance(a, (int, float, bool))), None)
    if anchor is not None:
        exprs = [convert(a, anchor.dtype.element_of()) for a in args]
    for i in range(1, len(exprs)):
        exprs[0], exprs[i] = _promote(exprs[0], exprs[i])
    for i in range(1, len(exprs)):
        exprs[0], exprs[i] = _promote(exprs[0], exprs[i])
    intrinsic.check([e.dtype for e in exprs])
    return Call(intrinsic.result_dtype([e.dtype for e in exprs]), name, tuple(exprs))
