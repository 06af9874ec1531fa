"""Oracles: run one test (a PrimFunc, a pass sequence, an input seed) through every stage and say whether
shapeflow misbehaved.

Symptoms (the `symptom` of a bug):
- "unexpected-exception": anything outside the shapeflow.Error hierarchy, from any stage; shapeflow.Error
  subclasses are the documented answer to input a stage refuses (a pass that does not apply, a fault of the
  interpreted program) and are not bugs;
- "verify-after-pass": the verifier rejects what a pass produced (PassContext with VerifyAfter);
- "verify-after-schedule": the verifier rejects what the test's schedule primitives produced;
- "roundtrip": print -> parse is not structurally equal, or printing again gives other text, or the
  printed text does not parse (before and after the passes);
- "wrong-result": the interpreter on the transformed IR disagrees with the interpreter on the original
  (or raises where the original did not), or on the scheduled program (a test's schedule steps,
  mutate_schedule.py, applied before the passes); the compiled kernel disagrees with the interpreter (when
  `shapeflow.build` exists and the test has no possible race or out-of-bounds access);
- "crash" and "timeout" are decided by the campaign (a worker that died by a signal, or ran too long).
"""

from __future__ import annotations

import json
import random
import re
import traceback
from dataclasses import dataclass, field

import numpy as np

from shapeflow.errors import Error, VerifyError
from shapeflow.fuzz.inputs import choose_dims, copy_arguments, iteration_cost, make_arguments
from shapeflow.fuzz.mutate_passes import build_passes
from shapeflow.fuzz.mutate_schedule import apply_schedule
from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.ir.module import IRModule
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir.function import PrimFunc

MAX_COST = 200_000


@dataclass
class TestCase:
    """What a test is, stored as JSON text: the IR, the pass sequence, the input seed and flags."""

    __test__ = False  # not a pytest class

    ir: str
    passes: list
    seed: int = 0
    flags: list = field(default_factory=list)
    origin: str = ""
    kind: str = "tir"  # "tir": `ir` is a PrimFunc; "graph": `ir` is a graph module (graph_oracles.py)
    recipe: dict | None = None  # a graph test's recipe (graph_gen.py), what its mutators edit
    schedule: list = field(default_factory=list)  # schedule-primitive steps (mutate_schedule.py)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)

    @staticmethod
    def from_json(text: str) -> TestCase:
        data = json.loads(text)
        return TestCase(
            data["ir"],
            data["passes"],
            data.get("seed", 0),
            data.get("flags", []),
            data.get("origin", ""),
            data.get("kind", "tir"),
            data.get("recipe"),
            data.get("schedule") or [],
        )

    def func(self) -> PrimFunc:
        return as_func(parse(self.ir))


def as_func(obj) -> PrimFunc:
    if isinstance(obj, IRModule):
        return next(iter(obj.functions.values()))
    return obj


@dataclass
class Outcome:
    status: str  # "ok", "invalid" (did not verify; not run), "bug"
    symptom: str = ""
    stage: str = ""
    message: str = ""
    trace: str = ""
    ran: bool = False  # the reference run happened and succeeded
    pass_labels: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # the TVM verdict, and a TVM finding's repro and version

    @property
    def is_bug(self) -> bool:
        return self.status == "bug"


class Bug(Exception):
    def __init__(self, symptom: str, stage: str, message: str, trace: str = ""):
        super().__init__(message)
        self.symptom, self.stage, self.message, self.trace = symptom, stage, message, trace


class _Stages:
    """Calls `switch(label)` on a coverage tracker (when any) and records the current stage."""

    def __init__(self, tracker, stage_cell):
        self.tracker, self.cell = tracker, stage_cell
        self.current = ""

    def enter(self, label: str, code: int = 0) -> None:
        self.current = label
        if self.tracker is not None:
            self.tracker.switch(label, traced=code not in UNTRACED_STAGES)
        if self.cell is not None:
            self.cell.value = code


