"""Ops that move elements by index tensors: top-k selection and scatter (ONNX ScatterElements, ScatterND);
gather_nd, reverse_sequence and tensor_scatter are in reindex.py.

The loop forms are written as pure computes over the *output*: each output element reduces over the update
positions that land on it. That is quadratic in the number of updates where a serial scatter loop would be
linear, but needs no loop-carried state, parallelizes over the output, and makes duplicate indices exact:
`reduction="none"` takes the last update in index order (what a serial loop leaves), the others combine
every update that lands on an element. Indices are checked against their extents in the kernel
(index_checks), so an out-of-range index is an error at run time, as in numpy, never a stray write.
"""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir import expr as E
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_be_at_most, normalize_axis
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_bool, attr_int, attr_str, register_op
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType, Type

REDUCTIONS = ("none", "add", "mul", "max", "min")
_BIG = 2**62


def _int_indices(info: CallInfo, t: TensorType, what: str = "indices") -> None:
    if t.dtype is not None and not t.dtype.is_integer:
        raise info.fail(f"{what} must have an integer dtype, got {t.dtype}")


def _wrap(index, extent):
    """A negative index counts from the end (ONNX Gather*/Scatter*)."""
    index = T.cast(index, "int64")
    return E.select(index < T.const(0, "int64"), index + extent, index)


def _clamp(index, extent):
    """`index` kept inside [0, extent): loads under a false condition still read memory in compiled code."""
    return te.max(te.min(index, extent - T.const(1, "int64")), T.const(0, "int64"))


def _flat(values, extents):
    flat = T.const(0, "int64")
    for v, n in zip(values, extents):
        flat = flat * n + v
    return flat


def _unflat(flat, extents):
    out = []
    for n in reversed(extents):
        out.append(te.floormod(flat, n))
        flat = te.floordiv(flat, n)
    return out[::-1]


# ---------------------------------------------------------------------------------------------
# topk_indices: the positions of the k largest (or smallest) elements along an axis
# ---------------------------------------------------------------------------------------------


def _topk_infer(info: CallInfo) -> Type:
    x = info.tensor(0)
    k = info.attrs["k"]
    if k < 0:
        raise info.fail(f"k must be >= 0, got {k}")
    if x.dtype is not None and x.dtype.is_bool:
        raise info.fail("input must be numeric, got bool")
    if not x.known_rank or x.shape is None:
        return TensorType(None, "int64", x.ndim if x.known_rank else None)
    axis = normalize_axis(info, info.attrs["axis"], x.ndim)
    must_be_at_most(info, k, x.shape[axis], "k exceeds the axis length", axis)
    return TensorType((*x.shape[:axis], k, *x.shape[axis + 1 :]), "int64")


