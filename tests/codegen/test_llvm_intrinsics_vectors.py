"""Intrinsics (every name in INTRINSICS) and vector IR (Ramp, Broadcast, vector loads/stores) compiled by
the LLVM backend, against the interpreter and numpy."""

import math

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.tir import INTRINSICS, BufferStore, For, PrimFunc, call_intrinsic, decl_buffer
from shapeflow.ir.tir.interpreter import run as interpret

FLOAT_INTRINSICS = sorted(n for n, i in INTRINSICS.items() if i.operand_kind == "float")
INT_INTRINSICS = sorted(n for n, i in INTRINSICS.items() if i.operand_kind == "int")


def elementwise(fn, in_dtypes, out_dtype, lanes=1):
    """Y[i] = fn(X..[i]); with lanes > 1 the loop runs over n // lanes vectors through Ramp indices."""
    n = E.Var("n")
    ins = [decl_buffer((n,), d, f"X{k}") for k, d in enumerate(in_dtypes)]
    out = decl_buffer((n,), out_dtype, "Y")
    i = E.Var("i")
    index = i if lanes == 1 else E.Ramp(i * lanes, E.IntImm("int64", 1), lanes)
    extent = n if lanes == 1 else E.floordiv(n, lanes)
    body = For(i, 0, extent, "serial", BufferStore(out, fn(*[b[index] for b in ins]), (index,)))
    return PrimFunc((*ins, out), body, {"tir.noalias": True})


def domain(name, dtype, n, rng):
    if name in ("log", "log2", "sqrt", "rsqrt"):
        x = rng.uniform(0.01, 50, n)
    elif name == "log1p":
        x = rng.uniform(-0.9, 50, n)
    elif name in ("exp", "exp2"):
        x = rng.uniform(-80, 80, n) if dtype != "float16" else rng.uniform(-9, 9, n)
    elif name == "pow":
        x = rng.uniform(0.1, 4, n)
    else:
        x = rng.standard_normal(n) * 5
    return x.astype(dtype)


TOL = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", FLOAT_INTRINSICS)
@pytest.mark.parametrize("lanes", [1, 8])
def test_float_intrinsics(name, dtype, lanes):
    rng = np.random.default_rng(abs(hash((name, dtype))) % 2**32)
    intrinsic = INTRINSICS[name]
    n = 8 * 17
    inputs = [domain(name, dtype, n, rng) for _ in range(intrinsic.arity)]
    out_dtype = "bool" if intrinsic.returns_bool else dtype
    if name in ("isnan", "isinf"):
        inputs[0][::5] = np.nan
        inputs[0][1::7] = np.inf
        inputs[0][2::7] = -np.inf
    func = elementwise(lambda *xs: call_intrinsic(name, *xs), [dtype] * intrinsic.arity, out_dtype, lanes)
    got = np.zeros(n, out_dtype)
    sf.build(func, lower=False)["main"](*inputs, got)
    want = np.zeros(n, out_dtype)
    interpret(func, *inputs, want)
    if out_dtype == "bool":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(
            got.astype(float), want.astype(float), rtol=TOL[dtype], atol=TOL[dtype] * 1e-3
        )


@pytest.mark.parametrize("name", ["exp", "tanh", "erf", "sigmoid"])
def test_inline_float32_approximations_are_accurate_over_the_range(name):
    x = np.concatenate(
        [
            np.linspace(-100, 100, 20001),
            np.geomspace(1e-30, 10, 3000),
            -np.geomspace(1e-30, 10, 3000),
            [0.0, -0.0, np.inf, -np.inf, np.nan],
        ]
    ).astype(np.float32)
    func = elementwise(lambda v: call_intrinsic(name, v), ["float32"], "float32", lanes=1)
    got = np.zeros_like(x)
    sf.build(func, lower=False)["main"](x, got)
    ref = {
        "exp": np.exp,
        "tanh": np.tanh,
        "erf": np.vectorize(math.erf),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    }[name]
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64))
    finite = np.isfinite(want) & (np.abs(want) > 1e-37) & (np.abs(want) < 3e38)
    rel = np.abs(got[finite] - want[finite]) / np.abs(want[finite])
    assert rel.max() < 1e-6, (name, float(rel.max()))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    infinite = np.isinf(want) | (np.abs(want) >= 3.5e38)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got[infinite], want[infinite].astype(np.float32))
    tiny = np.abs(want) <= 1e-37
    assert np.all(np.abs(got[tiny] - want[tiny]) < 1e-38)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "uint32", "uint64"])
