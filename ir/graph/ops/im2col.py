"""im2col: the patch matrix that turns a 2-D convolution into one GEMM.

    im2col(x, kernel_size=(KH, KW), strides, padding, dilation, layout) -> (N, OH, OW, KH * KW * C)
    layout "NHWC": x (N, H, W, C), out[n, oh, ow, (kh * KW + kw) * C + c]
    layout "NCHW": x (N, C, H, W), out[n, oh, ow, (c * KH + kh) * KW + kw]
    = x at (n, c, oh * sh + kh * dh - ph, ow * sw + kw * dw - pw), 0 where that lies in the padding

It is the producer of the conv-as-GEMM rewrite (passes/graph/conv_gemm.py): conv2d(x, w) equals
linear(im2col(x), w flattened in the patch order), whose GEMM stage the hierarchy runs. Channels-last input
makes the innermost index of a patch row a contiguous run of C input elements, and makes a 1x1 stride-1
convolution need no patch copy at all; the rewrite keeps activations channels-last between convolutions.
The "NCHW" layout reads a model's NCHW input directly (its patch order is the OIHW weight's own), so the
first convolution needs no separate transpose of its input. The op is declared here, beside but apart from
nn.py (which is at its size limit), and registered when nn.py is imported.
"""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_ints, attr_str, register_op
from shapeflow.ir.graph.shape import as_int, simplify
from shapeflow.ir.graph.types import TensorType, Type

LAYOUTS = ("NHWC", "NCHW")


def _pair(info: CallInfo, name: str) -> tuple[int, int]:
    value = info.attrs[name]
    if len(value) == 1:
        value = value * 2
    if len(value) != 2 or any(v <= 0 for v in value):
        raise info.fail(f"{name} needs 1 or 2 positive values, got {value}")
    return value


def _pads(info: CallInfo) -> tuple[int, int, int, int]:
    value = info.attrs["padding"]
    if len(value) == 1:
        value = value * 4
    elif len(value) == 2:
        value = value + value
    if len(value) != 4 or any(p < 0 for p in value):
        raise info.fail(f"padding needs 1, 2 or 4 non-negative values (top, left, bottom, right): {value}")
    return value


