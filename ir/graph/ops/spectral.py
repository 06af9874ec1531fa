"""dft (ONNX DFT): the discrete Fourier transform along one axis of a signal whose last dim holds (real,)
or (real, imaginary).

Computed directly in float64, O(n^2) per transformed line, as two reductions (real and imaginary part) and a
compute that interleaves them. The twiddle angle of term (k, m) is 2 pi ((k m) mod L) / L with the product
reduced in int64 first, so large indices lose no precision in the float angle.

- forward: X[k] = sum_m x[m] e^{-2 pi i k m / L}, k < L (k <= L/2 when onesided);
- inverse: x[m] = 1/L sum_k X[k] e^{+2 pi i k m / L}; inverse and onesided is numpy's irfft: the input is
  the half spectrum of a real signal of length L (the other half its mirror conjugate), the output real.
Input lines longer than L are truncated, shorter ones zero-padded, as numpy's `n`.
"""

from __future__ import annotations

import math

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import normalize_axis, require_float
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_int, register_op
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType, Type


def _out_length(length: int, inverse: bool, onesided: bool) -> int:
    if onesided and not inverse:
        return length // 2 + 1
    return length


def _dft_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    require_float(info, x)
    length, inverse, onesided = info.attrs["length"], info.attrs["inverse"], info.attrs["onesided"]
    if length < 1:
        raise info.fail(f"the transform length must be >= 1, got {length}")
    if not x.known_rank or x.shape is None:
        return TensorType(None, x.dtype)
    if x.ndim < 2:
        raise info.fail(f"the signal must have rank >= 2 (..., n, 1 or 2), got {x.ndim}")
    axis = normalize_axis(info, info.attrs["axis"], x.ndim)
    if axis == x.ndim - 1:
        raise info.fail("the transformed axis cannot be the last (complex) dim")
    last = as_int(x.shape[-1])
    if last not in (1, 2):
        raise info.fail(f"the last dim must be 1 (real) or 2 (complex), got {x.shape[-1]}")
    shape = list(x.shape)
    shape[axis] = _out_length(length, inverse, onesided)
    shape[-1] = 1 if inverse and onesided else 2
    return TensorType(tuple(shape), x.dtype)


def _dft_reference(x, axis, length, inverse, onesided):
    signal = x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(np.complex128)
    if inverse and onesided:
        out = np.fft.irfft(signal, n=length, axis=axis)[..., np.newaxis]
        return out.astype(x.dtype)
    out = np.fft.ifft(signal, n=length, axis=axis) if inverse else np.fft.fft(signal, n=length, axis=axis)
    if onesided and not inverse:
        out = np.take(out, np.arange(length // 2 + 1), axis=axis)
    return np.stack([out.real, out.imag], axis=-1).astype(x.dtype)


def _dft_legalize(inputs, out, axis, length, inverse, onesided):
    x = inputs[0]
    # float64 accumulation and twiddles: sin(pi) in float32 is -8.7e-8, which leaves visible noise where
    # the exact transform is zero (the imaginary part at the Nyquist frequency)
    dtype = "float64"
    shape = T.out_shape(out)
    lines = shape[:-1]
    complex_input = as_int(x.shape[-1]) == 2
    n_in = x.shape[axis]
    half = length // 2 + 1
    # terms summed: the input line (truncated to L), or the half spectrum for irfft
    terms = te.min(n_in, T.const(half if inverse and onesided else length, "int64"))
    two_pi_over_l = T.const(2.0 * math.pi / length, dtype)
    scale = T.const(1.0 / length if inverse else 1.0, dtype)

    def parts(idx, k):
        at = (*idx[:axis], k, *idx[axis + 1 :])
        re = T.cast(x[(*at, T.const(0, "int64"))], dtype)
        im = T.cast(x[(*at, T.const(1, "int64"))], dtype) if complex_input else T.const(0.0, dtype)
        p = te.floormod(T.cast(k, "int64") * idx[axis], T.const(length, "int64"))
        angle = T.cast(p, dtype) * two_pi_over_l
        return re, im, te.cos(angle), te.sin(angle)

    def weight(k):
        if not (inverse and onesided):
            return None
        # the mirrored half counts twice, except k = 0 and (even L) the Nyquist term
        single = E.EQ(k, T.const(0, "int64"))
        if length % 2 == 0:
            single = E.logical_or(single, E.EQ(k, T.const(length // 2, "int64")))
        return E.select(single, T.const(1.0, dtype), T.const(2.0, dtype))

    def real_part(*idx):
        k = te.reduce_axis((0, terms), name="k")
        re, im, c, s = parts(idx, k)
        term = re * c + im * s if not inverse else re * c - im * s
        w = weight(k)
        return te.sum(term if w is None else w * term, axis=k)

    def imag_part(*idx):
        k = te.reduce_axis((0, terms), name="k")
        re, im, c, s = parts(idx, k)
        return te.sum(im * c - re * s if not inverse else im * c + re * s, axis=k)

    real = te.compute(lines, real_part, name="dft_real")
    if inverse and onesided:
        return te.compute(shape, lambda *i: T.cast(real[i[:-1]] * scale, x.dtype), name="dft")
    imag = te.compute(lines, imag_part, name="dft_imag")

    def interleave(*i):
        line = i[:-1]
        value = E.select(E.EQ(i[-1], T.const(0, "int64")), real[line], imag[line]) * scale
        return T.cast(value, x.dtype)

    return te.compute(shape, interleave, name="dft")


register_op(
    "dft",
    num_args=1,
    attrs=(
        Attr("axis", attr_int),
        Attr("length", attr_int),
        Attr("inverse", attr_bool, False),
        Attr("onesided", attr_bool, False),
    ),
    infer_type=_dft_infer,
    reference=_dft_reference,
    legalize=_dft_legalize,
    pattern="opaque",
    doc="ONNX DFT along `axis` of (..., n, 1 | 2) real/complex signals, transform length `length`.",
)
