"""resize2d: nearest / bilinear resizing of the two spatial axes of an NCHW tensor (ONNX Resize with `sizes`).

Output sizes are attributes (ints or int64 expressions, so a resize to a symbolic size stays one op). The
source coordinate of output index x along an axis follows the ONNX formulas, with scale = out / in:

    half_pixel          (x + 0.5) / scale - 0.5
    pytorch_half_pixel  (x + 0.5) / scale - 0.5 when out > 1, else 0
    align_corners       x * (in - 1) / (out - 1) when out > 1, else 0
    asymmetric          x / scale

computed in float32 in the same order onnxruntime does, so nearest rounding ties land on the same side.
Nearest rounds the coordinate (`rounding_method`) and clamps the index into [0, in); linear clamps the
coordinate into [0, in - 1] and blends the two neighbours (the far one clamped too), which is ONNX's
edge-padding. The numpy reference and the te legalization share the coordinate formula table below.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shapeflow import te
from shapeflow.errors import UnsupportedError
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import require_float
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_shape, attr_str, register_op
from shapeflow.ir.graph.types import TensorType, Type

METHODS = ("nearest", "linear")

# mode -> f(x, in_len, out_len, scale, is_one_output) over float32 values; `select(c, a, b)` picks
# elementwise. Written once against a tiny "ops" table so numpy and te evaluate the identical formula.
COORDINATE_MODES: dict[str, Callable] = {
    "half_pixel": lambda o, x, n_in, n_out, scale: (x + o.f(0.5)) / scale - o.f(0.5),
    "pytorch_half_pixel": lambda o, x, n_in, n_out, scale: o.select(
        n_out > o.f(1.0), (x + o.f(0.5)) / scale - o.f(0.5), o.f(0.0)
    ),
    "align_corners": lambda o, x, n_in, n_out, scale: o.select(
        n_out > o.f(1.0),
        x * (n_in - o.f(1.0)) / o.max(n_out - o.f(1.0), o.f(1.0)),
        o.f(0.0),
    ),
    "asymmetric": lambda o, x, n_in, n_out, scale: x / scale,
}

# rounding_method -> f(ops, coordinate) giving an integral float32 value.
ROUNDING_METHODS: dict[str, Callable] = {
    "round_prefer_floor": lambda o, v: o.ceil(v - o.f(0.5)),
    "round_prefer_ceil": lambda o, v: o.floor(v + o.f(0.5)),
    "floor": lambda o, v: o.floor(v),
    "ceil": lambda o, v: o.ceil(v),
}


class _NumpyOps:
    """float32 numpy arithmetic for the formula tables."""

    @staticmethod
    def f(value):
        return np.float32(value)

    select = staticmethod(np.where)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    max = staticmethod(np.maximum)


class _TeOps:
    """float32 te expressions for the formula tables."""

    @staticmethod
    def f(value):
        return T.const(value, "float32")

    @staticmethod
    def select(cond, a, b):
        return E.select(cond, a, b)

    floor = staticmethod(te.floor)
    ceil = staticmethod(te.ceil)

    @staticmethod
    def max(a, b):
        return E.max_expr(a, b)


def _check_choices(info_op: str, attrs) -> None:
    """Unknown method / mode / rounding names are features we lack, not ill-typed IR: UnsupportedError."""
    table = (
        ("method", METHODS),
        ("coordinate_transformation_mode", tuple(COORDINATE_MODES)),
        ("rounding_method", tuple(ROUNDING_METHODS)),
    )
    for name, choices in table:
        if attrs[name] not in choices:
            raise UnsupportedError(
                f"op '{info_op}': {name} {attrs[name]!r} is not supported (one of {choices})"
            )


def _resize2d_infer(info: CallInfo) -> Type:
    _check_choices(info.op, info.attrs)
    x = info.tensor(0)
    require_float(info, x)
    size = info.attrs["size"]
    if len(size) != 2:
        raise info.fail(f"size must be (out_h, out_w), got {len(size)} entries")
    if x.known_rank and x.ndim != 4:
        raise info.fail(f"input must be NCHW (rank 4), got rank {x.ndim}")
    if x.shape is None:
        return TensorType(None, x.dtype, 4)
    return TensorType((x.shape[0], x.shape[1], size[0], size[1]), x.dtype)


def _source_coordinates(n_in: int, n_out: int, mode: str) -> np.ndarray:
    f = np.float32
    x = np.arange(n_out, dtype=np.float32)
    scale = f(n_out) / f(n_in)
    return np.asarray(COORDINATE_MODES[mode](_NumpyOps, x, f(n_in), f(n_out), scale), dtype=np.float32)


def _axis_weights(n_in: int, n_out: int, method: str, mode: str, rounding: str) -> np.ndarray:
    """The (n_out, n_in) interpolation matrix of one axis."""
    coord = _source_coordinates(n_in, n_out, mode)
    m = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    if method == "nearest":
        idx = np.clip(ROUNDING_METHODS[rounding](_NumpyOps, coord).astype(np.int64), 0, n_in - 1)
        m[rows, idx] = 1.0
        return m
    c = np.clip(coord, np.float32(0.0), np.float32(n_in - 1))
    lo = np.floor(c).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = (c - lo.astype(np.float32)).astype(np.float32)
    np.add.at(m, (rows, lo), np.float32(1.0) - w)
    np.add.at(m, (rows, hi), w)
    return m


def _resize2d_reference(x, size, method, coordinate_transformation_mode, rounding_method):
    n_out_h, n_out_w = (int(s) for s in size)
    mode = coordinate_transformation_mode
    wh = _axis_weights(x.shape[2], n_out_h, method, mode, rounding_method)
    ww = _axis_weights(x.shape[3], n_out_w, method, mode, rounding_method)
    out = np.einsum("ph,nchw,qw->ncpq", wh, x.astype(np.float32), ww)
    return out.astype(x.dtype)


def _te_axis(index, n_in, n_out, method: str, mode: str, rounding: str):
    """[(source index, weight or None)] along one axis for output index `index` (int64 te expressions)."""
    f32 = "float32"
    fin, fout = T.cast(n_in, f32), T.cast(n_out, f32)
    coord = COORDINATE_MODES[mode](_TeOps, T.cast(index, f32), fin, fout, fout / fin)
    zero, last = T.const(0, "int64"), n_in - T.const(1, "int64")

    def clamp(i):
        return E.max_expr(zero, E.min_expr(i, last))

    if method == "nearest":
        return [(clamp(T.cast(ROUNDING_METHODS[rounding](_TeOps, coord), "int64")), None)]
    c = E.max_expr(T.const(0.0, f32), E.min_expr(coord, T.cast(last, f32)))
    lo = clamp(T.cast(te.floor(c), "int64"))
    hi = clamp(lo + T.const(1, "int64"))
    w = c - T.cast(lo, f32)
    return [(lo, T.const(1.0, f32) - w), (hi, w)]


def _resize2d_legalize(inputs, out, size, method, coordinate_transformation_mode, rounding_method):
    x = inputs[0]
    dtype = T.out_dtype(out)
    shape = T.out_shape(out)
    mode = coordinate_transformation_mode

    def body(n, c, p, q):
        rows = _te_axis(p, x.shape[2], shape[2], method, mode, rounding_method)
        cols = _te_axis(q, x.shape[3], shape[3], method, mode, rounding_method)
        total = None
        for hi, wh in rows:
            for wi, ww in cols:
                term = T.cast(x[n, c, hi, wi], "float32")
                weight = wh if ww is None else (ww if wh is None else wh * ww)
                if weight is not None:
                    term = weight * term
                total = term if total is None else total + term
        return T.cast(total, dtype)

    return te.compute(shape, body, name="resize2d")


register_op(
    "resize2d",
    num_args=1,
    attrs=(
        Attr("size", attr_shape),
        Attr("method", attr_str, "nearest"),
        Attr("coordinate_transformation_mode", attr_str, "half_pixel"),
        Attr("rounding_method", attr_str, "round_prefer_floor"),
    ),
    infer_type=_resize2d_infer,
    reference=_resize2d_reference,
    pattern="injective",
    doc="NCHW resize of H and W to `size` (ONNX Resize: nearest or bilinear; see the module docstring).",
    legalize=_resize2d_legalize,
)
