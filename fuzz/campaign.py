"""The campaign runner: spawned worker processes, coverage-guided corpus, findings, resumable state.

Layout of the output folder (all text; every file written by an atomic rename or appended line by line):
  corpus/c000123.json   tests that reached new arcs (and the seeds)
  findings/<id>/        one folder per unique bug (see findings.py)
  arcs.log              the merged coverage map, one arc per line
  coverage.csv          elapsed_s, tests, valid, arcs, corpus, bugs (a row every second)
  status.json           the latest counters; `--resume` continues from them
  workers/w<k>.json     the test a worker is running (re-run first after a resume)
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shapeflow.errors import UnsupportedError
from shapeflow.fuzz.coverage import CoverageMap
from shapeflow.fuzz.energy import OperatorSchedule, PowerSchedule
from shapeflow.fuzz.findings import atomic_write, load_findings, record_finding, update_minimized
from shapeflow.fuzz.mutate_passes import default_sequence, drop_useless
from shapeflow.fuzz.oracles import MINIMIZING_STAGE, RUN_STAGES, TVM_STAGE, Outcome, TestCase
from shapeflow.fuzz.worker import MODES, worker_main


@dataclass
class CampaignOptions:
    out: Path
    seconds: float | None = None
    iterations: int | None = None
    # A budget of worker CPU seconds (the sum over workers): equal work on a machine whose load varies.
    cpu_seconds: float | None = None
    workers: int = 2
    seed: int = 0
    resume: bool = False
    coverage: bool = True  # coverage feedback (coverage is always measured for the report)
    mode: str = "full"  # one of worker.MODES
    test_timeout: float = 10.0
    minimize: bool = True
    minimize_seconds: float = 20.0
    compile: bool | None = None  # the compiled-kernel oracle: None = a quarter of the tests
    status_stream: object = sys.stderr
    generated_seeds: int = 12
    tvm: bool = False  # the differential oracle against apache-tvm (tvm_oracle.py)


STARTUP_SECONDS = 60.0  # allowed to a fresh worker process before its first answer
HARD_FACTOR = 10.0  # a task that used little CPU is stopped this many of its limits past the deadline


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (Linux /proc), None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Worker:
    def __init__(self, ctx, wid: int, options: CampaignOptions, results):
        self.wid = wid
        self.tasks = ctx.Queue()
        self.stage = ctx.Value("i", 0)
        worker_options = {
            "measure_coverage": True,
            "compile": options.compile,
            "minimize": options.minimize,
            "minimize_seconds": options.minimize_seconds,
            "tvm": options.tvm,
        }
        self.proc = ctx.Process(
            target=worker_main,
            args=(wid, self.tasks, results, str(options.out), self.stage, worker_options),
            # Not daemonic: a worker minimizes crashes and hangs in a child process of its own
            # (isolated.py), which daemonic processes may not start. Workers still exit with the
            # campaign: it stops them at the end, and they leave when their parent is gone.
            daemon=False,
        )
        self.proc.start()
        self.task: dict | None = None
        self.deadline = 0.0
        self.extended = False  # the deadline was extended once for an in-process minimization
        self.answered = False  # it has answered a task (so it is done starting up)
        self.dispatched = self.hard_deadline = 0.0
        self.cpu_at_start: float | None = None


class Campaign:
    def __init__(self, options: CampaignOptions):
        if options.mode not in MODES:
            raise UnsupportedError(f"unknown fuzzing mode {options.mode!r} (known: {', '.join(MODES)})")
        self.o = options
        self.out = Path(options.out)
        self.rng = random.Random(options.seed)
        self.corpus: list[TestCase] = []
        self.power = PowerSchedule(random.Random(options.seed + 1), feedback=options.coverage)
        self.ops = OperatorSchedule(random.Random(options.seed + 2), options.mode, feedback=options.coverage)
        self.next_id = 0
        self.stats = {
            "tests": 0,
            "valid": 0,
            "invalid": 0,
            "bug_hits": 0,
            "crashes": 0,
            "timeouts": 0,
            "slow": 0,
            "elapsed": 0.0,
            "seed_arcs": 0,
        }
        self.bugs: set[str] = set()
        self.pending: list[dict] = []

    # -- state ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        corpus_dir = self.out / "corpus"
        if corpus_dir.exists() and any(corpus_dir.iterdir()) and not self.o.resume:
            raise UnsupportedError(f"{self.out} already holds a campaign; pass --resume to continue it")
        for sub in ("corpus", "findings", "workers"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.cmap = CoverageMap(self.out / "arcs.log")
        for path in sorted(corpus_dir.glob("c*.json")):
            try:
                self.corpus.append(TestCase.from_json(path.read_text()))
                self.power.add(1)  # what coverage said of it before the resume is not kept
                self.next_id = max(self.next_id, int(path.stem[1:]) + 1)
            except Exception:
                continue
        status = self.out / "status.json"
        if self.o.resume and status.exists():
            self.stats.update(json.loads(status.read_text()).get("stats", {}))
        self.bugs = {f["id"] for f in load_findings(self.out)}
        for path in sorted((self.out / "workers").glob("w*.json")):  # in flight when the campaign stopped
            self.pending.append({"kind": "run", "test": path.read_text()})
            path.unlink()
        if not self.corpus:
            for test in self._seed_tests():
                self.pending.append(
                    {"kind": "run", "test": test.to_json(), "seed_run": True, "seed_index": len(self.corpus)}
                )
                self._add_to_corpus(test)

    def _seed_tests(self) -> list[TestCase]:
        from shapeflow.fuzz.seeds import graph_seed_tests, seed_functions  # noqa: PLC0415

        if self.o.mode == "graph":
            return graph_seed_tests(self.rng, self.o.generated_seeds)
        return [
            TestCase(func.script(), default_sequence(), self.rng.randrange(1 << 30), [], origin)
            for origin, func in seed_functions(self.rng, self.o.generated_seeds)
        ]

    def _add_to_corpus(self, test: TestCase, gain: int = 1, cost: float = 0.0, arcs=None) -> None:
        atomic_write(self.out / "corpus" / f"c{self.next_id:06d}.json", test.to_json())
        self.next_id += 1
        self.corpus.append(test)
        self.power.add(gain, cost, arcs)

    # -- tasks ---------------------------------------------------------------------------------
    def _next_task(self) -> dict:
        if self.pending:
            return self.pending.pop(0)
        task = {"kind": "mutate", "mode": self.o.mode, "test_seed": self.rng.randrange(1 << 30)}
        if self.o.mode == "graph":
            op = None  # graph tests choose their mutation in the worker (build_graph_test)
        else:
            # The full fuzzer also draws fresh programs: the corpus alone converges on the seeds' dtypes
            # and shapes, generation keeps bringing new ones. How often is the operator schedule's call.
            op = task["op"] = self.ops.pick()
        if op != "fresh" and self.corpus:
            k = self.power.pick()
            task["parent"] = self.corpus[k].to_json()
            task["parent_index"] = k
            task["others"] = [self.rng.choice(self.corpus).passes for _ in range(2)]
        return task

    def _handle(self, msg: dict, worker: _Worker) -> None:
        if "error" in msg:
            self.stats["invalid"] += 1
            return
        self.stats["tests"] += 1
        self.stats["cpu_s"] = self.stats.get("cpu_s", 0.0) + msg.get("cpu_s", 0.0)
        test = TestCase.from_json(msg["test"])
        outcome = Outcome(**msg["outcome"])
        if outcome.extra.get("tvm"):
            key = "tvm_" + outcome.extra["tvm"].replace("-", "_")
            self.stats[key] = self.stats.get(key, 0) + 1
        new = self.cmap.count_new(msg["arcs"])
        pass_new = [self.cmap.count_new(a) for a in msg.get("pass_arcs", ())]
        later_new = self.cmap.count_new(msg.get("later_arcs", ()))
        self.cmap.merge(msg["arcs"])
        hit = self.power.observe(msg.get("hit", ()))
        if worker.task and worker.task.get("seed_run"):
            self.stats["seed_arcs"] = len(self.cmap)
            self.power.set_cost(worker.task.get("seed_index"), msg.get("cpu_s", 0.0))
            self.power.set_arcs(worker.task.get("seed_index"), hit)
        task = worker.task or {}
        self.ops.credit(task.get("op"), new, msg.get("cpu_s", 0.1))
        if outcome.status == "invalid":
            self.stats["invalid"] += 1
            self.power.credit(task.get("parent_index"), kept=False)
            return
        self.stats["valid"] += 1
        if outcome.is_bug:
            minimized = TestCase.from_json(msg["minimized"]) if msg.get("minimized") else None
            self._bug(test, outcome, minimized)
        keep = new > 0 if self.o.coverage else self.rng.random() < 0.1
        keep = keep and not task.get("seed_run") and task.get("kind") != "run"
        self.power.credit(task.get("parent_index"), kept=keep)
        if keep:
            passes = drop_useless(test.passes, pass_new, later_new) if self.o.coverage else test.passes
            cost = msg.get("cpu_s", 0.0)
            self._add_to_corpus(dataclasses.replace(test, passes=passes), gain=new, cost=cost, arcs=hit)

    def _bug(self, test: TestCase, outcome: Outcome, minimized: TestCase | None) -> tuple[str, bool]:
        self.stats["bug_hits"] += 1
        key, is_new = record_finding(self.out, test, outcome, self.o.seed, minimized)
        self.bugs.add(key)
        return key, is_new

    def _lost_bug(self, test: TestCase, outcome: Outcome, symptom: str, stage: int, code) -> None:
        """Record a crash or timeout; a new one is minimized by a worker, isolated (isolated.py)."""
        key, is_new = self._bug(test, outcome, None)
        if is_new and self.o.minimize:
            self.pending.insert(
                0,
                {
                    "kind": "minimize-lost",
                    "test": test.to_json(),
                    "key": key,
                    "symptom": symptom,
                    "stage": stage,
                    "exitcode": code,
                    "tvm": outcome.symptom.startswith("tvm"),
                    "compile": self.o.compile,
                    "timeout": 2 * self.o.test_timeout,  # the limit the campaign judged it by
                    "seconds": self._lost_budget(),
                },
            )

    def _lost_budget(self) -> float:
        # A candidate that still hangs costs a whole test timeout: give a timeout room for a few of them.
        return max(self.o.minimize_seconds, 8 * self.o.test_timeout)

    def _deadline(self, task: dict, worker: _Worker) -> float:
        # A fresh worker first imports shapeflow (and llvmlite, tvm): seconds on a loaded machine.
        startup = 0.0 if worker.answered else STARTUP_SECONDS
        if task.get("kind") == "minimize-lost":
            return time.monotonic() + startup + self._lost_budget() + 2 * self.o.test_timeout + 60
        # Twice the limit: a test that is slow because the machine is busy is no hang.
        return time.monotonic() + startup + 2 * self.o.test_timeout

    def _worker_lost(self, worker: _Worker, symptom: str) -> None:
        path = self.out / "workers" / f"w{worker.wid}.json"
        stage = worker.stage.value
        if worker.task is not None and worker.task.get("kind") == "minimize-lost":
            return  # the minimizer itself died or overran: the finding stays as recorded
        if path.exists() and worker.task is not None:
            test = TestCase.from_json(path.read_text())
            path.unlink()
            if stage == MINIMIZING_STAGE:
                # A minimization candidate died, not the test: run the test again, unminimized.
                self.pending.insert(0, {"kind": "run", "test": test.to_json(), "no_minimize": True})
                return
            if symptom == "timeout" and (stage in RUN_STAGES or stage == TVM_STAGE):
                self.stats["slow"] += 1  # a huge loop in the program itself (or TVM's build), not a hang
            elif symptom == "crash" and stage == TVM_STAGE:
                self.stats["crashes"] += 1
                code = worker.proc.exitcode
                message = f"worker died in TVM with exit code {code}"
                self._lost_bug(test, Outcome("bug", "tvm-crash", "tvm", message), symptom, stage, code)
            else:
                self.stats["crashes" if symptom == "crash" else "timeouts"] += 1
                code = worker.proc.exitcode if symptom == "crash" else None
                message = f"worker died with exit code {code}" if symptom == "crash" else "test ran too long"
                self._lost_bug(test, Outcome("bug", symptom, f"stage {stage}", message), symptom, stage, code)
        self.stats["tests"] += 1

    def _overdue(self, w: _Worker) -> bool:
        """Past its deadline and hanging. On a busy machine a test can outlive its wall-clock limit while
        getting little CPU; a hang (an endless loop) burns CPU. So past the deadline a worker is stopped
        when it used its limit's worth of CPU on the task, or at a much later hard deadline (a hang that
        sleeps), or right away where the CPU time cannot be read."""
        now = time.monotonic()
        if now <= w.deadline:
            return False
        if (w.task or {}).get("kind") == "minimize-lost":
            return True  # it mostly waits on its own child (which has its limits): wall time decides
        cpu = process_cpu_seconds(w.proc.pid)
        if cpu is None or w.cpu_at_start is None or now > w.hard_deadline:
            return True
        return cpu - w.cpu_at_start > w.deadline - w.dispatched

    def _lost_minimized(self, msg: dict) -> None:
        minimized = TestCase.from_json(msg["minimized"]) if msg.get("minimized") else None
        update_minimized(self.out, msg["minimized_for"], minimized, msg.get("note", ""))

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> dict:
        self._prepare()
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        workers = [_Worker(ctx, k, self.o, results) for k in range(self.o.workers)]
        start = time.monotonic()
        base_elapsed = float(self.stats["elapsed"])
        base_tests = int(self.stats["tests"])
        base_cpu = float(self.stats.get("cpu_s", 0.0))
        last_row = last_status = 0.0
        csv_path = self.out / "coverage.csv"
        if not csv_path.exists():
            csv_path.write_text("elapsed_s,tests,valid,arcs,corpus,bugs\n")
        csv = open(csv_path, "a")  # noqa: SIM115
        try:
            while True:
                now = time.monotonic()
                elapsed = now - start
                run_tests = self.stats["tests"] - base_tests
                done = (
                    (self.o.seconds is not None and elapsed >= self.o.seconds)
                    or (self.o.iterations is not None and run_tests >= self.o.iterations)
                    or (
                        self.o.cpu_seconds is not None
                        and self.stats.get("cpu_s", 0.0) - base_cpu >= self.o.cpu_seconds
                    )
                )
                if done:
                    self._drain(workers, results)
                    break
                for w in workers:
                    if w.task is None:
                        w.task = self._next_task()
                        w.dispatched = time.monotonic()
                        w.deadline = self._deadline(w.task, w)
                        w.hard_deadline = w.deadline + HARD_FACTOR * (w.deadline - time.monotonic())
                        w.cpu_at_start = process_cpu_seconds(w.proc.pid)
                        w.extended = False
                        w.tasks.put(w.task)
                try:
                    msg = results.get(timeout=0.05)
                    w = workers[msg["wid"]]
                    if "minimized_for" in msg:
                        self._lost_minimized(msg)
                    else:
                        self._handle(msg, w)
                    w.task, w.answered = None, True
                except Exception as exc:
                    if not type(exc).__name__ == "Empty":
                        raise
                for k, w in enumerate(workers):
                    lost = None
                    if not w.proc.is_alive():
                        lost = "crash"
                    elif w.task is not None and self._overdue(w):
                        if w.stage.value == MINIMIZING_STAGE and not w.extended:
                            # The test ended (a bug) and the worker minimizes it in process: more time.
                            w.deadline, w.extended = time.monotonic() + self.o.minimize_seconds + 10, True
                            continue
                        lost = "timeout"
                        w.proc.kill()
                        w.proc.join(5)
                    if lost:
                        if w.task is not None:
                            self._worker_lost(w, lost)
                        workers[k] = _Worker(ctx, w.wid, self.o, results)
                self.stats["elapsed"] = base_elapsed + elapsed
                if now - last_row >= 1.0:
                    last_row = now
                    csv.write(self._row() + "\n")
                    csv.flush()
                if now - last_status >= 1.0:
                    last_status = now
                    self._status(elapsed)
        finally:
            csv.write(self._row() + "\n")
            csv.close()
            self._status(time.monotonic() - start, final=True)
            for w in workers:
                w.tasks.put(None)
            for w in workers:
                w.proc.join(10)
                if w.proc.is_alive():
                    w.proc.kill()
            self.cmap.close()
        return self.summary()

    def _drain(self, workers: list, results) -> None:
        """At the end of the budget, let the tests in flight finish (each within its deadline) and count
        them, so that a campaign that ends normally leaves nothing in workers/. A minimization of a lost
        test is not waited for: its finding is already recorded."""
        while any(w.task is not None and w.task.get("kind") != "minimize-lost" for w in workers):
            busy = [w for w in workers if w.task is not None and w.task.get("kind") != "minimize-lost"]
            if all(time.monotonic() > w.deadline or not w.proc.is_alive() for w in busy):
                return  # left for a --resume to re-run (workers/w<k>.json)
            try:
                msg = results.get(timeout=0.05)
            except Exception as exc:
                if type(exc).__name__ == "Empty":
                    continue
                raise
            w = workers[msg["wid"]]
            if "minimized_for" in msg:
                self._lost_minimized(msg)
            else:
                self._handle(msg, w)
            w.task = None

    def _row(self) -> str:
        s = self.stats
        counts = (s["tests"], s["valid"], len(self.cmap), len(self.corpus), len(self.bugs))
        values = (f"{s['elapsed']:.2f}", *counts)
        return ",".join(str(v) for v in values)

    def summary(self) -> dict:
        return {
            "stats": dict(self.stats),
            "arcs": len(self.cmap),
            "corpus": len(self.corpus),
            "bugs": sorted(self.bugs),
            "mode": self.o.mode,
            "coverage_feedback": self.o.coverage,
            "seed": self.o.seed,
            "tvm": self.o.tvm,
        }

    def _status(self, elapsed: float, final: bool = False) -> None:
        atomic_write(self.out / "status.json", json.dumps(self.summary(), indent=1))
        s = self.stats
        rate = s["tests"] / s["elapsed"] if s["elapsed"] else 0.0
        line = (
            f"[{s['elapsed']:7.1f}s] tests {s['tests']} ({rate:.1f}/s) valid {s['valid']} "
            f"arcs {len(self.cmap)} corpus {len(self.corpus)} bugs {len(self.bugs)}"
        )
        stream = self.o.status_stream
        if stream is not None:
            stream.write(("\r" if not final else "\r") + line + ("\n" if final else ""))
            stream.flush()


def run_campaign(options: CampaignOptions) -> dict:
    """Run a campaign to its time or iteration budget; returns the summary also written to status.json."""
    return Campaign(options).run()


__all__ = ["CampaignOptions", "Campaign", "run_campaign"]
