"""roi_align (ONNX RoiAlign): each region of interest pooled to a fixed (out_h, out_w) grid of bins, every
bin the average (or max) of sampling_ratio^2 bilinear samples.

The meaning is onnxruntime's kernel, which ONNX's reference implementation copies: a sample outside
[-1, size] on either axis contributes 0; otherwise it is clamped to >= 0 and its low tap to size - 1; in
"max" mode a sample's value is the largest of its four weighted taps (not the interpolated value). Only a
static sampling_ratio > 0 is supported: with 0 the sample count depends on each ROI's size.

Legalized in stages: per ROI, bin and sample, the low/high taps, fraction and validity along each axis;
then one reduction over the samples of each bin.
"""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_float
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_bool,
    attr_float,
    attr_int,
    attr_str,
    register_op,
)
from shapeflow.ir.graph.types import TensorType, Type


def _roi_infer(info: CallInfo) -> Type:
    x, rois, batch = info.tensor(0), info.tensor(1), info.tensor(2)
    require_float(info, x)
    if rois.dtype is not None and x.dtype is not None and rois.dtype != x.dtype:
        raise info.fail(f"rois ({rois.dtype}) must have the input's dtype ({x.dtype})")
    if batch.dtype is not None and not batch.dtype.is_integer:
        raise info.fail(f"batch indices must be integers, got {batch.dtype}")
    if info.attrs["mode"] not in ("avg", "max"):
        raise info.fail(f"mode must be 'avg' or 'max', got {info.attrs['mode']!r}")
    if info.attrs["sampling_ratio"] < 1 or info.attrs["output_height"] < 1 or info.attrs["output_width"] < 1:
        raise info.fail("sampling_ratio and the output size must be positive")
    if x.shape is None or batch.shape is None:
        return TensorType(None, x.dtype, 4)
    if len(x.shape) != 4 or len(batch.shape) != 1:
        raise info.fail("input must be (N, C, H, W) and batch indices 1-D")
    return TensorType(
        (batch.shape[0], x.shape[1], info.attrs["output_height"], info.attrs["output_width"]), x.dtype
    )


def _axis_samples_np(start, size, pooled, grid, extent, half_pixel):
    """Per (bin, sample) along one axis: low tap, high tap, fraction, validity."""
    if not half_pixel:
        size = max(size, 1.0)
    step = size / pooled
    out = []
    for p in range(pooled):
        row = []
        for i in range(grid):
            v = start + p * step + (i + 0.5) * step / grid
            if v < -1.0 or v > extent:
                row.append((0, 0, 0.0, False))
                continue
            v = max(v, 0.0)
            low = int(v)
            if low >= extent - 1:
                low = high = extent - 1
                v = float(low)
            else:
                high = low + 1
            row.append((low, high, v - low, True))
        out.append(row)
    return out


def _roi_reference(x, rois, batch_indices, mode, output_height, output_width, sampling_ratio, spatial_scale,
                   half_pixel):  # fmt: skip
    n_rois, channels = batch_indices.shape[0], x.shape[1]
    height, width = x.shape[2], x.shape[3]
    out = np.zeros((n_rois, channels, output_height, output_width), dtype=np.float64)
    offset = 0.5 if half_pixel else 0.0
    grid = sampling_ratio
    for r in range(n_rois):
        b = int(batch_indices[r])
        if not 0 <= b < x.shape[0]:
            raise IndexError(f"roi_align: batch index {b} is out of range")
        x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in rois[r, :4])
        ys = _axis_samples_np(y1, y2 - y1, output_height, grid, height, half_pixel)
        xs = _axis_samples_np(x1, x2 - x1, output_width, grid, width, half_pixel)
        image = x[b].astype(np.float64)
        for ph in range(output_height):
            for pw in range(output_width):
                values = []
                for yl, yh, ly, yv in ys[ph]:
                    for xl, xh, lx, xv in xs[pw]:
                        ok = 1.0 if yv and xv else 0.0
                        w = [(1 - ly) * (1 - lx) * ok, (1 - ly) * lx * ok, ly * (1 - lx) * ok, ly * lx * ok]
                        taps = [image[:, yl, xl], image[:, yl, xh], image[:, yh, xl], image[:, yh, xh]]
                        if mode == "avg":
                            values.append(sum(wi * t for wi, t in zip(w, taps)))
                        else:
                            values.append(np.max([wi * t for wi, t in zip(w, taps)], axis=0))
                stacked = np.stack(values)
                out[r, :, ph, pw] = stacked.mean(axis=0) if mode == "avg" else stacked.max(axis=0)
    return out.astype(x.dtype)


