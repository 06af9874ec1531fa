"""Oracles for graph-level tests (a TestCase of kind "graph": the module's text, a graph pass sequence,
an input seed, and the recipe it was built from).

Stages, with the symptoms of oracles.py:
- verify: the text parses and the graph verifier accepts it, else the test is invalid and is not run;
- roundtrip: `parse(mod.script())` is structurally the module and prints the same text (before and after
  the passes);
- reference: the graph interpreter on seeded inputs (a shapeflow error here makes the test not runnable);
- passes: each graph pass in turn (a non-shapeflow exception is a bug; a shapeflow error is a refusal),
  the graph verifier after each; then the interpreter on the result must compute the reference values;
- compiled: `shapeflow.compile(mod)` then the Executable's `main` against the reference (for a share of
  the tests: compiling costs about a second).
"""

from __future__ import annotations

import random
import traceback

import numpy as np

from shapeflow.errors import Error, VerifyError
from shapeflow.fuzz.oracles import Bug, Outcome, TestCase, _guard, _Stages, compare_arrays

GRAPH_RTOL = 1e-3  # fusion and legalization reorder float sums


def _roundtrip(mod, where: str) -> None:
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415
    from shapeflow.ir.text import parse  # noqa: PLC0415

    text = mod.script()
    try:
        back = parse(text)
    except Error as exc:
        raise Bug("roundtrip", where, f"printed graph text does not parse: {exc}") from None
    if not structural_equal(back, mod):
        raise Bug("roundtrip", where, "graph print -> parse is not structurally equal")
    if back.script() != text:
        raise Bug("roundtrip", where, "printing the parsed graph module gives different text")


def _as_list(value) -> list:
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_as_list(v))
        return out
    return [np.asarray(value)]


def _compare(expected, actual, what: str) -> None:
    exp, act = _as_list(expected), _as_list(actual)
    if len(exp) != len(act):
        raise Bug("wrong-result", what, f"{what}: {len(act)} outputs, expected {len(exp)}")
    diff = compare_arrays(exp, act, rtol=GRAPH_RTOL, rtol_half=2e-2)
    if diff:
        raise Bug("wrong-result", what, f"{what} vs interpreter: {diff}")


def check_graph(test: TestCase, tracker=None, stage_cell=None, compile_oracle: bool | None = None) -> Outcome:
    """Run a graph test through every graph oracle (see the module docstring)."""
    stages = _Stages(tracker, stage_cell)
    out = Outcome("ok")
    try:
        with np.errstate(all="ignore"):
            _check_graph(test, stages, out, compile_oracle)
    except Bug as bug:
        out.status, out.symptom, out.stage, out.message, out.trace = (
            "bug",
            bug.symptom,
            bug.stage,
            bug.message,
            bug.trace,
        )
    return out


def _check_graph(test: TestCase, stages: _Stages, out: Outcome, compile_oracle) -> None:
    from shapeflow.fuzz.graph_gen import graph_arguments  # noqa: PLC0415
    from shapeflow.fuzz.mutate_passes import build_passes  # noqa: PLC0415
    from shapeflow.ir.graph import GraphFunction, run, verify  # noqa: PLC0415
    from shapeflow.ir.module import IRModule  # noqa: PLC0415
    from shapeflow.ir.text import parse  # noqa: PLC0415
    from shapeflow.passes import PassContext  # noqa: PLC0415

    stages.enter("verify", 1)
    try:
        mod = _guard(stages, parse, test.ir)  # the parser must fail with ParseError only
        if not isinstance(mod, IRModule) or not isinstance(mod.functions.get("main"), GraphFunction):
            raise VerifyError("a graph test holds a module with a graph function `main`")
        _guard(stages, verify, mod)
    except Error:
        out.status = "invalid"
        return
    stages.enter("roundtrip", 2)
    _guard(stages, _roundtrip, mod, "graph roundtrip")

    stages.enter("reference", 3)
    try:  # inputs are the fuzzer's business: a dtype numpy lacks (bfloat16) makes the test not runnable
        args = graph_arguments(mod, test.seed)
    except Exception:
        return
    try:
        expected = _guard(stages, run, mod, *[a.copy() for a in args])
        out.ran = True
    except Error:
        return

    ctx = PassContext(opt_level=2)
    after = mod
    for k, p in enumerate(build_passes(test.passes)):
        label = f"pass:{k}"
        out.pass_labels.append(label)
        stages.enter(label, 4)
        try:
            after = _guard(stages, ctx.run_pass, p, after)
        except Error:
            after = None
            break
        try:
            _guard(stages, verify, after)
        except VerifyError as exc:
            raise Bug("verify-after-pass", f"pass {p.spec()}", str(exc), traceback.format_exc()) from None
    if after is not None and after is not mod:
        stages.enter("roundtrip-after", 2)
        _guard(stages, _roundtrip, after, "graph roundtrip after passes")
        stages.enter("transformed", 5)
        try:
            actual = _guard(stages, run, after, *[a.copy() for a in args])
        except Error as exc:
            message = f"transformed graph raised {type(exc).__name__}: {exc}"
            raise Bug("wrong-result", "interpret transformed graph", message) from None
        _compare(expected, actual, "transformed graph")

    if compile_oracle is None:
        compile_oracle = random.Random(test.seed).random() < 0.3
    if not compile_oracle:
        return
    import shapeflow  # noqa: PLC0415

    stages.enter("compile", 6)
    try:
        exe = _guard(stages, shapeflow.compile, mod)
        actual = _guard(stages, exe["main"], *[a.copy() for a in args])
    except Error:
        return
    _compare(expected, actual, "compiled graph")


__all__ = ["check_graph", "GRAPH_RTOL"]
