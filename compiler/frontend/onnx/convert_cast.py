"""Converters of the ONNX type conversions: Cast, CastLike, QuantizeLinear, DequantizeLinear, on ordinary
dtypes and on the low-precision storage types (float8, float4, int4, int2: see lowp.py)."""

from __future__ import annotations

import numpy as np

from shapeflow.frontend.onnx import lowp
from shapeflow.frontend.onnx import lowp_codec as codec
from shapeflow.frontend.onnx.context import Context, Node, onnx_dtype
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.dtype import DataType
from shapeflow.ir.graph import op

# -- Cast, CastLike ----------------------------------------------------------------------------------


def _fold_cast(ctx: Context, node: Node):
    value = ctx.known_value(node.inputs[0])
    to = node.attr("to")
    node.attr("saturate")
    node.attr("round_mode")
    if lowp.lowp_type(to) is not None or lowp.of(ctx, node.inputs[0]) is not None:
        return None
    target = onnx_dtype(to, "ONNX op 'Cast' attribute 'to'")
    if value is None or value.dtype != object or not target.is_integer:
        return None
    return [value]


def _round_mode(node: Node) -> str:
    """E8M0 rounding ("up" by default); read on every Cast so that the attribute counts as handled."""
    mode = node.attr("round_mode", "up")
    if mode not in ("up", "down", "nearest"):
        raise node.unsupported(f"round_mode {mode!r}")
    return mode


def cast_to(ctx: Context, node: Node, target: lowp.LowpType | DataType):
    """Input 0 converted to `target` (a storage type or a dtype): decoded from bits when it is stored as a
    low-precision type, encoded into bits when the target is one."""
    name = node.inputs[0]
    saturate = bool(node.attr("saturate", 1))
    round_mode = _round_mode(node)
    source = lowp.of(ctx, name)
    x = ctx.expr(name)
    if isinstance(target, lowp.LowpType):
        ctx.lowp[node.outputs[0]] = target
    if source is not None and source is target:
        return x
    value = codec.decode(ctx, x, source) if source is not None else x
    if isinstance(target, lowp.LowpType):
        negative = (
            codec.sign_of_bits(ctx, x, source) if source is not None and source.kind == "float" else None
        )
        return codec.encode(ctx, value, target, saturate, round_mode, negative)
    return op.astype(value, str(target))


@converter("Cast", fold=_fold_cast)
def _cast(ctx: Context, node: Node):
    to = node.attr("to")
    target = lowp.lowp_type(to) or onnx_dtype(to, "ONNX op 'Cast' attribute 'to'")
    return cast_to(ctx, node, target)


@converter("CastLike")
def _cast_like(ctx: Context, node: Node):
    like = node.inputs[1]
    return cast_to(ctx, node, lowp.of(ctx, like) or ctx.dtype(like))


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
    node.attr("axis")  # read by _per_axis; unused when every parameter is per tensor or ignored
    out_attr = node.attr("output_dtype", 0)
    dtype = ctx.dtype(scale_name) if not out_attr else onnx_dtype(out_attr, "DequantizeLinear output_dtype")
    compute = "float32" if str(dtype) != "float64" else "float64"
    source = lowp.of(ctx, x_name)
    if source is not None:
        x = _decoded(ctx, node, x_name, source, compute)
        # The reference ignores the zero point of float types (float8 requires it to be 0).
        zp_name = node.input(2) if source.kind == "int" else ""
        zp = _decoded(ctx, node, zp_name, source, compute) if zp_name else None
    elif not ctx.dtype(x_name).is_integer:
        raise node.unsupported(f"dtype {ctx.dtype(x_name)}")
    elif lowp.of(ctx, node.input(2)) is not None:
        raise node.unsupported(
            f"zero point of dtype {lowp.of(ctx, node.input(2)).onnx_name} for {ctx.dtype(x_name)}"
        )
    else:
        x = op.astype(ctx.expr(x_name), compute)
        zp = op.astype(ctx.expr(node.inputs[2]), compute) if node.input(2) else None
    if zp is not None:
        x = op.subtract(x, _per_axis(ctx, node, x_name, node.inputs[2], zp))
    scale = _per_axis(ctx, node, x_name, scale_name, op.astype(ctx.expr(scale_name), compute))
    return op.astype(op.multiply(x, scale), str(dtype))


def _decoded(ctx: Context, node: Node, name: str, storage: lowp.LowpType, compute: str):
    """Tensor `name` (of storage type `storage`) decoded into `compute` numbers."""
    if lowp.of(ctx, name) is not storage:
        raise node.unsupported(f"input {name!r} is not of dtype {storage.onnx_name} like input 0")
    if storage.kind == "e8m0":
        raise node.unsupported(f"dtype {storage.onnx_name}")
    value = codec.decode(ctx, ctx.expr(name), storage)
    return value if compute == "float32" else op.astype(value, compute)


@converter("QuantizeLinear", since=13)
def _quantize(ctx, node):
    x_name, scale_name = node.inputs[0], node.inputs[1]
    saturate = bool(node.attr("saturate", 1))
    node.attr("precision")
    node.attr("axis")  # read by _per_axis; unused when every parameter is per tensor or ignored
    out_attr = node.attr("output_dtype", 0)
    storage = lowp.of(ctx, node.input(2)) if node.input(2) else lowp.lowp_type(out_attr)
    if storage is not None:
        return _quantize_lowp(ctx, node, storage, saturate)
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


def _quantize_lowp(ctx: Context, node: Node, storage: lowp.LowpType, saturate: bool):
    """x / scale into a storage type, as onnx.reference computes it: integers rounded half to even, offset
    by the zero point and clamped; float8 rounded with `saturate` (its zero point ignored); float4 offset by
    its zero point and rounded, saturating."""
    x_name, scale_name, zp_name = node.inputs[0], node.inputs[1], node.input(2)
    x = op.astype(ctx.expr(x_name), "float32")
    scale = _per_axis(ctx, node, x_name, scale_name, op.astype(ctx.expr(scale_name), "float32"))
    v = ctx.emit(op.divide(x, scale))
    zp = None
    if zp_name and (storage.kind == "int" or storage.bits == 4):
        zp = _per_axis(ctx, node, x_name, zp_name, _decoded(ctx, node, zp_name, storage, "float32"))
    elif storage.kind == "e8m0":
        raise node.unsupported(f"output dtype {storage.onnx_name}")
    ctx.lowp[node.outputs[0]] = storage
    if storage.kind == "int":
        q = op.round(v)
        return codec.encode_int_saturating(ctx, ctx.emit(op.add(q, zp) if zp is not None else q), storage)
    if zp is not None:  # float4
        v = ctx.emit(op.add(v, zp))
    return codec.encode_float(ctx, v, storage, saturate or storage.bits == 4)
