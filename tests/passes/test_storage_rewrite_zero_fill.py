"""StorageRewrite keeps the zero-filled meaning of Allocate when a later allocation takes over the storage of
an earlier one: the later owner must read zeros, not the earlier owner's data."""

from __future__ import annotations

import numpy as np

import shapeflow as sf
import shapeflow.ir as sf_ir
from shapeflow.ir.functor import post_order_visit
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.stmt import For
from shapeflow.passes import get_pass

# Z accumulates into its fresh (zero) storage; X is dead before Z is first used, so they share storage.
ACCUMULATE = """
@T.prim_func
def f(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32")):
    with T.allocate((8,), "float32", scope="global") as X:
        with T.allocate((8,), "float32", scope="global") as Z:
            for i in T.serial(0, 8):
                X[i] = A[i] * T.float32(3.0)
            for i_1 in T.serial(0, 8):
                B[i_1] = X[i_1]
            for i_2 in T.serial(0, 8):
                Z[i_2] = Z[i_2] + A[i_2]
            for i_3 in T.serial(0, 8):
                B[i_3] = B[i_3] + Z[i_3]
"""


def _loops(func) -> int:
    count = 0

    def visit(n):
        nonlocal count
        count += isinstance(n, For)

    post_order_visit(func.body, visit)
    return count


def test_shared_storage_is_zero_filled_in_the_interpreter():
    func = sf_ir.parse(ACCUMULATE)
    shared = get_pass("storage-rewrite")(func)
    assert _loops(shared) == 5  # the four stages and the zero fill of the later owner
    a = np.arange(8, dtype="float32")
    b = np.zeros(8, "float32")
    run(shared, a, b)
    np.testing.assert_allclose(b, 4 * a)


def test_shared_storage_is_zero_filled_in_compiled_code():
    lib = sf.build(sf_ir.IRModule({"f": sf_ir.parse(ACCUMULATE)}), target="cpu")
    a = np.arange(1, 9, dtype="float32")
    b = np.full(8, 99.0, "float32")
    lib["f"](a, b)
    np.testing.assert_allclose(b, 4 * a)  # 7 * a if Z saw X's 3 * a
