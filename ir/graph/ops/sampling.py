"""grid_sample (ONNX GridSample) and col2im (ONNX Col2Im).

grid_sample: an input sampled at normalized grid coordinates, with nearest, linear or
cubic interpolation and zeros, border or reflection padding, over 2 or 3 spatial dims.

The meaning is ONNX's reference implementation: coordinates are denormalized (align_corners picks the
pixel-corner or pixel-center convention), out-of-range coordinates are clamped (border) or reflected
(reflection) first, and every interpolation tap is fetched with the padding rule again (zeros: 0 outside).
Linear and cubic interpolation are separable: a sum over the 2^s or 4^s taps of the product of per-axis
weights. Every tap index is clamped into the input before it is read, so no coordinate (NaN included)
reads outside the buffer.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_float, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_ints, attr_str, register_op
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType, Type

MODES = ("nearest", "linear", "cubic")
PADDINGS = ("zeros", "border", "reflection")
CUBIC_ALPHA = -0.75


def _grid_sample_infer(info: CallInfo) -> Type:
    x, grid = info.tensor(0), info.tensor(1)
    dtype = same_dtype(info, (x, grid))
    require_float(info, x)
    if info.attrs["mode"] not in MODES:
        raise info.fail(f"mode must be one of {MODES}, got {info.attrs['mode']!r}")
    if info.attrs["padding_mode"] not in PADDINGS:
        raise info.fail(f"padding_mode must be one of {PADDINGS}, got {info.attrs['padding_mode']!r}")
    if not (x.known_rank and grid.known_rank):
        return TensorType(None, dtype)
    if x.ndim not in (4, 5) or grid.ndim != x.ndim:
        raise info.fail(f"input and grid must both have rank 4 or 5, got {x.ndim} and {grid.ndim}")
    if x.shape is None or grid.shape is None:
        return TensorType(None, dtype, x.ndim)
    return TensorType((x.shape[0], x.shape[1], *grid.shape[1:-1]), dtype)


# -- numpy reference (per output element, as ONNX's reference evaluator) ---------------------------


def _reflect_np(x: float, lo: float, hi: float) -> float:
    span = hi - lo
    if span <= 0:  # a single pixel with align_corners: every coordinate reflects onto it
        return lo
    if x < lo:
        d = lo - x
        n = int(d / span)
        r = d - n * span
        return lo + r if n % 2 == 0 else hi - r
    if x > hi:
        d = x - hi
        n = int(d / span)
        r = d - n * span
        return hi - r if n % 2 == 0 else lo + r
    return x


def _cubic_np(t: float) -> list[float]:
    a = CUBIC_ALPHA
    t = abs(t)
    return [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
    ]


def _grid_sample_reference(x, grid, mode, padding_mode, align_corners):
    dims = x.shape[2:]
    s = len(dims)
    lows = [0.0 if align_corners else -0.5] * s
    highs = [d - 1.0 if align_corners else d - 0.5 for d in dims]
    out = np.zeros((x.shape[0], x.shape[1], *grid.shape[1:-1]), dtype=x.dtype)

    def pixel(n, c, index):
        fixed = []
        for i, (v, d) in enumerate(zip(index, dims)):
            if padding_mode == "zeros":
                if not 0 <= v < d:
                    return 0.0
            elif padding_mode == "border":
                v = min(max(v, 0), d - 1)
            else:
                v = min(max(int(_reflect_np(v, lows[i], highs[i])), 0), d - 1)
            fixed.append(v)
        return float(x[(n, c, *fixed)])

    for pos in np.ndindex(*out.shape):
        n, c, o = pos[0], pos[1], pos[2:]
        g = grid[(n, *o)][::-1]
        coords = []
        for i in range(s):
            d = dims[i]
            v = (g[i] + 1) / 2.0 * (d - 1) if align_corners else ((g[i] + 1) * d - 1) / 2.0
            v = float(np.float32(v))
            if mode == "nearest":
                v = float(np.rint(v))
            if v < lows[i] or v > highs[i]:
                if padding_mode == "border":
                    v = min(max(v, 0.0), d - 1.0)
                elif padding_mode == "reflection":
                    v = _reflect_np(v, lows[i], highs[i])
            coords.append(v)
        if mode == "nearest":
            out[pos] = pixel(n, c, [int(v) for v in coords])
            continue
        taps = []
        for v in coords:
            base = math.floor(v)
            t = v - base
            if mode == "linear":
                taps.append([(base, 1 - t), (base + 1, t)])
            else:
                taps.append(list(zip(range(base - 1, base + 3), _cubic_np(t))))
        total = 0.0
        for combo in itertools.product(*taps):
            weight = math.prod(w for _, w in combo)
            total += weight * pixel(n, c, [i for i, _ in combo])
        out[pos] = total
    return out


# -- legalization ---------------------------------------------------------------------------------


def _cubic_te(t):
    a = CUBIC_ALPHA
    dtype = t.dtype

    def c(value):
        return T.const(value, dtype)

    one, two = c(1.0), c(2.0)
    t = te.abs(t)
    return [
        ((c(a) * (t + one) - c(5 * a)) * (t + one) + c(8 * a)) * (t + one) - c(4 * a),
        ((c(a + 2) * t - c(a + 3)) * t) * t + one,
        ((c(a + 2) * (one - t) - c(a + 3)) * (one - t)) * (one - t) + one,
        ((c(a) * (two - t) - c(5 * a)) * (two - t) + c(8 * a)) * (two - t) - c(4 * a),
    ]


def _grid_sample_legalize(inputs, out, mode, padding_mode, align_corners):
    """Three stages, each a small expression: the processed coordinate per output point and axis; per
    axis and tap, the tap's input index and weight (padding applied: a zeros-padded tap outside the input
    gets weight 0 and a clamped index); then a reduction over the taps of all axes."""
    x, grid = inputs
    dims = list(x.shape[2:])
    s = len(dims)
    dtype = x.dtype
    zero_i, one_i = T.const(0, "int64"), T.const(1, "int64")
    taps = {"nearest": 1, "linear": 2, "cubic": 4}[mode]

    def f(value):
        return T.const(value, dtype)

    def pick(values, i):
        """values[i] for an index expression i over the spatial axes."""
        chosen = values[-1]
        for k in range(s - 2, -1, -1):
            chosen = E.select(E.EQ(i, T.const(k, "int64")), values[k], chosen)
        return chosen

    def axis_bounds(length):
        return (f(0.0), length - f(1.0)) if align_corners else (f(-0.5), length - f(0.5))

    def coordinate(n, *rest):
        o, i = rest[:-1], rest[-1]
        length = T.cast(pick(dims, i), dtype)
        g = grid[(n, *o, T.const(s - 1, "int64") - i)]
        if align_corners:
            v = (g + f(1.0)) / f(2.0) * (length - f(1.0))
        else:
            v = ((g + f(1.0)) * length - f(1.0)) / f(2.0)
        if mode == "nearest":
            v = te.round(v)
        lo, hi = axis_bounds(length)
        if padding_mode == "border":
            return E.select(E.logical_or(v < lo, v > hi), te.max(te.min(v, length - f(1.0)), f(0.0)), v)
        if padding_mode == "reflection":
            return _reflect_float(v, lo, hi)
        return v

    point_shape = (x.shape[0], *grid.shape[1:-1])
    coords = te.compute((*point_shape, T.const(s, "int64")), coordinate, name="grid_sample_coord")
    tap_shape = (*point_shape, T.const(s, "int64"), T.const(taps, "int64"))

    def tap(n, *rest):
        """(index before padding, weight) of tap t on axis i."""
        o, i, t = rest[:-2], rest[-2], rest[-1]
        v = coords[(n, *o, i)]
        if mode == "nearest":
            return _to_index(v), f(1.0)
        base = te.floor(v)
        frac = v - base
        if mode == "linear":
            return _to_index(base) + t, E.select(E.EQ(t, zero_i), f(1.0) - frac, frac)
        weights = _cubic_te(frac)
        return _to_index(base) - one_i + t, pick_tap(weights, t)

    def pick_tap(weights, t):
        chosen = weights[-1]
        for k in range(len(weights) - 2, -1, -1):
            chosen = E.select(E.EQ(t, T.const(k, "int64")), weights[k], chosen)
        return chosen

    def padded_index(n, *rest):
        index, _ = tap(n, *rest)
        i = rest[-2]
        d = pick(dims, i)
        if padding_mode == "reflection":
            lo, hi = axis_bounds(T.cast(d, dtype))
            index = T.cast(_reflect_float(T.cast(index, dtype), lo, hi), "int64")
        return te.max(te.min(index, d - one_i), zero_i)

    def padded_weight(n, *rest):
        index, weight = tap(n, *rest)
        if padding_mode != "zeros":
            return weight
        d = pick(dims, rest[-2])
        return E.select(E.logical_and(index >= zero_i, index < d), weight, f(0.0))

    indices = te.compute(tap_shape, padded_index, name="grid_sample_index")
    weights = te.compute(tap_shape, padded_weight, name="grid_sample_weight")

    def body(n, c, *o):
        ts = [te.reduce_axis((0, taps), name=f"t{i}") for i in range(s)]
        weight = None
        where = []
        for i in range(s):
            at = (n, *o, T.const(i, "int64"), ts[i])
            weight = weights[at] if weight is None else weight * weights[at]
            where.append(indices[at])
        return te.sum(weight * x[(n, c, *where)], axis=ts)

    return te.compute(T.out_shape(out), body, name="grid_sample")


def _to_index(v):
    """A float coordinate as an int64 index; NaN and huge values become a finite (then clamped) index."""
    dtype = v.dtype
    bounded = te.max(te.min(v, T.const(2.0**40, dtype)), T.const(-(2.0**40), dtype))
    safe = E.select(E.EQ(v, v), bounded, T.const(0, dtype))
    return T.cast(safe, "int64")


def _reflect_float(v, lo, hi):
    """_reflect_te with bounds that are expressions (they depend on the symbolic input dims)."""
    span = hi - lo

    def fold(d, near, far, sign):
        n = te.floor(d / span)
        r = d - n * span
        even = E.EQ(te.floormod(T.cast(n, "int64"), T.const(2, "int64")), T.const(0, "int64"))
        return E.select(even, near + sign * r, far - sign * r)

    one = T.const(1, v.dtype)
    below = fold(lo - v, lo, hi, one)
    above = fold(v - hi, hi, lo, -one)
    reflected = E.select(v < lo, below, E.select(v > hi, above, v))
    return E.select(span > T.const(0, v.dtype), reflected, lo)  # a single pixel: everything lands on it


register_op(
    "grid_sample",
    num_args=2,
    attrs=(
        Attr("mode", attr_str, "linear"),
        Attr("padding_mode", attr_str, "zeros"),
        Attr("align_corners", attr_bool, False),
    ),
    infer_type=_grid_sample_infer,
    reference=_grid_sample_reference,
    legalize=_grid_sample_legalize,
    pattern="opaque",
    doc="ONNX GridSample over (N, C, [D,] H, W) at grid (N, [D',] H', W', s) coordinates in [-1, 1].",
)


# ---------------------------------------------------------------------------------------------
# col2im (ONNX Col2Im): sliding blocks summed back into an image
# ---------------------------------------------------------------------------------------------


def _col2im_geometry(image, block, strides, pads, dilations):
    """Blocks per spatial dim, as ONNX: floor((size + pads - dilation (k - 1) - 1) / stride) + 1."""
    s = len(image)
    return [
        (image[i] + pads[i] + pads[s + i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
        for i in range(s)
    ]


def _col2im_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    image, block = info.attrs["image_shape"], info.attrs["block_shape"]
    s = len(image)
    strides, pads, dilations = info.attrs["strides"], info.attrs["pads"], info.attrs["dilations"]
    if len(block) != s or len(strides) != s or len(dilations) != s or len(pads) != 2 * s:
        raise info.fail("image_shape, block_shape, strides, dilations (and pads, twice) must agree in length")
    if min((*image, *block, *strides, *dilations)) < 1 or min(pads, default=0) < 0:
        raise info.fail("shapes, strides and dilations must be positive and pads non-negative")
    if not x.known_rank or x.shape is None:
        return TensorType(None, x.dtype)
    if x.ndim != 3:
        raise info.fail(f"input must have rank 3 (N, C * prod(block), L), got {x.ndim}")
    kernel = math.prod(block)
    blocks = math.prod(_col2im_geometry(image, block, strides, pads, dilations))
    channels = x.shape[1]
    c, length = as_int(channels), as_int(x.shape[2])
    if c is None or c % kernel:
        raise info.fail(f"input channels {channels} must be a static multiple of prod(block_shape) {kernel}")
    if length is not None and length != blocks:
        raise info.fail(f"input has {length} blocks, the geometry gives {blocks}")
    return TensorType((x.shape[0], c // kernel, *image), x.dtype)


def _col2im_reference(x, image_shape, block_shape, strides, pads, dilations):
    s = len(image_shape)
    nb = _col2im_geometry(image_shape, block_shape, strides, pads, dilations)
    kernel = math.prod(block_shape)
    n, ck, _ = x.shape
    out = np.zeros((n, ck // kernel, *image_shape), dtype=np.float64)
    for k_flat, k in enumerate(np.ndindex(*block_shape)):
        for b_flat, b in enumerate(np.ndindex(*nb)):
            pos = [b[i] * strides[i] - pads[i] + k[i] * dilations[i] for i in range(s)]
            if all(0 <= p < image_shape[i] for i, p in enumerate(pos)):
                out[(slice(None), slice(None), *pos)] += x[:, k_flat::kernel, b_flat]
    return out.astype(x.dtype)


def _col2im_legalize(inputs, out, image_shape, block_shape, strides, pads, dilations):
    x = inputs[0]
    s = len(image_shape)
    nb = _col2im_geometry(image_shape, block_shape, strides, pads, dilations)
    kernel = math.prod(block_shape)

    def body(n, c, *y):
        ks = [te.reduce_axis((0, block_shape[i]), name=f"k{i}") for i in range(s)]
        valid, blocks = None, []
        for i in range(s):
            offset = y[i] + T.const(pads[i], "int64") - ks[i] * T.const(dilations[i], "int64")
            b = te.floordiv(offset, T.const(strides[i], "int64"))
            ok = E.logical_and(
                E.EQ(te.floormod(offset, T.const(strides[i], "int64")), T.const(0, "int64")),
                E.logical_and(b >= T.const(0, "int64"), b < T.const(nb[i], "int64")),
            )
            valid = ok if valid is None else E.logical_and(valid, ok)
            blocks.append(te.max(te.min(b, T.const(nb[i] - 1, "int64")), T.const(0, "int64")))
        k_flat = ks[0]
        b_flat = blocks[0]
        for i in range(1, s):
            k_flat = k_flat * T.const(block_shape[i], "int64") + ks[i]
            b_flat = b_flat * T.const(nb[i], "int64") + blocks[i]
        value = x[(n, c * T.const(kernel, "int64") + k_flat, b_flat)]
        return te.sum(E.select(valid, value, T.const(0, x.dtype)), axis=ks)

    return te.compute(T.out_shape(out), body, name="col2im")


register_op(
    "col2im",
    num_args=1,
    attrs=(
        Attr("image_shape", attr_ints),
        Attr("block_shape", attr_ints),
        Attr("strides", attr_ints),
        Attr("pads", attr_ints),
        Attr("dilations", attr_ints),
    ),
    infer_type=_col2im_infer,
    reference=_col2im_reference,
    legalize=_col2im_legalize,
    pattern="opaque",
    doc="ONNX Col2Im: (N, C * prod(block), L) sliding blocks summed into (N, C, *image_shape).",
)