@pytest.mark.parametrize("name", INT_INTRINSICS + ["abs"])
def test_integer_intrinsics(name, dtype):
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    n = 64
    intrinsic = INTRINSICS[name]
    a = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    inputs = [a]
    if intrinsic.arity == 2:
        b = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        if name.startswith("shift"):
            bits = info.bits
            b = rng.integers(0, bits, n).astype(dtype)
            if info.min < 0:
                b[:4] = np.array([-1, bits, bits + 3, 0]).astype(dtype)
            else:
                b[:3] = np.array([bits, bits + 3, 0]).astype(dtype)
        inputs.append(b)
    if name == "abs" and info.min < 0:
        a[0] = info.min  # wraps to itself, as numpy
    func = elementwise(lambda *xs: call_intrinsic(name, *xs), [dtype] * intrinsic.arity, dtype)
    got = np.zeros(n, dtype)
    sf.build(func, lower=False)["main"](*inputs, got)
    want = intrinsic.reference(*inputs).astype(dtype)
    np.testing.assert_array_equal(got, want)


def test_unknown_intrinsic_raises_unsupported():
    func = elementwise(lambda x: E.Call("float32", "no_such_op", (x,)), ["float32"], "float32")
    with pytest.raises(sf.UnsupportedError, match="no_such_op"):
        sf.build(func, lower=False)


@pytest.mark.parametrize("lanes", [4, 8, 16])
@pytest.mark.parametrize("dtype", ["float32", "int16", "bool", "bfloat16", "float16"])
def test_vector_elementwise_matches_scalar(dtype, lanes):
    rng = np.random.default_rng(lanes)
    n = lanes * 13
    if dtype == "bool":
        a, b = rng.random(n) < 0.5, rng.random(n) < 0.5
        fn = lambda x, y: E.Select(x, E.logical_not(y), y)  # noqa: E731
    else:
        a = (rng.standard_normal(n) * 10).astype(sf.ir.DataType(dtype).to_numpy())
        b = (rng.standard_normal(n) * 10).astype(a.dtype)
        fn = lambda x, y: E.max_expr(x * y, x - y)  # noqa: E731
    outs = []
    for l in (1, lanes):
        out = np.zeros(n, a.dtype)
        sf.build(elementwise(fn, [dtype, dtype], dtype, l), lower=False)["main"](a, b, out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_strided_gather_scatter_and_broadcast_index():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    y = decl_buffer((n,), "float32", "Y")
    i = E.Var("i")
    lanes = 4
    even = E.Ramp(i * 8, E.IntImm("int64", 2), lanes)  # X[8i], X[8i+2], ... (stride 2 gather)
    odd = E.Ramp(i * 8 + 1, E.IntImm("int64", 2), lanes)
    first = E.Broadcast(i * 8, lanes)  # one element broadcast
    body = For(
        i,
        0,
        E.floordiv(n, 8),
        "serial",
        BufferStore(y, x[even] * x[first] + E.Broadcast(x[i * 8 + 3], lanes), (odd,)),
    )
    func = PrimFunc((x, y), body)
    a = np.arange(40, dtype=np.float32)
    got = np.zeros(40, np.float32)
    sf.build(func, lower=False)["main"](a, got)
    want = np.zeros(40, np.float32)
    interpret(func, a, want)
    np.testing.assert_array_equal(got, want)
    assert got[1] == a[0] * a[0] + a[3] and got[3] == a[2] * a[0] + a[3]


def test_nd_access_is_linearized_with_strides_and_vector_last_dim():
    m, n = E.Var("m"), E.Var("n")
    x = decl_buffer((m, n), "float32", "X")
    y = decl_buffer((n, m), "float32", "Y")
    i, j = E.Var("i"), E.Var("j")
    body = For(i, 0, m, "serial", For(j, 0, n, "serial", BufferStore(y, x[i, j] + 1.0, (j, i))))
    func = PrimFunc((x, y), body)
    a = np.random.default_rng(0).random((5, 7), dtype=np.float32)
    out = np.zeros((7, 5), np.float32)
    sf.build(func, lower=False)["main"](a, out)
    np.testing.assert_array_equal(out, a.T + 1)
    # A vector index in the last dimension of a 2-D buffer is one contiguous vector access.
    body = For(
        i,
        0,
        m,
        "serial",
        For(
            j,
            0,
            E.floordiv(n, 4),
            "serial",
            BufferStore(
                x,
                x[i, E.Ramp(j * 4, E.IntImm("int64", 1), 4)] * 2.0,
                (i, E.Ramp(j * 4, E.IntImm("int64", 1), 4)),
            ),
        ),
    )
    func = PrimFunc((x,), body)
    lib = sf.build(func, lower=False)
    assert "load <4 x float>" in lib.llvm_ir
    b = np.ones((3, 8), np.float32)
    lib["main"](b)
    np.testing.assert_array_equal(b, 2)
