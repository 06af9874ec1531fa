"""Bugs the differential oracle (`shapeflow fuzz --tvm`) found in apache-tvm, as minimized TVMScript
reproducers. Each test asserts what a correct TVM does and is a strict xfail while TVM is wrong: when a TVM
release fixes it the test fails as XPASS, and the marker (and the entry here) can go. Shapeflow compiles
and runs the same programs correctly (checked by the oracle before it records a TVM finding, and here).
Found with apache-tvm 0.27.0.post1; skipped without tvm (the optional `tvm` extra)."""

import numpy as np
import pytest

from shapeflow.fuzz.tvm_oracle import tvm_available, tvm_version

pytestmark = pytest.mark.skipif(not tvm_available(), reason="apache-tvm is not installed (the tvm extra)")

# A vectorized loop of extent 0 (a mutation set the extent to 0) is a valid empty loop.
VECTORIZED_EMPTY_LOOP = """
@T.prim_func
def main(a_h: T.handle):
    A = T.match_buffer(a_h, (T.int64(4),), "float32")
    for i in T.vectorized(T.int64(0), T.int64(0)):
        A[i] = T.float32(1.0)
"""

# Casting a negative int32 constant to uint32 is defined (it wraps); TVM's constant folding refuses it.
NEGATIVE_TO_UINT_CAST = """
@T.prim_func
def main(a_h: T.handle):
    A = T.match_buffer(a_h, (T.int64(4),), "uint32")
    for i in T.serial(T.int64(0), T.int64(4)):
        A[i] = A[i] * T.Cast("uint32", T.int32(-5))
"""

SHAPEFLOW_EQUIVALENTS = {
    "empty": """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((4,), "float32")):
    for i in T.vectorized(0, 0):
        A[i] = T.float32(1.0)
""",
    "uint": """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((4,), "uint32")):
    for i in T.serial(0, 4):
        A[i] = A[i] * T.Cast("uint32", T.int32(-5))
""",
}


def _tvm_run(script: str, arr: np.ndarray) -> np.ndarray:
    from shapeflow.fuzz.tvm_oracle import build_tvm, run_tvm

    return run_tvm(build_tvm(script), [arr])[0]


def _shapeflow_run(text: str, arr: np.ndarray) -> np.ndarray:
    import shapeflow
    from shapeflow.fuzz.oracles import as_func
    from shapeflow.ir.module import IRModule
    from shapeflow.ir.text import parse

    out = arr.copy()
    shapeflow.build(IRModule({"main": as_func(parse(text))}), "cpu")["main"](out)
    return out


def test_tvm_version_is_recorded():
    assert tvm_version()


def test_shapeflow_compiles_the_same_programs_right():
    ones = np.ones(4, "float32")
    np.testing.assert_array_equal(_shapeflow_run(SHAPEFLOW_EQUIVALENTS["empty"], ones), ones)
    u = np.arange(4, dtype="uint32")
    np.testing.assert_array_equal(_shapeflow_run(SHAPEFLOW_EQUIVALENTS["uint"], u), u * np.uint32(2**32 - 5))


@pytest.mark.xfail(strict=True, reason="tvm.compile: Check failed: Failed to vectorize loop with extent 0")
def test_tvm_builds_an_empty_vectorized_loop():
    ones = np.ones(4, "float32")
    np.testing.assert_array_equal(_tvm_run(VECTORIZED_EMPTY_LOOP, ones), ones)


@pytest.mark.xfail(strict=True, reason="tvm.compile: Check failed: cannot make uint from negative value -5")
def test_tvm_casts_a_negative_constant_to_uint():
    u = np.arange(4, dtype="uint32")
    np.testing.assert_array_equal(_tvm_run(NEGATIVE_TO_UINT_CAST, u), u * np.uint32(2**32 - 5))


