"""Rewrite rules as data: a named rule is a node class (or several) and a pure function.

`fn(node, ctx)` gets a node whose children are already simplified and returns a replacement, or None when the
rule does not apply. `ctx` is the Analyzer doing the rewrite; rules use only its read-only services:

    ctx.canon            Canonicalizer: key(), same(), to_sum(), atoms
    ctx.build(sum)       nodes for a canonical Sum
    ctx.bound(expr)      constant (lo, hi) interval
    ctx.sum_bound(sum)   interval of a Sum
    ctx.prove_nonpos(s)  True only if the Sum s is <= 0 for every value in the known bounds
    ctx.normalize_divs(s, force)   rewrite c*k*(x // c) into k*x - k*(x % c) in a Sum
    ctx.binding(var)     the expression a Var was bound to, or None

Every rule is listed in `shapeflow.ir.arith.rules.ALL_RULES`; tests/arith proves each one (z3 or brute force).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    ops: tuple[type, ...]
    fn: Callable
    law: str  # the identity the rule applies, with its side conditions, for readers and for the proof tests


class RuleSet:
    """An ordered, named collection of rules, filled with the `@rules.rule(...)` decorator."""

    def __init__(self, name: str):
        self.name = name
        self.rules: list[Rule] = []

    def rule(self, name: str, *ops: type, law: str):
        def register(fn):
            self.rules.append(Rule(name, tuple(ops), fn, law))
            return fn

        return register

    def __iter__(self):
        return iter(self.rules)