# Stage codes shared with the campaign (a timeout in a run stage is slowness, not a bug).
STAGE_CODES = {
    "setup": 0,
    "verify": 1,
    "roundtrip": 2,
    "reference": 3,
    "passes": 4,
    "transformed": 5,
    "compile": 6,
    "tvm": 7,
    "schedule": 8,
}
RUN_STAGES = {3, 5}
TVM_STAGE = 7
# Not measured by coverage: the reference interpreter running the test program, and apache-tvm. They are
# oracles, not the system under test, and under the tracer the interpreter is the slowest part of a test.
UNTRACED_STAGES = RUN_STAGES | {TVM_STAGE}
MINIMIZING_STAGE = 99  # the worker minimizes a bug it found (its deadline is extended once)


def _guard(stages: _Stages, fn, *args):
    """Run `fn`; a non-shapeflow exception is a bug of the current stage."""
    try:
        return fn(*args)
    except Error:
        raise
    except Bug:
        raise
    except RecursionError as exc:
        raise Bug(
            "unexpected-exception", stages.current, f"RecursionError: {exc}", traceback.format_exc()
        ) from None
    except Exception as exc:
        raise Bug(
            "unexpected-exception", stages.current, f"{type(exc).__name__}: {exc}", traceback.format_exc()
        ) from None


def check_roundtrip(func, where: str) -> None:
    text = to_text(func)
    try:
        back = as_func(parse(text))
    except Error as exc:
        raise Bug("roundtrip", where, f"printed text does not parse: {exc}") from None
    if not structural_equal(back, func):
        raise Bug("roundtrip", where, "print -> parse is not structurally equal")
    if to_text(back) != text:
        raise Bug("roundtrip", where, "printing the parsed function gives different text")


def compare_arrays(expected: list, actual: list, rtol: float = 1e-4, rtol_half: float = 1e-2) -> str:
    """'' when equal (floats with a relative tolerance, `rtol_half` for float16, NaN-aware; ints exact),
    else a description."""
    for k, (e, a) in enumerate(zip(expected, actual)):
        if not isinstance(e, np.ndarray):
            continue
        if e.shape != a.shape or e.dtype != a.dtype:
            return f"argument {k}: shape/dtype {a.shape} {a.dtype}, expected {e.shape} {e.dtype}"
        if e.dtype.kind == "f":
            e64, a64 = e.astype(np.float64), a.astype(np.float64)
            tol = rtol_half if e.dtype.itemsize == 2 else rtol
            finite = np.isfinite(e64) & np.isfinite(a64)
            scale = np.maximum(np.abs(e64), 1.0)
            bad = ~(np.isnan(e64) == np.isnan(a64))
            bad |= np.isinf(e64) & (e64 != a64)
            bad |= np.isinf(a64) & (e64 != a64)
            with np.errstate(all="ignore"):
                bad |= finite & (np.abs(e64 - a64) > tol * scale)
        else:
            bad = e != a
        if np.any(bad):
            where = tuple(int(x) for x in np.argwhere(bad)[0])
            return f"argument {k} differs at {where}: got {a[where]!r}, expected {e[where]!r}"
    return ""


def _race_free(flags) -> bool:
    return "race" not in flags and "oob" not in flags


def check(
    test: TestCase,
    tracker=None,
    stage_cell=None,
    compile_oracle: bool | None = None,
    tvm_oracle: bool = False,
) -> Outcome:
    """Run `test` through every oracle. `tracker` (an ArcTracker, already started) gets one label per stage
    and pass; `stage_cell` (a shared int) tracks the stage for the campaign's timeout judgement;
    `tvm_oracle` adds the differential run against apache-tvm (tvm_oracle.py) when tvm imports.
    Graph tests go to graph_oracles.check_graph."""
    if test.kind == "graph":
        from shapeflow.fuzz.graph_oracles import check_graph  # noqa: PLC0415

        return check_graph(test, tracker, stage_cell, compile_oracle)
    stages = _Stages(tracker, stage_cell)
    out = Outcome("ok")
    try:
        _check(test, stages, out, compile_oracle, tvm_oracle)
    except Bug as bug:
        out.status, out.symptom, out.stage, out.message, out.trace = (
            "bug",
            bug.symptom,
            bug.stage,
            bug.message,
            bug.trace,
        )
    return out