# log1p and erf are TIR intrinsics TVM accepts on float16, but its LLVM backend has no lowering for them
# (found as `T.log1p(T.float16(0.0))` by the --tvm campaign, seed 11; erf by the oracle's own tests).
FLOAT16_INTRINSIC = """
@T.prim_func
def main(a_h: T.handle):
    A = T.match_buffer(a_h, (T.int64(4),), "float16")
    for i in T.serial(T.int64(0), T.int64(4)):
        A[i] = T.{fn}(A[i])
"""


@pytest.mark.xfail(strict=True, reason="tvm.compile: unknown intrinsic tirx.<fn> for float16 on llvm")
@pytest.mark.parametrize("fn", ["log1p", "erf"])
def test_tvm_builds_float16_intrinsics(fn):
    import math

    x = np.array([0.0, 0.5, 1.0, 2.0], "float16")
    ref = {"log1p": np.log1p, "erf": np.vectorize(math.erf)}[fn](x.astype(np.float64))
    got = _tvm_run(FLOAT16_INTRINSIC.format(fn=fn), x)
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=1e-2, atol=1e-3)


# Found by the 1-hour --tvm campaign (findings e45701d9cf23 and 06ae83531fb1), minimized by hand. Both come
# from the index rewriting of FlattenBuffer (TVM's affine iter-map simplifier), which turns a floormod of a
# negated loop variable into a floormod by a negative divisor.
#
# floormod(2 - i, 3) becomes `i % -3 * -1`: the constant 2 is dropped, so B[0] reads A[0] instead of A[2].
# `tvm.sym.iter_map_simplify([floormod(2 - i, 3)], {i: Range(0, 3)})` shows the same wrong rewrite.
FLOORMOD_OF_NEGATED_INDEX = """
@T.prim_func
def main(a_h: T.handle, b_h: T.handle):
    n = T.int64()
    A = T.match_buffer(a_h, (T.int64(3),), "int64")
    B = T.match_buffer(b_h, (n,), "int64")
    for i in T.serial(T.int64(0), n):
        B[i] = A[T.floormod(T.int64(2) - i, T.int64(3))]
"""

# floormod(i, floordiv(n, -1)) (what floormod(0 - i, n) is rewritten to) is lowered by LowerIntrin into
# nested Lets that reuse one variable `rmod` in several places; the LLVM code generator then binds `rmod`
# twice and stops on "Check failed: (allow_override) is false: Binding of variable rmod ... conflicts".
FLOORMOD_BY_NEGATED_DIM = """
@T.prim_func
def main(b_h: T.handle):
    n = T.int64()
    B = T.match_buffer(b_h, (n,), "int64")
    for i in T.serial(T.int64(0), n):
        B[i] = T.floormod(i, T.floordiv(n, T.int64(-1)))
"""

SHAPEFLOW_FLOORMOD = {
    "negated_index": """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((3,), "int64"), B: T.Buffer((n,), "int64")):
    for i in T.serial(0, n):
        B[i] = A[(2 - i) % 3]
""",
    "negated_dim": """# shapeflow.ir v1
@T.prim_func
def main(B: T.Buffer((n,), "int64")):
    for i in T.serial(0, n):
        B[i] = i % (n // -1)
""",
}


def _floormod_expected(name: str, n: int) -> list:
    a = np.array([10, 20, 30], "int64")
    if name == "negated_index":
        return [a, np.zeros(n, "int64")], [a, a[[(2 - i) % 3 for i in range(n)]]]
    return [np.zeros(n, "int64")], [np.array([i % -n for i in range(n)], "int64")]


@pytest.mark.parametrize("name", sorted(SHAPEFLOW_FLOORMOD))
def test_shapeflow_compiles_the_floormod_programs_right(name):
    import shapeflow
    from shapeflow.fuzz.oracles import as_func
    from shapeflow.ir.module import IRModule
    from shapeflow.ir.text import parse

    lib = shapeflow.build(IRModule({"main": as_func(parse(SHAPEFLOW_FLOORMOD[name]))}), "cpu")
    for n in (1, 5, 7):
        args, expected = _floormod_expected(name, n)
        lib["main"](*args)
        for got, want in zip(args, expected):
            np.testing.assert_array_equal(got, want)


@pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="FlattenBuffer: floormod(2 - i, 3) -> i % -3 * -1"
)
def test_tvm_indexes_with_floormod_of_a_negated_loop_variable():
    from shapeflow.fuzz.tvm_oracle import build_tvm, run_tvm

    args, expected = _floormod_expected("negated_index", 5)
    got = run_tvm(build_tvm(FLOORMOD_OF_NEGATED_INDEX), args)
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.xfail(strict=True, reason="tvm.compile: Binding of variable rmod ... conflicts")
def test_tvm_builds_floormod_by_a_negated_dimension():
    from shapeflow.fuzz.tvm_oracle import build_tvm, run_tvm

    args, expected = _floormod_expected("negated_dim", 5)
    got = run_tvm(build_tvm(FLOORMOD_BY_NEGATED_DIM), args)
    np.testing.assert_array_equal(got[0], expected[0])


# Finding 4efa002cc28d: NarrowDataType(32) narrows the int64 loop variable and the expression around a
# shift by 60 to int32 but keeps the amount, then stops on "Shift amount must be non-negative and less than
# 32 for type T.int32". A shift by 60 of an int64 is defined; the pass should keep 64 bits there.
SHIFT_OF_NARROWED_LOOP_VARIABLE = """
@T.prim_func
def main(b_h: T.handle):
    B = T.match_buffer(b_h, (T.int64(8),), "int64")
    for i in T.serial(T.int64(0), T.int64(8)):
        B[i] = T.shift_right(i, T.int64(60)) + i
"""

# Finding cb76cbca9c04: an assert in a vectorized loop whose condition reads the loop variable reaches LLVM
# as a branch on a vector of i1 (`icmp slt <8 x i64>`), which the LLVM verifier rejects; VectorizeLoop
# should scalarize the assert (or the loop), as it does other statements it cannot vectorize.
ASSERT_IN_VECTORIZED_LOOP = """
@T.prim_func
def main(a_h: T.handle):
    A = T.match_buffer(a_h, (T.int64(1),), "int64")
    for i in T.vectorized(T.int64(0), T.int64(8)):
        assert i < A[T.int64(0)], "loop variable in range"
"""

SHAPEFLOW_SHIFT_AND_ASSERT = {
    "shift": """# shapeflow.ir v1
@T.prim_func
def main(B: T.Buffer((8,), "int64")):
    for i in T.serial(0, 8):
        B[i] = T.shift_right(i, T.int64(60)) + i
""",
    "assert": """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((1,), "int64")):
    for i in T.vectorized(0, 8):
        T.Assert(i < A[0], 'loop variable in range')
""",
}


def test_shapeflow_compiles_the_shift_and_assert_programs_right():
    b = np.zeros(8, "int64")
    np.testing.assert_array_equal(_shapeflow_run(SHAPEFLOW_SHIFT_AND_ASSERT["shift"], b), np.arange(8))
    a = np.array([100], "int64")
    np.testing.assert_array_equal(_shapeflow_run(SHAPEFLOW_SHIFT_AND_ASSERT["assert"], a), a)


@pytest.mark.xfail(strict=True, reason="tvm.compile: Shift amount must be ... less than 32 for type T.int32")
def test_tvm_builds_a_64_bit_shift_of_a_loop_variable():
    got = _tvm_run(SHIFT_OF_NARROWED_LOOP_VARIABLE, np.zeros(8, "int64"))
    np.testing.assert_array_equal(got, np.arange(8))


@pytest.mark.xfail(strict=True, reason="tvm.compile: LLVM verifier, branch on icmp slt <8 x i64>")
def test_tvm_builds_an_assert_in_a_vectorized_loop():
    a = np.array([100], "int64")
    np.testing.assert_array_equal(_tvm_run(ASSERT_IN_VECTORIZED_LOOP, a), a)
