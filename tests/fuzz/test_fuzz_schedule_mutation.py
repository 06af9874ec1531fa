"""The schedule-primitive mutator: random legal primitives on the blocks of a test's PrimFunc, applied by
the oracle, which compares the scheduled program with the reference interpreter on the unscheduled one.
A step that does not apply makes the test invalid (not a bug); a planted primitive that changes the
meaning is reported as a wrong result and minimized to that step; one that leaves ill-formed IR is a
verify-after-schedule bug."""

import random

import pytest

from shapeflow.errors import ScheduleError
from shapeflow.fuzz import mutate_schedule
from shapeflow.fuzz.minimize import minimize
from shapeflow.fuzz.mutate_passes import default_sequence
from shapeflow.fuzz.mutate_schedule import apply_schedule, random_schedule
from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.fuzz.seeds import SEED_OPERATORS
from shapeflow.fuzz.worker import build_test
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.functor import Mutator
from shapeflow.ir.text import to_text
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule

INT64 = DataType("int64")
KERNELS = ("matmul", "softmax", "row_sum_of_exp", "conv1d", "elementwise")


@pytest.mark.parametrize("name", KERNELS)
def test_random_schedules_apply_verify_and_keep_meaning(name):
    func = SEED_OPERATORS[name]()
    rng = random.Random(7)
    applied = 0
    for k in range(6):
        steps = random_schedule(func, rng, steps=3)
        applied += len(steps)
        scheduled = apply_schedule(func, steps)
        if steps:
            assert scheduled is not func
        verify(scheduled)
        outcome = check(TestCase(to_text(func), [], k, schedule=steps), compile_oracle=False)
        assert outcome.status == "ok", (steps, outcome.message)
    assert applied >= 6  # the primitives do apply to te kernels


def test_steps_append_to_a_prior_schedule():
    func = SEED_OPERATORS["matmul"]()
    rng = random.Random(3)
    first = random_schedule(func, rng, steps=2)
    more = random_schedule(func, rng, first, steps=2)
    assert first and more
    verify(apply_schedule(func, first + more))


def test_a_step_that_does_not_apply_makes_the_test_invalid():
    func = SEED_OPERATORS["matmul"]()
    stale = [{"p": "split", "block": "no_such_block", "loop": 0, "factors": [None, 2], "tail": "predicate"}]
    with pytest.raises(ScheduleError):
        apply_schedule(func, stale)
    outcome = check(TestCase(to_text(func), [], 1, schedule=stale), compile_oracle=False)
    assert outcome.status == "invalid"


def _shorten_first_loop(sch, block, loops, step):
    """A wrong primitive: the outermost loop loses its last iteration."""
    for_, _ = sch.find_loop(loops[0])
    shorter = S.For(
        for_.loop_var, for_.min, E.Sub(for_.extent, E.IntImm(for_.extent.dtype, 1)), for_.kind, for_.body
    )
    sch.commit({id(for_): shorter})


def _drop_block_reads(sch, block, loops, step):
    """An ill-formed primitive: a load of a buffer that is nowhere allocated."""
    from shapeflow.ir.tir.buffer import Buffer  # noqa: PLC0415

    ghost = Buffer("ghost", (E.IntImm(INT64, 4),), DataType("float32"))

    class _Ghost(Mutator):
        def visit_BufferStore(self, op):
            return S.BufferStore(
                op.buffer, E.BufferLoad(ghost, (E.IntImm(op.indices[0].dtype, 0),)), op.indices
            )

    sch.commit_func(sch.func.with_body(_Ghost().visit(sch.func.body)))


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setitem(mutate_schedule.APPLIERS, "test-shorten", _shorten_first_loop)
    monkeypatch.setitem(mutate_schedule.APPLIERS, "test-ghost", _drop_block_reads)


def test_a_planted_wrong_primitive_is_found_and_minimized(planted):
    func = SEED_OPERATORS["matmul"]()
    rng = random.Random(11)
    innocent = random_schedule(func, rng, steps=3)
    assert innocent
    steps = innocent + [{"p": "test-shorten", "block": "C"}]
    test = TestCase(to_text(func), default_sequence(), 5, schedule=steps)
    outcome = check(test, compile_oracle=False)
    assert outcome.symptom == "wrong-result" and outcome.stage == "interpret scheduled", outcome.message

    def still_fails(candidate):
        again = check(candidate, compile_oracle=False)
        return again.symptom == "wrong-result" and again.stage == outcome.stage

    small = minimize(test, still_fails, budget=200, seconds=120)
    assert small.passes == [] and small.schedule == [{"p": "test-shorten", "block": "C"}]


def test_a_planted_ill_formed_primitive_is_a_verify_after_schedule_bug(planted):
    func = SEED_OPERATORS["elementwise"]()
    test = TestCase(to_text(func), [], 2, schedule=[{"p": "test-ghost", "block": "C"}])
    outcome = check(test, compile_oracle=False)
    assert outcome.symptom == "verify-after-schedule" and "ghost" in outcome.message


def test_the_schedule_operator_builds_scheduled_mutants():
    func = SEED_OPERATORS["softmax"]()
    parent = TestCase(to_text(func), default_sequence(), 1)
    made = 0
    for seed in range(10):
        task = {
            "kind": "mutate",
            "mode": "full",
            "op": "schedule",
            "test_seed": seed,
            "parent": parent.to_json(),
        }
        test = build_test(task)
        if test.schedule:
            made += 1
            assert test.ir == parent.ir and "schedule:" in test.origin  # the steps stay apart from the IR
            Schedule(func)  # the function is schedulable at all
    assert made >= 5
