"""Tensors, the operations that produce them, and the expression nodes that exist only inside te.

A `Tensor` is the output of an operation: a `PlaceholderOp` (an input) or a `ComputeOp` (an output defined
element-wise by a Python function). Indexing a tensor, `A[i, j]`, gives a `TensorLoad`, an expression that
names the tensor rather than a buffer: buffers are made only by `create_prim_func`, so one tensor graph can
become several functions, each with buffers of its own (as in TVM).

`TensorLoad`, `Reduce` and `ReduceAxis` are PrimExpr subclasses so that Python operators build ordinary IR
around them; they never reach a PrimFunc, because `create_prim_func` replaces every one of them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Cast, PrimExpr, Var, const, convert
from shapeflow.ir.functor import post_order_visit
from shapeflow.ir.node import node, set_computed
from shapeflow.ir.tir.stmt import IterType, Range

# ---------------------------------------------------------------------------------------------
# Expression nodes private to te
# ---------------------------------------------------------------------------------------------


@node
class ReduceAxis(Var):
    """A reduction axis (`te.reduce_axis`): an int64 variable ranging over `dom`.

    It is a Var so that `A[i, k * 2 + 1]` and `i + k` build expressions directly; `.var` and `.dom`
    give TVM's IterVar view of it.
    """

    dom: Range | None = None

    def __post_init__(self):
        Var.__post_init__(self)
        if not isinstance(self.dom, Range):
            raise VerifyError(f"reduce axis {self.name!r} needs a Range domain", self)

    @property
    def var(self) -> ReduceAxis:
        return self

    @property
    def iter_type(self) -> IterType:
        return IterType.REDUCE


@node
class TensorLoad(PrimExpr):
    """`tensor[indices]` inside a te expression; becomes a BufferLoad in `create_prim_func`."""

    tensor: Tensor
    indices: tuple[PrimExpr, ...]
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        set_computed(self, "indices", tuple(self.indices))
        set_computed(self, "dtype", self.tensor.dtype)


@node
class Reduce(PrimExpr):
    """A commutative reduction of `source` over `axis` where `condition` holds, starting from `init`
    (the combiner's identity when None). Only legal as the whole body of a compute (TVM's rule)."""

    combiner: Any  # a CommReducer; not a Node, so generic visitors do not walk into it
    source: PrimExpr
    axis: tuple[ReduceAxis, ...]
    condition: PrimExpr | None = None
    init: PrimExpr | None = None
    dtype: DataType = dataclasses.field(init=False)

    def __post_init__(self):
        set_computed(self, "axis", tuple(self.axis))
        set_computed(self, "dtype", self.source.dtype)


# ---------------------------------------------------------------------------------------------
# Operations and tensors
# ---------------------------------------------------------------------------------------------


class Operation:
    """Base of the operations that produce tensors."""

    name: str
    tag: str = ""
    attrs: dict[str, Any]
    outputs: tuple[Tensor, ...]

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def output(self, index: int) -> Tensor:
        return self.outputs[index]

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return ()


class PlaceholderOp(Operation):
    """An input tensor: storage the caller provides."""

    def __init__(self, name: str, shape: tuple[PrimExpr, ...], dtype: DataType):
        self.name = name
        self.attrs = {}
        self.outputs = (Tensor(self, 0, shape, dtype, name),)

    def __repr__(self) -> str:
        return f"PlaceholderOp({self.name!r})"


class ComputeOp(Operation):
    """Outputs defined element-wise: `outputs[n][axis] = bodies[n]`, one index variable per dimension."""

    def __init__(
        self,
        name: str,
        tag: str,
        attrs: dict[str, Any],
        axis: tuple[Var, ...],
        bodies: tuple[PrimExpr, ...],
        shape: tuple[PrimExpr, ...],
    ):
        self.name = name
        self.tag = tag
        self.attrs = dict(attrs)
        self.axis = axis
        self.bodies = bodies
        first = bodies[0]
        self.reduce_axis: tuple[ReduceAxis, ...] = first.axis if isinstance(first, Reduce) else ()
        names = [name] if len(bodies) == 1 else [f"{name}_v{n}" for n in range(len(bodies))]
        self.outputs = tuple(Tensor(self, n, shape, body.dtype, names[n]) for n, body in enumerate(bodies))
        self._inputs = _tensors_read_by(bodies)

    @property
    def body(self) -> tuple[PrimExpr, ...]:
        return self.bodies

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return self._inputs

    def __repr__(self) -> str:
        return f"ComputeOp({self.name!r})"


class Tensor:
    """An n-dimensional array produced by an operation; `A[i, j]` (or `A(i, j)`) reads one element."""

    __slots__ = ("op", "value_index", "shape", "dtype", "name")

    def __init__(
        self, op: Operation, value_index: int, shape: tuple[PrimExpr, ...], dtype: DataType, name: str
    ):
        self.op = op
        self.value_index = value_index
        self.shape = shape
        self.dtype = dtype
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices) -> PrimExpr:
        if not isinstance(indices, tuple):
            indices = (indices,)
        return self._load(indices)

    def __call__(self, *indices) -> PrimExpr:
        return self._load(indices)

    def _load(self, indices: tuple) -> TensorLoad:
        if len(indices) != self.ndim:
            raise VerifyError(
                f"tensor {self.name!r} has {self.ndim} dimensions but is indexed with {len(indices)} indices"
            )
        converted = []
        for d, index in enumerate(indices):
            if isinstance(index, slice):
                raise VerifyError(f"tensor {self.name!r}: slices are not supported in te, index one element")
            if isinstance(index, (bool, float)) or not isinstance(index, (int, PrimExpr)):
                raise VerifyError(
                    f"tensor {self.name!r}: index {d} must be an integer expression, got {index!r}"
                )
            index = convert(index, "int64")
            if not index.dtype.is_integer or index.dtype.is_vector:
                raise VerifyError(
                    f"tensor {self.name!r}: index {d} must be a scalar integer expression, got {index.dtype}"
                )
            converted.append(index)
        return TensorLoad(self, tuple(converted))

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        dims = ", ".join(str(s) for s in self.shape)
        return f"Tensor({self.name!r}, shape=({dims}), dtype={self.dtype})"


# ---------------------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------------------


def var(name: str = "tindex", dtype: str | DataType = "int64") -> Var:
    """A symbolic variable: a dimension (int64) or a scalar parameter of any dtype."""
    if not isinstance(name, str) or not name:
        raise VerifyError(f"te.var needs a non-empty str name, got {name!r}")
    return Var(name, DataType(dtype))


def size_var(name: str = "size", dtype: str | DataType = "int64") -> Var:
    """A symbolic size. Sizes are >= 1 by convention (bounds go in `create_prim_func(var_bounds=...)`);
    the variable itself is an ordinary int64 Var."""
    return var(name, dtype)


def placeholder(shape, dtype: str | DataType = "float32", name: str = "placeholder") -> Tensor:
    """An input tensor of `shape` (ints and int64 expressions) and `dtype`."""
    _check_name(name, "te.placeholder")
    return PlaceholderOp(name, normalize_shape(shape, name), DataType(dtype)).output(0)


def compute(
    shape, fcompute: Callable, name: str = "compute", tag: str = "", attrs: dict[str, Any] | None = None
) -> Tensor | tuple[Tensor, ...]:
    """A tensor whose element at `(i, j, ...)` is `fcompute(i, j, ...)`.

    `fcompute` gets one int64 index variable per output dimension (named after its parameters) and
    returns an expression, a reduction (`te.sum(...)`, only as the whole result), or a tuple of
    expressions for several outputs of one shape (then a tuple of tensors is returned).
    """
    _check_name(name, "te.compute")
    shape = normalize_shape(shape, name)
    axis = tuple(Var(n, DataType("int64")) for n in _index_names(fcompute, len(shape), name))
    result = fcompute(*axis)
    results = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if not results:
        raise VerifyError(f"te.compute {name!r}: fcompute returned an empty tuple")
    bodies = tuple(_to_body(value, name) for value in results)
    _check_bodies(bodies, axis, name)
    op = ComputeOp(name, tag, attrs or {}, axis, bodies, shape)
    return op.outputs if isinstance(result, (tuple, list)) else op.output(0)


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _check_name(name, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise VerifyError(f"{what} needs a non-empty str name, got {name!r}")


def normalize_shape(shape, tensor_name: str) -> tuple[PrimExpr, ...]:
    """A shape as a tuple of int64 expressions; ints must be >= 0, expressions must be integers."""
    if isinstance(shape, (int, PrimExpr)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise VerifyError(
            f"tensor {tensor_name!r}: shape must be a tuple of ints or int expressions, got {shape!r}"
        )
    out = []
    for d, extent in enumerate(shape):
        if isinstance(extent, bool) or not isinstance(extent, (int, PrimExpr)):
            raise VerifyError(
                f"tensor {tensor_name!r}: dimension {d} of the shape must be an int or an integer "
                f"expression, got {extent!r}"
            )
        if isinstance(extent, int):
            if extent < 0:
                raise VerifyError(f"tensor {tensor_name!r}: dimension {d} is negative ({extent})")
            out.append(const(extent, "int64"))
            continue
        if isinstance(extent, (TensorLoad, Reduce)) or _contains(extent, (TensorLoad, Reduce)):
            raise VerifyError(f"tensor {tensor_name!r}: dimension {d} of the shape reads a tensor")
        if not extent.dtype.is_integer or extent.dtype.is_vector:
            raise VerifyError(
                f"tensor {tensor_name!r}: dimension {d} must be a scalar integer expression, "
                f"got {extent.dtype}"
            )
        out.append(extent if extent.dtype == "int64" else Cast(DataType("int64"), extent))
    return tuple(out)


def _index_names(fcompute: Callable, ndim: int, name: str) -> list[str]:
    if not callable(fcompute):
        raise VerifyError(f"te.compute {name!r}: fcompute must be callable, got {fcompute!r}")
    try:
        params = list(inspect.signature(fcompute).parameters.values())
    except (TypeError, ValueError):
        return [f"i{d}" for d in range(ndim)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return [f"i{d}" for d in range(ndim)]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= ndim <= len(positional):
        raise VerifyError(
            f"te.compute {name!r}: fcompute takes {len(required)} index arguments but the shape has {ndim} "
            "dimensions"
        )
    return [p.name for p in positional[:ndim]]


def _to_body(value, name: str) -> PrimExpr:
    if isinstance(value, (bool, int, float)):
        return const(value)
    if isinstance(value, Tensor):
        raise VerifyError(
            f"te.compute {name!r}: fcompute returned the tensor {value.name!r}; "
            f"index it, e.g. {value.name}[i]"
        )
    if not isinstance(value, PrimExpr):
        raise VerifyError(
            f"te.compute {name!r}: fcompute must return an expression, got {type(value).__name__} {value!r}"
        )
    if value.dtype.is_vector or value.dtype.is_handle:
        raise VerifyError(f"te.compute {name!r}: elements must be scalars, got dtype {value.dtype}")
    return value


def _check_bodies(bodies: tuple[PrimExpr, ...], axis: tuple[Var, ...], name: str) -> None:
    """TVM's rules: a reduction is the whole body; reduce axes are used only inside their reduction."""
    reductions = [b for b in bodies if isinstance(b, Reduce)]
    if reductions and len(bodies) > 1:
        raise VerifyError(f"te.compute {name!r}: a compute with several outputs cannot contain a reduction")
    axis_ids = {id(v) for v in axis}
    for body in bodies:
        # (expression, the reduce axes it may use): init runs once per output element, before any step.
        if isinstance(body, Reduce):
            reduced = {id(a) for a in body.axis}
            parts = [(body.source, reduced), (body.condition, reduced), (body.init, set())]
        else:
            parts = [(body, set())]
        for part, allowed in parts:
            if part is None:
                continue
            if _contains(part, (Reduce,)):
                raise VerifyError(
                    f"te.compute {name!r}: a reduction (te.sum, te.max, ...) must be the whole body of a "
                    "compute, not part of an expression or of another reduction; compute it as a separate "
                    "tensor"
                )
            for found in _vars_in(part):
                if isinstance(found, ReduceAxis) and id(found) not in allowed:
                    raise VerifyError(
                        f"te.compute {name!r}: reduce axis {found.name!r} is used outside a reduction over it"
                    )
        if isinstance(body, Reduce):
            for ax in body.axis:
                for found in _vars_in(ax.dom):
                    if id(found) in axis_ids or isinstance(found, ReduceAxis):
                        raise VerifyError(
                            f"te.compute {name!r}: the domain of reduce axis {ax.name!r} depends on the "
                            f"index {found.name!r}; reduce axis domains must not depend on other axes"
                        )


def _contains(expr, types: tuple[type, ...]) -> bool:
    found = []
    post_order_visit(expr, lambda n: found.append(n) if isinstance(n, types) else None)
    return bool(found)


def _vars_in(obj) -> list[Var]:
    found: list[Var] = []
    post_order_visit(obj, lambda n: found.append(n) if isinstance(n, Var) else None)
    return found


def _tensors_read_by(exprs: Sequence[PrimExpr]) -> tuple[Tensor, ...]:
    """The tensors the expressions load from, in order of first appearance."""
    seen: dict[int, Tensor] = {}

    def visit(n):
        if isinstance(n, TensorLoad):
            seen.setdefault(id(n.tensor), n.tensor)

    for e in exprs:
        post_order_visit(e, visit)
    return tuple(seen.values())
