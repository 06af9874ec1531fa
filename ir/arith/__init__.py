"""shapeflow.ir.arith: symbolic integer arithmetic over the expression nodes of shapeflow.ir.expr.

Symbolic shapes are int64 expressions over int64 Vars; every part of the compiler simplifies and proves
facts about them through this package:

    ana = Analyzer()
    ana.bind(i, Range(0, n))             # or (lo, hi) inclusive, or an expression to substitute
    ana.simplify((i * 4 + j) // 4)       # canonical form: linear terms collected, div/mod folded by bounds
    ana.can_prove(i < n)                 # sound: True only if it holds for every value in the bounds
    ana.const_int_bound(e)               # ConstIntBound(min_value, max_value), +-inf sentinels
    with ana.constraint(n >= 1): ...     # a known fact for the duration of the block

The module-level `simplify`, `prove`, `const_int_bound` and `substitute` build a throwaway Analyzer.
Rewrite rules are data (`rules.ALL_RULES`); `evaluate` is an exact evaluator that defines the semantics the
rules must preserve.
"""

from __future__ import annotations

from shapeflow.ir.arith.analyzer import Analyzer
from shapeflow.ir.arith.bound import ConstIntBound
from shapeflow.ir.arith.canonical import Canonicalizer, Sum
from shapeflow.ir.arith.evaluate import EvaluationError, evaluate
from shapeflow.ir.arith.rule import Rule, RuleSet
from shapeflow.ir.arith.rules import ALL_RULES, RULE_SETS
from shapeflow.ir.expr import PrimExpr
from shapeflow.ir.functor import substitute as _substitute


def _analyzer(bounds: dict | None) -> Analyzer:
    ana = Analyzer()
    for var, bound in (bounds or {}).items():
        ana.bind(var, bound)
    return ana


def simplify(expr, bounds: dict | None = None) -> PrimExpr:
    """`expr` simplified, knowing `bounds` ({Var: (lo, hi) | Range | expression})."""
    return _analyzer(bounds).simplify(expr)


def prove(cond, bounds: dict | None = None) -> bool:
    """True only if `cond` holds for every value of its variables within `bounds`."""
    return _analyzer(bounds).can_prove(cond)


def const_int_bound(expr, bounds: dict | None = None) -> ConstIntBound:
    """Inclusive constant bounds of `expr` within `bounds`."""
    return _analyzer(bounds).const_int_bound(expr)


def substitute(expr, mapping: dict, simplify: bool = False, bounds: dict | None = None):
    """Replace Vars (by identity) with expressions; simplify the result when asked."""
    out = _substitute(expr, mapping)
    if simplify and isinstance(out, PrimExpr):
        out = _analyzer(bounds).simplify(out)
    return out


__all__ = [
    "ALL_RULES",
    "Analyzer",
    "Canonicalizer",
    "ConstIntBound",
    "EvaluationError",
    "RULE_SETS",
    "Rule",
    "RuleSet",
    "Sum",
    "const_int_bound",
    "evaluate",
    "prove",
    "simplify",
    "substitute",
]
