"""flatten-buffer on a strided allocation at n = 0 (empty), 1 and 7.

The 1-D alias of a strided buffer spans one past its last addressable element, `(n - 1) * 12 + 8` for
shape (n, 8) and strides (12, 1); at n = 0 that is -4 and the interpreter refused the allocation (fuzz
finding flatten_neg). The flattened size must be 0 when an extent is 0, as the interpreter's allocator says.
"""

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import parse
from shapeflow.ir.arith import evaluate
from shapeflow.ir.expr import Var
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.buffer import allocation_extent, decl_buffer
from shapeflow.ir.tir.interpreter import run
from shapeflow.passes.infra import PassContext, get_pass

STRIDED = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n, 8), "float32"), out: T.Buffer((n, 8), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (0, 12)}})
    with T.allocate((n, 8), "float32", strides=(12, 1)) as ex:
        for i in T.serial(0, n):
            for j in T.serial(0, 8):
                ex[i, j] = A[i, j] * T.float32(2.0)
        for i2 in T.serial(0, n):
            for j2 in T.serial(0, 8):
                out[i2, j2] = ex[i2, j2] + T.float32(1.0)
"""


def _flatten(func):
    mod = PassContext().run_pass(get_pass("flatten-buffer"), IRModule({"main": func}))
    return mod["main"]


def _interpret(func, a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape, -7.0, dtype="float32")
    run(func, a, out)
    return out


@pytest.mark.parametrize("n", [0, 1, 7])
def test_flattened_strided_allocation_runs_at_every_size(n):
    before = parse(STRIDED)
    after = _flatten(before)
    a = np.random.default_rng(n).uniform(-4, 4, size=(n, 8)).astype("float32")
    expected = a * 2 + 1
    np.testing.assert_array_equal(_interpret(before, a), expected)
    np.testing.assert_array_equal(_interpret(after, a), expected)
    got = np.full((n, 8), -7.0, dtype="float32")
    sf.build(IRModule({"main": after}), lower=False)["main"](a, got)
    np.testing.assert_array_equal(got, expected)
    got = np.full((n, 8), -7.0, dtype="float32")
    sf.build(IRModule({"main": before}))["main"](a, got)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("shape", "strides", "offset"),
    [
        ((2, 8), (12, 1), 0),
        ((3, 5), (1, 4), 0),
        ((0, 8), (12, 1), 0),
        ((4, 0), (12, 1), 3),
        ((2, 2), (5, 1), 6),
    ],
)
def test_allocation_extent_matches_the_interpreters_allocation_size(shape, strides, offset):
    """allocation_extent at concrete sizes (symbolic dims bound when evaluated) is the interpreter's size:
    one past the last element when every extent is positive, else 0 (never negative)."""
    dims = [Var(f"d{k}", "int64") for k in range(len(shape))]
    buffer = decl_buffer(tuple(dims), "float32", "b", strides=strides, elem_offset=offset)
    size = int(evaluate(allocation_extent(buffer), dict(zip(dims, shape))))
    want = 0
    if all(e > 0 for e in shape):
        want = offset + sum((e - 1) * s for e, s in zip(shape, strides)) + 1
    assert size == want


@pytest.mark.parametrize("n", [0, 1, 7, 12])
def test_unflattened_strided_allocation_compiles_with_its_span(n):
    """build(lower=False) of the unflattened IR: the code generator allocated the product of the shape
    (n * 8 elements) for a buffer addressed up to (n - 1) * 1000 + 7, writing past the block (a crash at
    free); it now allocates the flattened span, 0 at n = 0."""
    func = parse(STRIDED.replace("strides=(12, 1)", "strides=(1000, 1)"))
    a = np.random.default_rng(n).uniform(-4, 4, size=(n, 8)).astype("float32")
    got = np.full((n, 8), -7.0, dtype="float32")
    sf.build(IRModule({"main": func}), lower=False)["main"](a, got)
    np.testing.assert_array_equal(got, a * 2 + 1)
    np.testing.assert_array_equal(_interpret(func, a), a * 2 + 1)
