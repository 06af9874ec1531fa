"""Converters of the ONNX type conversions: Cast, CastLike, QuantizeLinear, DequantizeLinear."""

from __future__ import annotations

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node, onnx_dtype
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op

# -- Cast, CastLike ----------------------------------------------------------------------------------


def _fold_cast(ctx: Context, node: Node):
    value = ctx.known_value(node.inputs[0])
    target = onnx_dtype(node.attr("to"), "ONNX op 'Cast' attribute 'to'")
    node.attr("saturate")
    if value is None or value.dtype != object or not target.is_integer:
        return None
    return [value]


@converter("Cast", fold=_fold_cast)
def _cast(ctx: Context, node: Node):
    target = onnx_dtype(node.attr("to"), "ONNX op 'Cast' attribute 'to'")
    node.attr("saturate")  # only meaningful for float8 targets, which are refused above
    return op.astype(ctx.expr(node.inputs[0]), str(target))


@converter("CastLike")
def _cast_like(ctx: Context, node: Node):
    node.attr("saturate")
    return op.astype(ctx.expr(node.inputs[0]), str(ctx.dtype(node.inputs[1])))


# -- QuantizeLinear, DequantizeLinear ----------------------------------------------------------------------


def _per_axis(ctx: Context, node: Node, value_name: str, param_name: str, expr):
    """A scale or zero point: per tensor as is; per axis (1-D) reshaped to broadcast along `axis`."""
    if node.attr("block_size", 0):
        raise node.unsupported("blocked quantization is not supported")
    pshape = ctx.shape(param_name)
    if len(pshape) == 0:
        return expr
    if len(pshape) != 1:
        raise node.unsupported("scales of rank > 1 are not supported")
    rank = ctx.rank(value_name)
    axis = node.attr("axis", 1) % rank
    shape = [1] * rank
    shape[axis] = pshape[0]
    return op.reshape(expr, tuple(shape))


@converter("DequantizeLinear", since=13)
def _dequantize(ctx, node):
    x_name, scale_name = node.inputs[0], node.inputs[1]
    out_attr = node.attr("output_dtype", 0)
    dtype = ctx.dtype(scale_name) if not out_attr else onnx_dtype(out_attr, "DequantizeLinear output_dtype")
    if not ctx.dtype(x_name).is_integer:
        raise node.unsupported(f"dtype {ctx.dtype(x_name)}")
    compute = "float32" if str(dtype) != "float64" else "float64"
    x = op.astype(ctx.expr(x_name), compute)
    if node.input(2):
        zp = _per_axis(ctx, node, x_name, node.inputs[2], op.astype(ctx.expr(node.inputs[2]), compute))
        x = op.subtract(x, zp)
    scale = _per_axis(ctx, node, x_name, scale_name, op.astype(ctx.expr(scale_name), compute))
    return op.astype(op.multiply(x, scale), str(dtype))


@converter("QuantizeLinear", since=13)
def _quantize(ctx, node):
    x_name, scale_name = node.inputs[0], node.inputs[1]
    node.attr("saturate")  # only meaningful for float8 outputs, which are refused by dtype
    node.attr("precision")
    out_attr = node.attr("output_dtype", 0)
    if node.input(2):
        target = ctx.dtype(node.inputs[2])
    else:
        target = onnx_dtype(out_attr or 2, "QuantizeLinear output_dtype")
    if not target.is_integer:
        raise node.unsupported(f"output dtype {target}")
    x = op.astype(ctx.expr(x_name), "float32")
    scale = _per_axis(ctx, node, x_name, scale_name, op.astype(ctx.expr(scale_name), "float32"))
    q = op.round(op.divide(x, scale))
    if node.input(2):
        zp = op.astype(ctx.expr(node.inputs[2]), "float32")
        q = op.add(q, _per_axis(ctx, node, x_name, node.inputs[2], zp))
    info = np.iinfo(target.to_numpy())
    return op.astype(op.clip(q, float(info.min), float(info.max)), str(target))
