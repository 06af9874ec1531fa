"""The campaign runner: a short campaign writes its corpus and status; killed mid-way and resumed, it loses
no corpus entry or finding; the CLI runs it and reports on it."""

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from shapeflow.cli import main
from shapeflow.fuzz.campaign import CampaignOptions, run_campaign


def _snapshot(out: Path) -> dict:
    files = list((out / "corpus").glob("*.json")) + list((out / "findings").glob("*/*"))
    return {str(p.relative_to(out)): p.read_text() for p in files}


def test_short_campaign_writes_corpus_status_and_coverage(tmp_path):
    status = io.StringIO()
    summary = run_campaign(
        CampaignOptions(tmp_path, iterations=25, workers=2, seed=1, generated_seeds=2, status_stream=status)
    )
    assert summary["stats"]["tests"] >= 25
    assert summary["arcs"] > 1000  # passes, verifier, interpreter and printer all ran under coverage
    corpus = list((tmp_path / "corpus").glob("c*.json"))
    assert len(corpus) == summary["corpus"] >= 10  # the te operators and generated seeds at least
    saved = json.loads((tmp_path / "status.json").read_text())
    assert saved["stats"]["tests"] == summary["stats"]["tests"]
    rows = (tmp_path / "coverage.csv").read_text().splitlines()
    assert rows[0].startswith("elapsed_s,tests") and len(rows) >= 2
    assert "tests" in status.getvalue() and "arcs" in status.getvalue()
    assert not list((tmp_path / "workers").glob("*.json"))


def test_campaign_killed_and_resumed_loses_nothing(tmp_path):
    out = tmp_path / "camp"
    cmd = [
        sys.executable,
        "-m",
        "shapeflow.cli",
        "fuzz",
        "--time",
        "120s",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = out / "status.json"
            if status.exists() and json.loads(status.read_text())["stats"]["tests"] >= 15:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the campaign made no progress")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    before = _snapshot(out)
    tests_before = json.loads((out / "status.json").read_text())["stats"]["tests"]
    assert any(k.startswith("corpus/") for k in before)

    # Without --resume the folder is refused rather than overwritten.
    assert main(["fuzz", "--iterations", "1", "--out", str(out)]) == 1

    assert main(["fuzz", "--iterations", "10", "--workers", "2", "--out", str(out), "--resume"]) == 0
    after = _snapshot(out)
    for name, text in before.items():
        if name.endswith("metadata.json"):
            assert name in after  # hit counts may grow
        else:
            assert after.get(name) == text, f"{name} was lost or changed by the resume"
    assert json.loads((out / "status.json").read_text())["stats"]["tests"] >= tests_before + 10


def test_report_command_prints_throughput_and_writes_csv(tmp_path, capsys):
    run_campaign(CampaignOptions(tmp_path, iterations=6, workers=1, generated_seeds=1, status_stream=None))
    assert main(["fuzz", "report", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "tests_per_s" in printed and "valid_rate" in printed
    assert (tmp_path / "report" / "coverage.csv").read_text().startswith("elapsed_s,tests,arcs")
