"""Legalization of reductions, softmax, norms, matmul/linear, shape manipulation and take, against numpy."""

import numpy as np
import pytest
from test_legalize_helpers import check, random_array, sym, tt

from shapeflow.ir.expr import Var

SIZES = [1, 5, 8]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "argmax", "argmin"])
def test_reductions(name):
    (n,) = sym("n")
    attr_sets = [dict(axis=None), dict(axis=1), dict(axis=-1, keepdims=True), dict(axis=0)]
    if name not in ("argmax", "argmin"):
        attr_sets.append(dict(axis=(0, 2), keepdims=True))
    for size in SIZES:
        x = random_array((size, 3, 4), "float32", 0.5, 1.5)
        for attrs in attr_sets:
            check(name, [tt((n, 3, 4))], [x], {n: size}, rtol=1e-5, **attrs)


def test_argmax_ties_pick_first():
    (n,) = sym("n")
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], "int32")
    check("argmax", [tt((n, 4), "int32")], [x], {n: 2}, axis=1)
    check("argmin", [tt((n, 4), "int32")], [x], {n: 2}, axis=None)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_stable(name):
    (n,) = sym("n")
    for size in SIZES:
        x = random_array((2, size), "float32") * 30 + 500.0  # exp(500) overflows float32 without the shift
        check(name, [tt((2, n))], [x], {n: size}, axis=-1)
        check(name, [tt((2, n))], [x], {n: size}, axis=0)


def test_norms():
    n, d = sym("n", "d")
    for size in SIZES:
        x = random_array((size, 6), "float32")
        g, b = random_array((6,), "float32"), random_array((6,), "float32")
        check("layer_norm", [tt((n, 6)), tt((6,)), tt((6,))], [x, g, b], {n: size}, rtol=1e-4, atol=1e-5)
        check("rms_norm", [tt((n, 6)), tt((6,))], [x, g], {n: size}, rtol=1e-4, atol=1e-5)
        x3 = random_array((2, size, 3), "float32")
        g2, b2 = random_array((size, 3), "float32"), random_array((size, 3), "float32")
        check(
            "layer_norm",
            [tt((2, d, 3)), tt((d, 3)), tt((d, 3))],
            [x3, g2, b2],
            {d: size},
            axes=(1, 2),
            rtol=1e-4,
            atol=1e-5,
        )


def test_matmul_cases():
    n, m, b = sym("n", "m", "b")
    for size in SIZES:
        env = {n: size, m: 3, b: 2}
        a2, b2 = random_array((size, 4), "float32"), random_array((4, 3), "float32")
        check("matmul", [tt((n, 4)), tt((4, m))], [a2, b2], env)
        # batched with broadcasting batch dims
        a3, b3 = random_array((2, 1, size, 4), "float32"), random_array((3, 4, 5), "float32")
        check("matmul", [tt((b, 1, n, 4)), tt((3, 4, 5))], [a3, b3], env)
        # 1-D operands on either side and both
        v = random_array((4,), "float32")
        check("matmul", [tt((4,)), tt((n, 4, 3))], [v, random_array((size, 4, 3), "float32")], env)
        check("matmul", [tt((n, 4)), tt((4,))], [a2, v], env)
        check("matmul", [tt((4,)), tt((4,))], [v, v], env)
        w, bias = random_array((3, 4), "float32"), random_array((3,), "float32")
        check("linear", [tt((n, 4)), tt((3, 4)), tt((3,))], [a2, w, bias], env)
        check("linear", [tt((n, 4)), tt((3, 4))], [a2, w], env)


def test_reshape_symbolic_and_flatten():
    n, m = sym("n", "m")
    for size in SIZES:
        x = random_array((size, 4, 3), "float32")
        env = {n: size, m: 3}
        check("reshape", [tt((n, 4, m))], [x], env, shape=(-1, m))
        check("reshape", [tt((n, 4, m))], [x], env, shape=(2, n * 2, 3))
        check("reshape", [tt((n, 4, m))], [x], env, shape=(n * 12,))
        check("flatten", [tt((n, 4, m))], [x], env)
        check("flatten", [tt((n, 4, m))], [x], env, start_dim=1)


def test_layout_ops():
    n, m = sym("n", "m")
    for size in SIZES:
        env = {n: size, m: 2}
        x = random_array((size, 1, 3), "float32")
        check("permute_dims", [tt((n, 1, 3))], [x], env, axes=(2, 0, 1))
        check("permute_dims", [tt((n, 1, 3))], [x], env)
        check("expand_dims", [tt((n, 1, 3))], [x], env, axis=(0, -1))
        check("squeeze", [tt((n, 1, 3))], [x], env, axis=1)
        check("squeeze", [tt((4, 1, 3))], [random_array((4, 1, 3), "float32")], env)
        check("broadcast_to", [tt((n, 1, 3))], [x], env, shape=(m, n, 5, 3))
        y = random_array((size, 2, 3), "float32")
        check("concat", [tt((n, 1, 3)), tt((n, 2, 3)), tt((n, 1, 3))], [x, y, x], env, axis=1)
        check("concat", [tt((n, 1, 3)), tt((m, 1, 3))], [x, random_array((2, 1, 3), "float32")], env)
        z = random_array((6, size), "float32")
        check("split", [tt((6, n))], [z], env, indices_or_sections=3)
        check("split", [tt((6, n))], [z], env, indices_or_sections=(1, 4))


def test_take():
    n, m = sym("n", "m")
    for size in SIZES:
        table = random_array((size, 4), "float32")
        idx = np.array([[0, size - 1], [-1, -size]], "int64")
        check("take", [tt((n, 4)), tt((2, 2), "int64")], [table, idx], {n: size})
        cols = np.array([3, 0, -2], "int32")
        check("take", [tt((n, 4)), tt((3,), "int32")], [table, cols], {n: size}, axis=1)
        check("take", [tt((n, 4)), TensorTypeScalar()], [table, np.array(0, "int64")], {n: size})


def TensorTypeScalar():
    return tt((), "int64")


def test_symbolic_attr_becomes_scalar_param():
    # broadcast_to a shape that uses n * m: m appears in no buffer dim on its own, so it is a scalar param.
    n, m = sym("n", "m")
    x = random_array((3,), "float32")
    func = check("broadcast_to", [tt((n,))], [x], {n: 3, m: 2}, shape=(n * m, n))
    assert [p.name for p in func.params if isinstance(p, Var)] == ["m"]
