"""The command line on ONNX models: the README flow on the embedded encoder (compile --example, run,
inspect), outputs checked against onnxruntime, and bad ONNX input (truncated files, an unsupported op, a wrong
input, a dim outside its range): one line on stderr, a non-zero exit, no traceback."""

import re

import numpy as np
import onnx
import pytest
from e2e_models import onnxruntime_outputs
from onnx import TensorProto, helper

from shapeflow.cli import main
from shapeflow.examples_embedded import ENCODER_CONFIG, ENCODER_FILE


def _one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_embedded_model_is_small_and_valid():
    assert ENCODER_FILE.stat().st_size < 2 * 1024 * 1024
    model = onnx.load(str(ENCODER_FILE))
    onnx.checker.check_model(model, full_check=True)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq", ENCODER_CONFIG["hidden"]]
    ops = {n.op_type for n in model.graph.node}
    assert {"LayerNormalization", "Erf", "Softmax", "MatMul"} <= ops


def test_encoder_through_the_command_line(tmp_path, capsys):
    """compile --example once (one test, so one compile per test process), then run, inspect, bad inputs."""
    encoder_sfa = tmp_path / "encoder.sfa"
    assert main(["compile", "--example", "-o", str(encoder_sfa), "--quiet"]) == 0
    assert f"compiled encoder.onnx -> {encoder_sfa}" in capsys.readouterr().out
    _readme_flow_matches_onnxruntime(encoder_sfa, tmp_path, capsys)
    _inspect_onnx_and_artifact(encoder_sfa, capsys)
    _bad_run_inputs_are_one_line_errors(encoder_sfa, tmp_path, capsys)


def _readme_flow_matches_onnxruntime(encoder_sfa, tmp_path, capsys):
    assert main(["run", str(encoder_sfa), "--shape", "batch=2", "--shape", "seq=17", "--bench", "3"]) == 0
    text = capsys.readouterr().out
    assert "x: float32 (2, 17, 64) random" in text and "out: float32 (2, 17, 64)" in text
    assert re.search(r"median [\d.]+ ms, best [\d.]+ ms", text)

    for batch, seq in [(1, 1), (3, 29)]:
        x = np.random.default_rng(seq).standard_normal((batch, seq, 64)).astype("float32")
        np.save(tmp_path / "x.npy", x)
        out = tmp_path / f"out{seq}"
        assert (
            main(["run", str(encoder_sfa), "--input", f"x={tmp_path / 'x.npy'}", "--save-outputs", str(out)])
            == 0
        )
        (expected,) = onnxruntime_outputs(onnx.load(str(ENCODER_FILE)), {"x": x})
        np.testing.assert_allclose(np.load(out / "out.npy"), expected, rtol=1e-3, atol=1e-3)


def _inspect_onnx_and_artifact(encoder_sfa, capsys):
    assert main(["inspect", str(ENCODER_FILE)]) == 0
    text = capsys.readouterr().out
    assert "x: float32(batch, seq, 64)" in text and "y: float32(batch, seq, 64)" in text
    assert "LayerNormalization 4" in text and "memory plan" in text and "kernels (" in text
    assert main(["inspect", str(encoder_sfa)]) == 0
    text = capsys.readouterr().out
    assert "batch in 1..32" in text and "seq in 1..256" in text and "memory plan of main" in text
    assert re.search(r"kernels \((\d+)\)", text) and "layer_norm" in text


def test_example_command_checks_the_encoder(capsys):
    assert main(["example", "--shapes", "1x1", "2x5", "-q"]) == 0
    text = capsys.readouterr().out
    assert "batch=2   seq=5" in text and text.count("[ok]") == 2 and "WRONG" not in text


@pytest.mark.parametrize("keep", [0.0, 0.002, 0.5, 0.97])
def test_truncated_onnx_is_one_line_error(tmp_path, capsys, keep):
    data = ENCODER_FILE.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: int(len(data) * keep)])
    _one_line_error(
        capsys, main(["compile", str(tmp_path / "cut.onnx"), "-o", str(tmp_path / "o.sfa")]), "ONNX"
    )
    assert not (tmp_path / "o.sfa").exists()


def _unsupported_model():
    from shapeflow.frontend import supported_ops

    # (op, attributes, output shape) of standard ops over a float (n, 3, 3) input
    candidates = [
        ("Det", {}, ["n"]),
        ("Hardmax", {}, ["n", 3, 3]),
        ("Einsum", {"equation": "bij->bji"}, ["n", 3, 3]),
        ("Unique", {}, ["m"]),  # a data-dependent output shape: stays refused
    ]
    op, attrs, out_shape = next(c for c in candidates if c[0] not in supported_ops())
    node = helper.make_node(op, ["a"], ["b"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3, 3])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, out_shape)],
    )
    return op, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_op_refused_at_compile_time(tmp_path, capsys):
    op, model = _unsupported_model()
    onnx.save(model, tmp_path / "m.onnx")
    _one_line_error(capsys, main(["compile", str(tmp_path / "m.onnx")]), "UnsupportedError", op)
    _one_line_error(capsys, main(["inspect", str(tmp_path / "m.onnx")]), "UnsupportedError", op)


def _bad_run_inputs_are_one_line_errors(encoder_sfa, tmp_path, capsys):
    sfa = str(encoder_sfa)
    np.save(tmp_path / "f64.npy", np.zeros((1, 4, 64)))
    np.save(tmp_path / "rank2.npy", np.zeros((4, 64), "float32"))
    np.save(tmp_path / "width.npy", np.zeros((1, 4, 65), "float32"))
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path / 'f64.npy'}"]), "dtype")
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path / 'rank2.npy'}"]), "rank")
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path / 'width.npy'}"]), "ShapeError", "64")
    _one_line_error(capsys, main(["run", sfa, "--shape", "seq=257"]), "outside the range 1..256")
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path / 'missing.npy'}"]), "no such file")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path / 'junk.npy'}"]), "cannot read")
    _one_line_error(capsys, main(["compile", "--example", "--dim", "sequence=1..8"]), "sequence")
    _one_line_error(capsys, main(["compile", "--example", "--dim", "seq=8..1"]), "empty")
    _one_line_error(capsys, main(["run", str(ENCODER_FILE)]), "compile the model first")


def test_onnx_input_names_and_default_output(tmp_path, monkeypatch, capsys):
    """--input takes the ONNX input's own name ("input.1", a parameter named input_1); without -o the
    artifact lands in the current directory."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input.1"], ["out.1"])],
        "relu",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("out.1", TensorProto.FLOAT, ["n", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "models").mkdir()
    onnx.save(model, tmp_path / "models" / "relu.onnx")
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "models/relu.onnx", "-q"]) == 0
    assert (tmp_path / "relu.sfa").is_file() and not (tmp_path / "models" / "relu.sfa").exists()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "relu.sfa", "--input", "input.1=x.npy", "--save-outputs", "out"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "out.npy"), np.maximum(x, 0))
    capsys.readouterr()
    _one_line_error(capsys, main(["run", "relu.sfa", "--input", "input.2=x.npy"]), "names no parameter")
