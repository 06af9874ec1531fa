"""Converters of ONNX's index-driven ops: TopK, ScatterElements, ScatterND, TensorScatter, GatherND,
ReverseSequence (graph ops in shapeflow.ir.graph.ops.scatter)."""

from __future__ import annotations

from shapeflow.frontend.onnx.context import Context, Node, scalar
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.ops.scatter import REDUCTIONS
from shapeflow.ir.graph.shape import as_int


@converter("TopK", since=10)
def _top_k(ctx: Context, node: Node):
    """k must be known at import time (it is the output's shape)."""
    x = node.inputs[0]
    k = ctx.const(node, 1, "K")
    if k is None or k.size != 1:
        raise node.unsupported("input 'K' must hold one value")
    k = int(k.reshape(-1)[0])
    axis = node.attr("axis", -1)
    largest = bool(node.attr("largest", 1))
    node.attr("sorted", 1)  # sorted=0 leaves the order open: the sorted order is one of the allowed ones
    dtype = ctx.dtype(x)
    if dtype.is_bool:
        raise node.unsupported("dtype bool is not supported")
    rank = ctx.rank(x)
    if not -rank <= axis < rank:
        raise node.unsupported(f"axis {axis} is out of range for rank {rank}")
    indices = ctx.emit(op.topk_indices(ctx.expr(x), axis=axis % rank, k=k, largest=largest))
    values = op.gather_elements(ctx.expr(x), indices, axis=axis % rank)
    return [values, indices]


def _reduction(node: Node) -> str:
    reduction = node.attr("reduction", "none")
    if reduction not in REDUCTIONS:
        raise node.unsupported(f"reduction {reduction!r} is not supported")
    return reduction


@converter("Scatter", since=9)  # ScatterElements' earlier name (opsets 9 and 10), without reduction
@converter("ScatterElements", since=11)
def _scatter_elements(ctx: Context, node: Node):
    data, indices, updates = node.inputs[:3]
    reduction = _reduction(node)
    if reduction != "none" and ctx.dtype(data).is_bool:
        raise node.unsupported(f"reduction {reduction!r} over bool is not supported")
    axis = node.attr("axis", 0)
    rank = ctx.rank(data)
    if not -rank <= axis < rank:
        raise node.unsupported(f"axis {axis} is out of range for rank {rank}")
    return op.scatter_elements(
        ctx.expr(data), ctx.expr(indices), ctx.expr(updates), axis=axis % rank, reduction=reduction
    )


@converter("ScatterND", since=11)
def _scatter_nd(ctx: Context, node: Node):
    data, indices, updates = node.inputs[:3]
    reduction = _reduction(node)
    if reduction != "none" and ctx.dtype(data).is_bool:
        raise node.unsupported(f"reduction {reduction!r} over bool is not supported")
    k = as_int(ctx.shape(indices)[-1])
    if k is None:
        raise node.unsupported("the last dim of indices must be static")
    return op.scatter_nd(ctx.expr(data), ctx.expr(indices), ctx.expr(updates), reduction=reduction)


@converter("TensorScatter", since=24)
def _tensor_scatter(ctx: Context, node: Node):
    cache, update = node.inputs[:2]
    mode = node.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise node.unsupported(f"mode {mode!r} is not supported")
    axis = node.attr("axis", -2)
    rank = ctx.rank(cache)
    if not -rank <= axis < rank or axis % rank == 0:
        raise node.unsupported(f"axis {axis} is not a sequence axis of a rank-{rank} cache")
    if node.input(2):
        where = ctx.expr(node.input(2))
    else:
        batch = ctx.shape(cache)[0]
        where = ctx.emit(op.broadcast_to(scalar(0, "int64"), (batch,)))
    return op.tensor_scatter(ctx.expr(cache), ctx.expr(update), where, axis=axis % rank, mode=mode)


@converter("GatherND", since=11)
def _gather_nd(ctx: Context, node: Node):
    data, indices = node.inputs[:2]
    batch_dims = node.attr("batch_dims", 0)
    k = as_int(ctx.shape(indices)[-1])
    if k is None:
        raise node.unsupported("the last dim of indices must be static")
    if batch_dims < 0 or batch_dims + k > ctx.rank(data):
        raise node.unsupported(f"batch_dims {batch_dims} with index depth {k} exceeds the data's rank")
    return op.gather_nd(ctx.expr(data), ctx.expr(indices), batch_dims=batch_dims)


@converter("ReverseSequence", since=10)
def _reverse_sequence(ctx: Context, node: Node):
    x, lengths = node.inputs[:2]
    batch_axis = node.attr("batch_axis", 1)
    time_axis = node.attr("time_axis", 0)
    if sorted((batch_axis, time_axis)) != [0, 1]:
        raise node.unsupported(f"batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1")
    return op.reverse_sequence(ctx.expr(x), ctx.expr(lengths), batch_axis=batch_axis, time_axis=time_axis)
