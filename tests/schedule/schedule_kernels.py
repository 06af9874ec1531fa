"""te-built kernels for the schedule tests, each with its numpy reference and random inputs.

`KERNELS[name]()` returns a Kernel: the PrimFunc, `inputs(rng, size)` (numpy arrays for the inputs, with
the symbolic dimension set to `size`), `outputs(size)` (zeroed output arrays) and `reference(*inputs)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shapeflow import te
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.interpreter import run


@dataclass
class Kernel:
    func: PrimFunc
    inputs: Callable
    outputs: Callable
    reference: Callable


def _rand(rng, *shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype("float32")


def elementwise() -> Kernel:
    n = te.var("n")
    A = te.placeholder((n, 6), "float32", name="A")
    B = te.compute((n, 6), lambda i, j: A[i, j] * 2.0, name="B")
    C = te.compute((n, 6), lambda i, j: B[i, j] + 1.0, name="C")
    return Kernel(
        te.create_prim_func([A, C]),
        lambda rng, s: [_rand(rng, s, 6)],
        lambda s: [np.zeros((s, 6), "float32")],
        lambda a: a * 2 + 1,
    )


def broadcast_add() -> Kernel:
    n = te.var("n")
    A = te.placeholder((n, 5), "float32", name="A")
    b = te.placeholder((5,), "float32", name="b")
    C = te.compute((n, 5), lambda i, j: A[i, j] + b[j], name="C")
    D = te.compute((n, 5), lambda i, j: te.max(C[i, j], te.const(0.0, "float32")), name="D")
    return Kernel(
        te.create_prim_func([A, b, D]),
        lambda rng, s: [_rand(rng, s, 5), _rand(rng, 5)],
        lambda s: [np.zeros((s, 5), "float32")],
        lambda a, bb: np.maximum(a + bb, 0),
    )


def row_reduction() -> Kernel:
    n = te.var("n")
    A = te.placeholder((n, 7), "float32", name="A")
    E = te.compute((n, 7), lambda i, j: A[i, j] * A[i, j], name="E")
    k = te.reduce_axis((0, 7), name="k")
    S = te.compute((n,), lambda i: te.sum(E[i, k], axis=k), name="S")
    return Kernel(
        te.create_prim_func([A, S]),
        lambda rng, s: [_rand(rng, s, 7)],
        lambda s: [np.zeros((s,), "float32")],
        lambda a: (a * a).sum(1),
    )


def softmax() -> Kernel:
    n = te.var("n")
    A = te.placeholder((n, 6), "float32", name="A")
    k = te.reduce_axis((0, 6), name="k")
    mx = te.compute((n,), lambda i: te.max(A[i, k], axis=k), name="mx")
    E = te.compute((n, 6), lambda i, j: te.exp(A[i, j] - mx[i]), name="E")
    k2 = te.reduce_axis((0, 6), name="k2")
    S = te.compute((n,), lambda i: te.sum(E[i, k2], axis=k2), name="S")
    O = te.compute((n, 6), lambda i, j: E[i, j] / S[i], name="O")

    def ref(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return Kernel(
        te.create_prim_func([A, O]),
        lambda rng, s: [_rand(rng, s, 6)],
        lambda s: [np.zeros((s, 6), "float32")],
        ref,
    )


def matmul() -> Kernel:
    m = te.var("m")
    A = te.placeholder((m, 6), "float32", name="A")
    W = te.placeholder((6, 5), "float32", name="W")
    k = te.reduce_axis((0, 6), name="k")
    M = te.compute((m, 5), lambda i, j: te.sum(A[i, k] * W[k, j], axis=k), name="M")
    return Kernel(
        te.create_prim_func([A, W, M]),
        lambda rng, s: [_rand(rng, s, 6), _rand(rng, 6, 5)],
        lambda s: [np.zeros((s, 5), "float32")],
        lambda a, w: a @ w,
    )


def conv_like() -> Kernel:
    """A 1-D convolution over 3 taps and 2 channels, then a bias-relu epilogue."""
    n = te.var("n")
    X = te.placeholder((n + 2, 2), "float32", name="X")
    W = te.placeholder((3, 2, 4), "float32", name="W")
    r = te.reduce_axis((0, 3), name="r")
    c = te.reduce_axis((0, 2), name="c")
    Y = te.compute((n, 4), lambda i, o: te.sum(X[i + r, c] * W[r, c, o], axis=[r, c]), name="Y")
    Z = te.compute((n, 4), lambda i, o: te.max(Y[i, o] + 0.5, te.const(0.0, "float32")), name="Z")

    def ref(x, w):
        s = x.shape[0] - 2
        y = sum(x[t : t + s] @ w[t] for t in range(3))
        return np.maximum(y + 0.5, 0)

    return Kernel(
        te.create_prim_func([X, W, Z]),
        lambda rng, s: [_rand(rng, s + 2, 2), _rand(rng, 3, 2, 4)],
        lambda s: [np.zeros((s, 4), "float32")],
        ref,
    )


KERNELS: dict[str, Callable[[], Kernel]] = {
    "elementwise": elementwise,
    "broadcast_add": broadcast_add,
    "row_reduction": row_reduction,
    "softmax": softmax,
    "matmul": matmul,
    "conv_like": conv_like,
}


def interpret(func: PrimFunc, kernel: Kernel, inputs: list, size: int) -> list:
    outs = kernel.outputs(size)
    run(func, *[x.copy() for x in inputs], *outs)
    return outs
