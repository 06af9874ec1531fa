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


# Graph seeds: recipes (graph_gen.py) of the model shapes users write, plus generated ones.
_X = {"name": "x", "shape": ["n", 4], "dtype": "float32"}
_W = {"name": "w", "shape": [4, 4], "dtype": "float32"}
_B = {"name": "b", "shape": [4], "dtype": "float32"}


def _step(op: str, *args: int, **attrs) -> dict:
    return {"op": op, "args": list(args), "attrs": attrs}


SEED_RECIPES: dict[str, dict] = {
    # x @ w + b -> gelu -> @ w -> log_softmax
    "mlp": {
        "params": [_X, _W, _B],
        "steps": [
            _step("matmul", 0, 1),
            _step("add", 3, 2),
            _step("gelu", 4),
            _step("matmul", 5, 1),
            _step("log_softmax", 6, axis=-1),
        ],
        "output": 7,
    },
    # softmax(x @ x^T) @ x, then a residual layer norm
    "attention": {
        "params": [_X, _W, _B],
        "steps": [
            _step("permute_dims", 0, axes=[1, 0]),
            _step("matmul", 0, 3),
            _step("softmax", 4, axis=-1),
            _step("matmul", 5, 0),
            _step("add", 6, 0),
            _step("layer_norm", 7, 2, 2, axes=[-1], epsilon=1e-5),
        ],
        "output": 8,
    },
    # a reduction chain with broadcasting back
    "norm_chain": {
        "params": [_X, _W, _B],
        "steps": [
            _step("mean", 0, axis=1, keepdims=True),
            _step("subtract", 0, 3),
            _step("square", 4),
            _step("sum", 5, axis=1, keepdims=True),
            _step("rsqrt", 6),
            _step("multiply", 4, 7),
            _step("rms_norm", 8, 2, axes=[-1], epsilon=1e-5),
        ],
        "output": 9,
    },
}


def graph_seed_tests(rng: random.Random, generated: int = 12) -> list:
    """Graph TestCases: the SEED_RECIPES and `generated` random recipes, each with the O2 graph pipeline."""
    from shapeflow.fuzz.graph_gen import build_module, generate_recipe  # noqa: PLC0415
    from shapeflow.fuzz.mutate_passes import default_graph_sequence  # noqa: PLC0415
    from shapeflow.fuzz.oracles import TestCase  # noqa: PLC0415

    recipes = [(f"graph:{name}", r) for name, r in SEED_RECIPES.items()]
    recipes += [(f"graph-generated:{k}", generate_recipe(rng)) for k in range(generated)]
    out = []
    for origin, recipe in recipes:
        try:
            text = build_module(recipe).script()
        except Exception:  # a seed the builder refuses: the other seeds still count
            continue
        seed = rng.randrange(1 << 30)
        out.append(TestCase(text, default_graph_sequence(), seed, [], origin, "graph", recipe))
    return out


__all__ = ["SEED_OPERATORS", "seed_operator", "seed_functions", "SEED_RECIPES", "graph_seed_tests"]
