"""full/zeros/ones/arange with symbolic extents, tril/triu, cumsum: inference and legalization vs numpy."""

import pytest
from test_legalize_helpers import check, random_array, sym, tt

from shapeflow.ir.graph.ops import infer_call_type, make_call
from shapeflow.ir.graph.shape import evaluate

SIZES = [1, 5, 8]


def test_creation_symbolic():
    n, m = sym("n", "m")
    for size in SIZES:
        env = {n: size, m: 3}
        check("full", [], [], env, shape=(n, m), fill_value=2.5)
        check("zeros", [], [], env, shape=(m, n), dtype="int32")
        check("ones", [], [], env, shape=(n,))
        check("arange", [], [], env, end=n)
        check("arange", [], [], env, start=n, end=1, step=-2, dtype="float32")
        check("arange", [], [], env, start=2, end=n * 3, step=3, dtype="int32")


def test_arange_extent_is_symbolic():
    (n,) = sym("n")
    out = infer_call_type(make_call("arange", [], {"start": 1, "end": n, "step": 2}), [])
    assert [evaluate(out.shape[0], {n: v}) for v in (0, 1, 2, 6, 7)] == [0, 0, 1, 3, 3]


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_tri(name):
    n, m = sym("n", "m")
    for size in SIZES:
        x = random_array((2, size, size + 1), "float32")
        for k in (0, 1, -2):
            check(name, [tt((2, n, m))], [x], {n: size, m: size + 1}, k=k)


def test_cumsum():
    (n,) = sym("n")
    for size in SIZES:
        x = random_array((size, 4), "int32", -5, 5)
        for axis in (0, 1, -1):
            for exclusive in (False, True):
                for reverse in (False, True):
                    check(
                        "cumsum",
                        [tt((n, 4), "int32")],
                        [x],
                        {n: size},
                        axis=axis,
                        exclusive=exclusive,
                        reverse=reverse,
                    )
