"""A difference after the passes on a program whose reference run overflowed a signed integer is no bug:
the simplifier assumes signed 32/64-bit arithmetic does not wrap. Unsigned wrap is defined and stays
checked. (Found by the campaign: a loop extent `(n + INT64_MAX) // 4 * 4` wraps to an empty loop in the
reference and is simplified to a running one.)"""

import numpy as np

from shapeflow.fuzz.oracles import Outcome, _undefined
from shapeflow.ir.text import parse

PROGRAM = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((1,), "{dtype}"), B: T.Buffer((1,), "{dtype}")):
    T.func_attr({{'global_symbol': 'main'}})
    B[0] = A[0] + T.{dtype}({big})
"""


def _func(dtype: str, big: int):
    mod = parse(PROGRAM.format(dtype=dtype, big=big))
    return next(iter(mod.functions.values())) if hasattr(mod, "functions") else mod


def test_signed_overflow_in_the_reference_is_filtered():
    func = _func("int64", 2**63 - 1)
    out = Outcome("ok")
    assert _undefined(func, [np.array([5], "int64"), np.zeros(1, "int64")], out)
    assert "int64 overflow" in out.extra["filtered"]


def test_no_overflow_and_unsigned_wrap_are_not_filtered():
    out = Outcome("ok")
    assert not _undefined(_func("int64", 7), [np.array([5], "int64"), np.zeros(1, "int64")], out)
    assert not _undefined(_func("uint8", 255), [np.array([5], "uint8"), np.zeros(1, "uint8")], out)
    assert "filtered" not in out.extra
