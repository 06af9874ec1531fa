"""A planted miscompilation in a test-only pass is found by the wrong-result oracle and minimized to a small
reproducer that still fails; the oracles themselves accept correct passes."""

import dataclasses
import random

import numpy as np
import pytest

from shapeflow.fuzz.findings import bug_key, record_finding
from shapeflow.fuzz.generate import generate_prim_func
from shapeflow.fuzz.minimize import minimize
from shapeflow.fuzz.oracles import TestCase, check, compare_arrays
from shapeflow.fuzz.sites import sites_of
from shapeflow.ir import expr as E
from shapeflow.ir.functor import Mutator
from shapeflow.ir.text import to_text
from shapeflow.passes import PASSES, PrimFuncPass, register_pass


@dataclasses.dataclass(frozen=True)
class SwapSubOperands(PrimFuncPass):
    """Miscompiles on purpose: `a - b` becomes `b - a` for float operands."""

    name = "test-swap-sub"

    def transform_function(self, func, ctx):
        class _Swap(Mutator):
            def visit_Sub(self, node):
                node = self.generic_visit(node)
                return E.Sub(node.b, node.a) if node.dtype.is_float else node

        body = _Swap().visit(func.body)
        return func if body is func.body else func.with_body(body)


@pytest.fixture
def planted_pass():
    register_pass(SwapSubOperands)
    yield "test-swap-sub"
    del PASSES["test-swap-sub"]


def _with_float_sub(seed_range):
    for seed in seed_range:
        func = generate_prim_func(random.Random(seed))
        text = to_text(func)
        test = TestCase(text, [["simplify", {}], ["test-swap-sub", {}], ["remove-no-op", {}]], seed)
        yield test


def test_planted_wrong_result_is_found_and_minimized(planted_pass, tmp_path):
    found = None
    for test in _with_float_sub(range(200)):
        outcome = check(test, compile_oracle=False)
        if outcome.is_bug:
            found = (test, outcome)
            break
    assert found is not None, "the wrong-result oracle missed the planted bug"
    test, outcome = found
    assert outcome.symptom == "wrong-result"
    key = bug_key(outcome)

    def still_fails(candidate):
        again = check(candidate, compile_oracle=False)
        return again.is_bug and bug_key(again) == key

    small = minimize(test, still_fails, budget=600, seconds=60)
    assert still_fails(small)
    assert small.passes == [["test-swap-sub", {}]]  # the innocent passes are gone
    before, after = len(sites_of(test.func())), len(sites_of(small.func()))
    assert after < before and after <= 40, (before, after)

    bug_id, new = record_finding(tmp_path, test, outcome, 0, small)
    folder = tmp_path / "findings" / bug_id
    assert new and (folder / "repro.py").exists() and (folder / "metadata.json").exists()
    assert "test-swap-sub" in (folder / "repro.py").read_text()
    assert record_finding(tmp_path, test, outcome, 0, small) == (bug_id, False)  # deduplicated


def test_correct_passes_are_not_reported(planted_pass):
    for test in list(_with_float_sub(range(15))):
        honest = TestCase(test.ir, [["simplify", {}], ["remove-no-op", {}]], test.seed)
        outcome = check(honest, compile_oracle=False)
        assert outcome.status in ("ok", "invalid") or outcome.symptom != "wrong-result", outcome.message


def test_compare_arrays_is_nan_aware_and_exact_for_ints():
    a = np.array([1.0, np.nan, np.inf], "float32")
    assert compare_arrays([a], [a.copy()]) == ""
    assert compare_arrays([a], [np.array([1.0, 0.0, np.inf], "float32")])
    assert compare_arrays([a], [np.array([1.00001, np.nan, np.inf], "float32")]) == ""
    assert compare_arrays([np.array([3], "int32")], [np.array([4], "int32")])
