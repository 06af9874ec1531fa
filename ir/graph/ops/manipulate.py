"""Shape manipulation: reshape, permute_dims, expand_dims, squeeze, flatten, concat, split, broadcast_to.

These are injective: each output element is one input element. Their inference is where symbolic shapes
matter most: reshape infers its -1 dim as product(input) / product(known dims) with shared factors
cancelled, so (n, 4, m) -> (-1, m) gives (n * 4, m) exactly.
"""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.expr import IntImm
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import (
    must_be_at_most,
    must_equal,
    normalize_axes,
    normalize_axis,
    same_dtype,
)
from shapeflow.ir.graph.ops.registry import (
    Attr,
    CallInfo,
    attr_int,
    attr_ints,
    attr_shape,
    optional,
    register_op,
)
from shapeflow.ir.graph.shape import (
    as_int,
    compare_dims,
    divide_products,
    format_dim,
    format_shape,
    product,
    prove,
    require,
    simplify,
)
from shapeflow.ir.graph.types import TensorType, TupleType, Type

_ONE = IntImm("int64", 1)


def _is_one(dim) -> bool | None:
    """True if the dim is provably 1, False if provably not 1, None if unknown."""
    return compare_dims(dim, _ONE)


# -- reshape --------------------------------------------------------------------------------------


def _reshape_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    new = list(info.attrs["shape"])
    holes = [i for i, d in enumerate(new) if as_int(d) == -1]
    if len(holes) > 1:
        raise info.fail(f"at most one -1 in the new shape, got {format_shape(new)}")
    for i, d in enumerate(new):
        value = as_int(d)
        if value is not None and value < -1:
            raise info.fail(f"new shape dimension {i} is negative: {value}")
    if x.shape is None:
        if holes:
            return TensorType(None, x.dtype, len(new))
        return TensorType(tuple(new), x.dtype)
    if holes:
        known = [d for i, d in enumerate(new) if i != holes[0]]
        total, part = product(x.shape), product(known)
        if as_int(total) is not None and as_int(part) is not None and as_int(part) != 0:
            if as_int(total) % as_int(part) != 0:
                raise info.shape_error(
                    f"cannot reshape {format_shape(x.shape)} into {format_shape(new)}",
                    expected=format_dim(total),
                    actual=f"a multiple of {format_dim(part)}",
                )
        new[holes[0]] = divide_products(x.shape, known)
        # The -1 is total // part: the element counts agree only when part divides total.
        must_equal(info, product(x.shape), product(new), "element counts differ")
        return TensorType(tuple(new), x.dtype)
    if not must_equal(info, product(x.shape), product(new), "element counts differ"):
        raise info.shape_error(
            f"cannot reshape {format_shape(x.shape)} into {format_shape(new)}: element counts differ",
            expected=format_dim(product(x.shape)),
            actual=format_dim(product(new)),
        )
    return TensorType(tuple(new), x.dtype)


def reshape_compute(x, shape, name: str = "reshape"):
    """x read in C order into `shape`: the flat output index, unravelled over x's (symbolic) dims."""

    def body(*idx):
        flat = T.const(0, "int64")
        for i, dim in zip(idx, shape):
            flat = flat * dim + i
        index = []
        for d in range(x.ndim - 1, -1, -1):
            index.append(flat if d == 0 else E.floormod(flat, x.shape[d]))
            flat = E.floordiv(flat, x.shape[d])
        return x[tuple(reversed(index))]

    return te.compute(shape, body, name=name)


register_op(
    "reshape",
    legalize=lambda inputs, out, shape: reshape_compute(inputs[0], T.out_shape(out)),
    num_args=1,
    attrs=(Attr("shape", attr_shape),),
    infer_type=_reshape_infer,
    reference=lambda x, shape: np.reshape(x, shape),  # the interpreter passes attrs evaluated to ints
    pattern="injective",
)


# -- permute_dims, expand_dims, squeeze, flatten ------------------------------------------------


