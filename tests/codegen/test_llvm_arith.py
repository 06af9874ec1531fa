"""Compiled scalar and vector arithmetic against the reference interpreter and numpy (integer division by
zero is defined as 0 by the IR: the interpreter, the CPU backend and numpy all give 0)."""

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer
from shapeflow.ir.tir.interpreter import run as interpret

INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOATS = ["float16", "float32", "float64", "bfloat16"]
SIZES = [1, 7, 64, 131]


def elementwise(fn, in_dtypes, out_dtype, kind=ForKind.SERIAL):
    """Y[i] = fn(X0[i], X1[i], ...) over a symbolic length n."""
    n = E.Var("n")
    ins = [decl_buffer((n,), d, f"X{k}") for k, d in enumerate(in_dtypes)]
    out = decl_buffer((n,), out_dtype, "Y")
    i = E.Var("i")
    body = For(i, 0, n, kind, BufferStore(out, fn(*[b[i] for b in ins]), (i,)))
    return PrimFunc((*ins, out), body, {"tir.noalias": True})


def random_array(rng, dtype, n, low=None, high=None):
    dt = DataType(dtype)
    npdt = to_numpy_dtype(dt)
    if dt.is_bool:
        return rng.random(n) < 0.5
    if dt.is_integer:
        info = np.iinfo(npdt)
        lo = info.min if low is None else low
        hi = info.max if high is None else high
        return rng.integers(lo, hi, size=n, dtype=npdt, endpoint=True)
    values = rng.standard_normal(n) * 4
    if low is not None:
        values = rng.uniform(low, high, n)
    return values.astype(npdt)


def run_both(func, inputs, out_dtype, fast_math=False):
    """(compiled result, interpreter result) on copies of `inputs`."""
    n = len(inputs[0])
    npdt = to_numpy_dtype(DataType(out_dtype))
    lib = sf.build(func, target=sf.Target("cpu", fast_math=fast_math), lower=False)
    got = np.zeros(n, npdt)
    lib["main"](*[x.copy() for x in inputs], got)
    want = np.zeros(n, npdt)
    interpret(func, *[x.copy() for x in inputs], want)
    return got, want


def assert_same(got, want, dtype):
    dt = DataType(dtype)
    if dt.is_float:
        tol = {16: 2e-3, 32: 1e-6, 64: 1e-12}[dt.bits] if dt.kind == "float" else 1e-2
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "min": E.min_expr,
    "max": E.max_expr,
}


@pytest.mark.parametrize("dtype", INTS + FLOATS)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops_every_dtype(dtype, op):
    rng = np.random.default_rng(hash((dtype, op)) % 2**32)
    n = 131
    inputs = [random_array(rng, dtype, n), random_array(rng, dtype, n)]
    got, want = run_both(elementwise(BINARY[op], [dtype, dtype], dtype), inputs, dtype)
    assert_same(got, want, dtype)


def test_integer_wraparound():
    a = np.array([127, -128, 100, -100], np.int8)
    b = np.array([1, -1, 100, -100], np.int8)
    got, want = run_both(elementwise(lambda x, y: x + y, ["int8", "int8"], "int8"), [a, b], "int8")
    np.testing.assert_array_equal(got, np.array([-128, 127, -56, 56], np.int8))
    np.testing.assert_array_equal(got, want)
    got, _ = run_both(
        elementwise(lambda x, y: x * y, ["uint8", "uint8"], "uint8"),
        [np.array([255, 16], np.uint8), np.array([2, 16], np.uint8)],
        "uint8",
    )
    np.testing.assert_array_equal(got, [254, 0])


