"""`shapeflow fuzz report DIR`: the coverage PNG is drawn when matplotlib (the `fuzz` extra) is installed,
and the report says clearly that it was not when matplotlib is missing; the CSV is written either way."""

import io
import json
import sys

import pytest

from shapeflow.cli import main
from shapeflow.fuzz.report import report


def _campaign_folder(path):
    rows = ["elapsed_s,tests,valid,arcs,corpus,bugs"]
    rows += [f"{t:.2f},{3 * t},{2 * t},{5000 + 40 * t},{20 + t},0" for t in range(12)]
    (path / "coverage.csv").write_text("\n".join(rows) + "\n")
    stats = {"tests": 33, "valid": 22, "elapsed": 11.0, "seed_arcs": 5000}
    (path / "status.json").write_text(json.dumps({"stats": stats}))
    return path


def test_report_draws_the_png_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    folder = _campaign_folder(tmp_path)
    assert main(["fuzz", "report", str(folder)]) == 0
    png = folder / "report" / "coverage.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert str(png) in printed and "tests_per_s: 3.0" in printed


def test_report_says_when_matplotlib_is_missing(tmp_path, monkeypatch):
    folder = _campaign_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = io.StringIO()
    numbers = report(folder, out)
    assert not (folder / "report" / "coverage.png").exists()
    assert numbers["plot"].startswith("not drawn: matplotlib is not installed")
    assert "pip install" in out.getvalue()
    assert (folder / "report" / "coverage.csv").read_text().count("\n") == 13