def _permute_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    axes = info.attrs["axes"]
    if not x.known_rank:
        return TensorType(None, x.dtype, -1 if axes is None else len(axes))
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    if len(axes) != x.ndim:
        raise info.fail(f"axes {axes} do not permute a tensor of rank {x.ndim}")
    axes = normalize_axes(info, axes, x.ndim)
    if x.shape is None:
        return x
    return TensorType(tuple(x.shape[a] for a in axes), x.dtype)


def _permute_legalize(inputs, out, axes):
    x = inputs[0]
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)

    def body(*idx):
        index = [None] * x.ndim
        for j, a in enumerate(axes):
            index[a] = idx[j]
        return x[tuple(index)]

    return te.compute(T.out_shape(out), body, name="permute_dims")


register_op(
    "permute_dims",
    legalize=_permute_legalize,
    num_args=1,
    attrs=(Attr("axes", optional(attr_ints), None),),
    infer_type=_permute_infer,
    reference=lambda x, axes: np.transpose(x, axes),
    pattern="injective",
)


def _expand_dims_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    if not x.known_rank:
        return TensorType(None, x.dtype)
    rank = x.ndim + len(info.attrs["axis"])
    axes = normalize_axes(info, info.attrs["axis"], rank)
    if x.shape is None:
        return TensorType(None, x.dtype, rank)
    dims = iter(x.shape)
    return TensorType(tuple(_ONE if i in axes else next(dims) for i in range(rank)), x.dtype)


def _expand_dims_legalize(inputs, out, axis):
    x = inputs[0]
    rank = x.ndim + len(axis)
    axes = {a % rank for a in axis}
    return te.compute(
        T.out_shape(out), lambda *i: x[tuple(v for d, v in enumerate(i) if d not in axes)], name="expand_dims"
    )


register_op(
    "expand_dims",
    legalize=_expand_dims_legalize,
    num_args=1,
    attrs=(Attr("axis", attr_ints),),
    infer_type=_expand_dims_infer,
    reference=lambda x, axis: np.expand_dims(x, axis),
    pattern="injective",
)


def _squeeze_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    axis = info.attrs["axis"]
    if not x.known_rank:
        return TensorType(None, x.dtype)
    if axis is None:
        if x.shape is None:
            return TensorType(None, x.dtype)
        ones = [_is_one(d) for d in x.shape]
        if any(o is None for o in ones):  # which dims go is known only at run time
            return TensorType(None, x.dtype)
        return TensorType(tuple(d for d, o in zip(x.shape, ones) if not o), x.dtype)
    axes = normalize_axes(info, axis, x.ndim)
    if x.shape is None:
        return TensorType(None, x.dtype, x.ndim - len(axes))
    for a in axes:
        if _is_one(x.shape[a]) is False:
            raise info.shape_error(
                f"cannot squeeze dimension {a} of size {format_dim(x.shape[a])}",
                dimension=a,
                expected=1,
                actual=format_dim(x.shape[a]),
            )
    return TensorType(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)


def _squeeze_legalize(inputs, out, axis):
    x = inputs[0]
    if axis is None:
        gone = {d for d, dim in enumerate(x.shape) if _is_one(dim)}
    else:
        gone = {a % x.ndim for a in axis}

    def body(*idx):
        it = iter(idx)
        return x[tuple(T.const(0, "int64") if d in gone else next(it) for d in range(x.ndim))]

    return te.compute(T.out_shape(out), body, name="squeeze")


register_op(
    "squeeze",
    legalize=_squeeze_legalize,
    num_args=1,
    attrs=(Attr("axis", optional(attr_ints), None),),
    infer_type=_squeeze_infer,
    reference=lambda x, axis: np.squeeze(x, axis),
    pattern="injective",
)