def _infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    layout = info.attrs["layout"]
    if layout not in LAYOUTS:
        raise info.fail(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if x.known_rank and x.ndim != 4:
        raise info.fail(f"data must have rank 4 ({layout}), got {x.ndim}")
    (kh, kw), (sh, sw), (dh, dw) = (_pair(info, a) for a in ("kernel_size", "strides", "dilation"))
    pt, pl, pb, pr = _pads(info)
    if x.shape is None:
        return TensorType(None, x.dtype, 4)
    n, h, w, c = x.shape if layout == "NHWC" else (x.shape[0], *x.shape[2:], x.shape[1])
    oh = simplify(E.floordiv(h + (pt + pb - dh * (kh - 1) - 1), sh) + 1)
    ow = simplify(E.floordiv(w + (pl + pr - dw * (kw - 1) - 1), sw) + 1)
    return TensorType((n, oh, ow, simplify(c * (kh * kw))), x.dtype)


def _attrs4(kernel_size, strides, padding, dilation):
    def two(v):
        return tuple(v) * 2 if len(v) == 1 else tuple(v)

    pads = tuple(padding) * 4 if len(padding) == 1 else tuple(padding)
    pads = pads + pads if len(pads) == 2 else pads
    return two(kernel_size), two(strides), pads, two(dilation)


def _reference(x, kernel_size, strides, padding, dilation, layout="NHWC"):
    if layout == "NCHW":  # the NHWC patches of the transposed input, columns reordered to (c, kh, kw)
        n, c = x.shape[:2]
        nhwc = _reference(np.transpose(x, (0, 2, 3, 1)), kernel_size, strides, padding, dilation)
        kh, kw = _attrs4(kernel_size, strides, padding, dilation)[0]
        shape = nhwc.shape[:3]
        return nhwc.reshape(*shape, kh, kw, c).transpose(0, 1, 2, 5, 3, 4).reshape(*shape, c * kh * kw)
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = _attrs4(kernel_size, strides, padding, dilation)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, hp, wp, c = xp.shape
    oh = max((hp - dh * (kh - 1) - 1) // sh + 1, 0)
    ow = max((wp - dw * (kw - 1) - 1) // sw + 1, 0)
    out = np.zeros((n, oh, ow, kh, kw, c), x.dtype)
    if oh and ow:
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
                out[:, :, :, i, j, :] = xp[:, rows, cols, :]
    return out.reshape(n, oh, ow, kh * kw * c)


def _legalize(inputs, out, kernel_size, strides, padding, dilation, layout="NHWC"):
    """One injective stage; the patch index k splits into (kh, kw, c) (or (c, kh, kw)). A position in the
    padding must not be read: channels-last with constant, non-empty H and W clamps the index into the
    input and selects 0 (one store, so the kernel stays "injective" and fusable behind the previous conv's
    epilogue, and schedule_patches vectorizes its channel runs); a symbolic H or W could be 0 at run time,
    where no clamped index is in bounds, so the load is guarded by if_then_else instead (a branchy kernel
    the default rule parallelizes over rows). NCHW input takes the guarded form too: its vectorized
    injective form gathers every lane (the ResNet-50 stem's patches took 23 ms that way, 0.7 ms guarded)."""
    x = inputs[0]
    (kh_n, kw_n), (sh, sw), pads, (dh, dw) = _attrs4(kernel_size, strides, padding, dilation)
    pt, pl = pads[0], pads[1]
    nhwc = layout == "NHWC"
    h, w, c_n = (x.shape[1], x.shape[2], x.shape[3]) if nhwc else (x.shape[2], x.shape[3], x.shape[1])
    h_int, w_int = as_int(h), as_int(w)
    clamp = nhwc and h_int is not None and w_int is not None and h_int > 0 and w_int > 0

    def body(n, oh, ow, k):
        if nhwc:
            c, tap = E.floormod(k, c_n), E.floordiv(k, c_n)
            kh, kw = E.floordiv(tap, kw_n), E.floormod(tap, kw_n)
        else:
            c, tap = E.floordiv(k, kh_n * kw_n), E.floormod(k, kh_n * kw_n)
            kh, kw = E.floordiv(tap, kw_n), E.floormod(tap, kw_n)
        hi = oh * sh + kh * dh - pt
        wi = ow * sw + kw * dw - pl
        inside = E.logical_and(E.logical_and(hi >= 0, hi < h), E.logical_and(wi >= 0, wi < w))
        if not any(pads):
            return x[n, hi, wi, c] if nhwc else x[n, c, hi, wi]
        if clamp:
            hc, wc = E.max_expr(E.min_expr(hi, h_int - 1), 0), E.max_expr(E.min_expr(wi, w_int - 1), 0)
            value = x[n, hc, wc, c] if nhwc else x[n, c, hc, wc]
            # "+ 0" keeps the select inside the stored value: te turns a top-level select that loads into
            # an if/else (for unclamped padding), which would make the kernel opaque and unvectorized.
            return E.select(inside, value, T.const(0.0, x.dtype)) + T.const(0.0, x.dtype)
        value = x[n, hi, wi, c] if nhwc else x[n, c, hi, wi]
        return te.if_then_else(inside, value, T.const(0.0, x.dtype))

    return te.compute(T.out_shape(out), body, name="im2col" if nhwc else "im2col_nchw")


register_op(
    "im2col",
    num_args=1,
    attrs=(
        Attr("kernel_size", attr_ints),
        Attr("strides", attr_ints, (1, 1)),
        Attr("padding", attr_ints, (0, 0)),
        Attr("dilation", attr_ints, (1, 1)),
        Attr("layout", attr_str, "NHWC"),
    ),
    infer_type=_infer,
    reference=_reference,
    pattern="injective",
    doc="Patch matrix of NHWC (or NCHW) data -> (N, OH, OW, KH * KW * C) for conv as GEMM; padding is "
    "(top, left, bottom, right), one value, or one per spatial dim.",
    legalize=_legalize,
)
