"""A campaign worker: a separate (spawned) process that builds tests from tasks and runs the oracles.

Before running a test the worker writes it to `workers/w<k>.json`, and it keeps the current stage in a
shared integer, so that when it dies (a crash) or hangs (killed at the deadline) the campaign knows what it
was running and where. Bugs found in-process are minimized right here, where the bug reproduces cheaply.
"""

from __future__ import annotations

import os
import queue
import random
import time
import traceback
from pathlib import Path

from shapeflow.errors import Error
from shapeflow.fuzz.findings import atomic_write, bug_key
from shapeflow.fuzz.generate import generate_prim_func
from shapeflow.fuzz.mutate_ir import mutate
from shapeflow.fuzz.mutate_passes import default_sequence, mutate_sequence
from shapeflow.fuzz.mutate_schedule import apply_schedule, random_schedule
from shapeflow.fuzz.oracles import MINIMIZING_STAGE, TestCase, check

MODES = ("full", "ir-only", "passes-only", "generate-only", "graph")
FRESH_SHARE = 0.35  # of the full fuzzer's tests that start from a freshly generated program (campaign.py)
TEXT_SHARE = 0.2  # of IR mutants whose printed text is mutated too (mutate_text.py: parser, verifier)
SCHEDULE_SHARE = 0.3  # of IR mutations that add schedule-primitive steps (mutate_schedule.py) instead
# How many IR mutations a mutant stacks (AFL's havoc): mostly a few, sometimes many, so that one test can
# step further from its parent than a single edit while most mutants stay close enough to stay valid.
STACKING = (1, 1, 2, 2, 3, 4, 6, 8)


def build_test(task: dict) -> TestCase:
    """The test a task asks for: a stored test as is, or a mutant of a parent, or a fresh program."""
    from shapeflow.ir.text import to_text  # noqa: PLC0415

    if task["kind"] == "run":
        return TestCase.from_json(task["test"])
    rng = random.Random(task["test_seed"])
    mode = task["mode"]
    if mode == "graph":
        return build_graph_test(task, rng)
    if mode == "generate-only" or task.get("parent") is None:
        return _fresh_test(task, rng, mutate_too=mode == "full")
    parent = TestCase.from_json(task["parent"])
    # The campaign's operator schedule names the kind of mutation (energy.py); without it, a fixed mix.
    what = task.get("op") or {"ir-only": "ir", "passes-only": "passes"}.get(mode)
    what = what or rng.choice(["ir", "passes", "both", "ir"])
    ir, flags, passes, origin, schedule = parent.ir, set(parent.flags), parent.passes, [], parent.schedule
    if what in ("ir", "both", "schedule"):
        func = parent.func()
        if what == "schedule":
            schedule_now = True
        elif what == "ir" and "op" in task:
            schedule_now = False  # the operator schedule draws "schedule" itself
        else:
            schedule_now = rng.random() < SCHEDULE_SHARE
        added = random_schedule(func, rng, schedule, rng.randint(1, 3)) if schedule_now else []
        if added:
            schedule = [*schedule, *added]
            origin.append("schedule:" + ",".join(step["p"] for step in added))
        else:
            func = _scheduled(func, schedule)  # the parent's schedule becomes part of the mutant's IR
            schedule = []
            for _ in range(rng.choice(STACKING)):
                found = mutate(func, rng)
                if found is not None:
                    func, flags = found.func, flags | found.flags
                    origin.append(found.name)
            ir = to_text(func)
            if rng.random() < TEXT_SHARE:
                ir, origin = _text_mutant(ir, rng, origin)
    if what in ("passes", "both"):
        for _ in range(rng.choice((1, 1, 2, 3))):
            passes = mutate_sequence(passes, rng, task.get("others"))
        origin.append("passes")
    return TestCase(ir, passes, task["test_seed"], sorted(flags), "+".join(origin), schedule=schedule)