def _flatten_range(info: CallInfo, ndim: int) -> tuple[int, int]:
    if ndim == 0:
        return 0, -1
    start = normalize_axis(info, info.attrs["start_dim"], ndim)
    end = normalize_axis(info, info.attrs["end_dim"], ndim)
    if start > end:
        raise info.fail(f"start_dim {start} is after end_dim {end}")
    return start, end


def _flatten_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    if not x.known_rank:
        return TensorType(None, x.dtype)
    start, end = _flatten_range(info, x.ndim)
    if x.ndim == 0:
        return TensorType((_ONE,), x.dtype)
    if x.shape is None:
        return TensorType(None, x.dtype, x.ndim - (end - start))
    shape = (*x.shape[:start], product(x.shape[start : end + 1]), *x.shape[end + 1 :])
    return TensorType(shape, x.dtype)


def _flatten_reference(x, start_dim, end_dim):
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])


register_op(
    "flatten",
    legalize=lambda inputs, out, start_dim, end_dim: reshape_compute(inputs[0], T.out_shape(out), "flatten"),
    num_args=1,
    attrs=(Attr("start_dim", attr_int, 0), Attr("end_dim", attr_int, -1)),
    infer_type=_flatten_infer,
    reference=_flatten_reference,
    pattern="injective",
    doc="Merge dims start_dim..end_dim (inclusive) into one; the defaults flatten to 1-D.",
)


# -- concat, split, broadcast_to ------------------------------------------------------------------


def _concat_infer(info: CallInfo) -> Type:
    tensors = [info.tensor(i) for i in range(len(info.types))]
    dtype = same_dtype(info, tensors)
    ranks = {t.ndim for t in tensors if t.known_rank}
    if len(ranks) > 1:
        raise info.fail(f"operands have different ranks {sorted(ranks)}")
    if not ranks:
        return TensorType(None, dtype)
    ndim = ranks.pop()
    axis = normalize_axis(info, info.attrs["axis"], ndim)
    if any(t.shape is None for t in tensors):
        return TensorType(None, dtype, ndim)
    first = tensors[0].shape
    for k, t in enumerate(tensors[1:], start=1):
        for i in range(ndim):
            if i != axis and not must_equal(
                info, first[i], t.shape[i], f"operand {k} dimension {i} does not match operand 0", i
            ):
                raise info.shape_error(
                    f"operand {k} dimension {i} does not match operand 0",
                    dimension=i,
                    expected=format_dim(first[i]),
                    actual=format_dim(t.shape[i]),
                )
    joined = simplify(sum((t.shape[axis] for t in tensors[1:]), first[axis]))
    return TensorType((*first[:axis], joined, *first[axis + 1 :]), dtype)


def _concat_legalize(inputs, out, axis):
    shape = T.out_shape(out)
    axis = axis % len(shape)

    def body(*idx):
        offsets, start = [], T.const(0, "int64")
        for x in inputs:
            offsets.append(start)
            start = start + x.shape[axis]

        def read(k):
            index = list(idx)
            index[axis] = idx[axis] - offsets[k]
            return inputs[k][tuple(index)]

        value = read(len(inputs) - 1)
        for k in range(len(inputs) - 2, -1, -1):
            value = te.if_then_else(idx[axis] < offsets[k + 1], read(k), value)
        return value

    return te.compute(shape, body, name="concat")


register_op(
    "concat",
    legalize=_concat_legalize,
    num_args=(1, None),
    attrs=(Attr("axis", attr_int, 0),),
    infer_type=_concat_infer,
    reference=lambda *xs, axis: np.concatenate(xs, axis=axis),
    pattern="injective",
)


