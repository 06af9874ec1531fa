"""Printing expressions and attribute values in the text format (docs/text-format.md).

Every expression prints as a Python expression that `ast.parse` reads back into the same tree: operators are
parenthesized by Python precedence (never relying on associativity the parser would not reproduce), and
constants print exactly (`repr` of floats; inf and nan as strings). Dispatch is one dict lookup per node,
keyed by node class.
"""

from __future__ import annotations

import math

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.text.names import FIXED_T_NAMES, Namer, dtype_of_name
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.intrinsics import INTRINSICS

# Python precedence levels (higher binds tighter).
OR, AND, NOT, CMP, ADD, MUL, UNARY, ATOM = 1, 2, 3, 4, 5, 6, 7, 8

INT64 = DataType("int64")

_INFIX = {
    E.Add: (" + ", ADD),
    E.Sub: (" - ", ADD),
    E.Mul: (" * ", MUL),
    E.FloorDiv: (" // ", MUL),
    E.FloorMod: (" % ", MUL),
    E.And: (" and ", AND),
    E.Or: (" or ", OR),
}
_COMPARE = {E.EQ: " == ", E.NE: " != ", E.LT: " < ", E.LE: " <= ", E.GT: " > ", E.GE: " >= "}
_CALLED = {E.Mod: "T.truncmod", E.Min: "T.min", E.Max: "T.max"}


def float_literal(value: float) -> str:
    """A float as the parser reads it back exactly: `repr`, or a quoted string for inf and nan."""
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return '"nan"'
    return '"inf"' if value > 0 else '"-inf"'


def intrinsic_short_form(call: E.Call) -> bool:
    """Whether a Call prints as `T.<op>(args)`: only when parsing that form rebuilds the same Call."""
    op = call.op
    intrinsic = INTRINSICS.get(op)
    if intrinsic is None or op in FIXED_T_NAMES or dtype_of_name(op) is not None:
        return False
    if len(call.args) != intrinsic.arity or not call.args:
        return False
    dtypes = [a.dtype for a in call.args]
    try:
        intrinsic.check(dtypes)
    except VerifyError:
        return False
    return intrinsic.result_dtype(dtypes) == call.dtype


