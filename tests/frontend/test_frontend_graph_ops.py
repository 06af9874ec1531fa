"""The graph ops added for the ONNX frontend (strided_slice, the bitwise family, cumprod): inference over
symbolic dims, and the interpreter and compiled code against numpy at several sizes (1, a prime, larger)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow
from shapeflow.errors import VerifyError
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run


def _module(params, build):
    bb = BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(build(*params))
        bb.emit_func_output(out)
    return bb.get()


def test_strided_slice_symbolic_type_and_values():
    n = Var("n", "int64")
    x = GraphVar("x", TensorType((n, 7), "float32"))
    # rows reversed from the last one, every second column from 1
    mod = _module([x], lambda x: op.strided_slice(x, (0, 1), (n - 1, 1), (-1, 7), (-1, 2)))
    assert str(mod["main"].ret_type.shape[1]) == "3"
    exe = shapeflow.compile(mod)
    for rows in (1, 5, 13):
        a = np.arange(rows * 7, dtype=np.float32).reshape(rows, 7)
        np.testing.assert_array_equal(exe(a), a[::-1, 1:7:2])
        np.testing.assert_array_equal(run(mod, a), a[::-1, 1:7:2])


@settings(deadline=None, max_examples=25)
@given(
    size=st.integers(1, 9),
    begin=st.integers(0, 9),
    end=st.integers(-1, 9),
    step=st.sampled_from([-3, -2, -1, 1, 2, 3]),
)
def test_strided_slice_matches_python_slicing(size, begin, end, step):
    begin = min(begin, size - 1 if step < 0 else size)
    end = min(end, size) if step > 0 else min(end, size - 1)
    end = max(end, 0) if step > 0 else end
    x = GraphVar("x", TensorType((size,), "int32"))
    mod = _module([x], lambda x: op.strided_slice(x, (0,), (begin,), (end,), (step,)))
    a = np.arange(size, dtype=np.int32)
    want = a[begin : (None if end < 0 else end) : step]
    np.testing.assert_array_equal(run(mod, a), want)
    assert mod["main"].ret_type.shape[0].value == len(want)


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64"])
def test_bitwise_binary_ops_broadcast_and_match_numpy(name, dtype):
    x = GraphVar("x", TensorType((3, 5), dtype))
    y = GraphVar("y", TensorType((5,), dtype))
    mod = _module([x, y], getattr(op, name))
    rng = np.random.default_rng(0)
    a = rng.integers(-40 if dtype != "uint8" else 0, 100, (3, 5)).astype(dtype)
    b = rng.integers(0, 7, 5).astype(dtype)
    numpy_fn = {"left_shift": np.left_shift, "right_shift": np.right_shift}.get(name, getattr(np, name, None))
    want = numpy_fn(a, b)
    np.testing.assert_array_equal(shapeflow.compile(mod)(a, b), want)
    np.testing.assert_array_equal(run(mod, a, b), want)


def test_bitwise_ops_refuse_floats_and_not_inverts():
    x = GraphVar("x", TensorType((4,), "float32"))
    with pytest.raises(VerifyError):
        _module([x, x], op.bitwise_and)
    z = GraphVar("z", TensorType((4,), "int8"))
    mod = _module([z], op.bitwise_not)
    a = np.array([0, 1, -5, 127], np.int8)
    np.testing.assert_array_equal(shapeflow.compile(mod)(a), ~a)


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_matches_numpy_with_symbolic_length(exclusive, reverse):
    n = Var("n", "int64")
    x = GraphVar("x", TensorType((2, n), "float64"))
    mod = _module([x], lambda x: op.cumprod(x, 1, exclusive, reverse))
    exe = shapeflow.compile(mod)
    for length in (1, 7):
        a = np.random.default_rng(length).uniform(0.5, 1.5, (2, length))
        y = np.flip(a, 1) if reverse else a
        want = np.cumprod(y, axis=1)
        if exclusive:
            want = np.concatenate([np.ones((2, 1)), want[:, :-1]], axis=1)
        want = np.flip(want, 1) if reverse else want
        np.testing.assert_allclose(exe(a), want, rtol=1e-12)
        np.testing.assert_allclose(run(mod, a), want, rtol=1e-12)
