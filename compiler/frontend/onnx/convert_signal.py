"""Converters of ONNX's image-sampling and signal ops: GridSample, AffineGrid, Col2Im, DFT, STFT,
MelWeightMatrix, RoiAlign (graph ops in shapeflow.ir.graph.ops.sampling, .spectral and .roi)."""

from __future__ import annotations

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node, onnx_dtype
from shapeflow.frontend.onnx.registry import Known, converter
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int

# opset 16 names -> opset 20 names
_MODE_NAMES = {
    "bilinear": "linear",
    "bicubic": "cubic",
    "nearest": "nearest",
    "linear": "linear",
    "cubic": "cubic",
}


@converter("GridSample", since=16)
def _grid_sample(ctx: Context, node: Node):
    x, grid = node.inputs[:2]
    mode = node.attr("mode", "linear" if node.version >= 20 else "bilinear")
    if mode not in _MODE_NAMES:
        raise node.unsupported(f"mode {mode!r} is not supported")
    padding = node.attr("padding_mode", "zeros")
    if padding not in ("zeros", "border", "reflection"):
        raise node.unsupported(f"padding_mode {padding!r} is not supported")
    align = bool(node.attr("align_corners", 0))
    if not ctx.dtype(x).is_float or ctx.dtype(x) != ctx.dtype(grid):
        raise node.unsupported(
            f"dtypes {ctx.dtype(x)}, {ctx.dtype(grid)} are not supported (one float dtype)"
        )
    if ctx.rank(x) not in (4, 5):
        raise node.unsupported(f"a rank-{ctx.rank(x)} input is not supported (2-D and 3-D sampling only)")
    return op.grid_sample(
        ctx.expr(x), ctx.expr(grid), mode=_MODE_NAMES[mode], padding_mode=padding, align_corners=align
    )


def _base_coords(length: int, align_corners: bool) -> np.ndarray:
    """The normalized coordinates of `length` pixels along one axis, as ONNX's reference builds them."""
    i = np.arange(length, dtype=np.float64)
    if align_corners:
        return -1.0 + 2.0 * i / (length - 1) if length > 1 else np.full(length, -1.0)
    return (2.0 * i + 1.0) / length - 1.0


