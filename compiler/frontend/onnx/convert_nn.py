"""Converters of ONNX neural-network ops: MatMul, Gemm, Conv, pooling, the normalizations."""

from __future__ import annotations

from shapeflow.frontend.onnx.context import Context, Node, scalar
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int, compare_dims


def _float(ctx: Context, node: Node, index: int = 0):
    name = node.inputs[index]
    if not ctx.dtype(name).is_float:
        raise node.unsupported(f"dtype {ctx.dtype(name)} is not supported (float inputs only)")
    return ctx.expr(name)


@converter("MatMul")
def _matmul(ctx, node):
    return op.matmul(ctx.expr(node.inputs[0]), ctx.expr(node.inputs[1]))


@converter("Gemm")
def _gemm(ctx, node):
    a, b = _float(ctx, node, 0), _float(ctx, node, 1)
    dtype = ctx.dtype(node.inputs[0])
    if node.attr("transA", 0):
        a = op.permute_dims(a, (1, 0))
    if node.attr("transB", 0):
        b = op.permute_dims(b, (1, 0))
    y = op.matmul(a, b)
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if alpha != 1.0:
        y = op.multiply(y, scalar(alpha, dtype))
    if node.input(2):
        c = ctx.expr(node.inputs[2])
        y = op.add(y, c if beta == 1.0 else op.multiply(c, scalar(beta, dtype)))
    return y


# -- convolution and pooling ------------------------------------------------------------------------------


def _window_padding(ctx: Context, node: Node, kernel, strides, dilations) -> list[int]:
    """ONNX pads (begins..., ends...) with auto_pad resolved against the (static) spatial dims."""
    rank = len(kernel)
    auto_pad = node.attr("auto_pad", "NOTSET")
    pads = node.attr("pads")
    if auto_pad in ("NOTSET", "VALID"):
        return [0] * (2 * rank) if pads is None or auto_pad == "VALID" else list(pads)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.unsupported(f"auto_pad={auto_pad!r} is not supported")
    spatial = ctx.shape(node.inputs[0])[2:]
    begins, ends = [], []
    for i in range(rank):
        size = as_int(spatial[i])
        if size is None:
            raise node.unsupported("auto_pad SAME over a symbolic spatial dim is not supported")
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


@converter("Conv")
def _conv(ctx, node):
    x, w = _float(ctx, node, 0), _float(ctx, node, 1)
    w_shape = ctx.shape(node.inputs[1])
    rank = len(w_shape) - 2
    if rank not in (1, 2):
        raise node.unsupported(f"{rank}-D convolution is not supported (1-D and 2-D only)")
    kernel = node.attr("kernel_shape") or [as_int(d) for d in w_shape[2:]]
    strides = node.attr("strides") or [1] * rank
    dilations = node.attr("dilations") or [1] * rank
    pads = _window_padding(ctx, node, kernel, strides, dilations)
    build = op.conv1d if rank == 1 else op.conv2d
    y = build(x, w, tuple(strides), tuple(pads), tuple(dilations), node.attr("group", 1))
    if node.input(2):
        bias = op.reshape(ctx.expr(node.inputs[2]), (1, w_shape[0]) + (1,) * rank)
        y = op.add(y, bias)
    return y


