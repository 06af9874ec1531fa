"""An adapter that runs ONNX's own backend node tests (onnx.backend.test.case.node, ~1,900 cases with
inputs and expected outputs) through shapeflow, or through onnxruntime for comparison.

    for case in collect_cases():
        outcome = run_case(case, engine="compile")  # or "interpret", "onnxruntime"

Outcomes: "pass" (every output matches with the case's rtol/atol, same dtype and shape), "unsupported"
(shapeflow refused the model with UnsupportedError at import or compile time, or refused to specialize it
on the test's input values; onnxruntime failed to create a session), "fail" (anything else: a wrong answer,
a crash-like exception, an error at run time). The model is taken as it is: inputs whose values determine
shapes are handled the way users get them, by shapeflow.compile's specialization on their values.
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
    specialized: tuple = ()  # graph inputs whose values the executable specialized on


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


def _run_shapeflow(case, engine: str) -> Outcome:
    import shapeflow  # noqa: PLC0415
    from shapeflow.frontend.onnx.specialize import specialize_or_build  # noqa: PLC0415
    from shapeflow.ir.graph import run  # noqa: PLC0415

    data = _data_sets(case)
    try:
        if engine == "compile":
            runner = shapeflow.compile(case.model, target="cpu")
        else:
            runner = specialize_or_build(case.model, lambda mod: functools.partial(run, mod))
    except UnsupportedError as exc:
        return Outcome(case.name, "unsupported", str(exc).splitlines()[0][:300])
    except Exception as exc:  # noqa: BLE001 - every other failure is a failure of the case
        return Outcome(case.name, "fail", f"import/compile: {type(exc).__name__}: {str(exc)[:300]}")
    for inputs, expected in data:
        try:
            with np.errstate(all="ignore"):
                out = runner(*[np.asarray(x) for x in inputs])
        except UnsupportedError as exc:  # a specialization refused for these values
            return Outcome(case.name, "unsupported", str(exc).splitlines()[0][:300], _specialized(runner))
        except Exception as exc:  # noqa: BLE001
            tb = traceback.format_exc(limit=-2).strip().splitlines()[-1]
            message = f"run: {type(exc).__name__}: {str(exc)[:200]} [{tb[:150]}]"
            return Outcome(case.name, "fail", message, _specialized(runner))
        outputs = list(out) if isinstance(out, tuple) else [out]
        why = compare(expected, outputs, case.rtol, case.atol)
        if why:
            return Outcome(case.name, "fail", why, _specialized(runner))
    return Outcome(case.name, "pass", "", _specialized(runner))


def _specialized(runner) -> tuple:
    return tuple(getattr(runner, "specialized_inputs", ()))


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


def run_case(case, engine: str = "compile") -> Outcome:
    """Run one node test case through `engine` (see ENGINES), the model as it is. A model whose shapes
    depend on an input's value (reduction axes, a Reshape target fed as an input) runs specialized on the
    test's values, as shapeflow.compile does for users; `specialized` names those inputs."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if engine == "onnxruntime":
            return _run_onnxruntime(case)
        return _run_shapeflow(case, engine)


def summarize(outcomes: list[Outcome]) -> dict:
    """Counts ("pass", "fail", "unsupported", "total", "pass_rate") of the models as they are;
    "specialized" counts the passing cases that specialized on input values."""
    rows = [o.status for o in outcomes]
    out = {s: sum(status == s for status in rows) for s in ("pass", "fail", "unsupported")}
    out["total"] = len(rows)
    out["pass_rate"] = round(out["pass"] / len(rows), 4) if rows else 0.0
    out["specialized"] = sum(o.status == "pass" and bool(o.specialized) for o in outcomes)
    return out
