"""Crashes and timeouts are reproduced and minimized with every candidate run in a separate process under
a time limit: a planted pass that kills its process (SIGSEGV) or hangs on programs holding a call to an
intrinsic is minimized to that pass alone on a smaller program that still ends the same way, and the
finding's repro.py runs the test isolated."""

import json
import random
import signal
import sys
import textwrap

import pytest

from shapeflow.fuzz.findings import record_finding, update_minimized
from shapeflow.fuzz.generate import generate_prim_func
from shapeflow.fuzz.isolated import IsolatedRunner, Verdict, minimize_lost
from shapeflow.fuzz.oracles import Outcome, TestCase
from shapeflow.fuzz.sites import sites_of
from shapeflow.fuzz.worker import _minimize_lost
from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.ir.module import IRModule
from shapeflow.ir.text import to_text
from shapeflow.passes import PassContext, get_pass

PLUGIN = """
import ctypes
import dataclasses
import time

from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.passes import PASSES, PrimFuncPass, register_pass


@dataclasses.dataclass(frozen=True)
class CrashOnCall(PrimFuncPass):
    name = "test-crash-on-call"

    def transform_function(self, func, ctx):
        if collect(func.body, E.Call):
            ctypes.string_at(0)  # SIGSEGV, as a crash in JIT code would
        return func


@dataclasses.dataclass(frozen=True)
class HangOnCall(PrimFuncPass):
    name = "test-hang-on-call"

    def transform_function(self, func, ctx):
        if collect(func.body, E.Call):
            time.sleep(3600)
        return func


for cls in (CrashOnCall, HangOnCall):
    if cls.name not in PASSES:
        register_pass(cls)
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "planted_lost_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned children get the parent's sys.path
    return ("planted_lost_plugin",)


def _simplified(func):
    return PassContext().run_pass(get_pass("simplify"), IRModule({"main": func}))["main"]


def _test_with_call(planted: str) -> TestCase:
    for seed in range(500):
        func = generate_prim_func(random.Random(seed))
        if len(sites_of(func)) > 30 and collect(_simplified(func).body, E.Call):
            passes = [["simplify", {}], [planted, {}], ["remove-no-op", {}]]
            return TestCase(to_text(func), passes, seed)
    raise AssertionError("no generated program with a call")


def test_verdicts_compare_kind_stage_and_exit_code():
    crash = Verdict("crash", 4, -signal.SIGSEGV)
    assert crash.same_symptom(Verdict("crash", 4, -signal.SIGSEGV))
    assert not crash.same_symptom(Verdict("crash", 4, -signal.SIGABRT))
    assert not crash.same_symptom(Verdict("crash", 6, -signal.SIGSEGV))
    assert not crash.same_symptom(Verdict("timeout", 4))
    assert Verdict("timeout", 4).same_symptom(Verdict("timeout", 4))
    assert not Verdict("done").same_symptom(Verdict("done"))


def test_isolated_runner_survives_crashes_and_hangs(plugin):
    crash, hang = _test_with_call("test-crash-on-call"), _test_with_call("test-hang-on-call")
    innocent = TestCase(crash.ir, [["simplify", {}]], crash.seed)
    with IsolatedRunner(timeout=3.0, compile_oracle=False, preload=plugin) as runner:
        assert runner.run(crash) == Verdict("crash", 4, -signal.SIGSEGV)
        assert runner.run(hang).kind == "timeout" and runner.run(hang).stage == 4
        done = runner.run(innocent)  # a fresh child after each lost one
        assert done.kind == "done" and done.outcome.status == "ok"


@pytest.mark.slow
def test_planted_crash_is_minimized_in_isolation(plugin, tmp_path):
    test = _test_with_call("test-crash-on-call")
    small, note = minimize_lost(test, "crash", 4, -signal.SIGSEGV, 10.0, 90.0, False, preload=plugin)
    assert small is not None, note
    assert small.passes == [["test-crash-on-call", {}]]  # the innocent passes are gone
    assert len(sites_of(small.func())) < len(sites_of(test.func()))
    assert collect(small.func().body, E.Call)  # what the crash needs stays
    with IsolatedRunner(timeout=10.0, compile_oracle=False, preload=plugin) as runner:
        assert runner.run(small).same_symptom(Verdict("crash", 4, -signal.SIGSEGV))

    outcome = Outcome("bug", "crash", "stage 4", "worker died with exit code -11")
    key, _ = record_finding(tmp_path, test, outcome, 0)
    update_minimized(tmp_path, key, small, note)
    folder = tmp_path / "findings" / key
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["minimized"] and "isolation" in meta["minimize_note"]
    assert json.loads((folder / "minimized.json").read_text())["passes"] == small.passes
    repro = (folder / "repro.py").read_text()
    assert "IsolatedRunner" in repro  # a crash would take an in-process reproducer down with it
    compile(repro, "repro.py", "exec")


@pytest.mark.slow
def test_planted_timeout_is_minimized_by_a_worker_task(plugin):
    test = _test_with_call("test-hang-on-call")
    task = {
        "kind": "minimize-lost",
        "test": test.to_json(),
        "key": "k",
        "symptom": "timeout",
        "stage": 4,
        "exitcode": None,
        "timeout": 2.0,
        "seconds": 40.0,
        "compile": False,
        "preload": list(plugin),
    }
    answer = _minimize_lost(task)
    assert answer["minimized_for"] == "k" and answer["minimized"], answer["note"]
    small = TestCase.from_json(answer["minimized"])
    assert small.passes == [["test-hang-on-call", {}]]


def test_a_crash_that_does_not_reproduce_is_left_unminimized(plugin):
    test = _test_with_call("test-crash-on-call")
    innocent = TestCase(test.ir, [["simplify", {}]], test.seed)
    small, note = minimize_lost(innocent, "crash", 4, -signal.SIGSEGV, 5.0, 10.0, False, preload=plugin)
    assert small is None and "does not reproduce" in note


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.slow
def test_a_campaign_worker_process_minimizes_a_lost_test(plugin, tmp_path):
    """The worker that gets the task is itself a child of the campaign: it must be allowed children."""
    import multiprocessing  # noqa: PLC0415

    from shapeflow.fuzz.campaign import CampaignOptions, _Worker  # noqa: PLC0415

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    (tmp_path / "workers").mkdir()
    worker = _Worker(ctx, 0, CampaignOptions(tmp_path, compile=False), results)
    test = _test_with_call("test-crash-on-call")
    task = {
        "kind": "minimize-lost",
        "test": test.to_json(),
        "key": "k",
        "symptom": "crash",
        "stage": 4,
        "exitcode": -signal.SIGSEGV,
        "timeout": 10.0,
        "seconds": 60.0,
        "compile": False,
        "preload": list(plugin),
    }
    worker.tasks.put(task)
    try:
        answer = results.get(timeout=600)
    finally:
        worker.tasks.put(None)
        worker.proc.join(10)
    assert answer["minimized_for"] == "k" and answer["minimized"], answer["note"]
    assert TestCase.from_json(answer["minimized"]).passes == [["test-crash-on-call", {}]]