def _topk_reference(x, axis, k, largest):
    """ONNX TopK's order: by value (descending when `largest`), equal values by ascending position."""
    n = x.shape[axis]
    if largest:
        flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        order = np.flip(n - 1 - flipped, axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    return np.take(order, np.arange(k), axis=axis).astype(np.int64)


def _topk_legalize(inputs, out, axis, k, largest):
    x = inputs[0]
    axis = axis % x.ndim
    n = x.shape[axis]

    def before(a, ia, b, ib):  # element (a at ia) sorts before (b at ib)
        better = a > b if largest else a < b
        return E.logical_or(better, E.logical_and(E.EQ(a, b), ia < ib))

    def rank_of(*idx):
        j = te.reduce_axis((0, n), name="j")
        other = x[(*idx[:axis], j, *idx[axis + 1 :])]
        ahead = before(other, j, x[idx], idx[axis])
        return te.sum(E.select(ahead, T.const(1, "int64"), T.const(0, "int64")), axis=j)

    rank = te.compute(tuple(x.shape), rank_of, name="topk_rank")

    def pick(*idx):
        j = te.reduce_axis((0, n), name="j")
        hit = E.EQ(rank[(*idx[:axis], j, *idx[axis + 1 :])], idx[axis])
        return te.min(E.select(hit, T.cast(j, "int64"), T.const(_BIG, "int64")), axis=j)

    return te.compute(T.out_shape(out), pick, name="topk_indices")


register_op(
    "topk_indices",
    num_args=1,
    attrs=(Attr("axis", attr_int, -1), Attr("k", attr_int), Attr("largest", attr_bool, True)),
    infer_type=_topk_infer,
    reference=_topk_reference,
    legalize=_topk_legalize,
    pattern="opaque",
    doc="int64 positions of the k largest (smallest) elements along `axis`, best first, ties by position.",
)


# ---------------------------------------------------------------------------------------------
# scatter_elements and scatter_nd
# ---------------------------------------------------------------------------------------------


def _reduction(info: CallInfo) -> str:
    reduction = info.attrs["reduction"]
    if reduction not in REDUCTIONS:
        raise info.fail(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _scatter_elements_infer(info: CallInfo) -> Type:
    data, indices, updates = info.tensor(0), info.tensor(1), info.tensor(2)
    _int_indices(info, indices)
    _reduction(info)
    if updates.dtype is not None and data.dtype is not None and updates.dtype != data.dtype:
        raise info.fail(f"updates ({updates.dtype}) must have the data's dtype ({data.dtype})")
    if data.known_rank:
        normalize_axis(info, info.attrs["axis"], data.ndim)
        for t, what in ((indices, "indices"), (updates, "updates")):
            if t.known_rank and t.ndim != data.ndim:
                raise info.fail(f"{what} must have the data's rank {data.ndim}, got {t.ndim}")
    return data


def _combine_np(reduction: str):
    return {
        "none": lambda a, b: b,
        "add": np.add,
        "mul": np.multiply,
        "max": np.maximum,
        "min": np.minimum,
    }[reduction]


def _scatter_elements_reference(data, indices, updates, axis, reduction):
    out = np.array(data, copy=True)
    combine = _combine_np(reduction)
    axis = axis % data.ndim
    for pos in np.ndindex(*indices.shape):
        i = int(indices[pos])
        if not -data.shape[axis] <= i < data.shape[axis]:
            raise IndexError(f"scatter_elements: index {i} is out of range for axis {axis}")
        target = (*pos[:axis], i % data.shape[axis], *pos[axis + 1 :])
        out[target] = combine(out[target], updates[pos])
    return out


def _reduced_stage(shape, data, reduction: str, make_reduce, name: str):
    """data combined with the matching updates: one compute reduces the updates that land on each output
    element (`make_reduce(idx, neutral)` -> a te reduction), a second combines that with the data (te
    computes hold a reduction only as their whole body)."""
    dtype = data.dtype
    neutral = {
        "add": T.const(0, dtype),
        "mul": T.const(1, dtype),
        "max": te.min_value(dtype),
        "min": te.max_value(dtype),
    }[reduction]
    if reduction in ("max", "min"):
        extreme = te.max if reduction == "max" else te.min
        counted = te.compute(shape, lambda *i: make_reduce(i, None), name=f"{name}_count")
        best = te.compute(shape, lambda *i: make_reduce(i, (extreme, neutral)), name=f"{name}_{reduction}")

        def combine(*i):
            return E.select(counted[i] > T.const(0, "int64"), extreme(data[i], best[i]), data[i])

        return te.compute(shape, combine, name=name)
    total = te.compute(shape, lambda *i: make_reduce(i, (te.sum if reduction == "add" else te.prod, neutral)),
                       name=f"{name}_{reduction}")  # fmt: skip
    if reduction == "add":
        return te.compute(shape, lambda *i: data[i] + total[i], name=name)
    return te.compute(shape, lambda *i: data[i] * total[i], name=name)


def _reducer(match_and_value):
    """A make_reduce for _reduced_stage: `match_and_value(idx)` -> (match, update value, reduce axes).
    With `how` None it counts the matches."""

    def make(idx, how):
        match, value, rvs = match_and_value(idx)
        if how is None:
            return te.sum(E.select(match, T.const(1, "int64"), T.const(0, "int64")), axis=rvs)
        reduce, neutral = how
        return reduce(E.select(match, value, neutral), axis=rvs)

    return make


def _scatter_elements_legalize(inputs, out, axis, reduction):
    data, indices, updates = inputs
    axis = axis % data.ndim
    n = indices.shape[axis]
    fits = [d for d in range(data.ndim) if d != axis]
    shape = T.out_shape(out)

    def matches(idx, r):
        inside = [E.LT(idx[d], indices.shape[d]) for d in fits]
        at = tuple(r if d == axis else _clamp(idx[d], indices.shape[d]) for d in range(data.ndim))
        hit = E.EQ(_wrap(indices[at], data.shape[axis]), idx[axis])
        for cond in inside:
            hit = E.logical_and(hit, cond)
        return hit, at

    if reduction == "none":

        def last(*idx):
            r = te.reduce_axis((0, n), name="r")
            hit, _ = matches(idx, r)
            return te.max(E.select(hit, T.cast(r, "int64"), T.const(-1, "int64")), axis=r)

        found = te.compute(shape, last, name="scatter_last")

        def body(*idx):
            r = found[idx]
            at = tuple(
                _clamp(r, n) if d == axis else _clamp(idx[d], indices.shape[d]) for d in range(data.ndim)
            )
            return E.select(r >= T.const(0, "int64"), updates[at], data[idx])

        return te.compute(shape, body, name="scatter_elements")

    def match_and_value(idx):
        r = te.reduce_axis((0, n), name="r")
        hit, at = matches(idx, r)
        return hit, updates[at], r

    return _reduced_stage(shape, data, reduction, _reducer(match_and_value), "scatter_elements")


def _scatter_elements_checks(inputs, axis, reduction):
    data, indices, _ = inputs
    n = data.shape[axis % data.ndim]
    return [
        T.IndexCheck(indices, n, f"op 'scatter_elements': an index is out of range [-n, n) on axis {axis}")
    ]


register_op(
    "scatter_elements",
    num_args=3,
    attrs=(Attr("axis", attr_int, 0), Attr("reduction", attr_str, "none")),
    infer_type=_scatter_elements_infer,
    reference=_scatter_elements_reference,
    legalize=_scatter_elements_legalize,
    index_checks=_scatter_elements_checks,
    pattern="opaque",
    doc="ONNX ScatterElements: data with updates[p] written (or combined) at p with p[axis] = indices[p].",
)


def _scatter_nd_infer(info: CallInfo) -> Type:
    data, indices, updates = info.tensor(0), info.tensor(1), info.tensor(2)
    _int_indices(info, indices)
    _reduction(info)
    if updates.dtype is not None and data.dtype is not None and updates.dtype != data.dtype:
        raise info.fail(f"updates ({updates.dtype}) must have the data's dtype ({data.dtype})")
    if data.shape is not None and indices.shape is not None and updates.known_rank:
        k = indices.shape[-1]
        if not isinstance(k, int):
            k = as_int(k)
        if k is None or k > data.ndim or k < 1:
            raise info.fail(f"the last dim of indices must be a constant in [1, {data.ndim}], got {k}")
        want = indices.ndim - 1 + data.ndim - k
        if updates.ndim != want:
            raise info.fail(f"updates must have rank {want}, got {updates.ndim}")
    return data


def _scatter_nd_reference(data, indices, updates, reduction):
    out = np.array(data, copy=True)
    combine = _combine_np(reduction)
    k = indices.shape[-1]
    for pos in np.ndindex(*indices.shape[:-1]):
        where = []
        for m in range(k):
            i = int(indices[pos][m])
            if not -data.shape[m] <= i < data.shape[m]:
                raise IndexError(f"scatter_nd: index {i} is out of range for axis {m}")
            where.append(i % data.shape[m])
        out[tuple(where)] = combine(out[tuple(where)], updates[pos])
    return out


def _index_k(indices) -> int:
    return as_int(indices.shape[-1])


def _scatter_nd_legalize(inputs, out, reduction):
    data, indices, updates = inputs
    k = _index_k(indices)
    lead = list(indices.shape[:-1])
    shape = T.out_shape(out)

    def matches(idx, rvs):
        hit = None
        for m in range(k):
            cond = E.EQ(_wrap(indices[(*rvs, T.const(m, "int64"))], data.shape[m]), idx[m])
            hit = cond if hit is None else E.logical_and(hit, cond)
        return hit

    def axes():
        return [te.reduce_axis((0, d), name=f"p{i}") for i, d in enumerate(lead)]

    if reduction == "none":

        def last(*idx):
            rvs = axes()
            flat = _flat(rvs, lead)
            return te.max(E.select(matches(idx, rvs), flat, T.const(-1, "int64")), axis=rvs)

        found = te.compute(shape, last, name="scatter_last")

        def body(*idx):
            flat = found[idx]
            pos = _unflat(te.max(flat, T.const(0, "int64")), lead)
            return E.select(flat >= T.const(0, "int64"), updates[(*pos, *idx[k:])], data[idx])

        return te.compute(shape, body, name="scatter_nd")

    def match_and_value(idx):
        rvs = axes()
        return matches(idx, rvs), updates[(*rvs, *idx[k:])], rvs

    return _reduced_stage(shape, data, reduction, _reducer(match_and_value), "scatter_nd")


def _nd_checks(op_name: str):
    def checks(inputs, **attrs):
        data, indices = inputs[0], inputs[1]
        k = _index_k(indices)
        extent = data.shape[0]
        for m in range(1, k):
            extent = te.max(extent, data.shape[m])
        # One extent for the whole index tensor: the largest of the indexed dims (per-axis ranges are
        # enforced by clamping in gather_nd and by never matching in scatter_nd).
        return [T.IndexCheck(indices, extent, f"op '{op_name}': an index is out of range")]

    return checks


register_op(
    "scatter_nd",
    num_args=3,
    attrs=(Attr("reduction", attr_str, "none"),),
    infer_type=_scatter_nd_infer,
    reference=_scatter_nd_reference,
    legalize=_scatter_nd_legalize,
    index_checks=_nd_checks("scatter_nd"),
    pattern="opaque",
    doc="ONNX ScatterND: data with updates[p] written (or combined) at data[indices[p]].",
)
