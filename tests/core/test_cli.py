import subprocess
import sys

import shapeflow
from shapeflow.cli import main


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "shapeflow", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and shapeflow.__version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "shapeflow", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "shapeflow example" in out.stdout


def test_example_command_runs_and_checks(capsys):
    assert main(["example", "--kernel", "--sizes", "1", "13"]) == 0
    text = capsys.readouterr().out
    assert "n=1 " in text and "n=13" in text and "WRONG" not in text


def test_errors_are_one_line_with_nonzero_exit(capsys, monkeypatch):
    import shapeflow.examples_embedded as ex

    def broken(**_):
        raise shapeflow.ShapeError(
            "bad", function="rowsum", parameter="A", dimension=1, expected=1024, actual=3
        )

    monkeypatch.setattr(ex, "run_example", broken)
    assert main(["example", "--kernel"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ShapeError" in err and "parameter 'A'" in err
