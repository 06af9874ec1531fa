"""Minimizing a failing graph test: delete recipe steps (users rewired, graph_mutate.delete_step), then
passes of the sequence, one at a time, keeping each deletion after which the bug still reproduces (the
same bug key). Greedy to a fixed point or until the time budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable

from shapeflow.errors import Error
from shapeflow.fuzz.graph_gen import build_module
from shapeflow.fuzz.graph_mutate import delete_step
from shapeflow.fuzz.oracles import TestCase


def _with(test: TestCase, recipe: dict | None = None, passes: list | None = None) -> TestCase | None:
    recipe = recipe if recipe is not None else test.recipe
    try:
        text = build_module(recipe).script()
    except Error:
        return None
    return TestCase(
        text,
        passes if passes is not None else test.passes,
        test.seed,
        test.flags,
        test.origin,
        "graph",
        recipe,
    )


def minimize_graph(
    test: TestCase, still_fails: Callable[[TestCase], bool], seconds: float = 20.0
) -> TestCase:
    """The smallest variant of `test` found within `seconds` for which `still_fails` holds."""
    deadline = time.monotonic() + seconds
    best = test
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for k in reversed(range(len(best.recipe["steps"]))):
            if time.monotonic() >= deadline:
                break
            if k >= len(best.recipe["steps"]):
                continue
            candidate = _with(best, recipe=delete_step(best.recipe, k))
            if candidate is not None and still_fails(candidate):
                best, changed = candidate, True
        for k in reversed(range(len(best.passes))):
            if time.monotonic() >= deadline:
                break
            candidate = _with(best, passes=best.passes[:k] + best.passes[k + 1 :])
            if candidate is not None and still_fails(candidate):
                best, changed = candidate, True
    return best


__all__ = ["minimize_graph"]
