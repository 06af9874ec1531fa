"""Before/expected pairs in the text format, one file per pass in cases/ (TVM's habit).

Each case is parsed, run through the pass named by its file (with the case's options), and compared with
the expected text by structural equality; then before and after run on the reference interpreter at
several sizes and must agree. A pass must also leave its own output unchanged when run again, or at least
keep its meaning, and return the very object when it does not apply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tir_pass_helpers import assert_same_meaning

import shapeflow.ir as sf_ir
from shapeflow.passes import get_pass

CASES_DIR = Path(__file__).parent / "cases"


def load_cases():
    found = []
    for path in sorted(CASES_DIR.glob("*.txt")):
        pass_name = path.stem
        for chunk in path.read_text().split("## case: ")[1:]:
            name, rest = chunk.split("\n", 1)
            options = {}
            if rest.startswith("## options: "):
                line, rest = rest.split("\n", 1)
                options = json.loads(line[len("## options: ") :])
            before, expected = rest.split("## before\n", 1)[1].split("## expected\n", 1)
            found.append(pytest.param(pass_name, options, before, expected, id=f"{pass_name}:{name.strip()}"))
    return found


CASES = load_cases()


def test_every_lowering_pass_has_cases():
    covered = {c.values[0] for c in CASES}
    assert covered >= {
        "lower-init-block",
        "convert-blocks-to-loops",
        "flatten-buffer",
        "simplify",
        "loop-partition",
        "unroll-loop",
        "vectorize-loop",
        "remove-no-op",
        "storage-rewrite",
    }


@pytest.mark.parametrize("pass_name, options, before, expected", CASES)
def test_pass_case(pass_name, options, before, expected):
    func = sf_ir.parse(before)
    want = sf_ir.parse(expected)
    got = get_pass(pass_name, **options)(func)
    sf_ir.assert_structural_equal(got, want)
    assert_same_meaning(func, got, sizes=(1, 5, 13))
    if sf_ir.structural_equal(func, want):
        assert got is func, "a pass that changes nothing must return the same object"