def _roi_legalize(inputs, out, mode, output_height, output_width, sampling_ratio, spatial_scale, half_pixel):
    x, rois, batch = inputs
    dtype = x.dtype
    grid = sampling_ratio
    n_rois = batch.shape[0]
    zero_i, one_i = T.const(0, "int64"), T.const(1, "int64")

    def f(value):
        return T.const(value, dtype)

    def axis_stage(axis: int, pooled: int, extent, what: str):
        """(r, p, i) -> one of low / high / frac / valid along `axis` (0: y, 1: x)."""
        ext_f = T.cast(extent, dtype)

        def coord(r, p, i):
            start = rois[r, T.const(axis ^ 1, "int64")] * f(spatial_scale) - f(0.5 if half_pixel else 0.0)
            end = rois[r, T.const(2 + (axis ^ 1), "int64")] * f(spatial_scale) - f(0.5 if half_pixel else 0.0)
            size = end - start if half_pixel else te.max(end - start, f(1.0))
            step = size / f(float(pooled))
            v = start + T.cast(p, dtype) * step + (T.cast(i, dtype) + f(0.5)) * step / f(float(grid))
            valid = E.logical_not(E.logical_or(v < f(-1.0), v > ext_f))
            v = te.max(v, f(0.0))
            low = T.cast(te.min(v, ext_f), "int64")  # v >= 0: truncation is floor
            last = extent - one_i
            at_end = low >= last
            low = E.select(at_end, last, low)
            high = E.select(at_end, last, low + one_i)
            frac = E.select(at_end, f(0.0), v - T.cast(low, dtype))
            return {"low": low, "high": high, "frac": frac, "valid": E.select(valid, f(1.0), f(0.0))}[what]

        shape = (n_rois, T.const(pooled, "int64"), T.const(grid, "int64"))
        return te.compute(shape, coord, name=f"roi_{'yx'[axis]}_{what}")

    ys = {w: axis_stage(0, output_height, x.shape[2], w) for w in ("low", "high", "frac", "valid")}
    xs = {w: axis_stage(1, output_width, x.shape[3], w) for w in ("low", "high", "frac", "valid")}

    def body(r, c, ph, pw):
        iy = te.reduce_axis((0, grid), name="iy")
        ix = te.reduce_axis((0, grid), name="ix")
        b = te.max(te.min(T.cast(batch[r], "int64"), x.shape[0] - one_i), zero_i)
        ly, lx = ys["frac"][r, ph, iy], xs["frac"][r, pw, ix]
        ok = ys["valid"][r, ph, iy] * xs["valid"][r, pw, ix]
        hy, hx = f(1.0) - ly, f(1.0) - lx
        y0, y1 = ys["low"][r, ph, iy], ys["high"][r, ph, iy]
        x0, x1 = xs["low"][r, pw, ix], xs["high"][r, pw, ix]
        taps = [
            hy * hx * ok * x[b, c, y0, x0],
            hy * lx * ok * x[b, c, y0, x1],
            ly * hx * ok * x[b, c, y1, x0],
            ly * lx * ok * x[b, c, y1, x1],
        ]
        if mode == "avg":
            return te.sum((taps[0] + taps[1] + taps[2] + taps[3]) / f(float(grid * grid)), axis=[iy, ix])
        return te.max(te.max(te.max(taps[0], taps[1]), te.max(taps[2], taps[3])), axis=[iy, ix])

    return te.compute(T.out_shape(out), body, name="roi_align")


def _roi_checks(inputs, **attrs):
    x, _, batch = inputs
    return [T.IndexCheck(batch, x.shape[0], "op 'roi_align': a batch index is out of range")]


register_op(
    "roi_align",
    num_args=3,
    attrs=(
        Attr("mode", attr_str, "avg"),
        Attr("output_height", attr_int, 1),
        Attr("output_width", attr_int, 1),
        Attr("sampling_ratio", attr_int),
        Attr("spatial_scale", attr_float, 1.0),
        Attr("half_pixel", attr_bool, True),
    ),
    infer_type=_roi_infer,
    reference=_roi_reference,
    legalize=_roi_legalize,
    index_checks=_roi_checks,
    pattern="opaque",
    doc="ONNX RoiAlign over (N, C, H, W) with rois (R, 4) = (x1, y1, x2, y2) and their batch indices.",
)