def _fresh_test(task: dict, rng: random.Random, mutate_too: bool) -> TestCase:
    """A generated program with the default pass sequence (mutated half of the time); the full fuzzer
    also mutates half of them at once (an IR mutation or schedule steps)."""
    from shapeflow.ir.text import to_text  # noqa: PLC0415

    seq = default_sequence()
    if rng.randint(0, 1):
        seq = mutate_sequence(seq, rng)
    func, flags, origin, schedule = generate_prim_func(rng), set(), ["generated"], []
    if mutate_too and rng.randint(0, 1):
        if rng.random() < SCHEDULE_SHARE:
            schedule = random_schedule(func, rng, (), rng.randint(1, 3))
            origin += ["schedule"] if schedule else []
        else:
            found = mutate(func, rng)
            if found is not None:
                func, flags = found.func, set(found.flags)
                origin.append(found.name)
    return TestCase(to_text(func), seq, task["test_seed"], sorted(flags), "+".join(origin), schedule=schedule)


def _scheduled(func, schedule: list):
    """`func` with `schedule` applied, or `func` itself when a step no longer applies."""
    if not schedule:
        return func
    try:
        return apply_schedule(func, schedule)
    except Error:
        return func


def build_graph_test(task: dict, rng: random.Random) -> TestCase:
    """A graph test: a mutant of the parent's recipe and/or graph pass sequence, or a fresh recipe."""
    from shapeflow.fuzz.graph_gen import build_module, generate_recipe  # noqa: PLC0415
    from shapeflow.fuzz.graph_mutate import mutate_recipe  # noqa: PLC0415
    from shapeflow.fuzz.mutate_passes import default_graph_sequence  # noqa: PLC0415

    parent = TestCase.from_json(task["parent"]) if task.get("parent") else None
    if parent is None or parent.kind != "graph" or parent.recipe is None or rng.random() < 0.1:
        recipe, origin = generate_recipe(rng), ["generated"]
        passes = default_graph_sequence(rng.choice([0, 1, 2]))
    else:
        recipe, passes, origin = parent.recipe, parent.passes, []
        what = rng.choice(["ir", "ir", "passes", "both"])
        if what in ("ir", "both"):
            for _ in range(rng.randint(1, 3)):
                found = mutate_recipe(recipe, rng)
                if found is not None:
                    recipe = found[0]
                    origin.append(found[1])
        if what in ("passes", "both"):
            others = [p for p in task.get("others") or [] if p and str(p[0][0]).startswith("graph.")]
            passes = mutate_sequence(passes, rng, others, level="graph")
            origin.append("passes")
    try:
        text = build_module(recipe).script()
    except Error:
        text = "# a recipe that does not build (invalid)\n"
    else:
        if parent is not None and rng.random() < TEXT_SHARE:
            text, origin = _text_mutant(text, rng, origin)
    return TestCase(text, passes, task["test_seed"], [], "+".join(origin), "graph", recipe)


def _text_mutant(text: str, rng: random.Random, origin: list) -> tuple[str, list]:
    from shapeflow.fuzz.mutate_text import mutate_text  # noqa: PLC0415

    found = mutate_text(text, rng)
    if found is None:
        return text, origin
    return found[0], [*origin, f"text:{found[1]}"]


def _minimize(test: TestCase, outcome, seconds: float) -> TestCase | None:
    from shapeflow.fuzz.minimize import minimize  # noqa: PLC0415

    key = bug_key(outcome)

    tvm = outcome.symptom.startswith("tvm")

    def still_fails(candidate: TestCase) -> bool:
        found = check(candidate, compile_oracle=outcome.stage.startswith("compiled"), tvm_oracle=tvm)
        return found.is_bug and bug_key(found) == key

    try:
        if test.kind == "graph":
            from shapeflow.fuzz.graph_minimize import minimize_graph  # noqa: PLC0415

            return minimize_graph(test, still_fails, seconds=seconds)
        return minimize(test, still_fails, seconds=seconds)
    except Exception:
        return None


