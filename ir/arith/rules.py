"""The combined rule table: every rule set, in the order they are tried for a node.

Order matters only for speed and for which of two equivalent forms wins: constant folding first (cheapest,
and it makes the other rules' inputs smaller), then bindings, structure-only rules, and last the rules that
ask the prover.
"""

from __future__ import annotations

from shapeflow.ir.arith.rule import Rule
from shapeflow.ir.arith.rules_fold import BINDING, CONST_FOLD, FLOAT_IDENTITY, LOGIC
from shapeflow.ir.arith.rules_int import CANONICAL, COMPARE_BY_BOUNDS, DIVMOD, MINMAX

RULE_SETS = (CONST_FOLD, BINDING, FLOAT_IDENTITY, LOGIC, CANONICAL, DIVMOD, MINMAX, COMPARE_BY_BOUNDS)

ALL_RULES: tuple[Rule, ...] = tuple(rule for rule_set in RULE_SETS for rule in rule_set)


def build_table(rules=ALL_RULES) -> dict[type, tuple[Rule, ...]]:
    """node class -> the rules that may rewrite it, in order."""
    table: dict[type, list[Rule]] = {}
    for rule in rules:
        for op in rule.ops:
            table.setdefault(op, []).append(rule)
    return {op: tuple(found) for op, found in table.items()}


RULE_TABLE = build_table()