DIVISION = {"floordiv": E.floordiv, "floormod": E.floormod, "truncdiv": E.truncdiv, "truncmod": E.truncmod}


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint32", "uint64"])
@pytest.mark.parametrize("op", sorted(DIVISION))
def test_integer_division_of_negatives_matches_interpreter(dtype, op):
    rng = np.random.default_rng(3)
    n = 200
    a = random_array(rng, dtype, n)
    b = random_array(rng, dtype, n)
    b[b == 0] = 3
    if DataType(dtype).is_int:
        a[:4] = [-7, 7, -7, 7]
        b[:4] = [2, -2, -2, 2]
    got, want = run_both(elementwise(DIVISION[op], [dtype, dtype], dtype), [a, b], dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("divisor", [1, 2, 3, 8, 7, -3, -8])
@pytest.mark.parametrize("op", sorted(DIVISION))
def test_division_by_constants(op, divisor):
    a = np.arange(-50, 50, dtype=np.int64)
    func = elementwise(lambda x: DIVISION[op](x, E.IntImm("int64", divisor)), ["int64"], "int64")
    got, want = run_both(func, [a], "int64")
    np.testing.assert_array_equal(got, want)


def test_division_by_zero_is_defined_as_zero():
    a = np.array([5, -5, 0, np.iinfo(np.int32).min, 9], np.int32)
    b = np.array([0, 0, 0, -1, -1], np.int32)
    expected = {
        "floordiv": [0, 0, 0, np.iinfo(np.int32).min, -9],
        "truncdiv": [0, 0, 0, np.iinfo(np.int32).min, -9],
        "floormod": [0, 0, 0, 0, 0],
        "truncmod": [0, 0, 0, 0, 0],
    }
    for op, fn in DIVISION.items():
        lib = sf.build(elementwise(fn, ["int32", "int32"], "int32"), lower=False)
        out = np.full(5, 77, np.int32)
        lib["main"](a, b, out)
        np.testing.assert_array_equal(out, expected[op], err_msg=op)
        ref = np.full(5, 77, np.int32)
        interpret(elementwise(fn, ["int32", "int32"], "int32"), a, b, ref)
        np.testing.assert_array_equal(ref, expected[op], err_msg=f"interpreter {op}")
    lib = sf.build(
        elementwise(lambda x: E.floordiv(x, E.IntImm("int32", 0)), ["int32"], "int32"), lower=False
    )
    out = np.full(5, 77, np.int32)
    lib["main"](a, out)
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_floordiv_floormod_and_div(dtype):
    rng = np.random.default_rng(5)
    a = random_array(rng, dtype, 100)
    b = random_array(rng, dtype, 100)
    b[np.abs(b) < 0.1] = 0.5
    for fn in (E.floordiv, E.floormod, lambda x, y: x / y):
        got, want = run_both(elementwise(fn, [dtype, dtype], dtype), [a, b], dtype)
        assert_same(got, want, dtype)


CMP = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


@pytest.mark.parametrize("dtype", ["int8", "uint32", "int64", "uint64", "float16", "float32", "bfloat16"])
def test_comparisons_and_select(dtype):
    rng = np.random.default_rng(11)
    a = random_array(rng, dtype, 64)
    b = random_array(rng, dtype, 64)
    b[:16] = a[:16]
    for name, cmp in CMP.items():
        got, want = run_both(elementwise(cmp, [dtype, dtype], "bool"), [a, b], "bool")
        np.testing.assert_array_equal(got, want, err_msg=name)
    func = elementwise(lambda x, y: E.select(x < y, y - x, x + y), [dtype, dtype], dtype)
    got, want = run_both(func, [a, b], dtype)
    assert_same(got, want, dtype)


def test_nan_comparisons_follow_ieee():
    a = np.array([np.nan, 1.0, np.nan], np.float32)
    b = np.array([1.0, np.nan, np.nan], np.float32)
    for name, cmp in CMP.items():
        got, want = run_both(elementwise(cmp, ["float32", "float32"], "bool"), [a, b], "bool")
        np.testing.assert_array_equal(got, want, err_msg=name)
        np.testing.assert_array_equal(got, name == "ne")


def test_bool_logic():
    rng = np.random.default_rng(2)
    a, b = random_array(rng, "bool", 50), random_array(rng, "bool", 50)
    for fn in (E.logical_and, E.logical_or, lambda x, y: E.logical_not(x)):
        got, want = run_both(elementwise(fn, ["bool", "bool"], "bool"), [a, b], "bool")
        np.testing.assert_array_equal(got, want)


CAST_DTYPES = INTS + FLOATS + ["bool"]


@pytest.mark.parametrize("src", CAST_DTYPES)
def test_casts_between_all_dtypes(src):
    rng = np.random.default_rng(abs(hash(src)) % 2**32)
    s = DataType(src)
    # Floats stay in [0, 100) so that every target holds them (float -> int out of range is unspecified).
    x = random_array(rng, src, 97, 0, 100) if s.is_float else random_array(rng, src, 97)
    if s.is_float:
        x[:5] = np.array([0.0, -0.0, 1.5, 2.5, 99.9]).astype(x.dtype)
    for dst in CAST_DTYPES:
        got, want = run_both(elementwise(lambda v, dst=dst: E.Cast(dst, v), [src], dst), [x], dst)
        if DataType(dst).is_float and s.is_integer and s.bits == 64:
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-2)
        else:
            assert_same(got, want, dst)


def test_negative_floats_cast_to_signed_truncate_toward_zero():
    x = np.array([-1.5, -2.7, 3.9, -0.2], np.float32)
    got, want = run_both(elementwise(lambda v: E.Cast("int32", v), ["float32"], "int32"), [x], "int32")
    np.testing.assert_array_equal(got, [-1, -2, 3, 0])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", SIZES)
def test_bfloat16_rounds_after_each_operation(n):
    rng = np.random.default_rng(n)
    a = random_array(rng, "bfloat16", n)
    b = random_array(rng, "bfloat16", n)
    func = elementwise(
        lambda x, y: (x * y + x) / (y + E.FloatImm("bfloat16", 3.0)), ["bfloat16", "bfloat16"], "bfloat16"
    )
    got, want = run_both(func, [a, b], "bfloat16")
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def test_scalar_params_of_each_kind():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    y = decl_buffer((n,), "float32", "Y")
    alpha = E.Var("alpha", "float32")
    shift = E.Var("shift", "int32")
    flag = E.Var("flag", "bool")
    i = E.Var("i")
    value = E.select(flag, x[i] * alpha + E.Cast("float32", shift), x[i])
    func = PrimFunc((x, alpha, shift, flag, y), For(i, 0, n, "serial", BufferStore(y, value, (i,))))
    lib = sf.build(func, lower=False)
    a = np.arange(5, dtype=np.float32)
    out = np.zeros(5, np.float32)
    lib["main"](a, 2.0, -1, True, out)
    np.testing.assert_array_equal(out, a * 2 - 1)
    lib["main"](a, np.float32(3), np.int64(1), np.bool_(False), out)
    np.testing.assert_array_equal(out, a)
