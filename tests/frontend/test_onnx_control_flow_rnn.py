"""ONNX ops imported by inlining (function bodies: SwiGLU, HannWindow; If on a known condition; Scan and
Loop unrolled over static trip counts) and the unrolled recurrences RNN, GRU and LSTM, compiled for the CPU
and compared with onnx's reference evaluator (onnxruntime for sequence_lens, which the reference ignores).
What cannot be unrolled is refused with UnsupportedError naming the op."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import shapeflow as sf  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402

F = TensorProto.FLOAT
rng = np.random.default_rng(11)


def _model(nodes, inputs, outputs, inits=(), opset: int = 22):
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _init(name, array):
    return onnx.numpy_helper.from_array(np.asarray(array), name)


def _check(model, feeds, rtol=1e-5, atol=1e-5):
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    want = ReferenceEvaluator(model).run(None, dict(zip(names, feeds)))
    got = sf.compile(from_onnx(model), target="cpu")(*feeds)
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def test_swiglu_expands_its_function_body():
    node = helper.make_node("SwiGLU", ["a", "b"], ["y"], alpha=1.5)
    model = _model([node], [_vi("a", ["n", 6]), _vi("b", ["n", 6])], [_vi("y", ["n", 6])], opset=28)
    for n in (1, 7):
        _check(model, [rng.standard_normal((n, 6)).astype(np.float32) for _ in range(2)])


@pytest.mark.parametrize("periodic", [0, 1])
def test_hann_window_with_a_known_size(periodic):
    node = helper.make_node("HannWindow", ["size"], ["w"], periodic=periodic)
    model = _model([node], [], [_vi("w", [11])], [_init("size", np.array(11, np.int64))], opset=17)
    _check(model, [])


def _branch(name, value):
    out = _vi(f"{name}_out", [3])
    return helper.make_graph(
        [helper.make_node("Add", ["x", f"{name}_c"], [f"{name}_out"])],
        name,
        [],
        [out],
        [_init(f"{name}_c", np.full(3, value, np.float32))],
    )


@pytest.mark.parametrize("cond", [True, False])
def test_if_on_a_known_condition_inlines_one_branch(cond):
    node = helper.make_node(
        "If", ["c"], ["y"], then_branch=_branch("then", 1.0), else_branch=_branch("else", -1.0)
    )
    model = _model([node], [_vi("x", [3])], [_vi("y", [3])], [_init("c", np.array(cond))])
    _check(model, [np.arange(3, dtype=np.float32)])


def test_if_on_a_run_time_condition_is_refused():
    node = helper.make_node(
        "If", ["c"], ["y"], then_branch=_branch("then", 1.0), else_branch=_branch("else", -1.0)
    )
    model = _model([node], [_vi("x", [3]), _vi("c", [], TensorProto.BOOL)], [_vi("y", [3])])
    with pytest.raises(sf.UnsupportedError, match="If"):
        from_onnx(model)


def _scan_sum_body():
    """state' = state + x_t; out_t = state' * 2"""
    return helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
            helper.make_node("Mul", ["s_out", "two"], ["y_t"]),
        ],
        "body",
        [_vi("s_in", [2]), _vi("x_t", [2])],
        [_vi("s_out", [2]), _vi("y_t", [2])],
        [_init("two", np.full(2, 2.0, np.float32))],
    )


@pytest.mark.parametrize("length", [1, 5])
@pytest.mark.parametrize("direction", [0, 1])
def test_scan_unrolls_a_static_length(length, direction):
    node = helper.make_node(
        "Scan",
        ["s0", "xs"],
        ["s", "ys"],
        body=_scan_sum_body(),
        num_scan_inputs=1,
        scan_input_directions=[direction],
        scan_output_directions=[direction],
    )
    model = _model([node], [_vi("s0", [2]), _vi("xs", [length, 2])], [_vi("s", [2]), _vi("ys", [length, 2])])
    s0, xs = rng.standard_normal(2).astype(np.float32), rng.standard_normal((length, 2)).astype(np.float32)
    state, ys = s0, np.zeros_like(xs)
    for t in range(length) if direction == 0 else reversed(range(length)):  # onnx's reference: forward only
        state = state + xs[t]
        ys[t] = state * 2
    got_state, got_ys = sf.compile(from_onnx(model), target="cpu")(s0, xs)
    np.testing.assert_allclose(got_state, state, rtol=1e-6)
    np.testing.assert_allclose(got_ys, ys, rtol=1e-6)


def test_scan_over_a_symbolic_length_is_refused():
    node = helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], body=_scan_sum_body(), num_scan_inputs=1)
    model = _model([node], [_vi("s0", [2]), _vi("xs", ["t", 2])], [_vi("s", [2]), _vi("ys", ["t", 2])])
    with pytest.raises(sf.UnsupportedError, match="Scan.*symbolic"):
        from_onnx(model)


def _loop_model(trips_known: bool):
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Cast", ["i"], ["i_f"], to=F),
            helper.make_node("Add", ["acc_in", "i_f"], ["acc_out"]),
            helper.make_node("Identity", ["acc_out"], ["scan_out"]),
        ],
        "body",
        [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL), _vi("acc_in", [2])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", [2]), _vi("scan_out", [2])],
    )
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "all"], body=body)
    inits = [_init("cond", np.array(True))]
    inputs = [_vi("acc0", [2])]
    if trips_known:
        inits.append(_init("M", np.array(4, np.int64)))
    else:
        inputs.append(_vi("M", [], TensorProto.INT64))
    return _model([node], inputs, [_vi("acc", [2]), _vi("all", [4, 2])], inits)


def test_loop_unrolls_a_known_trip_count():
    _check(_loop_model(True), [rng.standard_normal(2).astype(np.float32)])


def test_loop_with_a_run_time_trip_count_is_refused():
    with pytest.raises(sf.UnsupportedError, match="Loop"):
        from_onnx(_loop_model(False))


# -- RNN, GRU, LSTM ----------------------------------------------------------------------------------

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _recurrent_model(op_type, seq, batch, inp, hidden, direction, layout, with_optional, **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op_type]
    feeds = {
        "X": rng.standard_normal((batch, seq, inp) if layout else (seq, batch, inp)).astype(np.float32),
        "W": (rng.standard_normal((dirs, g * hidden, inp)) * 0.5).astype(np.float32),
        "R": (rng.standard_normal((dirs, g * hidden, hidden)) * 0.5).astype(np.float32),
    }
    names = ["X", "W", "R"]
    if with_optional:
        feeds["B"] = rng.standard_normal((dirs, 2 * g * hidden)).astype(np.float32)
        names += ["B", ""]
        state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        feeds["initial_h"] = rng.standard_normal(state).astype(np.float32)
        names.append("initial_h")
        if op_type == "LSTM":
            feeds["initial_c"] = rng.standard_normal(state).astype(np.float32)
            feeds["P"] = rng.standard_normal((dirs, 3 * hidden)).astype(np.float32)
            names += ["initial_c", "P"]
    outs = ["Y", "Y_h"] + (["Y_c"] if op_type == "LSTM" else [])
    node = helper.make_node(
        op_type, names, outs, hidden_size=hidden, direction=direction, layout=layout, **attrs
    )
    y_shape = [batch, seq, dirs, hidden] if layout else [seq, dirs, batch, hidden]
    h_shape = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
    inputs = [_vi(n, list(feeds[n].shape)) for n in names if n]
    outputs = [_vi("Y", y_shape)] + [_vi(n, h_shape) for n in outs[1:]]
    return _model([node], inputs, outputs), [feeds[n] for n in names if n]


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize(
    "seq,batch,direction,layout,with_optional",
    [(1, 1, "forward", 0, False), (5, 3, "reverse", 0, True), (3, 2, "bidirectional", 1, True)],
)
def test_recurrent_ops_match_reference(op_type, seq, batch, direction, layout, with_optional):
    model, feeds = _recurrent_model(op_type, seq, batch, 3, 5, direction, layout, with_optional)
    _check(model, feeds, rtol=1e-4, atol=1e-5)


def test_gru_linear_before_reset():
    model, feeds = _recurrent_model("GRU", 4, 2, 3, 5, "forward", 0, True, linear_before_reset=1)
    _check(model, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op_type", ["GRU", "LSTM"])
def test_clip_matches_onnxruntime(op_type):
    ort = pytest.importorskip("onnxruntime")  # onnx's reference evaluator ignores clip
    model, feeds = _recurrent_model(op_type, 4, 2, 3, 5, "bidirectional", 0, True, clip=0.7)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in model.graph.input]
    want = session.run(None, dict(zip(names, feeds)))
    got = sf.compile(from_onnx(model), target="cpu")(*feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_lstm_sequence_lens_masks_finished_entries():
    ort = pytest.importorskip("onnxruntime")
    seq, batch, hidden = 4, 3, 5
    model, feeds = _recurrent_model("LSTM", seq, batch, 3, hidden, "forward", 0, False)
    node = model.graph.node[0]
    node.input.extend(["", "lens"])
    model.graph.input.append(_vi("lens", [batch], TensorProto.INT32))
    lens = np.array([4, 1, 2], np.int32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"X": feeds[0], "W": feeds[1], "R": feeds[2], "lens": lens})
    got = sf.compile(from_onnx(model), target="cpu")(*feeds, lens)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_recurrence_over_a_symbolic_sequence_is_refused():
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=2)
    model = _model(
        [node], [_vi("X", ["t", 1, 2]), _vi("W", [1, 2, 2]), _vi("R", [1, 2, 2])], [_vi("Y", ["t", 1, 1, 2])]
    )
    with pytest.raises(sf.UnsupportedError, match="RNN.*symbolic"):
        from_onnx(model)
