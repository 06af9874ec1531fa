"""Bugs the fuzzer found in other parts of shapeflow, as minimized reproducers. A bug not yet fixed is marked
xfail(strict): when it is fixed the test passes, strict xfail fails, and the marker must be removed; fixed
ones stay here as plain regression tests."""

import pytest

from shapeflow.fuzz.oracles import TestCase, as_func, check
from shapeflow.ir import parse

ROUNDTRIP_AFTER_SIMPLIFY = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((4,), "float32"), A1: T.Buffer((1, 8), "int8"), A2: T.Buffer((1, 8, n), "int32"), B0: T.Buffer((3, n), "int64")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        with T.block('ew7'):
            v4 = T.axis.spatial(3, 0)
            v5 = T.axis.spatial(n, 0)
            T.reads(A0[0:4], A1[0, 0:8], A2[0, 0:8, 0:n])
            T.writes(B0[v4, v5])
            with T.allocate((1,), "int64", scope='local') as tmp6:
                tmp6[0] = T.Let(t3, T.int32(2), -2) * (v4 + v5)
"""  # noqa: E501

UNINITIALIZED_ALLOCATE = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((1, n, n), "float32"), B0: T.Buffer((8, 4, n), "uint8")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        with T.block('ew8'):
            v4 = T.axis.spatial(8, 0)
            v5 = T.axis.spatial(4, 0)
            v6 = T.axis.spatial(n, 0)
            T.reads(A0[0, 0:n, 0:n])
            T.writes(B0[v4, v5, v6])
            with T.allocate((1,), "uint8", scope='local') as tmp7:
                B0[v4, v5, v6] = tmp7[0]
"""


def test_simplify_output_round_trips():
    """Fixed: the simplifier inlines Let expressions (rule let_inline), so distribution cannot copy one."""
    outcome = check(TestCase(ROUNDTRIP_AFTER_SIMPLIFY, [["simplify", {}]], 87), compile_oracle=False)
    assert not outcome.is_bug, f"{outcome.symptom}: {outcome.message}"


def test_compiled_allocate_is_zero_filled_like_the_interpreter():
    """Fixed: the LLVM backend zero-fills every Allocate, the meaning the interpreter implements."""
    import shapeflow

    if not hasattr(shapeflow, "build"):
        pytest.skip("no shapeflow.build")
    assert as_func(parse(UNINITIALIZED_ALLOCATE)) is not None
    outcome = check(TestCase(UNINITIALIZED_ALLOCATE, [], 42), compile_oracle=True)
    assert not outcome.is_bug, f"{outcome.symptom}: {outcome.message}"