class ExprPrinter:
    """Prints expressions with the names of one function. Unnamed variables met on the way are free: they
    are named on the spot and remembered in `free_vars` (a function declares them with `T.var`)."""

    def __init__(self, namer: Namer | None = None) -> None:
        self.namer = namer or Namer()
        self.free_vars: list[E.Var] = []
        # While printing buffer parameters, unnamed int64 variables are symbolic dimensions defined there.
        self.implicit_dims = False
        cls = type(self)
        self._table = {
            E.Var: cls._var,
            E.IntImm: cls._int,
            E.FloatImm: cls._float,
            E.StringImm: cls._string,
            E.Cast: cls._cast,
            E.Not: cls._not,
            E.Select: cls._select,
            E.Call: cls._call,
            E.Ramp: cls._ramp,
            E.Broadcast: cls._broadcast,
            E.Let: cls._let,
            E.BufferLoad: cls._load,
            E.Div: cls._div,
        }
        for node_cls in _INFIX:
            self._table[node_cls] = cls._infix
        for node_cls in _COMPARE:
            self._table[node_cls] = cls._compare
        for node_cls in _CALLED:
            self._table[node_cls] = cls._called

    # -- entry points ------------------------------------------------------------------------------
    def expr(self, e: E.PrimExpr) -> str:
        return self.prec(e)[0]

    def prec(self, e) -> tuple[str, int]:
        """The text of `e` and its precedence level."""
        method = self._table.get(e.__class__)
        if method is None:
            raise UnsupportedError(f"the text printer cannot print {type(e).__name__} as an expression")
        return method(self, e)

    def operand(self, e, level: int, strict: bool) -> str:
        """`e` as an operand at `level`, parenthesized when it binds looser (or equally, if `strict`)."""
        text, p = self.prec(e)
        if p < level or (strict and p == level):
            return f"({text})"
        return text

    def name_of(self, obj) -> str:
        name = self.namer.names.get(id(obj))
        if name is None:
            if isinstance(obj, Buffer):
                return self.namer.define(obj, obj.name)
            name = self.namer.define(obj, obj.name)
            if not (self.implicit_dims and obj.dtype is INT64):
                self.free_vars.append(obj)
        return name

    # -- leaves ------------------------------------------------------------------------------------
    def _var(self, v):
        return self.name_of(v), ATOM

    def _int(self, e):
        dtype = e.dtype
        if dtype is INT64:
            return str(e.value), (ATOM if e.value >= 0 else UNARY)
        if dtype.is_bool:
            return ("True" if e.value else "False"), ATOM
        return f"T.{dtype}({e.value})", ATOM

    def _float(self, e):
        return f"T.{e.dtype}({float_literal(e.value)})", ATOM

    def _string(self, e):
        return f"T.StringImm({e.value!r})", ATOM

    # -- operators ---------------------------------------------------------------------------------
    def _infix(self, e):
        symbol, level = _INFIX[e.__class__]
        return self.operand(e.a, level, False) + symbol + self.operand(e.b, level, True), level

    def _compare(self, e):
        return self.operand(e.a, CMP, True) + _COMPARE[e.__class__] + self.operand(e.b, CMP, True), CMP

    def _div(self, e):
        if e.a.dtype.is_float:
            return self.operand(e.a, MUL, False) + " / " + self.operand(e.b, MUL, True), MUL
        return f"T.truncdiv({self.expr(e.a)}, {self.expr(e.b)})", ATOM

    def _called(self, e):
        return f"{_CALLED[e.__class__]}({self.expr(e.a)}, {self.expr(e.b)})", ATOM

    def _not(self, e):
        return "not " + self.operand(e.a, NOT, False), NOT

    def _select(self, e):
        return (
            f"T.Select({self.expr(e.condition)}, {self.expr(e.true_value)}, {self.expr(e.false_value)})",
            ATOM,
        )

    def _cast(self, e):
        return f'T.Cast("{e.dtype}", {self.expr(e.value)})', ATOM

    def _call(self, e):
        args = ", ".join(self.expr(a) for a in e.args)
        if intrinsic_short_form(e):
            return f"T.{e.op}({args})", ATOM
        return f'T.call("{e.dtype}", {e.op!r}{", " if args else ""}{args})', ATOM

    def _ramp(self, e):
        return f"T.Ramp({self.expr(e.base)}, {self.expr(e.stride)}, {e.lanes})", ATOM

    def _broadcast(self, e):
        return f"T.Broadcast({self.expr(e.value)}, {e.lanes})", ATOM

    def _let(self, e):
        value = self.expr(e.value)
        name = self.namer.define(e.var, e.var.name)
        extra = "" if e.var.dtype == e.value.dtype else f', dtype="{e.var.dtype}"'
        return f"T.Let({name}, {value}, {self.expr(e.body)}{extra})", ATOM

    def _load(self, e):
        return f"{self.name_of(e.buffer)}[{self.indices(e.indices)}]", ATOM

    def indices(self, indices) -> str:
        if not indices:
            return "()"
        return ", ".join(self.expr(i) for i in indices)

    # -- attribute values ----------------------------------------------------------------------------
    def value(self, v) -> str:
        """An attribute value: Python literals as literals, IR as IR. Top-level int64 and bool constants
        are spelled `T.int64(5)` / `T.bool(True)`, since bare `5` and `True` read back as Python values."""
        if v is None or isinstance(v, bool):
            return repr(v)
        if isinstance(v, int):
            return repr(int(v))
        if isinstance(v, float):
            return repr(v) if math.isfinite(v) else f"float({float_literal(v)})"
        if isinstance(v, str):
            return repr(str(v))
        if isinstance(v, tuple):
            if len(v) == 1:
                return f"({self.value(v[0])},)"
            return "(" + ", ".join(self.value(x) for x in v) + ")"
        if isinstance(v, list):
            return "[" + ", ".join(self.value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.key(k)}: {self.value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, E.IntImm) and (v.dtype is INT64 or v.dtype.is_bool):
            return f"T.{v.dtype}({v.value})"
        if isinstance(v, E.PrimExpr):
            return self.expr(v)
        if isinstance(v, Buffer):
            return self.name_of(v)
        if hasattr(v, "dtype") and hasattr(v, "item"):  # numpy scalars
            return self.value(v.item())
        raise UnsupportedError(f"cannot print an attribute value of type {type(v).__name__}: {v!r}")

    def key(self, k) -> str:
        if k is None or isinstance(k, (bool, int, float, str)) or isinstance(k, tuple):
            return self.value(k)
        raise UnsupportedError(f"cannot print an attribute key of type {type(k).__name__}: {k!r}")
