"""An adapter that runs ONNX's own backend node tests (onnx.backend.test.case.node, ~1,900 cases with
inputs and expected outputs) through shapeflow, or through onnxruntime for comparison.

    for case in collect_cases():
        outcome = run_case(case, engine="compile")  # or "interpret", "onnxruntime"

Outcomes: "pass" (every output matches with the case's rtol/atol, same dtype and shape), "unsupported"
(shapeflow refused the model with UnsupportedError at import or compile time; onnxruntime failed to create
a session), "fail" (anything else: a wrong answer, a crash-like exception, an error at run time).
"""

from __future__ import annotations

import dataclasses
import functools
import traceback
import warnings

import numpy as np

from shapeflow.errors import UnsupportedError

ENGINES = ("compile", "interpret", "onnxruntime")


@dataclasses.dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "pass", "fail" or "unsupported"
    message: str = ""
    frozen: tuple = ()  # graph inputs fixed at import time (freeze_inputs mode only)


@functools.cache
def _all_cases() -> tuple:
    from onnx.backend.test.case import node  # noqa: PLC0415

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node.collect_testcases(None)
    return tuple(sorted(cases, key=lambda c: c.name))


def collect_cases(names=None) -> list:
    """The node test cases (all, or those whose name is in `names`), sorted by name."""
    cases = _all_cases()
    if names is None:
        return list(cases)
    wanted = set(names)
    return [c for c in cases if c.name in wanted]


def compare(expected: list, actual: list, rtol: float, atol: float) -> str:
    """ "" when `actual` matches `expected` (dtype, shape, values within rtol/atol), else why not."""
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, expected {len(expected)}"
    for i, (want, got) in enumerate(zip(expected, actual)):
        if isinstance(want, np.generic):
            want = np.asarray(want)
        if not isinstance(want, np.ndarray) or want.dtype == object:
            return f"output {i}: a non-tensor expected output ({type(want).__name__})"
        if not isinstance(got, np.ndarray | np.generic):
            return f"output {i}: got a {type(got).__name__}, expected a tensor"
        got = np.asarray(got)
        if got.dtype != want.dtype:
            return f"output {i}: dtype {got.dtype}, expected {want.dtype}"
        if got.shape != want.shape:
            return f"output {i}: shape {got.shape}, expected {want.shape}"
        try:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        except AssertionError as exc:
            return f"output {i}: values differ: {str(exc).strip().splitlines()[-1][:200]}"
    return ""


def _declared(values: list, infos) -> list:
    """Test data as the .pb files of the suite hold it: arrays of each value's declared dtype (the generated
    data sometimes holds Python objects or numpy scalars)."""
    from onnx import (  # noqa: PLC0415
        TensorProto,
        helper,  # noqa: PLC0415
        numpy_helper,
    )

    out = []
    for value, info in zip(values, infos):
        if isinstance(value, TensorProto):
            value = numpy_helper.to_array(value)
        elem = info.type.tensor_type.elem_type if info.type.HasField("tensor_type") else 0
        if isinstance(value, np.ndarray | np.generic) and elem and np.asarray(value).dtype == object:
            try:
                value = np.asarray(value, dtype=helper.tensor_dtype_to_np_dtype(elem))
            except (TypeError, ValueError, KeyError):
                pass
        elif isinstance(value, np.generic):
            value = np.asarray(value)
        out.append(value)
    return out


def _data_sets(case) -> list:
    graph = case.model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    return [(_declared(list(x), inputs), _declared(list(y), graph.output)) for x, y in case.data_sets]


def _is_integer(data, names, name) -> bool:
    value = data[0][0][names.index(name)] if data else None
    return isinstance(value, np.ndarray) and value.dtype.kind in "iu"


