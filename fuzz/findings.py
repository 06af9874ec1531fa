"""Findings on disk: one folder per unique bug, deduplicated by symptom and normalized stack.

findings/<id>/ holds metadata.json (symptom, stage, message, shapeflow version and git commit, seeds, how
many tests hit it), original.json (the test as found), minimized.json, repro.py (standalone: exits
non-zero while the bug is present) and log.txt (the traceback). Every file is written to a temporary name
and renamed, so a campaign killed at any moment leaves whole files only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import shapeflow
from shapeflow.fuzz.oracles import Outcome, TestCase

_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')


def normalized_stack(trace: str, depth: int = 4) -> str:
    """The innermost frames as `file:function` (no line numbers, no paths outside shapeflow folders)."""
    frames = [
        f"{os.path.basename(f)}:{fn}"
        for f, fn in _FRAME.findall(trace or "")
        if "/fuzz/" not in f and "site-packages" not in f and "python3" not in f
    ]
    return "|".join(frames[-depth:])


def _message_class(message: str) -> str:
    """The message without numbers, names of variables and quoted text: what stays the same across hits."""
    head = message.split(":")[0]
    head = re.sub(r"'[^']*'|`[^`]*`|\"[^\"]*\"", "Q", head)
    return re.sub(r"\d+", "N", head)[:80]


def bug_key(outcome: Outcome) -> str:
    stack = normalized_stack(outcome.trace)
    stage = re.sub(r"\(.*\)", "", outcome.stage)
    detail = stack or _message_class(outcome.message)
    raw = f"{outcome.symptom}|{stage}|{detail}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def git_commit() -> str:
    try:
        root = Path(shapeflow.__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip()
    except Exception:
        return ""


REPRO_TEMPLATE = '''"""Reproducer of a shapeflow fuzzer finding: {symptom} at {stage}.

{message}

Run: python repro.py   (exit status 1 while the bug is present, 0 once it is fixed)
"""

import sys

from shapeflow.fuzz.oracles import TestCase, check

TEST = TestCase(
    ir={ir!r},
    passes={passes!r},
    seed={seed!r},
    flags={flags!r},
    kind={kind!r},
    schedule={schedule!r},
)

if __name__ == "__main__":
{body}'''

IN_PROCESS_BODY = """    outcome = check(TEST, compile_oracle=True)
    if outcome.is_bug and outcome.symptom == {symptom!r}:
        print(f"bug reproduced: {{outcome.symptom}} at {{outcome.stage}}: {{outcome.message}}")
        print(outcome.trace)
        sys.exit(1)
    print(f"not reproduced (status {{outcome.status}})")
    sys.exit(0)
"""

# A crash or a hang would take the reproducer down with it: the test runs in a child process instead.
ISOLATED_BODY = """    from shapeflow.fuzz.isolated import IsolatedRunner

    with IsolatedRunner(timeout={timeout!r}, compile_oracle=True, tvm_oracle={tvm!r}) as runner:
        verdict = runner.run(TEST)
    if verdict.kind == {kind!r}:
        print(f"bug reproduced: {{verdict.kind}} in stage {{verdict.stage}} (exit code {{verdict.exitcode}})")
        sys.exit(1)
    print(f"not reproduced (the test ended as {{verdict.kind}})")
    sys.exit(0)
"""
LOST_SYMPTOMS = {"crash": "crash", "timeout": "timeout", "tvm-crash": "crash"}


def render_repro(test: TestCase, outcome: Outcome, timeout: float = 10.0) -> str:
    kind = LOST_SYMPTOMS.get(outcome.symptom)
    if kind is None:
        body = IN_PROCESS_BODY.format(symptom=outcome.symptom)
    else:
        body = ISOLATED_BODY.format(timeout=timeout, tvm=outcome.symptom.startswith("tvm"), kind=kind)
    return REPRO_TEMPLATE.format(
        symptom=outcome.symptom,
        stage=outcome.stage,
        message=outcome.message.replace('"""', "'''")[:500],
        ir=test.ir,
        passes=test.passes,
        seed=test.seed,
        flags=test.flags,
        kind=test.kind,
        schedule=test.schedule,
        body=body,
    )


def update_minimized(out_dir: Path, key: str, minimized: TestCase | None, note: str = "") -> None:
    """Store the minimized reproducer of an already recorded finding (a crash or timeout minimized after
    the fact, isolated); with None only the note is kept (e.g. "does not reproduce in isolation")."""
    folder = Path(out_dir) / "findings" / key
    meta_path = folder / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return
    if minimized is not None:
        outcome = Outcome("bug", meta["symptom"], meta["stage"], meta.get("message", ""))
        atomic_write(folder / "minimized.json", minimized.to_json())
        atomic_write(folder / "minimized.txt", minimized.ir)
        atomic_write(folder / "repro.py", render_repro(minimized, outcome))
        meta["minimized"] = True
        meta["passes"] = minimized.passes
    meta["minimize_note"] = note
    atomic_write(meta_path, json.dumps(meta, indent=1))


def record_finding(
    out_dir: Path, test: TestCase, outcome: Outcome, campaign_seed: int, minimized: TestCase | None = None
) -> tuple[str, bool]:
    """Write (or count a repeat of) the finding; returns (bug id, whether it is new)."""
    key = bug_key(outcome)
    folder = Path(out_dir) / "findings" / key
    meta_path = folder / "metadata.json"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            meta["hits"] = int(meta.get("hits", 1)) + 1
            atomic_write(meta_path, json.dumps(meta, indent=1))
        except Exception:
            pass
        return key, False
    best = minimized or test
    atomic_write(folder / "original.json", test.to_json())
    atomic_write(folder / "minimized.json", best.to_json())
    atomic_write(folder / "minimized.txt", best.ir)
    atomic_write(
        folder / "log.txt", f"{outcome.symptom} at {outcome.stage}\n{outcome.message}\n\n{outcome.trace}"
    )
    # A TVM finding's reproducer needs only tvm and numpy (oracles._tvm_stage wrote it).
    atomic_write(folder / "repro.py", outcome.extra.get("tvm_repro") or render_repro(best, outcome))
    if outcome.extra.get("tvm_script"):
        atomic_write(folder / "tvm_script.py", outcome.extra["tvm_script"])
    meta = {
        "id": key,
        "symptom": outcome.symptom,
        "stage": outcome.stage,
        "message": outcome.message[:2000],
        "stack": normalized_stack(outcome.trace),
        "shapeflow_version": shapeflow.__version__,
        "git_commit": git_commit(),
        "campaign_seed": campaign_seed,
        "test_seed": test.seed,
        "passes": best.passes,
        "flags": test.flags,
        "minimized": minimized is not None,
        "found_at": time.time(),
        "hits": 1,
    }
    if outcome.symptom.startswith("tvm"):
        from shapeflow.fuzz.tvm_oracle import tvm_version  # noqa: PLC0415

        meta["tvm_version"] = outcome.extra.get("tvm_version") or tvm_version()
        meta["confirmed_by_shapeflow_build"] = bool(outcome.extra.get("confirmed"))
    atomic_write(meta_path, json.dumps(meta, indent=1))  # last: a folder with metadata is complete
    return key, True


def load_findings(out_dir: Path) -> list[dict]:
    out = []
    for meta in sorted((Path(out_dir) / "findings").glob("*/metadata.json")):
        try:
            out.append(json.loads(meta.read_text()))
        except Exception:
            continue
    return out


__all__ = [
    "bug_key",
    "normalized_stack",
    "atomic_write",
    "record_finding",
    "load_findings",
    "render_repro",
    "update_minimized",
]
