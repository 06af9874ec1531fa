"""Helpers the op families use to write their legalizations in `shapeflow.te`.

A legalization is `legalize(inputs, out, **attrs)`: `inputs` are te placeholders with the arguments' symbolic
shapes (the very int64 Vars of the graph types), `out` is the call's inferred type, and the result is the
te tensor (or tuple of tensors) computing it. Output shapes are taken from `out`, so a kernel's buffers carry
exactly the dims inference proved (reshape's -1 resolved, broadcast dims as inferred).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import PrimExpr, make_const
from shapeflow.ir.graph.shape import as_int, compare_dims
from shapeflow.ir.graph.types import TensorType, TupleType, Type
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import AssertStmt, For, ForKind, Stmt, seq


def out_shape(out: Type, index: int = 0) -> tuple[PrimExpr, ...]:
    """The shape of output `index` of a (tuple of) tensor type(s)."""
    t = out.fields[index] if isinstance(out, TupleType) else out
    assert isinstance(t, TensorType) and t.shape is not None  # legalize_call checked this
    return t.shape


def out_dtype(out: Type, index: int = 0) -> DataType:
    t = out.fields[index] if isinstance(out, TupleType) else out
    return t.dtype


def const(value, dtype) -> PrimExpr:
    return make_const(dtype, value)


def broadcast_index(x: te.Tensor, indices: Sequence[PrimExpr], shape: Sequence[PrimExpr]) -> list[PrimExpr]:
    """Indices into `x` for output position `indices` of the broadcast shape `shape` (numpy rules).

    A dim provably equal to the output's takes the index, a literal 1 takes 0, and a symbolic dim that
    might be 1 at run time selects between the two (inference may have left `max(n, m)`)."""
    offset = len(shape) - x.ndim
    out = []
    for d, dim in enumerate(x.shape):
        i = indices[offset + d]
        if as_int(dim) == 1:
            out.append(const(0, "int64"))
        elif compare_dims(dim, shape[offset + d]) is True:
            out.append(i)
        else:
            out.append(E.select(E.EQ(dim, const(1, "int64")), const(0, "int64"), i))
    return out


def bload(x: te.Tensor, indices: Sequence[PrimExpr], shape: Sequence[PrimExpr]) -> PrimExpr:
    """x broadcast to `shape`, read at `indices`."""
    return x[tuple(broadcast_index(x, indices, shape))]


def elementwise(
    inputs: Sequence[te.Tensor], out: Type, fn: Callable[..., PrimExpr], name: str = "compute"
) -> te.Tensor:
    """out[i] = fn(*(x broadcast to out's shape)[i] for x in inputs)."""
    shape = out_shape(out)
    return te.compute(shape, lambda *idx: fn(*(bload(x, idx, shape) for x in inputs)), name=name)


def reduce_axes(shape: Sequence[PrimExpr], axes: Sequence[int], prefix: str = "k") -> list:
    return [te.reduce_axis((0, shape[a]), name=f"{prefix}{a}") for a in axes]


def reduction(
    x: te.Tensor,
    axes: Sequence[int],
    keepdims: bool,
    make: Callable[[list[PrimExpr], list], PrimExpr],
    name: str,
) -> te.Tensor:
    """A compute over x's shape with `axes` reduced (kept as 1 when `keepdims`); `make(full_index,
    reduce_axes)` returns the reduction body given the full input index."""
    axes = sorted(axes)
    out = [(const(1, "int64") if keepdims else None) if d in axes else dim for d, dim in enumerate(x.shape)]
    out = [d for d in out if d is not None]

    def body(*idx):
        rvs = reduce_axes(x.shape, axes)
        it, rit = iter(idx), iter(rvs)
        full = []
        for d in range(x.ndim):
            if d in axes:
                full.append(next(rit))
                if keepdims:
                    next(it)
            else:
                full.append(next(it))
        return make(full, rvs)

    return te.compute(tuple(out), body, name=name)


def keep_index(idx: Sequence[PrimExpr], axes: Sequence[int]) -> tuple[PrimExpr, ...]:
    """The index into a keepdims reduction result: 0 along the reduced axes."""
    return tuple(const(0, "int64") if d in axes else i for d, i in enumerate(idx))


def cast(value: PrimExpr, dtype) -> PrimExpr:
    dtype = DataType(dtype)
    return value if value.dtype == dtype else value.astype(dtype)


# ---------------------------------------------------------------------------------------------
# Index checks: conditions on the values of index tensors, asserted inside the kernel
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IndexCheck:
    """Every value v of input tensor `indices` must satisfy -extent <= v < extent (numpy `take` and ONNX
    Gather/GatherElements: negative indices count from the end; anything else is an error, numpy raises).

    The values are only known when the kernel runs, so the kernel checks them itself: a loop over
    `indices` with an AssertStmt, before the computation reads anything with them. A failure returns the
    kernel's error status, which the runtime raises as a shapeflow Error with `message` (it names the op)."""

    indices: te.Tensor
    extent: PrimExpr
    message: str


def with_shape_asserts(func: PrimFunc, requirements: Sequence) -> PrimFunc:
    """`func` asserting, before anything else, the shape requirements (shapeflow.ir.graph.shape.Requirement)
    its op's inference recorded: relations between the kernel's symbolic dims that it relies on."""
    conds = {"equal": E.EQ, "le": E.LE}
    asserts = []
    for r in requirements:
        if r.kind == "broadcast":
            cond = E.logical_or(E.EQ(r.value, const(1, "int64")), E.EQ(r.value, r.other))
        else:
            cond = conds[r.kind](r.value, r.other)
        asserts.append(AssertStmt(cond, r.what))
    return _prepend(func, asserts) if asserts else func


def _prepend(func: PrimFunc, stmts: Sequence[Stmt]) -> PrimFunc:
    realize = func.body
    root = realize.block
    return func.with_body(replace(realize, block=replace(root, body=seq(*stmts, root.body))))


def with_index_checks(func: PrimFunc, inputs: Sequence[te.Tensor], checks: Sequence[IndexCheck]) -> PrimFunc:
    """`func` (made by create_prim_func with `inputs` as its first parameters) asserting `checks` first."""
    buffers = {id(t): p for t, p in zip(inputs, func.params)}
    nests = [_check_nest(buffers[id(c.indices)], c.extent, c.message) for c in checks]
    return _prepend(func, nests) if nests else func


def _check_nest(buf: Buffer, extent: PrimExpr, message: str) -> Stmt:
    loop_vars = [E.Var(f"i_check{d}", "int64") for d in range(buf.ndim)]
    value = cast(E.BufferLoad(buf, tuple(loop_vars)), "int64")
    n = cast(extent, "int64")
    stmt: Stmt = AssertStmt(E.logical_and(E.GE(value, -n), E.LT(value, n)), message)
    for d in reversed(range(buf.ndim)):
        stmt = For(loop_vars[d], 0, buf.shape[d], ForKind.SERIAL, stmt)
    return stmt