def _minimize_lost(task: dict) -> dict:
    """Minimize a crash or timeout of the campaign with every candidate run isolated (isolated.py)."""
    from shapeflow.fuzz.isolated import minimize_lost  # noqa: PLC0415

    test = TestCase.from_json(task["test"])
    try:
        best, note = minimize_lost(
            test,
            task["symptom"],
            task["stage"],
            task.get("exitcode"),
            task["timeout"],
            task["seconds"],
            compile_oracle=task.get("compile"),
            tvm_oracle=bool(task.get("tvm")),
            preload=tuple(task.get("preload", ())),
        )
    except Exception as exc:  # noqa: BLE001  the finding stays as recorded; say why
        best, note = None, f"minimization failed: {type(exc).__name__}: {exc}"
    return {"minimized_for": task["key"], "minimized": best.to_json() if best else None, "note": note}


LATER_LABELS = ("roundtrip-after", "transformed", "compile")  # the stages that see the passes' output


def worker_main(wid: int, tasks, results, out_dir: str, stage_cell, options: dict) -> None:
    """The worker loop; exits on a None task or when the campaign process is gone."""
    parent_pid = os.getppid()
    tracker = None
    if options.get("measure_coverage", True):
        from shapeflow.fuzz.coverage import ArcTracker  # noqa: PLC0415

        tracker = ArcTracker()
    current = Path(out_dir) / "workers" / f"w{wid}.json"
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:
                # Nobody reads the results any more: without this the exit waits for the queue's feeder
                # thread to flush the last answer into a pipe that other orphaned workers keep open but
                # never read, and the process never ends.
                results.cancel_join_thread()
                return
            continue
        if task is None:
            return
        if task["kind"] == "minimize-lost":
            results.put({"wid": wid, **_minimize_lost(task)})
            continue
        cpu_start = time.process_time()
        try:
            test = build_test(task)
        except Exception:
            results.put({"wid": wid, "error": traceback.format_exc(limit=3)})
            continue
        atomic_write(current, test.to_json())
        if tracker is not None:
            tracker.start()
        try:
            compile_oracle, tvm_oracle = options.get("compile"), bool(options.get("tvm"))
            outcome = check(test, tracker, stage_cell, compile_oracle=compile_oracle, tvm_oracle=tvm_oracle)
        finally:
            labels = tracker.stop() if tracker is not None else {}
        stage_cell.value = 0
        minimized = None
        if outcome.is_bug and options.get("minimize", True) and not task.get("no_minimize"):
            stage_cell.value = MINIMIZING_STAGE
            found = _minimize(test, outcome, options.get("minimize_seconds", 20.0))
            minimized = found.to_json() if found is not None else None
            if found is not None and outcome.symptom.startswith("tvm"):
                again = check(found, compile_oracle=False, tvm_oracle=True)
                if again.is_bug and bug_key(again) == bug_key(outcome):
                    outcome.extra = again.extra  # the TVM reproducer of the minimized program
            stage_cell.value = 0
        arcs = set().union(*labels.values()) if labels else set()
        try:  # the test is over: before the answer, so that a campaign that stops on it finds it done
            current.unlink()
        except OSError:
            pass
        results.put(
            {
                "wid": wid,
                "test": test.to_json(),
                "outcome": outcome.__dict__,
                "arcs": sorted(arcs),
                "pass_arcs": [sorted(labels.get(label, ())) for label in outcome.pass_labels],
                "later_arcs": sorted(set().union(*(labels.get(label, ()) for label in LATER_LABELS))),
                "hit": tracker.hit_ids if tracker is not None else [],  # every arc hit, as ids
                "minimized": minimized,
                "cpu_s": time.process_time() - cpu_start,  # what the test cost this core, whatever the load
            }
        )


__all__ = ["MODES", "build_test", "worker_main"]