def _check(test: TestCase, stages: _Stages, out: Outcome, compile_oracle, tvm_oracle: bool = False) -> None:
    from shapeflow.ir.tir.interpreter import run  # noqa: PLC0415
    from shapeflow.ir.tir.verify import verify  # noqa: PLC0415
    from shapeflow.passes import PassContext, VerifyAfter  # noqa: PLC0415

    stages.enter("verify", 1)
    try:
        func = as_func(_guard(stages, parse, test.ir))  # the parser must fail with ParseError only
        if not isinstance(func, PrimFunc):
            raise VerifyError("a loop-level test holds one PrimFunc")
        _guard(stages, verify, func)
    except Error:
        out.status = "invalid"
        return
    scheduled = func
    if test.schedule:
        stages.enter("schedule", STAGE_CODES["schedule"])
        try:
            scheduled = _guard(stages, apply_schedule, func, test.schedule)
        except Error:  # ScheduleError: a step that does not apply (any more) makes an invalid test
            out.status = "invalid"
            return
        try:
            verify(scheduled)
        except VerifyError as exc:
            raise Bug("verify-after-schedule", "schedule", str(exc), traceback.format_exc()) from None
    stages.enter("roundtrip", 2)
    _guard(stages, check_roundtrip, func, "roundtrip")
    if scheduled is not func:
        _guard(stages, check_roundtrip, scheduled, "roundtrip after schedule")

    stages.enter("reference", 3)
    expected = args = None
    try:
        dims = choose_dims(func, random.Random(test.seed))
        if iteration_cost(func, dims) <= MAX_COST:
            args = make_arguments(func, test.seed, dims)
            expected = copy_arguments(args)
            _guard(stages, run, func, *expected)
            out.ran = True
    except (Error, ValueError):
        expected = None
    if tvm_oracle and out.ran and _race_free(test.flags):
        stages.enter("tvm", TVM_STAGE)
        _tvm_stage(func, args, expected, out)

    if scheduled is not func and out.ran:
        stages.enter("scheduled", 5)
        _compare_run(stages, run, scheduled, args, expected, func, out, "interpret scheduled")
    mod = IRModule({"main": scheduled})
    passes = build_passes(test.passes)
    ctx = PassContext(opt_level=3, instruments=[VerifyAfter()])
    for k, p in enumerate(passes):
        label = f"pass:{k}"
        out.pass_labels.append(label)
        stages.enter(label, 4)
        try:
            mod = _guard(stages, ctx.run_pass, p, mod)
        except VerifyError as exc:
            if "produced ill-formed IR" in str(exc):
                raise Bug("verify-after-pass", f"pass {p.spec()}", str(exc), traceback.format_exc()) from None
            return  # the pass refused its input: a documented error
        except Error:
            return
    transformed = as_func(mod["main"])
    if passes:
        stages.enter("roundtrip-after", 2)
        _guard(stages, check_roundtrip, transformed, "roundtrip after passes")

    if not out.ran:
        return
    stages.enter("transformed", 5)
    _compare_run(stages, run, transformed, args, expected, func, out, "interpret transformed")

    if compile_oracle is None:
        compile_oracle = random.Random(test.seed).random() < 0.25
    build = _build_function()
    if build is None or not compile_oracle or not _race_free(test.flags):
        return
    stages.enter("compile", 6)
    try:
        lib = _guard(stages, build, IRModule({"main": transformed}), "cpu")
        compiled = copy_arguments(args)
        _guard(stages, lib["main"], *compiled)
    except Error:
        return
    diff = compare_arrays(expected, compiled)
    if diff and not _order_dependent(func, out):
        raise Bug("wrong-result", "compiled", f"compiled kernel vs interpreter: {diff}")


def _compare_run(stages: _Stages, run, func: PrimFunc, args, expected, original, out, stage: str) -> None:
    """Interpret `func` on copies of `args`; a raise or a difference from `expected` is a wrong result
    (unless `original` is order dependent: then there is no single right answer)."""
    what = stage.split()[-1]
    actual = copy_arguments(args)
    try:
        _guard(stages, run, func, *actual)
    except Error as exc:
        if not _undefined(original, args, out):
            raise Bug("wrong-result", stage, f"{what} IR raised {type(exc).__name__}: {exc}") from None
        return
    diff = compare_arrays(expected, actual)
    if diff and not _order_dependent(original, out) and not _undefined(original, args, out):
        raise Bug("wrong-result", stage, f"{what} IR vs original: {diff}")


