"""The verifier refuses a "var_bounds" attribute that is not {name: (int, int)}, naming the variable.

A fuzzer text mutation made a bound 0.5: consumers disagreed on it (the input chooser truncated it to 0,
below the declared range), so it is an invalid function, not a meaning to guess."""

import numpy as np
import pytest

from shapeflow.errors import VerifyError
from shapeflow.ir import parse
from shapeflow.ir.tir.verify import verify

FUNC = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n, 8), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': BOUNDS})
    for i in T.serial(0, n):
        A[i, 0] = T.float32(1.0)
"""


@pytest.mark.parametrize("bounds", ["{'n': (0.5, 12)}", "{'n': (1, 12.0)}", "{'n': (1, 2, 3)}", "{'n': 4}"])
def test_non_integer_var_bounds_are_refused_naming_the_variable(bounds):
    with pytest.raises(VerifyError, match="var_bounds of 'n' must be a pair of ints"):
        verify(parse(FUNC.replace("BOUNDS", bounds)))


@pytest.mark.parametrize("bounds", ["{'n': (0, 12)}", "{'n': (1, 4096)}", "{}"])
def test_integer_var_bounds_are_accepted(bounds):
    verify(parse(FUNC.replace("BOUNDS", bounds)))


def test_numpy_integer_bounds_are_accepted():
    func = parse(FUNC.replace("BOUNDS", "{}"))
    func = func.with_attr("var_bounds", {"n": (np.int64(1), np.int64(8))})
    verify(func)
