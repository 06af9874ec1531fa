"""Expressions, bindings and functions of the graph IR (Relax-like).

A graph function's body is a SeqExpr: binding blocks, then a result expression. A binding gives a value a
variable: `VarBinding(var, value)` or `MatchCast(var, value, type)`, which also checks the value against
`type` at run time and defines the symbolic Vars that first appear in it. Inside a DataflowBlock the
bindings are pure and their variables (DataflowVar) are private to the block.

Each variable carries its type, so a normalized program (every call bound to a variable) is fully typed;
`shapeflow.ir.graph.infer.type_of` computes the type of any expression. Constants store their bytes with
shape and dtype, so structural equality and hashing compare them by value without special cases.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType, from_numpy_dtype, to_numpy_dtype
from shapeflow.ir.expr import PrimExpr, convert
from shapeflow.ir.graph.types import ObjectType, TensorType, Type
from shapeflow.ir.node import Node, node, set_computed
from shapeflow.ir.structural import register_bound_node
from shapeflow.ir.tir.function import BaseFunc


class Expr(Node):
    """Base class of graph-level expressions."""

    __slots__ = ()


def _check(owner: Node, field: str, value, kind) -> None:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise VerifyError(
            f"{type(owner).__name__}.{field} must be {names}, got {type(value).__name__}", owner
        )


# ---------------------------------------------------------------------------------------------
# Leaves
# ---------------------------------------------------------------------------------------------


@node
class GraphVar(Expr):
    """A variable of a graph function. Identity matters; the name is a hint (ignored by equality)."""

    name: str
    type: Type = dataclasses.field(default_factory=ObjectType)

    def __post_init__(self):
        _check(self, "name", self.name, str)
        _check(self, "type", self.type, Type)


@node
class DataflowVar(GraphVar):
    """A variable bound inside a DataflowBlock and visible only there."""


@node
class Constant(Expr):
    """A constant tensor, stored as its C-order bytes with `shape` and `dtype`."""

    data: bytes
    shape: tuple[int, ...]
    dtype: DataType

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))
        set_computed(self, "shape", tuple(int(d) for d in self.shape))
        expected = int(np.prod(self.shape, dtype=np.int64)) * to_numpy_dtype(self.dtype).itemsize
        if not isinstance(self.data, bytes) or len(self.data) != expected:
            raise VerifyError(f"Constant of shape {self.shape} {self.dtype} needs {expected} bytes", self)

    @staticmethod
    def from_array(value, dtype=None) -> Constant:
        """A Constant holding `value` (any array-like; converted to `dtype` when given)."""
        array = np.asarray(value, dtype=None if dtype is None else to_numpy_dtype(DataType(dtype)))
        return Constant(np.ascontiguousarray(array).tobytes(), array.shape, from_numpy_dtype(array.dtype))

    @property
    def array(self) -> np.ndarray:
        """The value as a read-only numpy array."""
        return np.frombuffer(self.data, dtype=to_numpy_dtype(self.dtype)).reshape(self.shape)

    @property
    def type(self) -> TensorType:
        return TensorType(self.shape, self.dtype)


@node
class PrimValue(Expr):
    """A scalar value (an int64 shape value, a float) as a graph value."""

    value: PrimExpr

    def __post_init__(self):
        set_computed(self, "value", convert(self.value))


@node
class ShapeExpr(Expr):
    """A shape value built from int64 expressions over symbolic Vars."""

    values: tuple[PrimExpr, ...]

    def __post_init__(self):
        values = tuple(convert(v, "int64") for v in self.values)
        for i, v in enumerate(values):
            if not v.dtype.is_integer:
                raise VerifyError(f"ShapeExpr value {i} must be an integer expression, got {v.dtype}", self)
        set_computed(self, "values", values)


@node
class Op(Expr):
    """An operator by name; its declaration (attributes, inference, reference) is in the op registry."""

    name: str


@node
class GlobalName(Expr):
    """A reference to a function of the enclosing IRModule (a graph function or a PrimFunc)."""

    name: str


@node
class ExternFunc(Expr):
    """A function of the library registry (`shapeflow.ir.graph.ops.dps.register_library_function`)."""

    name: str


# ---------------------------------------------------------------------------------------------
# Compound expressions
# ---------------------------------------------------------------------------------------------


@node
class Tuple(Expr):
    fields: tuple[Expr, ...]

    def __post_init__(self):
        set_computed(self, "fields", tuple(self.fields))
        for i, field in enumerate(self.fields):
            _check(self, f"fields[{i}]", field, Expr)


@node
class TupleGetItem(Expr):
    tuple_value: Expr
    index: int

    def __post_init__(self):
        _check(self, "tuple_value", self.tuple_value, Expr)
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise VerifyError(f"TupleGetItem index must be an int, got {self.index!r}", self)


@node
class Call(Expr):
    """A call of an operator (`Op`), a module function (`GlobalName`) or a variable holding a function.

    `attrs` are the operator's attributes (normalized by the registry: defaults filled in); `type_args`
    carry types a call cannot infer from its arguments: the output types of `call_tir` and
    `call_dps_library`, and the return type of a call of a module function.
    """

    op: Expr
    args: tuple[Expr, ...] = ()
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    type_args: tuple[Type, ...] = ()

    def __post_init__(self):
        _check(self, "op", self.op, Expr)
        set_computed(self, "args", tuple(self.args))
        set_computed(self, "attrs", dict(self.attrs))
        set_computed(self, "type_args", tuple(self.type_args))
        for i, arg in enumerate(self.args):
            _check(self, f"args[{i}]", arg, Expr)
        for i, t in enumerate(self.type_args):
            _check(self, f"type_args[{i}]", t, Type)

    @property
    def op_name(self) -> str | None:
        return self.op.name if isinstance(self.op, (Op, GlobalName)) else None


@node
class If(Expr):
    """`true_branch` if `cond` (a bool scalar tensor or PrimValue) else `false_branch`."""

    cond: Expr
    true_branch: Expr
    false_branch: Expr

    def __post_init__(self):
        _check(self, "cond", self.cond, Expr)
        _check(self, "true_branch", self.true_branch, Expr)
        _check(self, "false_branch", self.false_branch, Expr)


# ---------------------------------------------------------------------------------------------
# Bindings, blocks, functions
# ---------------------------------------------------------------------------------------------


class Binding(Node):
    __slots__ = ()
    var: GraphVar
    value: Expr


@node
class VarBinding(Binding):
    var: GraphVar
    value: Expr

    def __post_init__(self):
        _check(self, "var", self.var, GraphVar)
        _check(self, "value", self.value, Expr)


@node
class MatchCast(Binding):
    """Bind `var` to `value` after checking, at run time, that it has `type`; new symbolic Vars in `type`
    are defined here (bound from the value)."""

    var: GraphVar
    value: Expr
    type: Type

    def __post_init__(self):
        _check(self, "var", self.var, GraphVar)
        _check(self, "value", self.value, Expr)
        _check(self, "type", self.type, Type)


@node
class BindingBlock(Node):
    bindings: tuple[Binding, ...]

    def __post_init__(self):
        set_computed(self, "bindings", tuple(self.bindings))
        for i, b in enumerate(self.bindings):
            _check(self, f"bindings[{i}]", b, Binding)


@node
class DataflowBlock(BindingBlock):
    """Pure bindings whose DataflowVars are private to the block (outputs are bound to GraphVars)."""


@node
class SeqExpr(Expr):
    blocks: tuple[BindingBlock, ...]
    body: Expr

    def __post_init__(self):
        set_computed(self, "blocks", tuple(self.blocks))
        for i, b in enumerate(self.blocks):
            _check(self, f"blocks[{i}]", b, BindingBlock)
        _check(self, "body", self.body, Expr)


@node
class GraphFunction(BaseFunc):
    """A graph-level function. `attrs` may hold "global_symbol" and "var_bounds" ({name: (lo, hi)},
    inclusive bounds of symbolic Vars, checked at run time)."""

    params: tuple[GraphVar, ...]
    body: Expr
    ret_type: Type = dataclasses.field(default_factory=ObjectType)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_computed(self, "params", tuple(self.params))
        set_computed(self, "attrs", dict(self.attrs))
        for i, p in enumerate(self.params):
            _check(self, f"params[{i}]", p, GraphVar)
            if isinstance(p, DataflowVar):
                raise VerifyError(f"parameter {p.name!r} must not be a DataflowVar", self)
        _check(self, "body", self.body, Expr)
        _check(self, "ret_type", self.ret_type, Type)

    @property
    def name(self) -> str | None:
        return self.attrs.get("global_symbol")


# Graph variables are bound objects for structural equality: equal up to consistent renaming.
register_bound_node(GraphVar)
register_bound_node(DataflowVar)


def const(value, dtype=None) -> Constant:
    """A Constant from an array-like (shorthand for Constant.from_array)."""
    return Constant.from_array(value, dtype)


__all__ = [
    "Expr",
    "GraphVar",
    "DataflowVar",
    "Constant",
    "PrimValue",
    "ShapeExpr",
    "Op",
    "GlobalName",
    "ExternFunc",
    "Tuple",
    "TupleGetItem",
    "Call",
    "If",
    "Binding",
    "VarBinding",
    "MatchCast",
    "BindingBlock",
    "DataflowBlock",
    "SeqExpr",
    "GraphFunction",
    "const",
]
