"""The differential oracle against apache-tvm: the seed operators translate, build and agree with our
interpreter; a planted TVM miscompilation (exp translated as exp2) becomes a TVM finding whose standalone
repro.py fails; undefined behaviour and racy loops are filtered, never reported; the campaign counts
verdicts. Skipped when tvm does not import."""

import json
import random
import subprocess
import sys

import pytest

from shapeflow.fuzz import tvm_translate
from shapeflow.fuzz.campaign import CampaignOptions, run_campaign
from shapeflow.fuzz.findings import record_finding
from shapeflow.fuzz.inputs import copy_arguments, make_arguments
from shapeflow.fuzz.oracles import TestCase, as_func, check
from shapeflow.fuzz.seeds import SEED_OPERATORS
from shapeflow.fuzz.tvm_oracle import (
    check_tvm,
    interpret_uncached,
    order_dependent,
    tvm_available,
    watch_signed_overflow,
)
from shapeflow.fuzz.tvm_translate import NotTranslatable, to_tvmscript
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir.interpreter import run

pytestmark = pytest.mark.skipif(not tvm_available(), reason="apache-tvm is not installed (the tvm extra)")

EXP_PROGRAM = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n, 4), "float32"), B: T.Buffer((n, 4), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    for i in T.serial(n):
        for j in T.vectorized(4):
            B[i, j] = T.exp(A[i, j]) + T.float32(1.0)
"""

OVERFLOW_PROGRAM = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n,), "int32"), B: T.Buffer((n,), "int32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    for i in T.serial(n):
        B[i] = A[i] * T.int32(2147483647) + T.int32(2147483647)
"""

RACY_PROGRAM = """# shapeflow.ir v1
@T.prim_func
def main(B: T.Buffer((4,), "int32")):
    for i in T.vectorized(4):
        B[0] = B[0] + B[i]
"""


def _run_reference(func, seed=3):
    args = make_arguments(func, seed)
    expected = copy_arguments(args)
    run(func, *expected)
    return args, expected


@pytest.mark.parametrize("name", sorted(SEED_OPERATORS))
def test_seed_operators_agree_with_tvm(name):
    func = SEED_OPERATORS[name]()
    args, expected = _run_reference(func)
    verdict = check_tvm(func, args, expected)
    assert verdict.status == "agree", f"{verdict.status}: {verdict.message}\n{verdict.script}"


def test_generated_programs_agree_or_are_skipped_never_bugs():
    from shapeflow.fuzz.generate import generate_prim_func

    rng = random.Random(11)
    statuses = []
    for k in range(12):
        test = TestCase(to_text(generate_prim_func(rng)), [], k)
        outcome = check(test, compile_oracle=False, tvm_oracle=True)
        assert not outcome.is_bug, f"{outcome.symptom}: {outcome.message}"
        statuses.append(outcome.extra.get("tvm"))
    assert statuses.count("agree") >= 8, statuses


def test_planted_tvm_miscompilation_is_a_tvm_finding_with_a_failing_repro(tmp_path, monkeypatch):
    monkeypatch.setitem(tvm_translate.INTRINSIC_NAMES, "exp", "T.exp2")  # TVM now "computes" 2**x
    test = TestCase(EXP_PROGRAM, [], 5)
    outcome = check(test, compile_oracle=False, tvm_oracle=True)
    assert outcome.symptom == "tvm-wrong-result" and outcome.stage == "tvm", outcome.message
    key, new = record_finding(tmp_path, test, outcome, 0)
    assert new
    folder = tmp_path / "findings" / key
    meta = json.loads((folder / "metadata.json").read_text())
    import tvm

    assert meta["tvm_version"] == tvm.__version__
    repro = (folder / "repro.py").read_text()
    assert "shapeflow" not in repro.split('"""')[2]  # standalone: the code imports tvm and numpy only
    done = subprocess.run([sys.executable, str(folder / "repro.py")], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "differs" in done.stdout


def test_signed_overflow_is_filtered_not_reported():
    func = as_func(parse(OVERFLOW_PROGRAM))
    args, expected = _run_reference(func)
    with watch_signed_overflow() as seen:
        interpret_uncached(func, args)
    assert seen and "int32 overflow" in seen[0]
    verdict = check_tvm(func, args, expected)
    assert verdict.status in ("agree", "filtered")
    outcome = check(TestCase(OVERFLOW_PROGRAM, [], 3), compile_oracle=False, tvm_oracle=True)
    assert not outcome.is_bug


def test_order_dependent_vectorized_loop_is_recognized():
    func = as_func(parse(RACY_PROGRAM))
    assert "B" in order_dependent(func)
    assert order_dependent(as_func(parse(EXP_PROGRAM))) == ""


def test_untranslatable_constructs_are_refused_not_bugs():
    from shapeflow.ir import expr as E
    from shapeflow.ir.tir import stmt as S

    func = as_func(parse(EXP_PROGRAM))
    vec = S.Evaluate(E.IntImm(E.DataType("int32"), 0))
    with pytest.raises(NotTranslatable):
        to_tvmscript(func.with_body(S.seq(vec, func.body)))


def test_campaign_with_tvm_counts_verdicts(tmp_path):
    summary = run_campaign(
        CampaignOptions(
            tmp_path, iterations=12, workers=1, seed=2, generated_seeds=2, status_stream=None, tvm=True
        )
    )
    stats = summary["stats"]
    assert summary["tvm"] is True
    assert stats.get("tvm_agree", 0) >= 3, stats
    assert sum(v for k, v in stats.items() if k.startswith("tvm_")) >= stats["valid"] - 2


def test_cli_tvm_flag_turns_the_oracle_on(tmp_path):
    from shapeflow.cli import main

    assert main(["fuzz", "--tvm", "--iterations", "3", "--workers", "1", "--out", str(tmp_path)]) == 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["tvm"] is True
    assert sum(v for k, v in status["stats"].items() if k.startswith("tvm_")) >= 1
