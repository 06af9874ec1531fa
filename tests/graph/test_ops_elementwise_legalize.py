"""Legalization of elementwise ops (unary, binary with broadcasting, where, astype, clip) against numpy."""

import pytest
from test_legalize_helpers import check, random_array, sym, tt

from shapeflow.ir.graph.ops.binary import _BINARY
from shapeflow.ir.graph.ops.unary import _UNARY

SIZES = [1, 7, 12]


@pytest.mark.parametrize("name", sorted(_UNARY))
def test_unary(name):
    (n,) = sym("n")
    kind = _UNARY[name][1]
    dtype = {"float": "float32", "number": "float32", "bool": "bool"}[kind]
    for size in SIZES:
        x = random_array((size, 3), dtype, 0.1 if name in ("log", "sqrt", "rsqrt") else -2.0, 2.0)
        check(name, [tt((n, 3), dtype)], [x], {n: size}, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["abs", "neg", "square", "sign", "relu"])
def test_unary_int(name):
    (n,) = sym("n")
    x = random_array((5,), "int32", -4, 4)
    check(name, [tt((n,), "int32")], [x], {n: 5})


@pytest.mark.parametrize("name", sorted(_BINARY))
def test_binary_broadcast(name):
    n, m = sym("n", "m")
    kind = _BINARY[name][1]
    dtype = "bool" if kind == "bool" else "float32"
    for size in SIZES:
        a = random_array((size, 1, 4), dtype, 0.5, 3.0)
        b = random_array((3, 1), dtype, 0.5, 3.0)
        check(name, [tt((n, 1, 4), dtype), tt((3, 1), dtype)], [a, b], {n: size}, rtol=1e-5)


@pytest.mark.parametrize("name", ["add", "divide", "floor_divide", "floor_mod", "power", "less", "maximum"])
def test_binary_int_symbolic_broadcast(name):
    # n and m are unrelated symbols: inference gives max(n, m), and either may be 1 at run time.
    n, m = sym("n", "m")
    for sn, sm in [(1, 5), (5, 1), (5, 5)]:
        a = random_array((sn,), "int32", -7, 7)
        b = random_array((sm,), "int32", 1, 3)
        check(name, [tt((n,), "int32"), tt((m,), "int32")], [a, b], {n: sn, m: sm})


def test_where_and_astype_and_clip():
    n, m = sym("n", "m")
    for size in SIZES:
        c = random_array((size, 1), "bool")
        x = random_array((size, 4), "float32")
        y = random_array((4,), "float32")
        check("where", [tt((n, 1), "bool"), tt((n, 4)), tt((4,))], [c, x, y], {n: size})
        check("astype", [tt((n, 4))], [x * 3], {n: size}, dtype="int32")
        check("astype", [tt((n, 4))], [x], {n: size}, dtype="bool")
        check("clip", [tt((n, 4))], [x], {n: size}, min=-0.5, max=1.0)
        check("clip", [tt((n, 4))], [x], {n: size}, max=0.25)
    check("clip", [tt((m,), "int32")], [random_array((6,), "int32", -9, 9)], {m: 6}, min=-2.5, max=3.0)
