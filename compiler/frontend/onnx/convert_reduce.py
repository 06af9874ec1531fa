"""Converters of ONNX reductions: ReduceSum/Mean/Max/Min/Prod, the L1/L2/SumSquare/LogSum/LogSumExp
variants, ArgMax/ArgMin, Softmax/LogSoftmax."""

from __future__ import annotations

import math

from shapeflow.frontend.onnx.context import Context, Node, scalar
from shapeflow.frontend.onnx.registry import register_simple
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int

# Opset in which each reduction's axes moved from an attribute to an input.
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def reduce_axes(ctx: Context, node: Node) -> tuple[int, ...] | None:
    """The reduced axes (None: all); refuses reductions over a dim that is provably empty."""
    rank = ctx.rank(node.inputs[0])
    noop = node.attr("noop_with_empty_axes", 0)
    if node.version >= _AXES_INPUT_SINCE.get(node.op_type, 18):
        value = ctx.const(node, 1, "axes")
        axes = None if value is None or value.size == 0 else [int(a) for a in value.reshape(-1)]
        if axes is None and noop:
            return ()
    else:
        axes = node.attr("axes")
    axes = tuple(range(rank)) if axes is None else tuple(a % rank if rank else a for a in axes)
    return axes


# The value of each reduction over no elements (ONNX's empty-set convention).
_EMPTY = {
    "sum": 0.0,
    "l1": 0.0,
    "l2": 0.0,
    "sum_square": 0.0,
    "prod": 1.0,
    "max": -math.inf,
    "min": math.inf,
    "log_sum": -math.inf,
    "log_sum_exp": -math.inf,
}


def _empty_reduction(ctx: Context, node: Node, kind: str, axes, keep: bool):
    """A reduction over a dim of size 0: the reduction's identity, filled into the output shape."""
    dtype = ctx.dtype(node.inputs[0])
    if kind not in _EMPTY or not dtype.is_float:
        raise node.unsupported(f"reducing {dtype} over an empty dimension is not supported")
    shape = ctx.shape(node.inputs[0])
    out = [1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes]
    return op.full(tuple(out), str(dtype), _EMPTY[kind])


def _reduction(kind: str):
    def convert(ctx: Context, node: Node):
        x = ctx.expr(node.inputs[0])
        keep = bool(node.attr("keepdims", 1))
        axes = reduce_axes(ctx, node)
        dtype = ctx.dtype(node.inputs[0])
        if axes == ():
            return op.add(x, scalar(0, dtype))
        if ctx.rank(node.inputs[0]) == 0:
            raise node.unsupported("reducing a rank-0 tensor is not supported")
        if any(as_int(ctx.shape(node.inputs[0])[a]) == 0 for a in axes):
            return _empty_reduction(ctx, node, kind, axes, keep)
        if kind in ("sum", "mean", "max", "min", "prod"):
            return getattr(op, kind)(x, axes, keep)
        if kind == "l1":
            return op.sum(op.abs(x), axes, keep)
        if kind == "sum_square":
            return op.sum(op.multiply(x, x), axes, keep)
        if not dtype.is_float:
            raise node.unsupported(f"dtype {dtype} is not supported")
        if kind == "l2":
            return op.sqrt(op.sum(op.multiply(x, x), axes, keep))
        if kind == "log_sum":
            return op.log(op.sum(x, axes, keep))
        # log-sum-exp, shifted by the max so that large inputs do not overflow
        top = op.max(x, axes, True)
        total = op.sum(op.exp(op.subtract(x, top)), axes, keep)
        shift = top if keep else op.squeeze(top, axes)
        return op.add(op.log(total), shift)

    return convert


_REDUCTIONS = {
    "ReduceSum": "sum",
    "ReduceMean": "mean",
    "ReduceMax": "max",
    "ReduceMin": "min",
    "ReduceProd": "prod",
    "ReduceL1": "l1",
    "ReduceL2": "l2",
    "ReduceSumSquare": "sum_square",
    "ReduceLogSum": "log_sum",
    "ReduceLogSumExp": "log_sum_exp",
}
for _onnx, _kind in _REDUCTIONS.items():
    register_simple(_onnx, _reduction(_kind), since=1)


def _arg(graph_op: str):
    build = getattr(op, graph_op)

    def convert(ctx: Context, node: Node):
        shape = ctx.shape(node.inputs[0])
        axis = node.attr("axis", 0) % len(shape)
        if as_int(shape[axis]) == 0:
            raise node.unsupported("an empty axis")
        x = ctx.expr(node.inputs[0])
        keep = bool(node.attr("keepdims", 1))
        if not node.attr("select_last_index", 0):
            return build(x, axis, keep)
        # The last extreme is the first one of the reversed axis, counted from the end.
        if as_int(shape[axis]) is None:
            raise node.unsupported("select_last_index=1 over a symbolic axis is not supported")
        last = as_int(shape[axis]) - 1
        flipped = op.strided_slice(x, (axis,), (last,), (-1,), (-1,))
        return op.subtract(scalar(last, "int64"), build(flipped, axis, keep))

    return convert


register_simple("ArgMax", _arg("argmax"))
register_simple("ArgMin", _arg("argmin"))


def _softmax(graph_op: str):
    build = getattr(op, graph_op)

    def convert(ctx: Context, node: Node):
        name = node.inputs[0]
        if not ctx.dtype(name).is_float:
            raise node.unsupported(f"dtype {ctx.dtype(name)} is not supported")
        return build(ctx.expr(name), node.attr("axis", -1))

    return convert


register_simple("Softmax", _softmax("softmax"), since=13)
register_simple("LogSoftmax", _softmax("log_softmax"), since=13)