def _pool(kind: str):
    def convert(ctx: Context, node: Node):
        x = _float(ctx, node, 0)
        want_indices = len(node.outputs) > 1 and bool(node.outputs[1])
        storage_order = node.attr("storage_order", 0)
        shape = ctx.shape(node.inputs[0])
        kernel = list(node.attr("kernel_shape"))
        rank = len(kernel)
        if rank not in (1, 2, 3):
            raise node.unsupported(f"{rank}-D pooling is not supported")
        strides = node.attr("strides") or [1] * rank
        dilations = node.attr("dilations") or [1] * rank
        pads = _window_padding(ctx, node, kernel, strides, dilations)
        if node.attr("ceil_mode", 0):
            pads = _ceil_mode_pads(node, kind, shape[2:], kernel, strides, dilations, pads)
        if rank == 1:  # as 2-D pooling over a unit height
            x = op.expand_dims(x, (2,))
            kernel, strides, dilations = [1, *kernel], [1, *strides], [1, *dilations]
            pads = [0, pads[0], 0, pads[1]]
        if kind == "max":
            pool = op.max_pool2d
        else:
            include = bool(node.attr("count_include_pad", 0))

            def pool(v, *args):
                return op.avg_pool2d(v, *args, include)

        if want_indices and (kind != "max" or rank != 2):
            raise node.unsupported("the Indices output is supported for 2-D MaxPool only")
        if rank == 3:
            return _pool3d(ctx, pool, x, shape, kernel, strides, pads, dilations)
        y = pool(x, tuple(kernel), tuple(strides), tuple(pads), tuple(dilations))
        if want_indices:
            indices = op.max_pool2d_indices(
                x,
                pool_size=kernel,
                strides=strides,
                padding=pads,
                dilation=dilations,
                column_major=bool(storage_order),
            )
            return [y, indices]
        return op.squeeze(y, (2,)) if rank == 1 else y

    return convert


def _pool3d(ctx: Context, pool, x, shape, kernel, strides, pads, dilations):
    """3-D pooling as 2-D pooling over (H, W) then over D: max and average pooling are separable (an
    average's divisor, padded or not, is the product of the per-axis counts)."""
    n, c, d, h, w = shape
    flat = op.reshape(x, (n, c * d, h, w))
    plane = ctx.emit(
        pool(
            flat,
            tuple(kernel[1:]),
            tuple(strides[1:]),
            (pads[1], pads[2], pads[4], pads[5]),
            tuple(dilations[1:]),
        )
    )
    _, _, h2, w2 = _shape_of(plane)
    depth = ctx.emit(
        pool(op.reshape(plane, (n, c, d, h2 * w2)), (kernel[0], 1), (strides[0], 1), (pads[0], 0, pads[3], 0),
             (dilations[0], 1))
    )  # fmt: skip
    d2 = _shape_of(depth)[2]
    return op.reshape(depth, (n, c, d2, h2, w2))