@converter("AffineGrid", since=20)
def _affine_grid(ctx: Context, node: Node):
    """The base grid is a constant (size must be known at import time); the transform is a batched matmul."""
    theta = node.inputs[0]
    size = ctx.const(node, 1, "size")
    align = bool(node.attr("align_corners", 0))
    dtype = ctx.dtype(theta)
    if not dtype.is_float:
        raise node.unsupported(f"dtype {dtype} is not supported (float theta only)")
    if size.size not in (4, 5):
        raise node.unsupported(f"size must have 4 or 5 entries, got {size.size}")
    spatial = [int(v) for v in size.reshape(-1)[2:]]
    s = len(spatial)
    if tuple(as_int(d) for d in ctx.shape(theta)[1:]) != (s, s + 1):
        raise node.unsupported(f"theta must be (N, {s}, {s + 1}) for a {s}-D size")
    axes = [_base_coords(n, align) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")  # D, H, W order
    points = [m.reshape(-1) for m in reversed(mesh)]  # x (W), y (H), [z (D)]
    base = np.stack([*points, np.ones_like(points[0])], axis=1).astype(dtype.to_numpy())  # (P, s + 1)
    theta_t = ctx.emit(op.permute_dims(ctx.expr(theta), axes=(0, 2, 1)))  # (N, s + 1, s)
    grid = ctx.emit(op.matmul(G.Constant.from_array(base), theta_t))  # (N, P, s)
    return op.reshape(grid, (ctx.shape(theta)[0], *spatial, s))


def _dft(ctx: Context, node: Node, axis: int):
    x = node.inputs[0]
    rank = ctx.rank(x)
    inverse = bool(node.attr("inverse", 0))
    onesided = bool(node.attr("onesided", 0))
    if not -rank <= axis < rank or axis % rank == rank - 1:
        raise node.unsupported(f"axis {axis} is not a signal axis of a rank-{rank} input")
    axis %= rank
    given = ctx.const(node, 1, "dft_length")
    if given is not None:
        length = int(given.reshape(-1)[0])
    else:
        n = as_int(ctx.shape(x)[axis])
        if n is None:
            raise node.unsupported("a symbolic signal length needs dft_length")
        length = 2 * (n - 1) if inverse and onesided else n
    if length < 1:
        raise node.unsupported(f"dft_length {length} must be >= 1")
    if onesided and not inverse and as_int(ctx.shape(x)[-1]) != 1:
        raise node.unsupported("onesided with a complex input is not supported")
    return op.dft(ctx.expr(x), axis=axis, length=length, inverse=inverse, onesided=onesided)


@converter("DFT", since=17)
def _dft17(ctx: Context, node: Node):
    return _dft(ctx, node, node.attr("axis", 1))


@converter("DFT", since=20)
def _dft20(ctx: Context, node: Node):
    axis = ctx.const(node, 2, "axis")
    return _dft(ctx, node, -2 if axis is None else int(axis.reshape(-1)[0]))


@converter("Col2Im", since=18)
def _col2im(ctx: Context, node: Node):
    """image_shape and block_shape must be known at import time (they are the output's shape)."""
    x = node.inputs[0]
    image = [int(v) for v in ctx.const(node, 1, "image_shape").reshape(-1)]
    block = [int(v) for v in ctx.const(node, 2, "block_shape").reshape(-1)]
    s = len(image)
    if len(block) != s:
        raise node.unsupported(f"image_shape has {s} dims, block_shape {len(block)}")
    strides = list(node.attr("strides", None) or [1] * s)
    dilations = list(node.attr("dilations", None) or [1] * s)
    pads = list(node.attr("pads", None) or [0] * (2 * s))
    return op.col2im(
        ctx.expr(x), image_shape=image, block_shape=block, strides=strides, pads=pads, dilations=dilations
    )


@converter("STFT", since=17)
def _stft(ctx: Context, node: Node):
    """Frames gathered by a constant (frames, frame_length) index, weighted by the window, then a DFT along
    the frame axis. frame_step and frame_length must be known at import time (they shape the output)."""
    signal = node.inputs[0]
    shape = ctx.shape(signal)
    if len(shape) != 3:
        raise node.unsupported(f"a rank-{len(shape)} signal is not supported (batch, length, 1 | 2)")
    step = int(ctx.const(node, 1, "frame_step").reshape(-1)[0])
    given = ctx.const(node, 3, "frame_length")
    window = node.input(2)
    if given is not None:
        frame = int(given.reshape(-1)[0])
    elif window:
        frame = as_int(ctx.shape(window)[0])
    else:
        frame = as_int(shape[1])
    length = as_int(shape[1])
    if frame is None or length is None or step < 1 or not 1 <= frame <= length:
        raise node.unsupported(f"frame length {frame}, step {step} over a signal of length {shape[1]}")
    onesided = bool(node.attr("onesided", 1))
    if onesided and as_int(shape[2]) != 1:
        raise node.unsupported("onesided with a complex signal is not supported")
    frames = 1 + (length - frame) // step
    index = np.arange(frames)[:, None] * step + np.arange(frame)[None, :]
    framed = ctx.emit(op.take(ctx.expr(signal), index.astype(np.int64), axis=1))  # (batch, frames, frame, c)
    if window:
        weights = ctx.emit(op.reshape(ctx.expr(window), (1, 1, frame, 1)))
        framed = ctx.emit(op.multiply(framed, weights))
    return op.dft(framed, axis=2, length=frame, inverse=False, onesided=onesided)


@converter("MelWeightMatrix", since=17)
def _mel_weight_matrix(ctx: Context, node: Node):
    """A constant: every input is a scalar that must be known at import time (the output's shape depends on
    them). Triangular filters on the mel scale, as onnx's reference builds them."""
    names = ("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")
    values = [ctx.const(node, i, what).reshape(-1)[0] for i, what in enumerate(names)]
    mel_bins, dft_length, sample_rate = (int(v) for v in values[:3])
    lower, upper = float(values[3]), float(values[4])
    dtype = onnx_dtype(
        node.attr("output_datatype", 1), "ONNX op 'MelWeightMatrix' attribute 'output_datatype'"
    )
    if mel_bins < 1 or dft_length < 1 or sample_rate < 1:
        raise node.unsupported("num_mel_bins, dft_length and sample_rate must be positive")
    bins = np.arange(0, mel_bins + 2)
    low_mel = 2595 * np.log1p(lower / 700) / np.log(10)
    high_mel = 2595 * np.log1p(upper / 700) / np.log(10)
    edges = 700 * np.expm1((bins * ((high_mel - low_mel) / bins.shape[0]) + low_mel) / 2595 * np.log(10))
    edges = (((dft_length + 1) * edges) // sample_rate).astype(int)
    out = np.zeros((dft_length // 2 + 1, mel_bins))
    for i in range(mel_bins):
        left, center, right = edges[i], edges[i + 1], edges[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            for j in range(left, center + 1):
                out[j, i] = (j - left) / (center - left)
        for j in range(center, right):
            out[j, i] = (right - j) / (right - center)
    return Known(out.astype(dtype.to_numpy()))


@converter("RoiAlign", since=16)
def _roi_align(ctx: Context, node: Node):
    x, rois, batch = node.inputs[:3]
    transform = node.attr("coordinate_transformation_mode", "half_pixel")
    if transform not in ("half_pixel", "output_half_pixel"):
        raise node.unsupported(f"coordinate_transformation_mode {transform!r} is not supported")
    mode = node.attr("mode", "avg")
    ratio = node.attr("sampling_ratio", 0)
    if ratio < 1:
        raise node.unsupported("sampling_ratio 0 (a sample count that depends on each ROI) is not supported")
    if not ctx.dtype(x).is_float or ctx.dtype(rois) != ctx.dtype(x) or ctx.rank(x) != 4:
        raise node.unsupported("a float (N, C, H, W) input with rois of its dtype is supported")
    return op.roi_align(
        ctx.expr(x),
        ctx.expr(rois),
        ctx.expr(batch),
        mode=mode,
        output_height=node.attr("output_height", 1),
        output_width=node.attr("output_width", 1),
        sampling_ratio=ratio,
        spatial_scale=node.attr("spatial_scale", 1.0),
        half_pixel=transform == "half_pixel",
    )
