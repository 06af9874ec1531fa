"""Loops whose end `min + extent` does not fit the loop variable's dtype. Compiled code computes the end
with a wrapping add and compares against it (codegen/llvm/stmt.py), so such a loop runs no iteration there,
while passes assume index arithmetic does not overflow: the loop is undefined, and the interpreter refuses
it with InterpreterError (a shapeflow.Error) instead of running values the dtype cannot hold. A loop whose
end still fits runs every iteration, as compiled code does."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.errors import Error
from shapeflow.ir.tir.interpreter import InterpreterError, run

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1


def _loop_func(lo: int, extent: int, dtype: str, kind: str = "serial"):
    """B[0] counts the iterations, C[0] keeps the last loop value, D[0] a shift of it (an intrinsic, whose
    numpy reference converts its arguments to the dtype: where the fuzzer found the crash)."""
    return sf.ir.parse(f"""# shapeflow.ir v1
@T.prim_func
def main(B: T.Buffer((1,), "float32"), C: T.Buffer((1,), "int64"), D: T.Buffer((1,), "{dtype}")):
    T.func_attr({{'global_symbol': 'main', 'var_bounds': {{}}}})
    for w in T.{kind}(T.{dtype}({lo}), T.{dtype}({extent})):
        B[0] = B[0] + T.float32(1.0)
        C[0] = T.Cast("int64", w)
        D[0] = T.shift_right(w, T.{dtype}(25))
""")


def _arrays(dtype: str) -> list:
    return [np.zeros(1, "float32"), np.full(1, 7, "int64"), np.zeros(1, dtype)]


@pytest.mark.parametrize(
    "lo,extent,dtype",
    [
        (INT64_MAX, 4, "int64"),  # the fuzzer's finding (b93c65a8f041)
        (INT64_MAX - 1, 2, "int64"),  # every value fits, the end does not
        (INT32_MAX, 3, "int32"),
        (INT64_MIN, -1, "int64"),  # an end below the range (a wrapped end would loop 2**64 times)
    ],
)
@pytest.mark.parametrize("kind", ["serial", "unroll", "vectorized", "parallel"])
def test_a_loop_whose_end_overflows_is_refused(lo, extent, dtype, kind):
    func = _loop_func(lo, extent, dtype, kind)
    arrays = _arrays(dtype)
    with pytest.raises(InterpreterError, match=r"loop w: its end min \+ extent .* does not fit " + dtype):
        run(func, *arrays)
    assert isinstance(InterpreterError("x"), Error)


@pytest.mark.parametrize("lo,extent,dtype", [(INT64_MAX - 2, 2, "int64"), (INT32_MAX - 3, 3, "int32")])
def test_a_loop_ending_at_the_last_value_runs_as_compiled(lo, extent, dtype):
    func = _loop_func(lo, extent, dtype)
    expected = _arrays(dtype)
    run(func, *expected)
    assert expected[0][0] == extent and expected[1][0] == lo + extent - 1
    assert expected[2][0] == (lo + extent - 1) >> 25
    lib = sf.build(sf.ir.IRModule({"main": func}), target="cpu")
    compiled = _arrays(dtype)
    lib["main"](*compiled)
    for want, got in zip(expected, compiled):
        np.testing.assert_array_equal(got, want)


@settings(deadline=None, max_examples=30)
@given(
    st.sampled_from(["int8", "int16", "int32", "int64"]),
    st.integers(-6, 6),
    st.integers(-8, 8),
    st.booleans(),
)
def test_loop_runs_its_extent_or_is_refused_exactly_when_the_end_overflows(dtype, offset, extent, at_top):
    bits = int(dtype[3:])
    top, bottom = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    lo = top - offset if at_top else bottom + offset
    lo = min(max(lo, bottom), top)
    func = _loop_func(lo, extent, dtype)
    arrays = _arrays(dtype)
    if bottom <= lo + extent <= top:
        run(func, *arrays)
        assert arrays[0][0] == max(extent, 0)
        assert arrays[1][0] == (lo + extent - 1 if extent > 0 else 7)
    else:
        with pytest.raises(InterpreterError):
            run(func, *arrays)
