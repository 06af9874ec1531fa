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
