"""Helpers shared by the schedule-primitive fuzzer regressions (test_fuzz_schedule_bugs*.py): parse a
minimized PrimFunc, check a scheduled function the way the fuzzer's oracle did (it verifies, print -> parse
round-trips it, and the reference interpreter gives the same values as on the original), and ask the
oracle itself for its verdict. A plain module rather than a conftest fixture so the tests call the helpers
as before; pytest puts this folder on sys.path when it imports the test files beside it (tests/ folders are
not packages, and pytest's default "prepend" import mode inserts a test file's folder).
"""

import numpy as np

from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.ir import parse, structural_equal
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.module import IRModule
from shapeflow.ir.text import to_text
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.verify import verify

HEADER = "# shapeflow.ir v1\n@T.prim_func\n"


def _func(body: str):
    obj = parse(HEADER + body)
    return obj["main"] if isinstance(obj, IRModule) else obj


def _arguments(func, dims: dict, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for buf in func.params:  # the functions here take buffers only
        shape = tuple(int(dims[d.name]) if hasattr(d, "name") else int(d.value) for d in buf.shape)
        dtype = np.dtype(str(buf.dtype))
        if dtype.kind == "f":
            out.append(rng.standard_normal(shape).astype(dtype))
        else:
            out.append(rng.integers(-5, 6, shape).astype(dtype))
    return out


def _check_well_formed_and_same(original, scheduled, dims_list) -> None:
    verify(scheduled)
    back = parse(to_text(scheduled))
    back = back["main"] if isinstance(back, IRModule) else back
    assert structural_equal(back, scheduled), "print -> parse is not structurally equal"
    for k, dims in enumerate(dims_list):
        expected = _arguments(original, dims, k)
        got = [a.copy() for a in expected]
        run(original, *expected)
        run(scheduled, *got)
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(g, e)


def _oracle_ok(body: str, steps: list) -> None:
    """The fuzzer's own verdict on the minimized test: it runs (status ok), no bug and not refused."""
    outcome = check(TestCase(ir=HEADER + body, passes=[], seed=0, schedule=steps), compile_oracle=True)
    assert outcome.status == "ok", (outcome.symptom, outcome.stage, outcome.message)


def _region_vars(block) -> set[str]:
    """The variables the region bounds of `block` name."""
    ranges = [(x.min, x.extent) for r in (*block.reads, *block.writes) for x in r.region]
    return {v.name for v in collect(ranges, Var)}
