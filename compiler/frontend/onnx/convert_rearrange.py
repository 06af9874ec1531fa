"""ONNX converters that rearrange or mask a tensor without changing what its shape is made of: Trilu, CumSum,
CumProd, Dropout (inference, and training at ratio 0), DepthToSpace, SpaceToDepth, CenterCropPad."""

from __future__ import annotations

from shapeflow.frontend.onnx.context import scalar
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir import expr as E
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int, simplify


@converter("Trilu")
def _trilu(ctx, node):
    k = ctx.const(node, 1, "k")
    k = 0 if k is None else int(k.reshape(()))
    x = ctx.expr(node.inputs[0])
    return op.triu(x, k) if node.attr("upper", 1) else op.tril(x, k)


def _cumulative(graph_op: str):
    build = getattr(op, graph_op)

    def convert(ctx, node):
        axis = int(ctx.const(node, 1, "axis").reshape(()))
        x = ctx.expr(node.inputs[0])
        return build(x, axis, bool(node.attr("exclusive", 0)), bool(node.attr("reverse", 0)))

    return convert


converter("CumSum")(_cumulative("cumsum"))
converter("CumProd")(_cumulative("cumprod"))


@converter("Dropout", since=12)
def _dropout(ctx, node):
    node.attr("seed")
    training = ctx.const(node, 2, "training_mode")
    if training is not None and bool(training.reshape(())):
        # Training mode drops nothing at ratio 0 (the identity with an all-true mask, as below); any other
        # ratio needs the reference's random numbers.
        ratio = ctx.const(node, 1, "ratio")
        if ratio is None or float(ratio.reshape(())) != 0.0:
            raise node.unsupported("training_mode=True with a non-zero ratio is not supported")
    x = ctx.expr(node.inputs[0])
    out = op.add(x, scalar(0, ctx.dtype(node.inputs[0])))
    if len(node.outputs) > 1 and node.outputs[1]:
        return [out, op.full(tuple(ctx.shape(node.inputs[0])), "bool", 1.0)]
    return out


@converter("DepthToSpace")
def _depth_to_space(ctx, node):
    b, c, h, w = ctx.shape(node.inputs[0])
    bs = node.attr("blocksize")
    mode = node.attr("mode", "DCR")
    cc = simplify(E.floordiv(c, bs * bs))
    x = ctx.expr(node.inputs[0])
    if mode == "DCR":
        y = op.permute_dims(op.reshape(x, (b, bs, bs, cc, h, w)), (0, 3, 4, 1, 5, 2))
    else:
        y = op.permute_dims(op.reshape(x, (b, cc, bs, bs, h, w)), (0, 1, 4, 2, 5, 3))
    return op.reshape(y, (b, cc, simplify(h * bs), simplify(w * bs)))


@converter("SpaceToDepth")
def _space_to_depth(ctx, node):
    b, c, h, w = ctx.shape(node.inputs[0])
    bs = node.attr("blocksize")
    mode = node.attr("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise node.unsupported(f"mode {mode!r}")
    hh, ww = simplify(E.floordiv(h, bs)), simplify(E.floordiv(w, bs))
    x = ctx.expr(node.inputs[0])
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    y = op.permute_dims(op.reshape(x, (b, c, hh, bs, ww, bs)), perm)
    return op.reshape(y, (b, simplify(c * bs * bs), hh, ww))


@converter("CenterCropPad")
def _center_crop_pad(ctx, node):
    """Per axis: crop the centre when the target is smaller, zero-pad around it when larger (the odd
    element goes to the end in both cases)."""
    shape = [as_int(d) for d in ctx.shape(node.inputs[0])]
    target = [int(v) for v in ctx.const(node, 1, "shape").reshape(-1)]
    rank = len(shape)
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    x = ctx.expr(node.inputs[0])
    widths = [0] * (2 * rank)
    for a, want in zip(axes, target):
        dim = shape[a]
        if dim is None:
            raise node.unsupported("a symbolic dimension")
        if want < dim:
            start = (dim - want) // 2
            x = op.strided_slice(x, (a,), (start,), (start + want,), (1,))
        elif want > dim:
            widths[2 * a] = (want - dim) // 2
            widths[2 * a + 1] = want - dim - (want - dim) // 2
    return op.pad(x, tuple(widths), 0.0) if any(widths) else op.add(x, scalar(0, ctx.dtype(node.inputs[0])))
