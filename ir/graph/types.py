"""Types of graph-level values: tensors with symbolic shapes, shapes, tuples, scalars, objects, functions.

Types are IR nodes, so structural equality pairs the symbolic dimension Vars of two types exactly as it
pairs loop variables. A TensorType knows its shape (a tuple of int64 PrimExprs over symbolic Vars), or only
its rank (`shape=None, ndim=k`), or nothing (`ndim=-1`); likewise its dtype may be unknown (None). Less
specific types are what a function may promise when inference cannot do better.
"""

from __future__ import annotations

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import PrimExpr, convert
from shapeflow.ir.node import Node, node, set_computed


class Type(Node):
    """Base class of graph-level types."""

    __slots__ = ()


def _to_dims(owner: Node, values) -> tuple[PrimExpr, ...]:
    """Turn ints and int64 expressions into a tuple of int64 PrimExprs; anything else is a VerifyError."""
    dims = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, PrimExpr)):
            raise VerifyError(
                f"{type(owner).__name__} dimension {i} must be an int or int64 PrimExpr, got {value!r}", owner
            )
        expr = convert(value, "int64")
        if not expr.dtype.is_integer or expr.dtype.is_vector:
            raise VerifyError(
                f"{type(owner).__name__} dimension {i} has dtype {expr.dtype}, not int64", owner
            )
        if expr.dtype != "int64":
            expr = expr.astype("int64")
        dims.append(expr)
    return tuple(dims)


def _to_dtype(value) -> DataType | None:
    return None if value is None else DataType(value)


@node
class TensorType(Type):
    """A tensor: `shape` (symbolic dims) or only `ndim` (-1 when the rank is unknown) and `dtype` (None if
    unknown). Given a shape, `ndim` is computed from it; a conflicting `ndim` is a VerifyError."""

    shape: tuple[PrimExpr, ...] | None = None
    dtype: DataType | None = None
    ndim: int = -1

    def __post_init__(self):
        set_computed(self, "dtype", _to_dtype(self.dtype))
        if self.shape is not None:
            shape = _to_dims(self, self.shape)
            if self.ndim not in (-1, len(shape)):
                raise VerifyError(
                    f"TensorType ndim {self.ndim} conflicts with shape of rank {len(shape)}", self
                )
            set_computed(self, "shape", shape)
            set_computed(self, "ndim", len(shape))
        elif not isinstance(self.ndim, int) or self.ndim < -1:
            raise VerifyError(f"TensorType ndim must be an int >= -1, got {self.ndim!r}", self)

    @property
    def known_rank(self) -> bool:
        return self.ndim >= 0


@node
class ShapeType(Type):
    """A shape value (a tuple of int64): its `values` when known, else only its length `ndim`."""

    values: tuple[PrimExpr, ...] | None = None
    ndim: int = -1

    def __post_init__(self):
        if self.values is not None:
            values = _to_dims(self, self.values)
            if self.ndim not in (-1, len(values)):
                raise VerifyError(f"ShapeType ndim {self.ndim} conflicts with {len(values)} values", self)
            set_computed(self, "values", values)
            set_computed(self, "ndim", len(values))


@node
class TupleType(Type):
    """A tuple of values of the field types."""

    fields: tuple[Type, ...] = ()

    def __post_init__(self):
        set_computed(self, "fields", tuple(self.fields))
        for i, field in enumerate(self.fields):
            if not isinstance(field, Type):
                raise VerifyError(f"TupleType field {i} is not a Type: {field!r}", self)


@node
class PrimType(Type):
    """A scalar of `dtype` (e.g. an int64 shape value passed on its own)."""

    dtype: DataType

    def __post_init__(self):
        set_computed(self, "dtype", DataType(self.dtype))


@node
class ObjectType(Type):
    """Any value: the least specific type."""


@node
class FuncType(Type):
    """A function from `params` to `ret`."""

    params: tuple[Type, ...]
    ret: Type

    def __post_init__(self):
        set_computed(self, "params", tuple(self.params))


def tensor(shape=None, dtype=None, ndim: int = -1) -> TensorType:
    """Shorthand for TensorType, accepting ints and PrimExprs in the shape."""
    return TensorType(None if shape is None else tuple(shape), dtype, ndim)


__all__ = ["Type", "TensorType", "ShapeType", "TupleType", "PrimType", "ObjectType", "FuncType", "tensor"]
