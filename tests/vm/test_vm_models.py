"""Compiled models against the graph interpreter, at several symbolic sizes (1, primes, declared bounds)."""

import numpy as np
import pytest
import vm_models
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.ir.graph import run

rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def mlp_exe():
    mod = vm_models.mlp()
    return mod, sf.compile(mod, dims={"n": (1, 64)})


@pytest.mark.parametrize("n", [1, 2, 13, 31, 64])
def test_mlp_matches_interpreter(mlp_exe, n):
    mod, exe = mlp_exe
    args = vm_models.mlp_inputs(rng, n)
    got = exe(*args)
    want = run(mod, *args)
    assert isinstance(got, np.ndarray) and got.shape == (n, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_mlp_repeated_calls_reuse_storage_and_stay_correct(mlp_exe):
    mod, exe = mlp_exe
    # Sizes up and down: planned storage is reused across calls, results must not leak between them.
    for n in [64, 1, 37, 64, 5]:
        args = vm_models.mlp_inputs(rng, n)
        np.testing.assert_allclose(exe(*args), run(mod, *args), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("b,s", [(1, 1), (2, 3), (1, 17), (3, 7)])
def test_norm_chain_matches_interpreter(b, s, opt_level):
    mod = vm_models.norm_chain()
    exe = _compiled(mod, "norm", opt_level)
    x = rng.standard_normal((b, s, 24)).astype("float32")
    g, beta = rng.standard_normal((2, 24)).astype("float32")
    np.testing.assert_allclose(exe(x, g, beta), run(mod, x, g, beta), rtol=1e-4, atol=1e-4)


_CACHE = {}


def _compiled(mod, key, opt_level=2):
    if (key, opt_level) not in _CACHE:
        _CACHE[key, opt_level] = sf.compile(mod, opt_level=opt_level)
    return _CACHE[key, opt_level]


@settings(deadline=None, max_examples=15)
@given(n=st.sampled_from([1, 2, 3, 5, 7, 11, 13, 97]))
def test_reshape_concat_tuple_output(n):
    mod = vm_models.reshape_concat()
    exe = _compiled(mod, "reshape_concat")
    x = rng.standard_normal((n, 6)).astype("float32")
    got = exe(x)
    want = run(mod, x)
    assert isinstance(got, tuple) and len(got) == 2
    assert got[0].shape == (n, 12) and got[1].shape == (n,)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-4)


def test_dlpack_and_non_contiguous_inputs(mlp_exe):
    mod, exe = mlp_exe

    class DLPackOnly:  # a foreign tensor: numpy reads it through the DLPack protocol only
        def __init__(self, array):
            self._array = array

        def __dlpack__(self, **kwargs):
            return self._array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self._array.__dlpack_device__()

    x, w1, b1, w2 = vm_models.mlp_inputs(rng, 9)
    want = run(mod, x, w1, b1, w2)
    np.testing.assert_allclose(exe(DLPackOnly(x), w1, b1, w2), want, rtol=1e-4, atol=1e-4)
    wide = np.zeros((9, 64), "float32")
    wide[:, ::2] = x  # a strided view of the same values
    np.testing.assert_allclose(exe(wide[:, ::2], w1, b1, w2), want, rtol=1e-4, atol=1e-4)


def test_functions_by_name_and_calls_between_functions():
    from shapeflow.ir import Var
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op

    n = Var("n")
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("double", [x]):
        with bb.dataflow():
            out = bb.emit_output(op.add(x, x))
        bb.emit_func_output(out)
    m = Var("m")
    y = GraphVar("y", TensorType((m, 4), "float32"))
    with bb.function("main", [y]):
        d = bb.emit(op.call("double", y))
        with bb.dataflow():
            out = bb.emit_output(op.exp(d))
        bb.emit_func_output([out, d])
    mod = bb.get()
    exe = sf.compile(mod)
    a = rng.standard_normal((5, 4)).astype("float32")
    got = exe(a)
    np.testing.assert_allclose(got[0], np.exp(2 * a), rtol=1e-5)
    np.testing.assert_allclose(exe["double"](a), 2 * a)
    assert exe.entry == "main" and sorted(exe.function_names()) == ["double", "main"]
    with pytest.raises(KeyError):
        exe["nope"]


def test_library_function_call():
    from shapeflow.ir import Var
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, register_library_function

    def cumsum_rows(x, out):
        np.cumsum(x, axis=1, out=out)

    register_library_function("test_vm.cumsum_rows", cumsum_rows, override=True)
    n = Var("n")
    x = GraphVar("x", TensorType((n, 3), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            c = bb.emit(op.call_dps_library("test_vm.cumsum_rows", [x], TensorType((n, 3), "float32")))
            out = bb.emit_output(op.multiply(c, 2.0))
        bb.emit_func_output(out)
    mod = bb.get()
    a = rng.standard_normal((4, 3)).astype("float32")
    np.testing.assert_allclose(sf.compile(mod)(a), 2 * np.cumsum(a, axis=1), rtol=1e-5)


@pytest.mark.parametrize("b,s", [(1, 1), (4, 33), (3, 31), (2, 1)])
def test_norm_chain_at_declared_bounds(b, s):
    mod = vm_models.norm_chain()
    if "bounded" not in _CACHE:
        _CACHE["bounded"] = sf.compile(mod, dims={"b": (1, 4), "s": (1, 33)})
    exe = _CACHE["bounded"]
    x = rng.standard_normal((b, s, 24)).astype("float32")
    g, beta = rng.standard_normal((2, 24)).astype("float32")
    np.testing.assert_allclose(exe(x, g, beta), run(mod, x, g, beta), rtol=1e-4, atol=1e-4)
    with pytest.raises(sf.ShapeError) as info:
        exe(np.zeros((b, 34, 24), "float32"), g, beta)
    assert info.value.parameter == "s" and info.value.actual == 34


@pytest.mark.parametrize("b,s", [(1, 1), (2, 3), (1, 17), (2, 16)])
def test_attention_matches_interpreter(b, s):
    mod = vm_models.attention()
    if "attention" not in _CACHE:
        _CACHE["attention"] = sf.compile(mod)
    exe = _CACHE["attention"]
    args = [rng.standard_normal((b, s, 16)).astype("float32")]
    args += [(rng.standard_normal((16, 16)) * 0.3).astype("float32") for _ in range(4)]
    args += [rng.standard_normal(16).astype("float32") for _ in range(2)]
    np.testing.assert_allclose(exe(*args), run(mod, *args), rtol=1e-4, atol=1e-4)