def _run_shapeflow(case, engine: str, freeze_inputs: bool) -> Outcome:
    import shapeflow  # noqa: PLC0415
    from shapeflow.frontend import from_onnx  # noqa: PLC0415
    from shapeflow.ir.graph import run  # noqa: PLC0415

    data = _data_sets(case)
    graph = case.model.graph
    inits = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in inits]
    constants: dict = {}
    try:
        while True:
            try:
                mod = from_onnx(case.model, constants=constants)
                break
            except UnsupportedError as exc:
                tensor = getattr(exc, "tensor", None)
                if not freeze_inputs or tensor is None or tensor in constants:
                    raise
                # The tensor itself when it is a graph input; else (computed from inputs) every integer
                # input, as the shape arithmetic feeding it reads them.
                wanted = [tensor] if tensor in names else [n for n in names if _is_integer(data, names, n)]
                wanted = [n for n in wanted if n not in constants]
                if not wanted:
                    raise
                for name in wanted:
                    values = [inputs[names.index(name)] for inputs, _ in data]
                    if any(not np.array_equal(values[0], v) for v in values[1:]):
                        raise
                    constants[name] = values[0]
        runner = shapeflow.compile(mod, target="cpu") if engine == "compile" else None
    except UnsupportedError as exc:
        return Outcome(case.name, "unsupported", str(exc).splitlines()[0][:300], tuple(constants))
    except Exception as exc:  # noqa: BLE001 - every other failure is a failure of the case
        message = f"import/compile: {type(exc).__name__}: {str(exc)[:300]}"
        return Outcome(case.name, "fail", message, tuple(constants))
    frozen = tuple(constants)
    for inputs, expected in data:
        arrays = [np.asarray(x) for name, x in zip(names, inputs) if name not in constants]
        try:
            with np.errstate(all="ignore"):
                out = runner(*arrays) if runner is not None else run(mod, *arrays)
        except Exception as exc:  # noqa: BLE001
            tb = traceback.format_exc(limit=-2).strip().splitlines()[-1]
            return Outcome(
                case.name, "fail", f"run: {type(exc).__name__}: {str(exc)[:200]} [{tb[:150]}]", frozen
            )
        outputs = list(out) if isinstance(out, tuple) else [out]
        why = compare(expected, outputs, case.rtol, case.atol)
        if why:
            return Outcome(case.name, "fail", why, frozen)
    return Outcome(case.name, "pass", "", frozen)


def _run_onnxruntime(case) -> Outcome:
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(
            case.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001
        return Outcome(case.name, "unsupported", str(exc).splitlines()[0][:300])
    names = [i.name for i in session.get_inputs()]
    for inputs, expected in _data_sets(case):
        try:
            out = session.run(None, dict(zip(names, inputs)))
        except Exception as exc:  # noqa: BLE001
            return Outcome(case.name, "fail", f"run: {str(exc)[:300]}")
        why = compare(expected, out, case.rtol, case.atol)
        if why:
            return Outcome(case.name, "fail", why)
    return Outcome(case.name, "pass")


def run_case(case, engine: str = "compile", freeze_inputs: bool = False) -> Outcome:
    """Run one node test case through `engine` (see ENGINES). With `freeze_inputs`, a graph input whose
    value shapeflow needs at import time (reduction axes, a Reshape target fed as an input) is fixed to
    the test's value with from_onnx(constants=...); such outcomes carry the inputs in `frozen` and are
    counted apart from the as-is results by `summarize`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if engine == "onnxruntime":
            return _run_onnxruntime(case)
        return _run_shapeflow(case, engine, freeze_inputs)


def summarize(outcomes: list[Outcome]) -> dict:
    """Counts of the model as it is ("pass", "fail", "unsupported": a case that needed frozen inputs is
    unsupported here) and, when any case froze inputs, the counts with frozen inputs as well."""

    def counts(rows) -> dict:
        out = {s: sum(status == s for status in rows) for s in ("pass", "fail", "unsupported")}
        out["total"] = len(rows)
        out["pass_rate"] = round(out["pass"] / len(rows), 4) if rows else 0.0
        return out

    strict = counts([o.status if not o.frozen else "unsupported" for o in outcomes])
    if any(o.frozen for o in outcomes):
        strict["with_frozen_inputs"] = counts([o.status for o in outcomes])
    return strict
