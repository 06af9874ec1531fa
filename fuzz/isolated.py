"""Run tests in a separate process with a time limit, to reproduce and minimize crashes and hangs.

A test that kills its process (a segfault in JIT code, an abort in LLVM) or never returns cannot be run by
`check` in the process that wants the answer. `IsolatedRunner` keeps one spawned child that runs tests one
at a time; a test that kills the child, or outlives the time limit (the child is then killed), is reported
as a `Verdict` with the child's exit code and the stage it was in, and the next test gets a fresh child.
A child is reused while tests return normally, so a minimization pays the start-up (importing shapeflow and
llvmlite, about a second) only after the candidates that reproduce the crash.

`minimize_lost` delta-debugs a crash or timeout found by the campaign: a candidate is kept when it ends
the same way (a crash with the same exit code in the same stage, or a timeout in the same stage).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass

from shapeflow.fuzz.oracles import Outcome, TestCase, check


@dataclass(frozen=True)
class Verdict:
    """How an isolated run ended: "crash" (exitcode), "timeout", or "done" (outcome)."""

    kind: str
    stage: int = 0
    exitcode: int | None = None
    outcome: Outcome | None = None

    def same_symptom(self, other: Verdict) -> bool:
        if self.kind != other.kind or self.kind == "done":
            return False
        return self.stage == other.stage and (self.kind != "crash" or self.exitcode == other.exitcode)


def _serve(tasks, results, stage_cell, compile_oracle, tvm_oracle, preload) -> None:
    import importlib  # noqa: PLC0415

    for name in preload:  # modules that register passes of their own (plugins, test-only passes)
        importlib.import_module(name)
    while True:
        text = tasks.get()
        if text is None:
            return
        outcome = check(TestCase.from_json(text), None, stage_cell, compile_oracle, tvm_oracle)
        stage_cell.value = 0
        results.put(outcome.__dict__)


class IsolatedRunner:
    """One child process at a time; `run(test)` returns a Verdict. Use as a context manager."""

    def __init__(
        self,
        timeout: float = 10.0,
        compile_oracle: bool | None = True,
        tvm_oracle: bool = False,
        preload: tuple[str, ...] = (),
    ):
        self.timeout = timeout
        self.options = (compile_oracle, tvm_oracle, tuple(preload))
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None

    def _start(self) -> None:
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._stage = self._ctx.Value("i", 0)
        self._proc = self._ctx.Process(
            target=_serve, args=(self._tasks, self._results, self._stage, *self.options), daemon=True
        )
        self._proc.start()

    def run(self, test: TestCase) -> Verdict:
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._stage.value = 0
        self._tasks.put(test.to_json())
        # The limit starts once the child took the test; a fresh child first imports shapeflow.
        deadline = time.monotonic() + self.timeout + 30.0
        started = False
        while True:
            try:
                return Verdict("done", outcome=Outcome(**self._results.get(timeout=0.05)))
            except queue.Empty:
                pass
            if not started and self._stage.value:
                started, deadline = True, time.monotonic() + self.timeout
            if not self._proc.is_alive():
                code, stage = self._proc.exitcode, self._stage.value
                self._proc = None
                return Verdict("crash", stage, code)
            if time.monotonic() > deadline:
                stage = self._stage.value
                self.close()
                return Verdict("timeout", stage)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
            self._proc = None

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def minimize_lost(
    test: TestCase,
    symptom: str,
    stage: int,
    exitcode: int | None,
    timeout: float,
    seconds: float,
    compile_oracle: bool | None = None,
    tvm_oracle: bool = False,
    preload: tuple[str, ...] = (),
) -> tuple[TestCase | None, str]:
    """A smaller test that crashes (or times out) like `test` did in the campaign, run isolated; returns
    (the minimized test or None, a note saying what happened)."""
    from shapeflow.fuzz.minimize import minimize  # noqa: PLC0415

    target = Verdict(symptom, stage, exitcode)
    with IsolatedRunner(timeout, compile_oracle, tvm_oracle, preload) as runner:
        first = runner.run(test)
        if not first.same_symptom(target):
            return None, f"does not reproduce in isolation (ended as {first.kind}, stage {first.stage})"
        checks = [0]

        def still_fails(candidate: TestCase) -> bool:
            checks[0] += 1
            return runner.run(candidate).same_symptom(target)

        best = minimize(test, still_fails, seconds=seconds)
    return best, f"minimized in isolation ({checks[0]} candidates run)"


__all__ = ["Verdict", "IsolatedRunner", "minimize_lost"]
