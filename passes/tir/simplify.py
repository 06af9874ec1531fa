"""Simplify: simplify every expression using what the enclosing loops say about their variables.

Lowering leaves index arithmetic such as `(io * 8 + ii) * 1 + 0` and guards such as `io * 8 + ii < n`
inside loops that make them redundant. Simplify walks the function with a `shapeflow.ir.arith.Analyzer`
that knows each loop variable's range (and each symbolic dimension's bounds from the "var_bounds" attribute,
or at least that it is non-negative), simplifies every expression, and removes structure that can be
decided statically:
- an `if` whose condition is provably true (or false) becomes its taken branch; inside a branch its
  condition is a known fact;
- a loop of extent provably <= 0 disappears; a loop of extent 1 becomes its body at the loop's minimum;
- an assertion that provably holds disappears.
Buffers are not rewritten (their shapes are declarations, and parameters must keep their identity).
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import IntImm, Not, PrimExpr, Var, is_const_int
from shapeflow.ir.functor import Mutator, substitute
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import AssertStmt, Block, For, ForKind, IfThenElse, LetStmt, Range, no_op
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass

# Symbolic dimensions without declared bounds are non-negative; the upper bound keeps products finite.
_DIM_MAX = (1 << 40) - 1


def make_analyzer(func: PrimFunc):
    """An Analyzer that knows the bounds of `func`'s symbolic dimensions and bounded scalar params."""
    from shapeflow.ir.arith import Analyzer  # noqa: PLC0415  (written alongside; imported when used)

    analyzer = Analyzer()
    declared = func.attrs.get("var_bounds") or {}
    seen: set[int] = set()
    for p in func.params:
        candidates = [p] if isinstance(p, Var) else [*p.shape, *p.strides, p.elem_offset]
        for v in candidates:
            if not isinstance(v, Var) or id(v) in seen or not v.dtype.is_integer:
                continue
            seen.add(id(v))
            if v.name in declared:
                lo, hi = declared[v.name]
                analyzer.bind(v, (int(lo), int(hi)))
            elif not isinstance(p, Var):
                analyzer.bind(v, (0, _DIM_MAX))
    return analyzer


class _Simplifier(Mutator):
    mutate_buffers = False

    def __init__(self, analyzer):
        super().__init__()
        self.analyzer = analyzer

    def visit_PrimExpr(self, expr: PrimExpr):
        new = self.analyzer.simplify(expr)
        # Keep the original object when nothing changed, so unchanged code stays shared.
        return expr if new is expr or structural_equal(new, expr) else new

    def _proves(self, cond: PrimExpr) -> bool:
        return cond.dtype.is_scalar and bool(self.analyzer.can_prove(cond))

    def visit_For(self, op: For):
        lo, extent = self.visit(op.min), self.visit(op.extent)
        if op.kind != ForKind.THREAD_BINDING:
            if self._proves(extent <= 0):
                return no_op()
            if is_const_int(extent, 1):
                return self.visit(substitute(op.body, {op.loop_var: lo}))
        self.analyzer.bind(op.loop_var, Range(lo, extent))
        body = self.visit(op.body)
        if lo is op.min and extent is op.extent and body is op.body:
            return op
        return dataclasses.replace(op, min=lo, extent=extent, body=body)

    def visit_IfThenElse(self, op: IfThenElse):
        cond = self.visit(op.condition)
        if self._proves(cond):
            return self.visit(op.then_case)
        if self._proves(Not(cond)):
            return self.visit(op.else_case) if op.else_case is not None else no_op()
        with self.analyzer.constraint(cond):
            then_case = self.visit(op.then_case)
        else_case = None
        if op.else_case is not None:
            with self.analyzer.constraint(Not(cond)):
                else_case = self.visit(op.else_case)
        if cond is op.condition and then_case is op.then_case and else_case is op.else_case:
            return op
        return IfThenElse(cond, then_case, else_case)

    def visit_AssertStmt(self, op: AssertStmt):
        cond = self.visit(op.condition)
        if self._proves(cond):
            return no_op()
        return op if cond is op.condition else AssertStmt(cond, op.message)

    def visit_LetStmt(self, op: LetStmt):
        value = self.visit(op.value)
        if value.dtype.is_integer and value.dtype.is_scalar:
            bound = self.analyzer.const_int_bound(value)
            lo, hi = _bound_pair(bound)
            if lo is not None and hi is not None:
                self.analyzer.bind(op.var, (lo, hi))
        body = self.visit(op.body)
        if value is op.value and body is op.body:
            return op
        return LetStmt(op.var, value, body)

    def visit_Block(self, op: Block):
        for iv in op.iter_vars:
            if isinstance(iv.dom.extent, IntImm) and iv.dom.extent.value <= 0:
                continue
            self.analyzer.bind(iv.var, iv.dom)
        return self.generic_visit(op)


def _bound_pair(bound) -> tuple[int | None, int | None]:
    """(min, max) of a ConstIntBound, or Nones where it is unbounded."""
    lo = getattr(bound, "min_value", None)
    hi = getattr(bound, "max_value", None)
    if lo is None and isinstance(bound, tuple):
        lo, hi = bound
    limit = 1 << 62
    lo = lo if isinstance(lo, int) and abs(lo) < limit else None
    hi = hi if isinstance(hi, int) and abs(hi) < limit else None
    return lo, hi


def simplify_stmt(stmt, analyzer):
    """`stmt` simplified with `analyzer` (which the walk extends with loop-variable ranges)."""
    return _Simplifier(analyzer).visit(stmt)


@register_pass
@dataclasses.dataclass(frozen=True)
class Simplify(PrimFuncPass):
    """Simplify expressions with loop bounds; drop provable ifs, empty loops and loops of extent 1."""

    name = "simplify"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = simplify_stmt(func.body, make_analyzer(func))
        return func if body is func.body else func.with_body(body)
