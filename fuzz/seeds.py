"""The seed corpus: operators written with `shapeflow.te` (what users build) plus generated programs."""

from __future__ import annotations

import random
from collections.abc import Callable

from shapeflow import te
from shapeflow.fuzz.generate import DIM_BOUNDS, generate_prim_func
from shapeflow.ir.tir.function import PrimFunc

SEED_OPERATORS: dict[str, Callable[[], PrimFunc]] = {}


def seed_operator(fn):
    SEED_OPERATORS[fn.__name__] = fn
    return fn


def _bounded(func: PrimFunc, *names: str) -> PrimFunc:
    return func.with_attr("var_bounds", {n: DIM_BOUNDS for n in names})


@seed_operator
def elementwise() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n, 4), name="A")
    B = te.placeholder((n, 4), name="B")
    C = te.compute((n, 4), lambda i, j: te.tanh(A[i, j]) * B[i, j] - te.sqrt(te.abs(A[i, j])), name="C")
    return _bounded(te.create_prim_func([A, B, C]), "n")


@seed_operator
def broadcast_add_int() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n, 7), "int32", name="A")
    b = te.placeholder((7,), "int32", name="b")
    C = te.compute((n, 7), lambda i, j: A[i, j] * 3 + b[j] // 2, name="C")
    return _bounded(te.create_prim_func([A, b, C]), "n")


@seed_operator
def row_sum_of_exp() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n, 16), name="A")
    k = te.reduce_axis((0, 16), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    return _bounded(te.create_prim_func([A, B]), "n")


@seed_operator
def row_max() -> PrimFunc:
    n, m = te.var("n"), te.var("m")
    A = te.placeholder((n, m), name="A")
    k = te.reduce_axis((0, m), name="k")
    B = te.compute((n,), lambda i: te.max(A[i, k], axis=k), name="B")
    return _bounded(te.create_prim_func([A, B]), "n", "m")


@seed_operator
def softmax() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n, 8), name="A")
    k1 = te.reduce_axis((0, 8), name="k1")
    mx = te.compute((n,), lambda i: te.max(A[i, k1], axis=k1), name="mx")
    ex = te.compute((n, 8), lambda i, j: te.exp(A[i, j] - mx[i]), name="ex")
    k2 = te.reduce_axis((0, 8), name="k2")
    sm = te.compute((n,), lambda i: te.sum(ex[i, k2], axis=k2), name="sm")
    out = te.compute((n, 8), lambda i, j: ex[i, j] / sm[i], name="out")
    return _bounded(te.create_prim_func([A, out]), "n")


@seed_operator
def matmul() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n, 8), name="A")
    B = te.placeholder((8, 6), name="B")
    k = te.reduce_axis((0, 8), name="k")
    C = te.compute((n, 6), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return _bounded(te.create_prim_func([A, B, C]), "n")


@seed_operator
def conv1d() -> PrimFunc:
    n = te.var("n")
    X = te.placeholder((n + 2,), name="X")
    W = te.placeholder((3,), name="W")
    k = te.reduce_axis((0, 3), name="k")
    Y = te.compute((n,), lambda i: te.sum(X[i + k] * W[k], axis=k), name="Y")
    return _bounded(te.create_prim_func([X, W, Y]), "n")


@seed_operator
def relu_int8_clip() -> PrimFunc:
    n = te.var("n")
    A = te.placeholder((n,), "int8", name="A")
    B = te.compute((n,), lambda i: te.max(te.min(A[i], te.const(100, "int8")), te.const(0, "int8")), name="B")
    return _bounded(te.create_prim_func([A, B]), "n")


def seed_functions(rng: random.Random, generated: int = 12) -> list[tuple[str, PrimFunc]]:
    """The te operators (those that build here) and `generated` random programs, with their origins."""
    out = []
    for name, make in SEED_OPERATORS.items():
        try:
            out.append((f"te:{name}", make()))
        except Exception:  # an operator the te front end cannot build yet: the other seeds still count
            continue
    for k in range(generated):
        out.append((f"generated:{k}", generate_prim_func(rng)))
    return out


__all__ = ["SEED_OPERATORS", "seed_operator", "seed_functions"]
