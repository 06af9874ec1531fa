"""matmul (numpy semantics: batched, broadcasting batch dims, 1-D operands) and linear."""

from __future__ import annotations

import numpy as np

from shapeflow import te
from shapeflow.ir.graph.ops import te_util as T
from shapeflow.ir.graph.ops.common import must_equal, same_dtype
from shapeflow.ir.graph.ops.registry import Attr, CallInfo, attr_dtype, optional, register_op
from shapeflow.ir.graph.shape import broadcast_shapes, format_dim
from shapeflow.ir.graph.types import TensorType, Type


def _check_contracted(info: CallInfo, k_a, k_b, dimension: int) -> None:
    """The contracted dims must agree: a provable difference is a ShapeError now, an unprovable one a
    run-time requirement (the kernel reads both operands along the first one's length)."""
    if not must_equal(info, k_a, k_b, "contracted dimensions differ", dimension):
        raise info.shape_error(
            f"contracted dimensions differ: {format_dim(k_a)} vs {format_dim(k_b)}",
            dimension=dimension,
            expected=format_dim(k_a),
            actual=format_dim(k_b),
        )


def matmul_type(info: CallInfo, a: TensorType, b: TensorType, dtype) -> TensorType:
    if a.ndim == 0 or b.ndim == 0:
        raise info.fail("matmul operands must have rank >= 1")
    if a.shape is None or b.shape is None:
        if a.known_rank and b.known_rank:
            ndim = max(a.ndim, b.ndim) - (a.ndim == 1) - (b.ndim == 1)
            return TensorType(None, dtype, max(ndim, 0) if max(a.ndim, b.ndim) > 1 else 0)
        return TensorType(None, dtype)
    a_shape = a.shape if a.ndim > 1 else (1, *a.shape)
    b_shape = b.shape if b.ndim > 1 else (*b.shape, 1)
    _check_contracted(info, a_shape[-1], b_shape[-2], len(a_shape) - 1)
    batch = broadcast_shapes([a_shape[:-2], b_shape[:-2]], info.op)
    out = list(batch)
    if a.ndim > 1:
        out.append(a_shape[-2])
    if b.ndim > 1:
        out.append(b_shape[-1])
    return TensorType(tuple(out), dtype)


def _matmul_infer(info: CallInfo) -> Type:
    a, b = info.tensor(0), info.tensor(1)
    dtype = same_dtype(info, (a, b))
    return matmul_type(info, a, b, info.attrs["out_dtype"] or dtype)


def _matmul_reference(a, b, out_dtype):
    out = np.matmul(a, b)
    return np.asarray(out).astype(out_dtype.to_numpy() if out_dtype else np.result_type(a, b), copy=False)


def matmul_compute(a, b, shape, dtype, b_transposed: bool = False, name: str = "matmul"):
    """numpy matmul of te tensors a and b (b read as (..., n, k) when `b_transposed`) into `shape`:
    1-D operands are promoted and their unit dim dropped, batch dims broadcast."""
    k_dim = a.shape[-1]
    batch_rank = len(shape) - (a.ndim > 1) - (b.ndim > 1)
    batch_shape = shape[:batch_rank]

    def batch_index(t, idx, core: int):
        rank = t.ndim - core
        if rank <= 0:
            return []
        view = te.placeholder(t.shape[:rank], t.dtype, name="view")  # only its shape is used
        return T.broadcast_index(view, idx[:batch_rank], batch_shape)

    def body(*idx):
        k = te.reduce_axis((0, k_dim), name="k")
        rest = list(idx[batch_rank:])
        row = [rest.pop(0)] if a.ndim > 1 else []
        col = [rest.pop(0)] if b.ndim > 1 else []
        a_index = (*batch_index(a, idx, 2 if a.ndim > 1 else 1), *row, k)
        if b.ndim == 1:
            b_index = (k,)
        elif b_transposed:
            b_index = (*batch_index(b, idx, 2), *col, k)
        else:
            b_index = (*batch_index(b, idx, 2), k, *col)
        return te.sum(T.cast(a[a_index], dtype) * T.cast(b[b_index], dtype), axis=k)

    return te.compute(shape, body, name=name)


def _matmul_legalize(inputs, out, out_dtype):
    a, b = inputs
    return matmul_compute(a, b, T.out_shape(out), T.out_dtype(out))


register_op(
    "matmul",
    legalize=_matmul_legalize,
    num_args=2,
    attrs=(Attr("out_dtype", optional(attr_dtype), None),),
    infer_type=_matmul_infer,
    reference=_matmul_reference,
    pattern="out_elementwise_fusable",
)


def _linear_infer(info: CallInfo) -> Type:
    """linear(x, weight[, bias]) = x @ weight.T (+ bias), weight of shape (out_features, in_features)."""
    x, w = info.tensor(0), info.tensor(1)
    operands = [x, w, info.tensor(2)] if len(info.types) == 3 else [x, w]
    dtype = same_dtype(info, operands)
    if w.ndim not in (-1, 2):
        raise info.fail(f"weight must have rank 2, got rank {w.ndim}")
    w_t = TensorType(None if w.shape is None else (w.shape[1], w.shape[0]), w.dtype, w.ndim)
    out = matmul_type(info, x, w_t, dtype)
    if len(info.types) == 3:
        from shapeflow.ir.graph.ops.binary import broadcast_type  # noqa: PLC0415

        out = broadcast_type(info, (out, info.tensor(2)), dtype)
    return out


def _linear_reference(x, weight, bias=None):
    out = np.matmul(x, weight.T)
    if bias is not None:
        out = out + bias
    return np.asarray(out).astype(np.result_type(x, weight), copy=False)


def _linear_legalize(inputs, out):
    x, w = inputs[:2]
    shape = T.out_shape(out)
    product = matmul_compute(x, w, shape, x.dtype, b_transposed=True, name="linear")
    if len(inputs) == 2:
        return product
    bias = inputs[2]
    return te.compute(shape, lambda *i: product[i] + T.bload(bias, i, shape), name="linear_bias")


register_op(
    "linear",
    legalize=_linear_legalize,
    num_args=(2, 3),
    infer_type=_linear_infer,
    reference=_linear_reference,
    pattern="out_elementwise_fusable",
)