def _undefined(func: PrimFunc, args: list, out: Outcome) -> bool:
    """Whether the original run overflowed a signed integer: the simplifier, like C and LLVM, assumes
    signed 32/64-bit arithmetic does not wrap (ir/arith), so such a program has no one right result
    (unsigned and narrow integers wrap by definition and are not filtered). Checked only on a difference:
    watching costs a second reference run."""
    from shapeflow.fuzz.tvm_oracle import interpret_uncached, watch_signed_overflow  # noqa: PLC0415

    with watch_signed_overflow() as seen:
        try:
            interpret_uncached(func, args)
        except Exception:  # noqa: BLE001  the reference run succeeded before: nothing to learn here
            return False
    signed = [s for s in seen if s.startswith("int")]
    if signed:
        out.extra["filtered"] = signed[0]
    return bool(signed)


def _order_dependent(func: PrimFunc, out: Outcome) -> bool:
    """Whether a difference is explained by a racy parallel/vectorized loop (mutations make some that their
    flags do not mark): such a program has no single right result, so the difference is no bug."""
    from shapeflow.fuzz.tvm_oracle import order_dependent  # noqa: PLC0415

    why = order_dependent(func)
    if why:
        out.extra["filtered"] = why
    return bool(why)


def _tvm_stage(func: PrimFunc, args: list, expected: list, out: Outcome) -> None:
    """TVM against our interpreter; on a difference, our compiled kernel decides whose bug it is."""
    from shapeflow.fuzz.tvm_oracle import check_tvm, render_tvm_repro, tvm_available, tvm_version  # noqa: PLC0415

    if not tvm_available():
        out.extra["tvm"] = "unavailable"
        return
    try:
        verdict = check_tvm(func, args, expected)
    except Exception as exc:  # the translator's own fault: neither compiler's bug
        out.extra.update(tvm="translator-error", tvm_message=f"{type(exc).__name__}: {exc}"[:300])
        return
    out.extra["tvm"] = verdict.status
    if verdict.status not in ("mismatch", "internal-error"):
        if verdict.message:
            out.extra["tvm_message"] = verdict.message[:300]
        return
    ours = None
    build = _build_function()
    if build is not None:
        try:
            ours = copy_arguments(args)
            build(IRModule({"main": func}), "cpu")["main"](*ours)
        except Exception:
            ours = None
    if ours is not None and compare_arrays(expected, ours):
        message = f"compiled kernel vs interpreter (TVM disagrees too): {verdict.message}"
        raise Bug("wrong-result", "compiled", message)
    note = "" if ours is not None else " (shapeflow's own kernel did not run: unconfirmed)"
    if verdict.status == "internal-error":
        check = re.sub(r"[:'\"]", " ", verdict.message.split("Check failed")[-1])[:70]
        message = f"TVM internal error ({check.strip()}): {verdict.message}{note}"
        symptom, kind = "tvm-internal-error", "internal error on a valid program"
    else:
        intrinsics = sorted({c.op for c in collect(func.body, E.Call)})
        dtypes = sorted({str(a.dtype) for a in expected if isinstance(a, np.ndarray)})
        message = f"TVM vs interpreter [{' '.join(dtypes)}; {' '.join(intrinsics)}]: {verdict.message}{note}"
        symptom, kind = "tvm-wrong-result", "wrong result"
    out.extra.update(
        tvm_version=tvm_version(),
        tvm_repro=render_tvm_repro(verdict.script, args, expected, message, kind),
        tvm_script=verdict.script,
        confirmed=ours is not None,
    )
    raise Bug(symptom, "tvm", message)


def _build_function():
    import shapeflow  # noqa: PLC0415

    return getattr(shapeflow, "build", None)


__all__ = [
    "TestCase",
    "Outcome",
    "Bug",
    "check",
    "check_roundtrip",
    "compare_arrays",
    "STAGE_CODES",
    "RUN_STAGES",
    "TVM_STAGE",
    "MINIMIZING_STAGE",
]