def _split_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    spec = info.attrs["indices_or_sections"]
    count = spec if isinstance(spec, int) else len(spec) + 1
    if isinstance(spec, int) and spec <= 0:
        raise info.fail(f"number of sections must be positive, got {spec}")
    if not x.known_rank:
        return TupleType(tuple(TensorType(None, x.dtype) for _ in range(count)))
    axis = normalize_axis(info, info.attrs["axis"], x.ndim)
    if x.shape is None:
        return TupleType(tuple(TensorType(None, x.dtype, x.ndim) for _ in range(count)))
    dim = x.shape[axis]
    if isinstance(spec, int):
        if as_int(dim) is not None and as_int(dim) % spec != 0:
            raise info.shape_error(
                f"dimension {axis} of size {as_int(dim)} does not split into {spec} equal sections",
                dimension=axis,
                expected=f"a multiple of {spec}",
                actual=as_int(dim),
            )
        if as_int(dim) is None:  # equal sections of a symbolic dim: divisibility is checked at run time
            what = f"not divisible into {spec} sections"
            must_equal(info, E.FloorMod(dim, IntImm("int64", spec)), 0, what, axis)
        sizes = [simplify(E.FloorDiv(dim, IntImm("int64", spec)))] * spec
    else:
        bounds = [IntImm("int64", 0), *(IntImm("int64", i) for i in spec), dim]
        sizes = [simplify(b - a) for a, b in zip(bounds, bounds[1:])]
        for size in sizes:
            if prove(E.LT(size, IntImm("int64", 0))):
                raise info.fail(f"split indices {spec} are not increasing within dimension {format_dim(dim)}")
        if spec:  # the last section reads from spec[-1] on: the indices must lie within the dim
            must_be_at_most(info, IntImm("int64", max(spec)), dim, "split index beyond the dimension", axis)
    fields = [TensorType((*x.shape[:axis], s, *x.shape[axis + 1 :]), x.dtype) for s in sizes]
    return TupleType(tuple(fields))


def _split_spec(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return attr_ints(value)


def _split_reference(x, indices_or_sections, axis):
    return tuple(np.split(x, indices_or_sections, axis=axis))


def _split_legalize(inputs, out, indices_or_sections, axis):
    x = inputs[0]
    axis = axis % x.ndim
    outs, start = [], T.const(0, "int64")
    for k in range(len(out.fields)):
        shape = T.out_shape(out, k)

        def body(*idx, start=start):
            index = list(idx)
            index[axis] = idx[axis] + start
            return x[tuple(index)]

        outs.append(te.compute(shape, body, name=f"split{k}"))
        start = start + shape[axis]
    return tuple(outs)


register_op(
    "split",
    legalize=_split_legalize,
    num_args=1,
    attrs=(Attr("indices_or_sections", _split_spec), Attr("axis", attr_int, 0)),
    infer_type=_split_infer,
    reference=_split_reference,
    pattern="injective",
    doc="numpy.split: an int is a number of equal sections, a tuple the split points.",
)


def _broadcast_to_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    target = info.attrs["shape"]
    if x.known_rank and x.ndim > len(target):
        raise info.fail(f"cannot broadcast rank {x.ndim} to rank {len(target)}")
    if x.shape is not None:
        offset = len(target) - x.ndim
        for i, dim in enumerate(x.shape):
            want = target[offset + i]
            if _is_one(dim) is True or compare_dims(dim, want) is True:
                continue
            if _is_one(dim) is None:
                require("broadcast", dim, want, f"op '{info.op}': cannot broadcast", offset + i)
            elif not must_equal(info, dim, want, "cannot broadcast", offset + i):
                raise info.shape_error(
                    f"cannot broadcast dimension {i} of size {format_dim(dim)} to {format_dim(want)}",
                    dimension=offset + i,
                    expected=format_dim(want),
                    actual=format_dim(dim),
                )
    return TensorType(target, x.dtype)


register_op(
    "broadcast_to",
    legalize=lambda inputs, out, shape: T.elementwise(inputs, out, lambda v: v, "broadcast_to"),
    num_args=1,
    attrs=(Attr("shape", attr_shape),),
    infer_type=_broadcast_to_infer,
    reference=lambda x, shape: np.broadcast_to(x, shape).copy(),
    pattern="broadcast",
)
