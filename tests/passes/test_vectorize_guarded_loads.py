"""vectorize-loop on loads that an `if` on the vectorized variable guards.

Merging such an `if` into a Select evaluates both branches in every lane (a Select evaluates both arms),
so the merge is only right when every guarded load is in bounds in every lane; otherwise the loop must stay
serial (the IR has no predicated load). Each function is checked interpreted before and after the pass and
compiled (shapeflow.build of the vectorized function) against the interpreter, at n = 1, a prime, and a
multiple of the lane count (fuzzer finding 6bdc1cf4e409 was the pad loop below).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tir_pass_helpers import random_arguments

import shapeflow as sf
from shapeflow.ir import Ramp
from shapeflow.ir.functor import collect
from shapeflow.ir.tir import For, ForKind
from shapeflow.ir.tir.interpreter import run
from shapeflow.passes import get_pass

SIZES = (1, 13, 16)  # n: one, a prime, a multiple of the 8 lanes

# The pad block of `pad` (schedule primitive) over a row of 7: lane 7 must not load b.
PAD_ROW = """@T.prim_func
def main(b: T.Buffer((7,), "int32"), P: T.Buffer((n, 8), "int32")):
    for i in T.serial(0, n):
        for j in T.vectorized(0, 8):
            if j < 7:
                P[i, j] = b[j] + T.Cast("int32", i)
            else:
                P[i, j] = T.int32(0)
"""

# A split loop whose tail is guarded (no loop partition ran): lanes past n must not load A.
GUARDED_TAIL = """@T.prim_func
def main(A: T.Buffer((n,), "float32"), B: T.Buffer(((n + 7) // 8 * 8,), "float32")):
    for io in T.serial(0, (n + 7) // 8):
        for ii in T.vectorized(0, 8):
            if io * 8 + ii < n:
                B[io * 8 + ii] = A[io * 8 + ii]
            else:
                B[io * 8 + ii] = T.float32(0.0)
"""

# Padding on the left (a convolution's): lane 0 of row 0 must not load A[0, -1].
SHIFTED = """@T.prim_func
def main(A: T.Buffer((n, 8), "float32"), B: T.Buffer((n, 8), "float32")):
    for i in T.serial(0, n):
        for j in T.vectorized(0, 8):
            if j >= 1:
                B[i, j] = A[i, j - 1]
            else:
                B[i, j] = T.float32(0.0)
"""

# The enclosing `if` leaves io * 8 + 8 == n possible: lane 7 of the then-branch may load A[n].
ENCLOSING_IF_TOO_WEAK = """@T.prim_func
def main(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
    for io in T.serial(0, (n + 7) // 8):
        if io * 8 + 8 <= n:
            for ii in T.vectorized(0, 8):
                if ii < 7:
                    B[io * 8 + ii] = A[io * 8 + ii + 1]
                else:
                    B[io * 8 + ii] = A[io * 8 + ii]
"""

# Guarded loads that are in bounds in every lane: the if becomes a Select, the loop vector code.
RELU = """@T.prim_func
def main(A: T.Buffer((n, 8), "float32"), B: T.Buffer((n, 8), "float32")):
    for i in T.serial(0, n):
        for j in T.vectorized(0, 8):
            if A[i, j] > T.float32(0.0):
                B[i, j] = A[i, j]
            else:
                B[i, j] = T.float32(0.0)
"""

ENCLOSING_IF_PROVES = """@T.prim_func
def main(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
    for io in T.serial(0, (n + 7) // 8):
        if io * 8 + 8 < n:
            for ii in T.vectorized(0, 8):
                if ii < 7:
                    B[io * 8 + ii] = A[io * 8 + ii + 1]
                else:
                    B[io * 8 + ii] = A[io * 8 + ii]
"""

CASES = {
    "pad_row": (PAD_ROW, False),
    "guarded_tail": (GUARDED_TAIL, False),
    "shifted": (SHIFTED, False),
    "enclosing_if_too_weak": (ENCLOSING_IF_TOO_WEAK, False),
    "relu": (RELU, True),
    "enclosing_if_proves": (ENCLOSING_IF_PROVES, True),
}


def _vectorized(func) -> bool:
    return bool(collect(func.body, Ramp))


def _assert_same_results(before, after, sizes, seed: int = 0) -> None:
    """Interpreter on `before` = interpreter on `after` = compiled `after`, on the same inputs."""
    kernel = sf.build(after, lower=False)["main"]
    rng = np.random.default_rng(seed)
    for size in sizes:
        args = random_arguments(before, size, rng)
        want = [a.copy() for a in args]
        run(before, *want)
        interpreted = [a.copy() for a in args]
        run(after, *interpreted)
        compiled = [a.copy() for a in args]
        kernel(*compiled)
        for k, (w, i, c) in enumerate(zip(want, interpreted, compiled)):
            np.testing.assert_array_equal(i, w, err_msg=f"interpreted, parameter {k}, n = {size}")
            np.testing.assert_array_equal(c, w, err_msg=f"compiled, parameter {k}, n = {size}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_guarded_load_keeps_its_meaning(name):
    text, vector = CASES[name]
    before = sf.ir.parse(text)
    after = get_pass("vectorize-loop")(before)
    assert _vectorized(after) == vector, sf.ir.text.to_text(after)
    assert not [x for x in collect(after.body, For) if x.kind == ForKind.VECTORIZED]
    _assert_same_results(before, after, SIZES)


def _pad_row(lanes: int, length: int, keep: int) -> str:
    return f"""@T.prim_func
def main(b: T.Buffer(({length},), "int32"), P: T.Buffer((n, {lanes}), "int32")):
    for i in T.serial(0, n):
        for j in T.vectorized(0, {lanes}):
            if j < {keep}:
                P[i, j] = b[j] * T.Cast("int32", i + 1)
            else:
                P[i, j] = T.int32(-1)
"""


@settings(deadline=None, max_examples=20)
@given(
    lanes=st.sampled_from([2, 3, 4, 8]),
    data=st.data(),
)
def test_pad_loop_vectorizes_exactly_when_every_lane_is_in_bounds(lanes, data):
    """b has `length` elements and lanes below `keep` <= length read it: the loop is vector code when b
    covers every lane, else serial, and it computes the same in both cases."""
    length = data.draw(st.integers(1, lanes + 2), label="length")
    keep = data.draw(st.integers(0, min(length, lanes)), label="keep")
    before = sf.ir.parse(_pad_row(lanes, length, keep))
    after = get_pass("vectorize-loop")(before)
    assert _vectorized(after) == (length >= lanes), sf.ir.text.to_text(after)
    _assert_same_results(before, after, (1, 5), seed=lanes * 100 + length * 10 + keep)
