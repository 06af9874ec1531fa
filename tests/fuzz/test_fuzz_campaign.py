"""The campaign runner: a short campaign writes its corpus and status; killed mid-way and resumed, it loses
no corpus entry or finding; the CLI runs it and reports on it."""

import io
import json
import os
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


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []  # not Linux: nothing to check


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (the test process is not its parent and cannot reap it)


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
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    # Orphaned workers leave by themselves (they used to hang at exit, flushing an answer into a pipe that
    # nobody read).
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived the killed campaign"
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


ORPHANING_PARENT = """
import multiprocessing, os, sys
from shapeflow.fuzz.worker import worker_main
if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "workers"), exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    tasks, results, cell = ctx.Queue(), ctx.Queue(), ctx.Value("i", 0)
    worker = ctx.Process(target=worker_main, args=(0, tasks, results, out, cell, {"minimize": False}))
    worker.start()
    tasks.put({"kind": "mutate", "mode": "generate-only", "test_seed": 1})
    print(worker.pid, flush=True)
    results._reader.poll(300)  # the answer is in the pipe (a first test's answer is larger than the pipe)
    os._exit(0)  # the campaign dies without reading it
"""


def test_worker_whose_campaign_died_with_an_unread_answer_exits(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(ORPHANING_PARENT)
    pid_file = tmp_path / "pid"
    with open(pid_file, "w") as fh:  # a file, not a pipe: the worker inherits it and may outlive the parent
        subprocess.run(
            [sys.executable, str(script), str(tmp_path / "out")],
            stdout=fh,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
    pid = int(pid_file.read_text().split()[0])
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the orphaned worker never exited"
