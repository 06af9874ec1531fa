"""`shapeflow fuzz report DIR`: coverage over time and over tests (CSV, and a PNG when matplotlib is
importable), throughput, valid-test rate and the bug table of a campaign folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from shapeflow.errors import UnsupportedError
from shapeflow.fuzz.findings import load_findings


def read_rows(out_dir: Path) -> list[dict]:
    path = Path(out_dir) / "coverage.csv"
    if not path.exists():
        raise UnsupportedError(f"{out_dir} holds no campaign (no coverage.csv)")
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def report(out_dir: Path, stream) -> dict:
    """Print the report to `stream`, write report/coverage.csv (and coverage.png); return the numbers."""
    out_dir = Path(out_dir)
    rows = read_rows(out_dir)
    status = json.loads((out_dir / "status.json").read_text()) if (out_dir / "status.json").exists() else {}
    stats = status.get("stats", {})
    findings = load_findings(out_dir)
    target = out_dir / "report"
    target.mkdir(exist_ok=True)
    with open(target / "coverage.csv", "w") as fh:
        fh.write("elapsed_s,tests,arcs\n")
        for r in rows:
            fh.write(f"{r['elapsed_s']:.2f},{int(r['tests'])},{int(r['arcs'])}\n")
    plot_note = _plot(rows, target / "coverage.png")
    plotted = plot_note is None
    tests, elapsed = stats.get("tests", 0), stats.get("elapsed", 0.0)
    numbers = {
        "tests": tests,
        "elapsed_s": round(elapsed, 2),
        "tests_per_s": round(tests / elapsed, 2) if elapsed else 0.0,
        "tests_per_cpu_s": round(tests / stats["cpu_s"], 2) if stats.get("cpu_s") else 0.0,
        "valid_rate": round(stats.get("valid", 0) / tests, 3) if tests else 0.0,
        "arcs": int(rows[-1]["arcs"]) if rows else 0,
        "seed_arcs": stats.get("seed_arcs", 0),
        "corpus": int(rows[-1]["corpus"]) if rows else 0,
        "bugs": len(findings),
        "tvm_bugs": sum(1 for f in findings if str(f.get("symptom", "")).startswith("tvm")),
        "plot": str(target / "coverage.png") if plotted else f"not drawn: {plot_note}",
    }
    tvm = {k[4:]: v for k, v in stats.items() if k.startswith("tvm_")}
    if tvm:  # the differential oracle's verdicts (agree, not_translatable, refused, filtered, ...)
        numbers["tvm_verdicts"] = tvm
    for key, value in numbers.items():
        stream.write(f"{key:>15}: {value}\n")
    stream.write(f"\n{'id':<13} {'symptom':<22} {'stage':<28} {'hits':>5}  message\n")
    for f in findings:
        message = " ".join(str(f.get("message", "")).split())[:70]
        stream.write(
            f"{f['id']:<13} {f['symptom']:<22} {str(f['stage'])[:28]:<28} {f.get('hits', 1):>5}  {message}\n"
        )
    return numbers


def _plot(rows: list[dict], path: Path) -> str | None:
    """Draw coverage over time and over tests; None when drawn, else why not (the report says it)."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed (pip install 'shapeflow[fuzz]' or pip install matplotlib)"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot([r["elapsed_s"] for r in rows], [r["arcs"] for r in rows])
    left.set_xlabel("seconds")
    left.set_ylabel("arcs covered")
    right.plot([r["tests"] for r in rows], [r["arcs"] for r in rows])
    right.set_xlabel("tests")
    right.set_ylabel("arcs covered")
    fig.suptitle("shapeflow fuzz: arc coverage")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


__all__ = ["report", "read_rows"]
