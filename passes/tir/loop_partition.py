"""LoopPartition: split a loop at the point where a condition on its variable changes truth value.

A loop split for a symbolic size carries a guard in every iteration (`if io * 8 + ii < n`), although the
guard can only fail in the last iteration. Partitioning splits `for io in [0, e)` into a main loop where the
guard provably holds (it is replaced by True there) and a tail that keeps it, so the main loop runs without
branches and can be vectorized. Sizes are symbolic, so the split point is an expression, clamped to the
loop's range so that both parts are correct for every size (either may be empty).

Conditions are conjuncts of `if` conditions that are integer comparisons affine in the loop variable (with a
constant coefficient) and in variables of inner loops whose ranges do not depend on the loop; everything
else in them must be loop-invariant (no buffer loads, no variables defined inside the loop). For inner
variables the worst case over their range is used, so the main part needs no knowledge of them. When the
condition involves no inner variables, the other part gets the condition replaced by False as well.
Loops are visited outermost first. Only serial and parallel loops are split (vectorized and unrolled loops
need constant extents); loops of constant extent are split only with `partition_const_loops`.
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import (
    GE,
    GT,
    LE,
    LT,
    Add,
    And,
    IntImm,
    Mul,
    PrimExpr,
    Sub,
    Var,
    floordiv,
    is_const_int,
    max_expr,
    min_expr,
)
from shapeflow.ir.functor import Mutator, Visitor
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import For, ForKind, IfThenElse, no_op, seq
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import defined_vars, has_load, unique_definitions, var_ids
from shapeflow.passes.tir.simplify import make_analyzer

_PARTITIONABLE = (ForKind.SERIAL, ForKind.PARALLEL)


def _affine(expr: PrimExpr, targets: set[int]):
    """(coefficients by var id, rest) with expr == sum(coef * var) + rest, or None if not affine."""
    if isinstance(expr, Var) and id(expr) in targets:
        return {id(expr): 1}, None
    if not (var_ids(expr) & targets):
        return {}, expr
    if isinstance(expr, (Add, Sub)):
        a, b = _affine(expr.a, targets), _affine(expr.b, targets)
        if a is None or b is None:
            return None
        sign = 1 if isinstance(expr, Add) else -1
        coeffs = dict(a[0])
        for k, c in b[0].items():
            coeffs[k] = coeffs.get(k, 0) + sign * c
        rest = a[1]
        if b[1] is not None:
            rest = (
                (b[1] if sign == 1 else IntImm(b[1].dtype, 0) - b[1])
                if rest is None
                else expr.__class__(rest, b[1])
            )
        return coeffs, rest
    if isinstance(expr, Mul):
        for const, other in ((expr.a, expr.b), (expr.b, expr.a)):
            if is_const_int(const):
                inner = _affine(other, targets)
                if inner is None:
                    return None
                scale = const.value
                rest = None if inner[1] is None else inner[1] * scale
                return {k: c * scale for k, c in inner[0].items()}, rest
    return None


@dataclasses.dataclass
class _Candidate:
    conjunct: PrimExpr
    coeff: int  # of the loop variable
    bound: PrimExpr  # the condition holds (for every inner value) iff coeff * var + bound <= 0
    exact: bool  # no inner variables: outside the main part the condition is false


class _FindCandidates(Visitor):
    """Conjuncts of if-conditions in a loop body that decide a split of the loop variable."""

    visit_buffers = False

    def __init__(self, loop: For, excluded: set[int]):
        super().__init__()
        self.loop_var = loop.loop_var
        self.inside = {id(v) for v in defined_vars(loop.body)}
        self.excluded = excluded
        self.inner: dict[int, tuple[PrimExpr, PrimExpr]] = {}  # inner loop var -> (lo, hi) inclusive
        self.counts: dict[int, int] = {}
        self.found: list[_Candidate] = []

    def _invariant(self, expr: PrimExpr) -> bool:
        ids = var_ids(expr)
        return not has_load(expr) and id(self.loop_var) not in ids and not (ids & self.inside)

    def visit_For(self, op: For):
        known = self._invariant(op.min) and self._invariant(op.extent)
        if known:
            self.inner[id(op.loop_var)] = (op.min, op.min + op.extent - 1)
        self.generic_visit(op)
        self.inner.pop(id(op.loop_var), None)

    def visit_IfThenElse(self, op: IfThenElse):
        for conjunct in _conjuncts(op.condition):
            self.counts[id(conjunct)] = self.counts.get(id(conjunct), 0) + 1
            if id(conjunct) not in self.excluded:
                cand = self._analyze(conjunct)
                if cand is not None:
                    self.found.append(cand)
        self.generic_visit(op)

    def _analyze(self, cond: PrimExpr) -> _Candidate | None:
        if not isinstance(cond, (LT, LE, GT, GE)) or not (cond.a.dtype.is_integer and cond.a.dtype.is_scalar):
            return None
        if cond.a.dtype != self.loop_var.dtype:
            return None
        # Normal form: diff <= 0.
        if isinstance(cond, LT):
            diff = cond.a - cond.b + 1
        elif isinstance(cond, LE):
            diff = cond.a - cond.b
        elif isinstance(cond, GT):
            diff = cond.b - cond.a + 1
        else:
            diff = cond.b - cond.a
        targets = {id(self.loop_var), *self.inner}
        form = _affine(diff, targets)
        if form is None:
            return None
        coeffs, rest = form
        coeff = coeffs.pop(id(self.loop_var), 0)
        if coeff == 0 or (rest is not None and not self._invariant(rest)):
            return None
        bound: PrimExpr = rest if rest is not None else IntImm(diff.dtype, 0)
        for vid, c in coeffs.items():
            if c == 0:
                continue
            lo, hi = self.inner[vid]
            bound = bound + (hi if c > 0 else lo) * c
        exact = not any(coeffs.values())
        return _Candidate(cond, coeff, bound, exact)


def _conjuncts(cond: PrimExpr) -> list[PrimExpr]:
    if isinstance(cond, And):
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


class _ReplaceConjunct(Mutator):
    """Replace one conjunct (by identity) with a constant in every if-condition that has it."""

    mutate_buffers = False

    def __init__(self, conjunct: PrimExpr, value: bool):
        super().__init__()
        self.conjunct, self.value = conjunct, value

    def visit_PrimExpr(self, expr):
        return expr

    def visit_IfThenElse(self, op: IfThenElse):
        then_case = self.visit(op.then_case)
        else_case = self.visit(op.else_case) if op.else_case is not None else None
        parts = _conjuncts(op.condition)
        if not any(p is self.conjunct for p in parts):
            if then_case is op.then_case and else_case is op.else_case:
                return op
            return IfThenElse(op.condition, then_case, else_case)
        if not self.value:
            return else_case if else_case is not None else no_op()
        kept = [p for p in parts if p is not self.conjunct]
        if not kept:
            return then_case
        cond = kept[0]
        for p in kept[1:]:
            cond = And(cond, p)
        return IfThenElse(cond, then_case, else_case)


class _Partitioner(Mutator):
    mutate_buffers = False

    def __init__(self, const_loops: bool, max_splits: int, analyzer):
        super().__init__()
        self.const_loops = const_loops
        self.max_splits = max_splits
        self.analyzer = analyzer  # knows the symbolic dimensions; keeps split points readable

    def visit_PrimExpr(self, expr):
        return expr

    def visit_For(self, op: For):
        return self._partition(op, set(), 0)

    def _eligible(self, op: For) -> bool:
        if op.kind not in _PARTITIONABLE:
            return False
        constant = isinstance(op.min, IntImm) and isinstance(op.extent, IntImm)
        return self.const_loops or not constant

    def _partition(self, op: For, excluded: set[int], depth: int):
        cand = None
        if depth < self.max_splits and self._eligible(op):
            finder = _FindCandidates(op, excluded)
            finder.visit(op.body)
            cand = next((c for c in finder.found if finder.counts.get(id(c.conjunct)) == 1), None)
        if cand is None:
            body = self.visit(op.body)
            return op if body is op.body else dataclasses.replace(op, body=body)
        var, lo, end = op.loop_var, op.min, op.min + op.extent
        one = IntImm(var.dtype, 1)
        if cand.coeff > 0:  # holds for var <= floor(-bound / coeff): the main part comes first
            split = floordiv(IntImm(var.dtype, 0) - cand.bound, cand.coeff) + one
        else:  # holds for var >= ceil(bound / -coeff): the main part comes last
            k = -cand.coeff
            split = floordiv(cand.bound + (k - 1), k)
        simplify = self.analyzer.simplify
        point = simplify(min_expr(max_expr(simplify(split), lo), end))
        main = _ReplaceConjunct(cand.conjunct, True).visit(op.body)
        other = _ReplaceConjunct(cand.conjunct, False).visit(op.body) if cand.exact else op.body
        first_body, second_body = (main, other) if cand.coeff > 0 else (other, main)
        next_excluded = excluded | ({id(cand.conjunct)} if not cand.exact else set())
        first = dataclasses.replace(op, min=lo, extent=simplify(point - lo), body=first_body)
        second = dataclasses.replace(op, min=point, extent=simplify(end - point), body=second_body)
        return seq(
            self._partition(first, next_excluded, depth + 1),
            self._partition(second, next_excluded, depth + 1),
        )


@register_pass
@dataclasses.dataclass(frozen=True)
class LoopPartition(PrimFuncPass):
    """Split loops at the points where if-conditions on their variables change value."""

    name = "loop-partition"
    opt_level = 2
    partition_const_loops: bool = False
    max_splits: int = 4

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        partitioner = _Partitioner(self.partition_const_loops, self.max_splits, make_analyzer(func))
        body = partitioner.visit(func.body)
        if body is func.body:
            return func
        return func.with_body(unique_definitions(body, func.params))
