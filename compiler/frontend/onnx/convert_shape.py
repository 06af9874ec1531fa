"""Converters of ONNX shape and data-movement ops: Shape, Size, Constant(OfShape), Range, Reshape, Flatten,
Transpose, (Un)Squeeze, Concat, Split, Slice, Gather(Elements), Expand, Tile, Pad (Trilu, CumSum, Dropout,
DepthToSpace, SpaceToDepth and CenterCropPad are in convert_rearrange.py).

Each op that appears in shape subgraphs also folds on known values (numpy on object arrays of int64
PrimExprs), so that its result can feed a target shape at import time.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from shapeflow.frontend.onnx.context import Context, Node, normalize_known, onnx_dtype
from shapeflow.frontend.onnx.registry import Known, converter
from shapeflow.ir import expr as E
from shapeflow.ir.graph import op
from shapeflow.ir.graph.expr import Constant
from shapeflow.ir.graph.shape import as_int, product, simplify

BIG = 2**62  # ONNX uses INT64_MAX-ish ends to mean "to the end"


def _known_inputs(ctx: Context, node: Node, count: int | None = None):
    names = node.inputs if count is None else node.inputs[:count]
    values = [ctx.known_value(n) if n else None for n in names]
    return None if any(v is None for v, n in zip(values, names) if n) else values


# -- Shape, Size, Constant, ConstantOfShape, Range ------------------------------------------------------


def _fold_shape(ctx: Context, node: Node):
    shape = ctx.shape(node.inputs[0])
    rank = len(shape)
    start, end = node.attr("start", 0), node.attr("end", rank)
    start, end = (
        max(0, min(rank, start + rank if start < 0 else start)),
        max(0, min(rank, end + rank if end < 0 else end)),
    )
    return [normalize_known(np.array(list(shape[start:end]), dtype=object).reshape(-1))]


@converter("Shape", fold=_fold_shape)
def _shape(ctx, node):
    raise node.unsupported("the input's shape is unknown")


def _fold_size(ctx: Context, node: Node):
    value = np.empty((), dtype=object)
    value[()] = product(ctx.shape(node.inputs[0]))
    return [normalize_known(value)]


@converter("Size", fold=_fold_size)
def _size(ctx, node):
    raise node.unsupported("the input's shape is unknown")


def _constant_value(node: Node) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        value = node.attr(key)
        if value is None:
            continue
        if key == "value":
            onnx_dtype(value.data_type, "ONNX op 'Constant'")
            return np.array(numpy_helper.to_array(value))
        if key.endswith("floats") or key == "value_float":
            return np.array(value, dtype=np.float32)
        return np.array(value, dtype=np.int64)
    for key in ("sparse_value", "value_string", "value_strings"):
        if node.attr(key) is not None:
            raise node.unsupported(f"attribute {key!r} is not supported")
    raise node.unsupported("no value attribute")


@converter("Constant", fold=lambda ctx, node: [_constant_value(node)])
def _constant(ctx, node):  # pragma: no cover - the fold always answers
    return Known(_constant_value(node))


def _fill_value(node: Node):
    value = node.attr("value")
    if value is None:
        return np.zeros((), np.float32)
    onnx_dtype(value.data_type, "ONNX op 'ConstantOfShape'")
    return np.array(numpy_helper.to_array(value)).reshape(())


def _fold_constant_of_shape(ctx, node):
    shape = ctx.known_value(node.inputs[0])
    if shape is None or shape.dtype == object:
        return None
    fill = _fill_value(node)
    return [np.full(tuple(int(d) for d in shape), fill, dtype=fill.dtype)]


@converter("ConstantOfShape", fold=_fold_constant_of_shape)
def _constant_of_shape(ctx, node):
    fill = _fill_value(node)
    shape = ctx.shape_arg(node, 0, "shape")
    return op.full(tuple(shape), str(onnx_dtype_of(fill)), float(fill))


def onnx_dtype_of(array: np.ndarray):
    from shapeflow.ir.dtype import from_numpy_dtype  # noqa: PLC0415

    return from_numpy_dtype(array.dtype)


def _fold_range(ctx, node):
    values = _known_inputs(ctx, node)
    if values is None or any(v.dtype == object for v in values):
        return None
    start, limit, delta = (v.reshape(()) for v in values)
    return [np.arange(start, limit, delta).astype(start.dtype)]


@converter("Range", fold=_fold_range)
def _range(ctx, node):
    dtype = ctx.dtype(node.inputs[0])
    if not dtype.is_integer:
        for i, what in enumerate(("start", "limit", "delta")):
            ctx.const(node, i, what)  # a float Range needs all three values now
        raise node.unsupported("a float Range over symbolic bounds is not supported")
    start, limit = ctx.shape_arg(node, 0, "start"), ctx.shape_arg(node, 1, "limit")
    delta = ctx.const(node, 2, "delta").reshape(())
    if int(delta) != 1:
        raise node.unsupported("a symbolic Range with a step other than 1 is not supported")
    return op.arange(start=start[0], end=limit[0], step=1, dtype=str(dtype))


# -- Reshape, Flatten, Transpose, Squeeze, Unsqueeze ----------------------------------------------------


def _reshape_target(ctx: Context, node: Node) -> list:
    in_shape = ctx.shape(node.inputs[0])
    target = ctx.shape_arg(node, 1, "shape")
    allow_zero = node.attr("allowzero", 0)
    out = []
    for i, d in enumerate(target):
        if isinstance(d, int) and d == 0 and not allow_zero:
            out.append(in_shape[i])
        else:
            out.append(d)
    return out


def _fold_reshape(ctx, node):
    values = _known_inputs(ctx, node)
    if values is None or values[1].dtype == object:
        return None
    target = _reshape_target(ctx, node)
    if any(not isinstance(d, int) and as_int(d) is None for d in target):
        return None
    return [values[0].reshape([int(d) if isinstance(d, int) else as_int(d) for d in target])]


@converter("Reshape", since=5, fold=_fold_reshape)
def _reshape(ctx, node):
    return op.reshape(ctx.expr(node.inputs[0]), tuple(_reshape_target(ctx, node)))


@converter("Flatten")
def _flatten(ctx, node):
    shape = ctx.shape(node.inputs[0])
    axis = node.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    return op.reshape(ctx.expr(node.inputs[0]), (product(shape[:axis]), product(shape[axis:])))


def _perm(ctx, node):
    perm = node.attr("perm")
    return None if perm is None else tuple(perm)


def _fold_transpose(ctx, node):
    value = ctx.known_value(node.inputs[0])
    return None if value is None else [np.transpose(value, _perm(ctx, node))]


@converter("Transpose", fold=_fold_transpose)
def _transpose(ctx, node):
    return op.permute_dims(ctx.expr(node.inputs[0]), _perm(ctx, node))


def _axes(ctx: Context, node: Node, index: int = 1):
    """Axes from the `axes` input (newer opsets) or attribute (older ones)."""
    if node.version >= 13 or node.op_type.startswith("Reduce") and node.version >= 18:
        value = ctx.const(node, index, "axes")
        return None if value is None else [int(a) for a in value.reshape(-1)]
    value = node.attr("axes")
    return None if value is None else list(value)


def _fold_squeeze(ctx, node):
    value = ctx.known_value(node.inputs[0])
    if value is None:
        return None
    axes = _axes(ctx, node)
    return [np.squeeze(value, None if axes is None else tuple(axes))]


@converter("Squeeze", since=13, fold=_fold_squeeze)
def _squeeze(ctx, node):
    axes = _axes(ctx, node)
    if axes is None:
        shape = ctx.shape(node.inputs[0])
        if any(as_int(d) is None for d in shape):
            raise node.unsupported("squeezing all unit dims of a tensor with symbolic dims is not supported")
        axes = [i for i, d in enumerate(shape) if as_int(d) == 1]
    return op.squeeze(ctx.expr(node.inputs[0]), tuple(axes))


def _fold_unsqueeze(ctx, node):
    value = ctx.known_value(node.inputs[0])
    if value is None:
        return None
    axes = _axes(ctx, node)
    return [np.expand_dims(value, tuple(a + value.ndim + len(axes) if a < 0 else a for a in axes))]


@converter("Unsqueeze", since=13, fold=_fold_unsqueeze)
def _unsqueeze(ctx, node):
    return op.expand_dims(ctx.expr(node.inputs[0]), tuple(_axes(ctx, node)))


# -- Concat, Split, Slice, Gather ----------------------------------------------------------------------


def _fold_concat(ctx, node):
    values = _known_inputs(ctx, node)
    if values is None:
        return None
    values = [v for v in values if v is not None]
    if any(v.dtype == object for v in values):
        values = [v.astype(object) for v in values]
    return [np.concatenate(values, axis=node.attr("axis"))]


@converter("Concat", fold=_fold_concat)
def _concat(ctx, node):
    names = [n for n in node.inputs if n]
    return op.concat([ctx.expr(n) for n in names], axis=node.attr("axis"))


@converter("Split", since=13)
def _split(ctx, node):
    shape = ctx.shape(node.inputs[0])
    axis = node.attr("axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    count = len(node.outputs)
    num_outputs = node.attr("num_outputs")
    sizes = ctx.const(node, 1, "split")
    dim = as_int(shape[axis])
    if sizes is not None:
        points = list(np.cumsum(sizes.reshape(-1))[:-1])
    elif num_outputs is not None and dim is not None:
        chunk = -(-dim // num_outputs)
        points = [min(dim, chunk * (i + 1)) for i in range(num_outputs - 1)]
    elif dim is not None and dim % count != 0:
        raise node.unsupported(f"dimension {dim} does not split into {count} equal parts")
    else:
        points = count
    result = ctx.emit(
        op.split(
            ctx.expr(node.inputs[0]),
            points if isinstance(points, int) else tuple(int(p) for p in points),
            axis,
        )
    )
    return [op_item(result, i) for i in range(count)]


def op_item(tuple_value, index: int):
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415

    return G.TupleGetItem(tuple_value, index)


def _slice_bounds(dim, start, end, step):
    """ONNX Slice clamping, on ints or int64 expressions (dim may be symbolic)."""
    dim_i = as_int(dim)
    if dim_i is not None and isinstance(start, int) and isinstance(end, int):
        start = start + dim_i if start < 0 else start
        end = end + dim_i if end < 0 else end
        if step > 0:
            return max(0, min(dim_i, start)), max(0, min(dim_i, end))
        return max(0, min(dim_i - 1, start)), max(-1, min(dim_i - 1, end))

    def clamp(value, lo, hi):
        if isinstance(value, int) and value >= BIG:
            return hi
        if isinstance(value, int) and value <= -BIG:
            return lo
        if isinstance(value, int) and value < 0:
            value = dim + value
        return simplify(E.max_expr(E.min_expr(E.convert(value, "int64"), hi), lo))

    if step > 0:
        return clamp(start, E.convert(0, "int64"), dim), clamp(end, E.convert(0, "int64"), dim)
    return clamp(start, E.convert(0, "int64"), simplify(dim - 1)), clamp(
        end, E.convert(-1, "int64"), simplify(dim - 1)
    )


def _slice_spec(ctx, node):
    shape = ctx.shape(node.inputs[0])
    starts = ctx.shape_arg(node, 1, "starts")
    ends = ctx.shape_arg(node, 2, "ends")
    axes = ctx.const(node, 3, "axes")
    steps = ctx.const(node, 4, "steps")
    axes = list(range(len(starts))) if axes is None else [int(a) % len(shape) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    if any(s == 0 for s in steps):
        raise node.unsupported("a step of 0")
    begins, stops = [], []
    for a, b, e, s in zip(axes, starts, ends, steps):
        lo, hi = _slice_bounds(shape[a], b, e, s)
        begins.append(lo)
        stops.append(hi)
    return axes, begins, stops, steps


def _fold_slice(ctx, node):
    value = ctx.known_value(node.inputs[0])
    if value is None:
        return None
    axes, begins, stops, steps = _slice_spec(ctx, node)
    index = [slice(None)] * value.ndim
    for a, b, e, s in zip(axes, begins, stops, steps):
        if not (isinstance(b, int) and isinstance(e, int)):
            return None
        index[a] = slice(b, None if e < 0 else e, s)
    return [value[tuple(index)]]


@converter("Slice", since=10, fold=_fold_slice)
def _slice(ctx, node):
    axes, begins, stops, steps = _slice_spec(ctx, node)
    return op.strided_slice(ctx.expr(node.inputs[0]), tuple(axes), tuple(begins), tuple(stops), tuple(steps))


def _fold_gather(ctx, node):
    values = _known_inputs(ctx, node)
    if values is None or values[1].dtype == object:
        return None
    data, indices = values
    axis = node.attr("axis", 0)
    dim = data.shape[axis]
    if np.any(indices >= dim) or np.any(indices < -dim):
        return None
    # np.take of a 0-d index returns the bare element (a Var for symbolic dims), not an array
    return [np.asarray(np.take(data, indices, axis=axis), dtype=data.dtype)]


@converter("Gather", fold=_fold_gather)
def _gather(ctx, node):
    return op.take(ctx.expr(node.inputs[0]), ctx.expr(node.inputs[1]), node.attr("axis", 0))


@converter("GatherElements")
def _gather_elements(ctx, node):
    return op.gather_elements(ctx.expr(node.inputs[0]), ctx.expr(node.inputs[1]), node.attr("axis", 0))


# -- Expand, Tile, Pad ------------------------------------------------------------------------------------


def _expand_shape(in_shape, target):
    rank = max(len(in_shape), len(target))
    ins = [1] * (rank - len(in_shape)) + list(in_shape)
    tgt = [1] * (rank - len(target)) + list(target)
    out = []
    for a, b in zip(ins, tgt):
        if isinstance(b, int) and b == 1:
            out.append(a)
        elif as_int(a) == 1 or not isinstance(a, E.PrimExpr):
            out.append(b)
        else:
            out.append(b if isinstance(b, int) else b)
    return out


def _fold_expand(ctx, node):
    values = _known_inputs(ctx, node)
    if values is None or values[1].dtype == object:
        return None
    target = _expand_shape(values[0].shape, [int(d) for d in values[1]])
    return [np.broadcast_to(values[0], tuple(int(d) for d in target)).copy()]


@converter("Expand", fold=_fold_expand)
def _expand(ctx, node):
    target = _expand_shape(ctx.shape(node.inputs[0]), ctx.shape_arg(node, 1, "shape"))
    return op.broadcast_to(ctx.expr(node.inputs[0]), tuple(target))


@converter("Tile")
def _tile(ctx, node):
    shape = ctx.shape(node.inputs[0])
    repeats = [int(r) for r in ctx.const(node, 1, "repeats").reshape(-1)]
    if len(repeats) != len(shape):
        raise node.unsupported("repeats must have one entry per dimension")
    x = ctx.expr(node.inputs[0])
    spread = [d for dim in shape for d in (1, dim)]
    wide = [d for r, dim in zip(repeats, shape) for d in (r, dim)]
    final = [simplify(E.convert(r, "int64") * dim) for r, dim in zip(repeats, shape)]
    return op.reshape(op.broadcast_to(op.reshape(x, tuple(spread)), tuple(wide)), tuple(final))


# ONNX Pad modes that repeat input elements, by np.pad's name for the same rule (ONNX's reference is np.pad).
_INDEX_PAD_MODES = {"edge": "edge", "reflect": "reflect", "wrap": "wrap"}


def _pad_by_indices(ctx, node, width: list[int], mode: str):
    """edge / reflect / wrap padding: per padded axis, a take of the source indices np.pad gives
    arange(L), which needs that axis's length L at import time."""
    x = ctx.expr(node.inputs[0])
    shape = ctx.shape(node.inputs[0])
    for axis in range(len(shape)):
        before, after = width[2 * axis], width[2 * axis + 1]
        if not before and not after:
            continue
        length = as_int(shape[axis])
        if length is None or length == 0:
            raise node.unsupported(f"mode {mode!r} on a symbolic or empty axis {axis}")
        index = np.pad(np.arange(length, dtype=np.int64), (before, after), mode=_INDEX_PAD_MODES[mode])
        x = ctx.emit(op.take(x, Constant.from_array(index), axis))
    return x


@converter("Pad", since=11)
def _pad(ctx, node):
    mode = node.attr("mode", "constant")
    if mode != "constant" and mode not in _INDEX_PAD_MODES:
        raise node.unsupported(f"mode {mode!r} is not supported")
    rank = ctx.rank(node.inputs[0])
    pads = [int(p) for p in ctx.const(node, 1, "pads").reshape(-1)]
    value = ctx.const(node, 2, "constant_value")
    axes = ctx.const(node, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise node.unsupported(f"pads has {len(pads)} entries, expected {2 * len(axes)} (two per axis)")
    if any(p < 0 for p in pads):
        raise node.unsupported("negative pads are not supported")
    width = [0] * (2 * rank)
    for k, a in enumerate(axes):
        width[2 * a], width[2 * a + 1] = pads[k], pads[k + len(axes)]
    fill = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    if not any(width):  # nothing to pad: the input itself (pad's legalization would alias it)
        return ctx.expr(node.inputs[0])
    if mode != "constant":
        return _pad_by_indices(ctx, node, width, mode)
    return op.pad(ctx.expr(node.inputs[0]), tuple(width), fill)
