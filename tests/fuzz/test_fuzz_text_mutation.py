"""Text-level mutation: every mutator changes the text in the way it says; mutants of the seeds parse and
verify or are counted invalid, never a bug; a parser that crashes with a non-shapeflow exception is reported
as an unexpected exception at the verify stage (not a dead worker)."""

import random

import pytest

from shapeflow.fuzz import oracles
from shapeflow.fuzz.mutate_passes import default_sequence
from shapeflow.fuzz.mutate_text import TEXT_MUTATORS, mutate_text
from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.fuzz.seeds import SEED_OPERATORS

TEXT = SEED_OPERATORS["matmul"]().script()


@pytest.mark.parametrize("name", sorted(TEXT_MUTATORS))
def test_each_text_mutator_changes_the_body_only(name):
    rng = random.Random(3)
    lines = TEXT.split("\n")
    for _ in range(10):
        out = TEXT_MUTATORS[name](lines, rng)
        assert out is not None
        assert out[:2] == lines[:2]  # header and decorator untouched
        if out != lines:
            return
    raise AssertionError(f"{name} never changed the text")


def test_text_mutants_are_valid_or_invalid_never_bugs():
    rng = random.Random(5)
    statuses = set()
    for k in range(40):
        text, _ = mutate_text(TEXT, rng)
        outcome = check(TestCase(text, default_sequence(), k), compile_oracle=False)
        assert not outcome.is_bug, f"{outcome.symptom}: {outcome.message}\n{text}"
        statuses.add(outcome.status)
    assert statuses == {"ok", "invalid"}


def test_a_crashing_parser_is_an_unexpected_exception(monkeypatch):
    def broken_parse(text):
        raise IndexError("parser bug")

    monkeypatch.setattr(oracles, "parse", broken_parse)
    outcome = check(TestCase(TEXT, [], 1), compile_oracle=False)
    assert outcome.symptom == "unexpected-exception" and outcome.stage == "verify"
    assert "IndexError" in outcome.message