def _ceil_mode_pads(node: Node, kind: str, spatial, kernel, strides, dilations, pads) -> list[int]:
    """Pads whose end is extended so that floor-mode pooling gives ceil-mode's output size (ONNX: a last
    window must start inside the input or the begin padding). The extension is never counted: max pooling
    pads with -inf, and average pooling is accepted only when it excludes padding from its counts."""
    rank = len(kernel)
    pads = list(pads)
    for i in range(rank):
        size = as_int(spatial[i])
        if size is None:
            raise node.unsupported("ceil_mode=1 over a symbolic spatial dim is not supported")
        reach = dilations[i] * (kernel[i] - 1) + 1
        total = size + pads[i] + pads[rank + i]
        out = -(-(total - reach) // strides[i]) + 1
        if (out - 1) * strides[i] >= size + pads[i]:
            out -= 1
        extra = max(0, (out - 1) * strides[i] + reach - total)
        if extra and kind == "avg" and node.attr("count_include_pad", 0):
            raise node.unsupported("ceil_mode=1 with count_include_pad=1 is not supported")
        pads[rank + i] += extra
    return pads


converter("MaxPool", since=1)(_pool("max"))
converter("AveragePool", since=1)(_pool("avg"))


def _global_pool(reducer: str):
    def convert(ctx: Context, node: Node):
        x = _float(ctx, node, 0)
        rank = ctx.rank(node.inputs[0])
        return getattr(op, reducer)(x, tuple(range(2, rank)), True)

    return convert


converter("GlobalAveragePool")(_global_pool("mean"))
converter("GlobalMaxPool")(_global_pool("max"))


# -- normalizations ---------------------------------------------------------------------------------------


@converter("BatchNormalization", since=9)
def _batch_norm(ctx, node):
    if node.attr("training_mode", 0):
        return _batch_norm_training(ctx, node)
    node.attr("momentum")
    if len([o for o in node.outputs if o]) > 1:
        raise node.unsupported("the running mean/var outputs (training) are not supported")
    # scale = gamma / sqrt(var + eps), shift = beta - mean * scale: per channel, folded at import time
    # when the statistics are initializers, then one multiply-add over x.
    x = _float(ctx, node, 0)
    gamma, beta, mean, var = (_float(ctx, node, i) for i in range(1, 5))
    dtype = ctx.dtype(node.inputs[0])
    rank = ctx.rank(node.inputs[0])
    scale = op.multiply(gamma, op.rsqrt(op.add(var, scalar(node.attr("epsilon", 1e-5), dtype))))
    shift = op.subtract(beta, op.multiply(mean, scale))
    channels = ctx.shape(node.inputs[0])[1] if rank > 1 else ctx.shape(node.inputs[1])[0]
    per_channel = (channels,) + (1,) * max(0, rank - 2)
    scale, shift = (
        ctx.fold_or_emit(op.reshape(scale, per_channel)),
        ctx.fold_or_emit(op.reshape(shift, per_channel)),
    )
    return op.add(op.multiply(x, scale), shift)


def _batch_norm_training(ctx: Context, node: Node):
    """Normalized by the batch's own statistics (population variance over every axis but the channel);
    the running mean and variance outputs are momentum * input + (1 - momentum) * batch statistic."""
    x = _float(ctx, node, 0)
    gamma, beta, mean_in, var_in = (_float(ctx, node, i) for i in range(1, 5))
    dtype = ctx.dtype(node.inputs[0])
    shape = ctx.shape(node.inputs[0])
    rank = len(shape)
    if rank < 2:
        raise node.unsupported("training_mode=1 needs an input of rank >= 2")
    axes = (0, *range(2, rank))
    momentum = node.attr("momentum", 0.9)
    per_channel = (shape[1],) + (1,) * (rank - 2)
    mean = ctx.emit(op.mean(x, axes, False))
    centered = ctx.emit(op.subtract(x, op.reshape(mean, per_channel)))
    var = ctx.emit(op.mean(op.square(centered), axes, False))
    inv = op.rsqrt(op.add(var, scalar(node.attr("epsilon", 1e-5), dtype)))
    scale = ctx.emit(op.reshape(op.multiply(gamma, inv), per_channel))
    y = op.add(op.multiply(centered, scale), op.reshape(beta, per_channel))

    def running(current, batch):
        return op.add(op.multiply(current, momentum), op.multiply(batch, 1.0 - momentum))

    return [y, running(mean_in, mean), running(var_in, var)]


@converter("InstanceNormalization")
def _instance_norm(ctx, node):
    x = _float(ctx, node, 0)
    channels = as_int(ctx.shape(node.inputs[0])[1])
    if channels is None:
        raise node.unsupported("a symbolic channel count is not supported")
    return op.group_norm(
        x, ctx.expr(node.inputs[1]), ctx.expr(node.inputs[2]), channels, node.attr("epsilon", 1e-5)
    )


@converter("GroupNormalization", since=18)
def _group_norm(ctx, node):
    x = _float(ctx, node, 0)
    groups = node.attr("num_groups")
    node.attr("stash_type")
    channels = as_int(ctx.shape(node.inputs[0])[1])
    scale, bias = ctx.expr(node.inputs[1]), ctx.expr(node.inputs[2])
    if node.version < 21:  # scale and bias per group: spread each over its channels
        if channels is None:
            raise node.unsupported("a symbolic channel count is not supported")
        per = channels // groups

        def spread(v):
            return op.reshape(op.broadcast_to(op.reshape(v, (groups, 1)), (groups, per)), (channels,))

        scale, bias = spread(scale), spread(bias)
    return op.group_norm(x, scale, bias, groups, node.attr("epsilon", 1e-5))


def _same_shape(a, b) -> bool:
    return len(a) == len(b) and all(compare_dims(x, y) is True for x, y in zip(a, b))


def _moments(x, axes, epsilon, dtype):
    mean = op.mean(x, axes, True)
    centered = op.subtract(x, mean)
    var = op.mean(op.multiply(centered, centered), axes, True)
    return mean, op.rsqrt(op.add(var, scalar(epsilon, dtype)))


@converter("LayerNormalization", since=17)
def _layer_norm(ctx, node):
    x = _float(ctx, node, 0)
    dtype = ctx.dtype(node.inputs[0])
    shape = ctx.shape(node.inputs[0])
    rank = len(shape)
    axis = node.attr("axis", -1) % rank
    axes = tuple(range(axis, rank))
    epsilon = node.attr("epsilon", 1e-5)
    node.attr("stash_type")
    scale = ctx.expr(node.inputs[1])
    bias = ctx.expr(node.inputs[2]) if node.input(2) else op.zeros(tuple(shape[axis:]), str(dtype))
    params = [node.inputs[1]] + ([node.inputs[2]] if node.input(2) else [])
    if not all(_same_shape(ctx.shape(p), shape[axis:]) for p in params):
        scale = op.broadcast_to(scale, tuple(shape[axis:]))
        bias = op.broadcast_to(bias, tuple(shape[axis:]))
    y = op.layer_norm(x, scale, bias, axes, epsilon)
    if len(node.outputs) == 1:
        return y
    mean, inv_std = _moments(x, axes, epsilon, dtype)
    return [y, mean, inv_std]


@converter("RMSNormalization", since=23)
def _rms_norm(ctx, node):
    x = _float(ctx, node, 0)
    shape = ctx.shape(node.inputs[0])
    axis = node.attr("axis", -1) % len(shape)
    node.attr("stash_type")
    scale = ctx.expr(node.inputs[1])
    if not _same_shape(ctx.shape(node.inputs[1]), shape[axis:]):
        scale = op.broadcast_to(scale, tuple(shape[axis:]))
    return op.rms_norm(x, scale, tuple(range(axis, len(shape))), node.attr("epsilon", 1e-5))


@converter("LpNormalization")
def _lp_norm(ctx, node):
    x = _float(ctx, node, 0)
    axis, p = node.attr("axis", -1), node.attr("p", 2)
    if p == 1:
        norm = op.sum(op.abs(x), (axis,), True)
    elif p == 2:
        norm = op.sqrt(op.sum(op.multiply(x, x), (axis,), True))
    else:
        raise node.unsupported(f"p={p} is not supported")
    zero = scalar(0, ctx.dtype(node.inputs[0]))
    return op.where(op.equal(norm, zero), zero, op.divide(x, norm))


@converter("MeanVarianceNormalization")
def _mvn(ctx, node):
    x = _float(ctx, node, 0)
    axes = tuple(node.attr("axes", [0, 2, 3]))
    mean, inv_std = _moments(x, axes, 1e-9, ctx.dtype(node.inputs[0]))
    return op.multiply(op.subtract(x, mean), inv_std)


# -- ConvTranspose ------------------------------------------------------------------------------------------


def _transpose_pads(node: Node, in_sizes, kernel, strides, dilations, out_pad) -> list[int]:
    """ONNX ConvTranspose pads (begins..., ends...), derived from output_shape or auto_pad when given."""
    rank = len(kernel)
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [in_sizes[i] * strides[i] for i in range(rank)]
    if output_shape is None:
        pads = node.attr("pads")
        return [0] * (2 * rank) if pads is None or auto_pad == "VALID" else list(pads)
    output_shape = list(output_shape)[-rank:]
    begins, ends = [], []
    for i in range(rank):
        total = (
            strides[i] * (in_sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - output_shape[i]
        )
        half = total // 2
        begins.append(half if auto_pad == "SAME_UPPER" else total - half)
        ends.append(total - half if auto_pad == "SAME_UPPER" else half)
    node.attr("pads")
    return begins + ends


@converter("ConvTranspose")
def _conv_transpose(ctx, node):
    """As a stride-1 convolution of the zero-upsampled, padded input with the flipped kernel transposed
    within each group."""
    x, w = _float(ctx, node, 0), _float(ctx, node, 1)
    x_shape, w_shape = ctx.shape(node.inputs[0]), [as_int(d) for d in ctx.shape(node.inputs[1])]
    rank = len(w_shape) - 2
    if rank not in (1, 2) or None in w_shape:
        raise node.unsupported("only 1-D and 2-D ConvTranspose with a static kernel is supported")
    in_sizes = [as_int(d) for d in x_shape[2:]]
    if None in in_sizes:
        raise node.unsupported("symbolic spatial dims are not supported")
    groups = node.attr("group", 1)
    kernel = list(node.attr("kernel_shape") or w_shape[2:])
    strides = list(node.attr("strides") or [1] * rank)
    dilations = list(node.attr("dilations") or [1] * rank)
    out_pad = list(node.attr("output_padding") or [0] * rank)
    pads = _transpose_pads(node, in_sizes, kernel, strides, dilations, out_pad)
    n, c = x_shape[0], x_shape[1]
    # 1. zero-upsample: each spatial element followed by stride - 1 zeros, the trailing zeros cut off
    if any(s > 1 for s in strides):
        spread = op.expand_dims(x, tuple(3 + 2 * i for i in range(rank)))
        widths = [0, 0, 0, 0] + [w for s in strides for w in (0, 0, 0, s - 1)]
        wide = op.pad(spread, tuple(widths), 0.0)
        x = op.reshape(wide, (n, c, *[d * s for d, s in zip(in_sizes, strides)]))
        up = [(d - 1) * s + 1 for d, s in zip(in_sizes, strides)]
        x = op.strided_slice(x, tuple(range(2, 2 + rank)), (0,) * rank, tuple(up), (1,) * rank)
    # 2. pad by the kernel's reach minus the transposed pads; negative amounts crop
    before = [dilations[i] * (kernel[i] - 1) - pads[i] for i in range(rank)]
    after = [dilations[i] * (kernel[i] - 1) - pads[rank + i] + out_pad[i] for i in range(rank)]
    if any(v > 0 for v in before + after):
        widths = [0, 0, 0, 0] + [w for b, a in zip(before, after) for w in (max(b, 0), max(a, 0))]
        x = op.pad(x, tuple(widths), 0.0)
    if any(v < 0 for v in before + after):
        sizes = _shape_of(ctx.emit(x))[2:]
        begin = [max(-b, 0) for b in before]
        end = [as_int(d) - max(-a, 0) for d, a in zip(sizes, after)]
        x = op.strided_slice(x, tuple(range(2, 2 + rank)), tuple(begin), tuple(end), (1,) * rank)
    # 3. the kernel: (Cin, Cout/g, k...) -> (Cout, Cin/g, k...), spatially flipped
    cin, cout_g = w_shape[0], w_shape[1]
    w = op.reshape(w, (groups, cin // groups, cout_g, *kernel))
    w = op.permute_dims(w, (0, 2, 1, *range(3, 3 + rank)))
    w = op.reshape(w, (groups * cout_g, cin // groups, *kernel))
    w = op.strided_slice(
        w, tuple(range(2, 2 + rank)), tuple(k - 1 for k in kernel), (-1,) * rank, (-1,) * rank
    )
    w = ctx.fold_or_emit(w)
    build = op.conv1d if rank == 1 else op.conv2d
    y = build(x, w, (1,) * rank, (0,) * (2 * rank), tuple(dilations), groups)
    if node.input(2):
        y = op.add(y, op.reshape(ctx.expr(node.inputs[2]), (1, groups * cout_g) + (1,) * rank))
    return y


def _shape_of(expr):
    from shapeflow.ir.graph.infer import type_of  # noqa: PLC0415

    return type_of(expr).shape


@converter("LRN")
def _lrn(ctx: Context, node: Node):
    """x / (bias + alpha / size * (sum of squares over a channel window))^beta; the window sum is `size`
    shifted slices of the zero-padded squares."""
    x = _float(ctx, node, 0)
    shape = ctx.shape(node.inputs[0])
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    if len(shape) < 3 or size < 1:
        raise node.unsupported(f"a rank-{len(shape)} input with size {size} is not supported")
    lo = (size - 1) // 2
    padded = ctx.emit(op.pad(op.square(x), pad_width=(0, 0, lo, size - 1 - lo) + (0, 0) * (len(shape) - 2)))
    channels = shape[1]
    total = None
    for k in range(size):
        part = ctx.emit(op.strided_slice(padded, axes=(1,), begin=(k,), end=(channels + k,), strides=(1,)))
        total = part if total is None else ctx.emit(op.add(total, part))
    return op.divide(x, op.power(op.add(op.multiply(total, alpha / size), bias), beta))


# -- integer convolution and matmul -----------------------------------------------------------------


def _centered(ctx: Context, node: Node, index: int, zp_index: int, per_axis_shape):
    """Input `index` minus its zero point (input `zp_index`, optional), in float64: products and sums of
    8-bit values are exact there, so the int32 result is exact (within 2^53)."""
    name = node.inputs[index]
    if not ctx.dtype(name).is_integer:
        raise node.unsupported(f"dtype {ctx.dtype(name)} is not supported (integer inputs only)")
    x = op.astype(ctx.expr(name), "float64")
    zp_name = node.input(zp_index)
    if not zp_name:
        return x
    zp = op.astype(ctx.expr(zp_name), "float64")
    size = 1
    for d in ctx.shape(zp_name):
        size *= as_int(d) if as_int(d) is not None else -1
    if size != 1:
        if per_axis_shape is None or len(ctx.shape(zp_name)) != 1:
            raise node.unsupported("per-axis zero points are not supported here")
        zp = op.reshape(zp, per_axis_shape)
    else:
        zp = op.reshape(zp, ())
    return op.subtract(x, zp)


@converter("MatMulInteger", since=10)
def _matmul_integer(ctx: Context, node: Node):
    rows = ctx.shape(node.inputs[0])[-2] if ctx.rank(node.inputs[0]) >= 2 else None
    a = _centered(ctx, node, 0, 2, None if rows is None else (rows, 1))  # a per-row zero point
    b = _centered(ctx, node, 1, 3, (ctx.shape(node.inputs[1])[-1],))  # a per-column zero point
    return op.astype(op.matmul(a, b), "int32")


@converter("ConvInteger", since=10)
def _conv_integer(ctx: Context, node: Node):
    w_shape = ctx.shape(node.inputs[1])
    rank = len(w_shape) - 2
    if rank not in (1, 2):
        raise node.unsupported(f"{rank}-D convolution is not supported (1-D and 2-D only)")
    x = _centered(ctx, node, 0, 2, None)
    w = _centered(ctx, node, 1, 3, (w_shape[0],) + (1,) * (rank + 1))  # per output channel
    kernel = node.attr("kernel_shape") or [as_int(d) for d in w_shape[2:]]
    strides = node.attr("strides") or [1] * rank
    dilations = node.attr("dilations") or [1] * rank
    pads = _window_padding(ctx, node, kernel, strides, dilations)
    build = op.conv1d if rank == 1 else op.conv2d
    y = build(ctx.emit(x), ctx.emit(w), tuple(strides), tuple(pads), tuple(dilations), node.attr("group", 1))
    return op.astype(y, "int32")
