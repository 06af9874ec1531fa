"""strided_slice: a box of a tensor with a step per sliced axis (ONNX Slice, numpy basic slicing).

The attributes are already normalized by whoever builds the call (the ONNX frontend clamps them against
the input's symbolic dims): for each axis in `axes`, `begin` is the first index read (0 <= begin < dim when
anything is read), `end` the exclusive stop (it may be -1 for a negative stride, meaning "through index 0"),
and `strides` a non-zero int. Keeping the clamping out of the op lets begin and end be symbolic
expressions while the output length stays a plain expression: ceil((end - begin) / stride), at least 0.
"""

from __future__ import annotations

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_be_at_most, normalize_axes
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_ints, attr_shape, register_op
from shapeflow.ir.graph.shape import simplify
from shapeflow.ir.graph.types import TensorType, Type


def slice_length(begin, end, stride: int):
    """The number of indices begin, begin + stride, ... strictly before `end` (0 when empty)."""
    zero = T.const(0, "int64")
    if stride > 0:
        span = E.floordiv(end - begin + (stride - 1), T.const(stride, "int64"))
    else:
        span = E.floordiv(begin - end + (-stride - 1), T.const(-stride, "int64"))
    return simplify(E.max_expr(span, zero))


def _strided_slice_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    axes, begin, end, strides = (info.attrs[k] for k in ("axes", "begin", "end", "strides"))
    if not len(axes) == len(begin) == len(end) == len(strides):
        raise info.fail("axes, begin, end and strides must have the same length")
    if any(s == 0 for s in strides):
        raise info.fail("strides must be non-zero")
    if not x.known_rank:
        return TensorType(None, x.dtype)
    axes = normalize_axes(info, axes, x.ndim)
    if x.shape is None:
        return TensorType(None, x.dtype, x.ndim)
    shape = list(x.shape)
    for a, b, e, s in zip(axes, begin, end, strides):
        shape[a] = slice_length(b, e, s)
        _check_in_bounds(info, a, b, s, shape[a], x.shape[a])
    return TensorType(tuple(shape), x.dtype)


def _check_in_bounds(info: CallInfo, axis: int, begin, stride: int, length, dim) -> None:
    """When anything is read along `axis`, its first and last index lie in [0, dim): the kernel reads
    x[begin + i * stride] unguarded. Written as `nonempty * index` bounds (nonempty = min(length, 1)) so an
    empty slice asks nothing; refuted: ShapeError now, unproved: a run-time requirement."""
    nonempty = E.min_expr(length, T.const(1, "int64"))
    last = begin + (length - T.const(1, "int64")) * T.const(stride, "int64")
    for index, which in ((begin, "begin"), (last, "last index")):
        what = f"axis {axis}: {which} out of range"
        must_be_at_most(info, T.const(0, "int64"), simplify(nonempty * index), what, axis)
        must_be_at_most(info, simplify(nonempty * (index + T.const(1, "int64"))), dim, what, axis)


def _strided_slice_reference(x, axes, begin, end, strides):
    index = [slice(None)] * x.ndim
    for a, b, e, s in zip(axes, begin, end, strides):
        index[a] = slice(int(b), None if int(e) < 0 else int(e), int(s))
    return x[tuple(index)].copy()


def _strided_slice_legalize(inputs, out, axes, begin, end, strides):
    x = inputs[0]
    where = {a % x.ndim: (b, s) for a, b, s in zip(axes, begin, strides)}

    def body(*i):
        index = []
        for d, v in enumerate(i):
            if d in where:
                b, s = where[d]
                index.append(b + v * T.const(s, "int64"))
            else:
                index.append(v)
        return x[tuple(index)]

    return te.compute(T.out_shape(out), body, name="strided_slice")


register_op(
    "strided_slice",
    num_args=1,
    attrs=(
        Attr("axes", attr_ints),
        Attr("begin", attr_shape),
        Attr("end", attr_shape),
        Attr("strides", attr_ints),
    ),
    infer_type=_strided_slice_infer,
    reference=_strided_slice_reference,
    pattern="injective",
    doc="x[begin:end:stride] along each of `axes` (begin/end pre-clamped; see the module docstring).",
    legalize=_strided_slice_legalize,
)
