"""`shapeflow compile / run / inspect` on graph modules in the text format (no ONNX needed), and the
command line's error contract: one line on stderr, a non-zero exit, no traceback (unless --debug)."""

import io
import re
import subprocess
import sys

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.cli import main
from shapeflow.cli_model import parse_type_text
from shapeflow.cli_progress import Progress
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op
from shapeflow.passes.infra import PassContext


def mlp_module():
    """x (n, 12) -> linear 16 + relu -> linear 3; symbolic batch n, weights as parameters."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, 12), "float32"))
    w1 = GraphVar("w1", TensorType((16, 12), "float32"))
    w2 = GraphVar("w2", TensorType((3, 16), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, w1, w2]):
        with bb.dataflow():
            h = bb.emit(op.relu(op.linear(x, w1)))
            out = bb.emit_output(op.linear(h, w2))
        bb.emit_func_output(out)
    return bb.get()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "mlp.txt").write_text(mlp_module().script())
    assert main(["compile", str(folder / "mlp.txt"), "-o", str(folder / "mlp.sfa"), "--dim", "n=1..40"]) == 0
    return folder


def _one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_compile_run_inspect_round_trip(compiled, capsys):
    capsys.readouterr()
    x = np.random.default_rng(1).standard_normal((7, 12)).astype("float32")
    w1 = np.random.default_rng(2).standard_normal((16, 12)).astype("float32")
    w2 = np.random.default_rng(3).standard_normal((3, 16)).astype("float32")
    for name, value in (("x", x), ("w1", w1), ("w2", w2)):
        np.save(compiled / f"{name}.npy", value)
    args = ["run", str(compiled / "mlp.sfa"), "--bench", "3", "--save-outputs", str(compiled / "out")]
    args += [f"--input={n}={compiled / n}.npy" for n in ("x", "w1", "w2")]
    assert main(args) == 0
    text = capsys.readouterr().out
    expected = np.maximum(x @ w1.T, 0) @ w2.T
    np.testing.assert_allclose(np.load(compiled / "out" / "out.npy"), expected, rtol=1e-4, atol=1e-4)
    summary = re.search(r"out: float32 \(7, 3\)  min (\S+)  max (\S+)  mean (\S+)", text)
    assert summary, text
    stats = [float(v) for v in summary.groups()]
    np.testing.assert_allclose(stats, [expected.min(), expected.max(), expected.mean()], rtol=1e-3, atol=1e-3)
    assert "n=7 (from --input x)" in text and "median" in text and "best" in text

    assert main(["inspect", str(compiled / "mlp.sfa")]) == 0
    text = capsys.readouterr().out
    assert "x: float32(n, 12)" in text and "n in 1..40" in text and "kernels (" in text
    assert main(["inspect", str(compiled / "mlp.txt"), "--dim", "n=1..40"]) == 0
    text = capsys.readouterr().out
    assert "memory plan" in text and "kernels (" in text


@pytest.mark.parametrize("n", [1, 13, 40])
def test_random_inputs_sized_from_shape(compiled, capsys, n):
    capsys.readouterr()
    assert main(["run", str(compiled / "mlp.sfa"), "--shape", f"n={n}"]) == 0
    text = capsys.readouterr().out
    assert f"x: float32 ({n}, 12) random" in text and f"out: float32 ({n}, 3)" in text


def test_default_dim_clamped_into_bounds(tmp_path, capsys):
    (tmp_path / "m.txt").write_text(mlp_module().script())
    assert (
        main(["compile", str(tmp_path / "m.txt"), "-o", str(tmp_path / "m.sfa"), "--dim", "n=2..3", "-q"])
        == 0
    )
    assert main(["run", str(tmp_path / "m.sfa")]) == 0
    assert "n=3 (default, bounds 2..3)" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(compiled, tmp_path, capsys):
    sfa = str(compiled / "mlp.sfa")
    np.save(tmp_path / "rank1.npy", np.zeros(12, "float32"))
    np.save(tmp_path / "f64.npy", np.zeros((2, 12)))
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path}/rank1.npy"]), "ShapeError", "rank")
    _one_line_error(capsys, main(["run", sfa, "--input", f"x={tmp_path}/f64.npy"]), "ShapeError", "dtype")
    _one_line_error(capsys, main(["run", sfa, "--input", "x=/no/such.npy"]), "no such file")
    _one_line_error(capsys, main(["run", sfa, "--shape", "n=41"]), "outside the range 1..40")
    _one_line_error(capsys, main(["run", sfa, "--shape", "m=4"]), "no symbolic dim")
    _one_line_error(capsys, main(["run", sfa, "--input", "y=/no/such.npy"]), "names no parameter")
    _one_line_error(capsys, main(["run", str(tmp_path / "missing.sfa")]), "no such file")
    txt = str(compiled / "mlp.txt")
    _one_line_error(capsys, main(["compile", txt, "-o", str(tmp_path / "a.sfa"), "--dim", "n=9..2"]), "empty")
    _one_line_error(capsys, main(["compile", txt, "--dim", "seq=1..4"]), "UnsupportedError", "seq")
    _one_line_error(capsys, main(["compile", txt, "--dim", "n:1-4"]), "NAME=LO..HI")
    (tmp_path / "bad.txt").write_text("@R.function\ndef main(x: R.Tensor((n,), 'float32'):\n")
    _one_line_error(capsys, main(["compile", str(tmp_path / "bad.txt")]), "ParseError")
    cut = (compiled / "mlp.sfa").read_bytes()
    (tmp_path / "cut.sfa").write_bytes(cut[: len(cut) // 2])
    _one_line_error(capsys, main(["run", str(tmp_path / "cut.sfa")]), "corrupted")
    (tmp_path / "cut.onnx").write_bytes(b"\x08\x07\x12\x04abc")  # protobuf cut inside a field
    _one_line_error(capsys, main(["compile", str(tmp_path / "cut.onnx")]), "ParseError", "ONNX")
    _one_line_error(capsys, main(["bogus-command"]), "invalid choice")
    _one_line_error(
        capsys, main(["compile", txt, "-o", str(tmp_path / "no" / "dir" / "a.sfa")]), "cannot write"
    )
    _one_line_error(capsys, main(["run", sfa, "--shape", "n=3", "--shape", "n=4"]), "given twice")


def test_debug_shows_the_traceback(compiled, capsys):
    assert main(["--debug", "run", str(compiled / "mlp.sfa"), "--shape", "n=99"]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert main(["run", str(compiled / "mlp.sfa"), "--shape", "n=99", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_real_process_error_and_help(compiled):
    proc = subprocess.run(
        [sys.executable, "-m", "shapeflow", "run", str(compiled / "mlp.sfa"), "--input", "x=/nope.npy"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for command in ("compile", "run", "inspect", "example"):
        proc = subprocess.run(
            [sys.executable, "-m", "shapeflow", command, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "examples:" in proc.stdout and f"shapeflow {command}" in proc.stdout


def test_progress_names_pipeline_stages():
    stream = io.StringIO()
    with Progress(stream=stream, enabled=True) as progress, PassContext(instruments=[progress]):
        progress.step("importing the model")
        sf.compile(mlp_module())
    text = stream.getvalue()
    assert "importing the model" in text and "graph passes: graph.fuse_ops" in text
    assert "lowering kernels" in text and "code generation (LLVM)" in text
    assert text.endswith("\r")  # the line is cleared at the end
    quiet = io.StringIO()
    with Progress(stream=quiet) as progress, PassContext(instruments=[progress]):  # not a tty: silent
        sf.compile(mlp_module())
    assert quiet.getvalue() == ""


def test_parse_type_text():
    p = parse_type_text("x", "float32(batch, seq, 64)")
    assert p.dtype == "float32" and p.dims == ("batch", "seq", 64)
    assert parse_type_text("s", "int64(7,)").dims == (7,)
    assert parse_type_text("e", "float32(n * 2, 3)").dims == (None, 3)
    assert parse_type_text("u", "float32(ndim=2)").dims is None
