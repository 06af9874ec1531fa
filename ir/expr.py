"""Scalar and vector expressions shared by symbolic arithmetic and the loop IR.

Every expression has a `dtype`. Integer expressions over int64 `Var`s are what symbolic shapes are made of,
so `shapeflow.ir.arith` works directly on these nodes. Python operators build nodes:

    n = Var("n", "int64")
    e = (n + 1) * 4 // 3          # FloorDiv(Mul(Add(n, 1), 4), 3)
    c = e < n                     # LT(...), a bool expression

`//` and `%` are floor division and floor modulo (as in Python); `/` is true division for floats and
truncated division for integers (as in C). `==` builds an `EQ` node whose truth value (when Python needs one,
e.g. in a dict lookup) is whether both sides are the same object, as in TVM.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.node import Node, node, set_computed

if TYPE_CHECKING:
    from shapeflow.ir.tir.buffer import Buffer


class PrimExpr(Node):
    """Base class of expressions; `dtype` is a DataType."""

    __slots__ = ()
    dtype: DataType

    __hash__ = object.__hash__

    # -- arithmetic -------------------------------------------------------------------------------
    def __add__(self, other):
        return _binary(Add, self, other)

    def __radd__(self, other):
        return _binary(Add, other, self)

    def __sub__(self, other):
        return _binary(Sub, self, other)

    def __rsub__(self, other):
        return _binary(Sub, other, self)

    def __mul__(self, other):
        return _binary(Mul, self, other)

    def __rmul__(self, other):
        return _binary(Mul, other, self)

    def __truediv__(self, other):
        return _binary(Div, self, other)

    def __rtruediv__(self, other):
        return _binary(Div, other, self)

    def __floordiv__(self, other):
        return _binary(FloorDiv, self, other)

    def __rfloordiv__(self, other):
        return _binary(FloorDiv, other, self)

    def __mod__(self, other):
        return _binary(FloorMod, self, other)

    def __rmod__(self, other):
        return _binary(FloorMod, other, self)

    def __neg__(self):
        return _binary(Sub, make_const(self.dtype, 0), self)

    # -- comparison and logic ---------------------------------------------------------------------
    def __lt__(self, other):
        return _binary(LT, self, other)

    def __le__(self, other):
        return _binary(LE, self, other)

    def __gt__(self, other):
        return _binary(GT, self, other)

    def __ge__(self, other):
        return _binary(GE, self, other)

    def __eq__(self, other):  # type: ignore[override]
        if not isinstance(other, (PrimExpr, int, float, bool)):
            return NotImplemented
        return _binary(EQ, self, other)

    def __ne__(self, other):  # type: ignore[override]
        if not isinstance(other, (PrimExpr, int, float, bool)):
            return NotImplemented
        return _binary(NE, self, other)

    def __and__(self, other):
        if self.dtype.is_bool:
            return _binary(And, self, other)
        return _bitwise("bitwise_and", self, other)

    def __rand__(self, other):
        return convert(other, self.dtype).__and__(self)

    def __or__(self, other):
        if self.dtype.is_bool:
            return _binary(Or, self, other)
        return _bitwise("bitwise_or", self, other)

    def __ror__(self, other):
        return convert(other, self.dtype).__or__(self)

    def __xor__(self, other):
        return _bitwise("bitwise_xor", self, other)

    def __invert__(self):
        if self.dtype.is_bool:
            return Not(self)
        return Call(self.dtype, "bitwise_not", (self,))

    def __lshift__(self, other):
        return _bitwise("shift_left", self, other)

    def __rshift__(self, other):
        return _bitwise("shift_right", self, other)

    def __bool__(self):
        raise TypeError(
            f"cannot use the symbolic expression {self!r} as a Python bool; "
            "build a Select / if_then_else, or prove it with shapeflow.ir.arith"
        )

    def astype(self, dtype) -> PrimExpr:
        dtype = DataType(dtype)
        return self if dtype == self.dtype else Cast(dtype, self)


# ---------------------------------------------------------------------------------------------
# Leaves
# ---------------------------------------------------------------------------------------------


@node
class Var(PrimExpr):
    """A variable. Identity matters: two Vars with the same name are different variables."""

    name: str
    dtype: DataType = DataType("int64")

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))
        if not isinstance(self.name, str):
            raise VerifyError(f"Var name must be a str, got {type(self.name).__name__}", self)


@node
class IntImm(PrimExpr):
    """An integer (or bool) constant; `value` must fit in `dtype`."""

    dtype: DataType
    value: int

    def __post_init__(self):
        dtype = DataType(self.dtype)
        set_computed(self, "dtype", dtype)
        if not (dtype.is_integer or dtype.is_bool) or dtype.is_vector:
            raise VerifyError(f"IntImm needs a scalar integer or bool dtype, got {dtype}", self)
        value = int(self.value)
        if not dtype.min_value() <= value <= dtype.max_value():
            raise VerifyError(f"constant {value} does not fit in {dtype}", self)
        set_computed(self, "value", value)


@node
class FloatImm(PrimExpr):
    """A floating-point constant (stored as a Python float, i.e. float64 precision)."""

    dtype: DataType
    value: float

    def __post_init__(self):
        dtype = DataType(self.dtype)
        set_computed(self, "dtype", dtype)
        if not dtype.is_float or dtype.is_vector:
            raise VerifyError(f"FloatImm needs a scalar float dtype, got {dtype}", self)
        set_computed(self, "value", float(self.value))


@node
class StringImm(PrimExpr):
    """A string constant, only meaningful as an argument of some intrinsics."""

    value: str
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        set_computed(self, "dtype", DataType("handle"))


# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------


@node
class Cast(PrimExpr):
    dtype: DataType
    value: PrimExpr

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))
        _check_expr(self, "value", self.value)


class BinaryOp(PrimExpr):
    """Two operands of the same dtype; the result has that dtype."""

    __slots__ = ()
    a: PrimExpr
    b: PrimExpr

    def __post_init__(self):
        _check_expr(self, "a", self.a)
        _check_expr(self, "b", self.b)
        set_computed(self, "dtype", self.a.dtype)


class CmpOp(PrimExpr):
    """A comparison; the result is bool with the lanes of the operands."""

    __slots__ = ()
    a: PrimExpr
    b: PrimExpr

    def __post_init__(self):
        _check_expr(self, "a", self.a)
        _check_expr(self, "b", self.b)
        set_computed(self, "dtype", DataType("bool").with_lanes(self.a.dtype.lanes))


def _binary_node(name: str, base: type, doc: str):
    cls = type(
        name,
        (base,),
        {
            "__doc__": doc,
            "__annotations__": {"a": PrimExpr, "b": PrimExpr, "dtype": DataType},
            "dtype": dataclasses.field(init=False),
            "__module__": __name__,
            "__qualname__": name,
        },
    )
    return node(cls)


Add = _binary_node("Add", BinaryOp, "a + b (wrapping for integers)")
Sub = _binary_node("Sub", BinaryOp, "a - b")
Mul = _binary_node("Mul", BinaryOp, "a * b")
Div = _binary_node("Div", BinaryOp, "a / b: true division for floats, truncated division for integers")
Mod = _binary_node("Mod", BinaryOp, "truncated remainder (sign of a), integers only")
FloorDiv = _binary_node("FloorDiv", BinaryOp, "floor(a / b)")
FloorMod = _binary_node("FloorMod", BinaryOp, "a - floor(a / b) * b (sign of b)")
Min = _binary_node("Min", BinaryOp, "min(a, b)")
Max = _binary_node("Max", BinaryOp, "max(a, b)")
EQ = _binary_node("EQ", CmpOp, "a == b")
NE = _binary_node("NE", CmpOp, "a != b")
LT = _binary_node("LT", CmpOp, "a < b")
LE = _binary_node("LE", CmpOp, "a <= b")
GT = _binary_node("GT", CmpOp, "a > b")
GE = _binary_node("GE", CmpOp, "a >= b")
And = _binary_node("And", BinaryOp, "logical and of bools")
Or = _binary_node("Or", BinaryOp, "logical or of bools")


def _eq_truth(self) -> bool:
    # Python asks for the truth of `x == y` in dict lookups and `in` tests: answer identity, as TVM does.
    return self.a is self.b


def _ne_truth(self) -> bool:
    return self.a is not self.b


EQ.__bool__ = _eq_truth
NE.__bool__ = _ne_truth


@node
class Not(PrimExpr):
    a: PrimExpr
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        _check_expr(self, "a", self.a)
        set_computed(self, "dtype", self.a.dtype)


@node
class Select(PrimExpr):
    """`true_value if condition else false_value`; both branches are evaluated (no side effects)."""

    condition: PrimExpr
    true_value: PrimExpr
    false_value: PrimExpr
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        _check_expr(self, "condition", self.condition)
        _check_expr(self, "true_value", self.true_value)
        _check_expr(self, "false_value", self.false_value)
        set_computed(self, "dtype", self.true_value.dtype)


@node
class Call(PrimExpr):
    """A call of an intrinsic by name (see shapeflow.ir.tir.intrinsics for the registry)."""

    dtype: DataType
    op: str
    args: tuple[PrimExpr, ...]

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))
        set_computed(self, "args", tuple(self.args))
        for i, arg in enumerate(self.args):
            _check_expr(self, f"args[{i}]", arg)


@node
class Ramp(PrimExpr):
    """The vector base, base + stride, ..., base + (lanes - 1) * stride."""

    base: PrimExpr
    stride: PrimExpr
    lanes: int
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        _check_expr(self, "base", self.base)
        _check_expr(self, "stride", self.stride)
        set_computed(self, "dtype", self.base.dtype.with_lanes(int(self.lanes)))


@node
class Broadcast(PrimExpr):
    """A scalar repeated over `lanes` lanes."""

    value: PrimExpr
    lanes: int
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        _check_expr(self, "value", self.value)
        set_computed(self, "dtype", self.value.dtype.with_lanes(int(self.lanes)))


@node
class Let(PrimExpr):
    """`body` with `var` bound to `value`."""

    var: Var
    value: PrimExpr
    body: PrimExpr
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        if not isinstance(self.var, Var):
            raise VerifyError("Let binds a Var", self)
        _check_expr(self, "value", self.value)
        _check_expr(self, "body", self.body)
        set_computed(self, "dtype", self.body.dtype)


@node
class BufferLoad(PrimExpr):
    """`buffer[indices]`; a Ramp index makes a vector load."""

    buffer: Buffer
    indices: tuple[PrimExpr, ...]
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        set_computed(self, "indices", tuple(self.indices))
        lanes = 1
        for i, index in enumerate(self.indices):
            _check_expr(self, f"indices[{i}]", index)
            lanes = max(lanes, index.dtype.lanes)
        set_computed(self, "dtype", self.buffer.dtype.with_lanes(lanes))


# The construction helpers (and the private builders the operators above call) live in expr_build.py.
from shapeflow.ir.expr_build import (  # noqa: E402, F401 (re-exported, _promote and ExprLike too)
    ExprLike,
    _binary,
    _bitwise,
    _check_expr,
    _promote,
    const,
    const_value,
    convert,
    floordiv,
    floormod,
    is_const_int,
    logical_and,
    logical_not,
    logical_or,
    make_const,
    max_expr,
    min_expr,
    select,
    truncdiv,
    truncmod,
)

__all__ = [
    "PrimExpr",
    "Var",
    "IntImm",
    "FloatImm",
    "StringImm",
    "Cast",
    "BinaryOp",
    "CmpOp",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "FloorDiv",
    "FloorMod",
    "Min",
    "Max",
    "EQ",
    "NE",
    "LT",
    "LE",
    "GT",
    "GE",
    "And",
    "Or",
    "Not",
    "Select",
    "Call",
    "Ramp",
    "Broadcast",
    "Let",
    "BufferLoad",
    "make_const",
    "const",
    "convert",
    "min_expr",
    "max_expr",
    "truncdiv",
    "truncmod",
    "floordiv",
    "floormod",
    "select",
    "logical_and",
    "logical_or",
    "logical_not",
    "is_const_int",
    "const_value",
]
