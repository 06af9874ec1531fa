"""Argument checking of compiled kernels: every kind of bad argument raises ShapeError with its fields set,
before native code runs; good arguments of every accepted kind (numpy, DLPack, numpy scalars) work."""

import timeit

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.tir import BufferStore, For, PrimFunc, decl_buffer


@pytest.fixture(scope="module")
def matvec_lib():
    """Y[i] = sum_j A[i, j] * x[j] + alpha over A: (n, 4), x: (4,), Y: (n,), with n in [1, 100]."""
    n = E.Var("n")
    a = decl_buffer((n, 4), "float32", "A")
    x = decl_buffer((4,), "float32", "x")
    y = decl_buffer((n,), "float32", "Y")
    alpha = E.Var("alpha", "float32")
    i = E.Var("i")
    value = alpha
    for j in range(4):
        value = value + a[i, j] * x[j]
    func = PrimFunc(
        (a, x, alpha, y), For(i, 0, n, "serial", BufferStore(y, value, (i,))), {"var_bounds": {"n": (1, 100)}}
    )
    return sf.build(sf.ir.IRModule({"matvec": func}), lower=False)


def good_args(n=5):
    rng = np.random.default_rng(0)
    return [
        rng.random((n, 4), dtype=np.float32),
        rng.random(4, dtype=np.float32),
        0.5,
        np.zeros(n, np.float32),
    ]


def test_good_call(matvec_lib):
    a, x, alpha, y = good_args()
    matvec_lib["matvec"](a, x, alpha, y)
    np.testing.assert_allclose(y, a @ x + alpha, rtol=1e-6)


def expect_shape_error(lib, args, **fields):
    with pytest.raises(sf.ShapeError) as info:
        lib["matvec"](*args)
    err = info.value
    assert err.function == "matvec"
    for key, value in fields.items():
        assert getattr(err, key) == value, (key, getattr(err, key), value)
    return err


def test_wrong_number_of_arguments(matvec_lib):
    expect_shape_error(matvec_lib, good_args()[:3], expected=4, actual=3)


def test_wrong_dtype(matvec_lib):
    args = good_args()
    args[0] = args[0].astype(np.float64)
    expect_shape_error(matvec_lib, args, parameter="A", expected="float32", actual="float64")


def test_wrong_rank(matvec_lib):
    args = good_args()
    args[1] = args[1].reshape(2, 2)
    expect_shape_error(matvec_lib, args, parameter="x", expected=1, actual=2)


def test_concrete_dimension_mismatch(matvec_lib):
    args = good_args()
    args[0] = np.zeros((5, 3), np.float32)
    expect_shape_error(matvec_lib, args, parameter="A", dimension=1, expected=4, actual=3)


def test_symbolic_dimension_inconsistent(matvec_lib):
    args = good_args()
    args[3] = np.zeros(6, np.float32)
    expect_shape_error(matvec_lib, args, parameter="Y", dimension=0, expected=5, actual=6)


def test_symbolic_dimension_out_of_bounds(matvec_lib):
    a, x, alpha, y = good_args(101)
    expect_shape_error(matvec_lib, [a, x, alpha, y], expected=(1, 100), actual=101)
    a, x, alpha, y = good_args(0)
    expect_shape_error(matvec_lib, [a, x, alpha, y], expected=(1, 100), actual=0)


def test_non_contiguous(matvec_lib):
    args = good_args()
    args[0] = np.zeros((4, 5), np.float32).T
    expect_shape_error(matvec_lib, args, parameter="A", expected="C-contiguous")


def test_read_only_output(matvec_lib):
    args = good_args()
    args[3].flags.writeable = False
    expect_shape_error(matvec_lib, args, parameter="Y", expected="writeable array")


def test_not_an_array_and_bad_scalar(matvec_lib):
    args = good_args()
    args[1] = [1.0, 2.0, 3.0, 4.0]
    expect_shape_error(matvec_lib, args, parameter="x", actual="list")
    args = good_args()
    args[2] = "half"
    expect_shape_error(matvec_lib, args, parameter="alpha", expected="float32")


def test_numpy_scalars_and_dlpack_inputs(matvec_lib):
    a, x, _, y = good_args()

    class Tensor:  # any object with the DLPack protocol
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, **kwargs):
            return self.array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    matvec_lib["matvec"](Tensor(a), np.from_dlpack(x), np.float32(2.0), Tensor(y))
    np.testing.assert_allclose(y, a @ x + 2.0, rtol=1e-6)


def test_explicit_strides_bind_and_check():
    n, s = E.Var("n"), E.Var("s")
    x = decl_buffer((n,), "float64", "X", strides=(s,))
    y = decl_buffer((n,), "float64", "Y")
    i = E.Var("i")
    lib = sf.build(PrimFunc((x, y), For(i, 0, n, "serial", BufferStore(y, x[i] * 2.0, (i,)))), lower=False)
    base = np.arange(20, dtype=np.float64)
    out = np.zeros(7, np.float64)
    lib["main"](base[::3], out)
    np.testing.assert_array_equal(out, base[::3] * 2)
    odd = np.lib.stride_tricks.as_strided(base, shape=(7,), strides=(12,))  # not a whole number of elements
    with pytest.raises(sf.ShapeError) as info:
        lib["main"](odd, out)
    assert (info.value.parameter, info.value.dimension) == ("X", 0)


def test_scalar_shape_parameter_must_agree():
    n = E.Var("n")
    x = decl_buffer((n,), "int32", "X")
    i = E.Var("i")
    lib = sf.build(
        PrimFunc((n, x), For(i, 0, n, "serial", BufferStore(x, E.Cast("int32", i), (i,)))), lower=False
    )
    out = np.zeros(4, np.int32)
    lib["main"](4, out)
    np.testing.assert_array_equal(out, np.arange(4))
    with pytest.raises(sf.ShapeError) as info:
        lib["main"](5, out)
    assert (info.value.parameter, info.value.expected, info.value.actual) == ("X", 5, 4)


def test_per_call_overhead_is_small(matvec_lib):
    n = E.Var("n")
    a = decl_buffer((n,), "float32", "A")
    b = decl_buffer((n,), "float32", "B")
    i = E.Var("i")
    kernel = sf.build(
        PrimFunc((a, b), For(i, 0, n, "serial", BufferStore(b, a[i] + 1.0, (i,)))), lower=False
    )["main"]
    x, y = np.ones(1, np.float32), np.zeros(1, np.float32)
    best = min(timeit.repeat(lambda: kernel(x, y), number=2000, repeat=5)) / 2000
    assert y[0] == 2.0
    assert best < 20e-6  # generous for loaded CI machines; the benchmark reports the real number
