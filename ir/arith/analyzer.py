"""The Analyzer: variable bounds and known facts, and the simplifier and prover that use them.

Simplification is bottom-up: children first, then the rules registered for the node's class
(`shapeflow.ir.arith.rules.RULE_TABLE`), and whatever a rule returns is simplified again. Results are
memoized by node identity until the known facts change, and a node that did not change is returned as the
same object, so unchanged subtrees are shared. No Let expression survives: the rule `let_inline`
substitutes each one (expressions are pure), so no rewrite can copy a binder and bind a Var twice.

The prover answers "is this canonical sum <= 0 everywhere?" from constant bounds, from the facts added with
`constraint()`, and by replacing variables with their symbolic bounds (i < n from `bind(i, Range(0, n))`).
It is sound, not complete: False means "could not prove".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shapeflow.errors import VerifyError
from shapeflow.ir.arith.bound import (
    BOUND_RULES,
    ConstIntBound,
    Interval,
    dtype_range,
    finalize,
    iv_add,
    iv_intersect,
    iv_mul,
)
from shapeflow.ir.arith.canonical import Canonicalizer, Sum, is_index_dtype
from shapeflow.ir.arith.rules import RULE_TABLE
from shapeflow.ir.expr import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    Add,
    And,
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Mul,
    PrimExpr,
    Sub,
    Var,
    convert,
)
from shapeflow.ir.node import init_fields_of, replace
from shapeflow.ir.tir.stmt import Range

# A rule's result is simplified again; this caps how deep that can go (a guard against rule cycles).
_MAX_REWRITE_DEPTH = 64
# How many rounds of "replace a variable by its symbolic bound" the prover tries.
_MAX_SUBSTITUTION_DEPTH = 3


def _child_fields(cls: type) -> tuple[str, ...]:
    found = _CHILD_FIELDS.get(cls)
    if found is None:
        found = tuple(f for f in init_fields_of(cls) if f != "dtype" and not (cls is Let and f == "var"))
        _CHILD_FIELDS[cls] = found
    return found


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = (Var, IntImm)
_CHAIN = (Add, Sub, Mul)
_LAZY = (Add, Sub)  # a Mul child is simplified on its own: it may stay an atom of the parent's sum


class Analyzer:
    """Bounds and facts about integer variables, and the simplifier / prover over them.

    >>> ana = Analyzer(); n = Var("n"); i = Var("i")
    >>> ana.bind(i, Range(0, n))
    >>> ana.can_prove(i < n)
    True
    """

    def __init__(self) -> None:
        self.canon = Canonicalizer()
        self._var_bounds: dict[Var, Interval] = {}
        self._substitution: dict[Var, PrimExpr] = {}
        self._upper: dict[Var, list[PrimExpr]] = {}  # symbolic: var <= each expression
        self._lower: dict[Var, list[PrimExpr]] = {}  # symbolic: var >= each expression
        self._facts: list[Sum] = []  # each sum is known to be <= 0
        self._memo: dict[int, tuple[PrimExpr, PrimExpr]] = {}
        self._bound_memo: dict[int, tuple[PrimExpr, Interval]] = {}
        self._depth = 0

    # -- what is known ---------------------------------------------------------------------------
    def bind(self, var: Var, bound) -> None:
        """Tell the analyzer the range of `var` (replacing what it knew about it).

        `bound` is an inclusive (lo, hi) pair (ints or expressions), a ConstIntBound, a `Range(min, extent)`
        (the half-open [min, min + extent)), or an expression, which `var` is then replaced by.
        """
        if not isinstance(var, Var):
            raise VerifyError(f"Analyzer.bind needs a Var, got {type(var).__name__}", var)
        self._forget()
        for table in (self._substitution, self._upper, self._lower, self._var_bounds):
            table.pop(var, None)
        if isinstance(bound, ConstIntBound):
            self._var_bounds[var] = (bound.min_value, bound.max_value)
        elif isinstance(bound, Range):
            last = self.simplify(Sub(bound.min + bound.extent, IntImm(bound.extent.dtype, 1)))
            self._bind_range(var, self.simplify(bound.min), last)
        elif isinstance(bound, (tuple, list)) and len(bound) == 2:
            self._bind_range(
                var, self.simplify(convert(bound[0], "int64")), self.simplify(convert(bound[1], "int64"))
            )
        elif isinstance(bound, (PrimExpr, int)):
            value = self.simplify(convert(bound, var.dtype))
            self._substitution[var] = value
            self._var_bounds[var] = self._bound(value)
        else:
            raise VerifyError(f"cannot bind {var.name} to {type(bound).__name__} {bound!r}", var)
        self._forget()

    def _bind_range(self, var: Var, lo: PrimExpr, hi: PrimExpr) -> None:
        self._var_bounds[var] = finalize((self._bound(lo)[0], self._bound(hi)[1]), var.dtype)
        if type(lo) is not IntImm:
            self._lower.setdefault(var, []).append(lo)
        if type(hi) is not IntImm:
            self._upper.setdefault(var, []).append(hi)

    @contextlib.contextmanager
    def constraint(self, cond) -> Iterator[None]:
        """Within the block, `cond` is known to hold (comparisons and conjunctions of them are used)."""
        saved = (
            dict(self._var_bounds),
            {v: list(e) for v, e in self._upper.items()},
            {v: list(e) for v, e in self._lower.items()},
            list(self._facts),
        )
        self._add_fact(self.simplify(convert(cond)))
        self._forget()
        try:
            yield
        finally:
            self._var_bounds, self._upper, self._lower, self._facts = saved
            self._forget()

    def _add_fact(self, cond: PrimExpr) -> None:
        if type(cond) is And:
            self._add_fact(cond.a)
            self._add_fact(cond.b)
            return
        cls = type(cond)
        if cls not in (LT, LE, GT, GE, EQ) or not is_index_dtype(cond.a.dtype):
            return  # other facts are sound to ignore
        a, b = self.canon.to_sum(cond.a), self.canon.to_sum(cond.b)
        one = Sum.constant(1, a.dtype)
        le0 = {
            LT: [a.add(b, -1).add(one)],
            LE: [a.add(b, -1)],
            GT: [b.add(a, -1).add(one)],
            GE: [b.add(a, -1)],
            EQ: [a.add(b, -1), b.add(a, -1)],
        }[cls]
        for s in le0:
            self._facts.append(s)
            self._derive_var_bounds(s)

    def _derive_var_bounds(self, s: Sum) -> None:
        """From k*v + rest <= 0 with k = +-1: v <= -rest or v >= rest."""
        for mono, k in s.terms.items():
            var = self.canon.atoms[mono[0]] if len(mono) == 1 else None
            if type(var) is not Var or k not in (1, -1):
                continue
            rest = s.add(Sum({mono: k}, 0, s.dtype), -1)
            limit = rest.scale(-1) if k == 1 else rest
            lo, hi = self._var_bounds.get(var, dtype_range(var.dtype))
            bound = self.sum_bound(limit)
            if k == 1:
                self._var_bounds[var] = (lo, min(hi, bound[1]))
            else:
                self._var_bounds[var] = (max(lo, bound[0]), hi)
            if not limit.is_const():
                (self._upper if k == 1 else self._lower).setdefault(var, []).append(self.build(limit))
        self._forget()

    def _forget(self) -> None:
        self._memo.clear()
        self._bound_memo.clear()
        self.canon.clear_if_large()

    # -- services for rules ----------------------------------------------------------------------
    def binding(self, var: Var) -> PrimExpr | None:
        return self._substitution.get(var)

    def build(self, s: Sum) -> PrimExpr:
        return self.canon.from_sum(s, self._mark_simplified)

    def _mark_simplified(self, node: PrimExpr) -> None:
        self._memo[id(node)] = (node, node)

    def bound(self, expr: PrimExpr) -> Interval:
        return self._bound(expr)

    def sum_bound(self, s: Sum) -> Interval:
        iv = (s.const, s.const)
        atoms = self.canon.atoms
        for mono, k in s.terms.items():
            mb = self._bound(atoms[mono[0]])
            for key in mono[1:]:
                mb = iv_mul(mb, self._bound(atoms[key]))
            if k == 1:
                iv = iv_add(iv, mb)
            elif k == -1:
                iv = iv_add(iv, (-mb[1], -mb[0]))
            else:
                iv = iv_add(iv, iv_mul(mb, (k, k)))
        return finalize(iv, s.dtype)

    def normalize_divs(self, s: Sum, force: bool) -> Sum:
        """Rewrite k*c*(x // c) as k*x - k*(x % c): always when `force` (bounds of % are tight), otherwise
        only if it does not add terms (it cancels, as in ((n + 3) // 4) * 4 - n -> 3 - (n + 3) % 4)."""
        for mono, coeff in list(s.terms.items()):
            atom = self.canon.atoms[mono[0]] if len(mono) == 1 else None
            if type(atom) is not FloorDiv or type(atom.b) is not IntImm or atom.b.value <= 0:
                continue
            c = atom.b.value
            if mono not in s.terms or coeff % c:
                continue
            k = coeff // c
            mod = self.canon.to_sum(FloorMod(atom.a, atom.b))
            candidate = (
                s.add(Sum({mono: coeff}, 0, s.dtype), -1).add(self.canon.to_sum(atom.a), k).add(mod, -k)
            )
            if force or len(candidate.terms) <= len(s.terms):
                s = candidate
        return s

    def prove_nonpos(self, s: Sum, depth: int = 0) -> bool:
        """True only if `s` <= 0 for every value of its variables within what is known."""
        if self.sum_bound(s)[1] <= 0:
            return True
        s = self.normalize_divs(s, force=True)
        if self.sum_bound(s)[1] <= 0:
            return True
        for fact in self._facts:  # s = (s - fact) + fact, and fact <= 0
            if self.sum_bound(s.add(fact, -1))[1] <= 0:
                return True
        if depth >= _MAX_SUBSTITUTION_DEPTH or not (self._upper or self._lower):
            return False
        for mono, k in s.terms.items():
            var = self.canon.atoms[mono[0]] if len(mono) == 1 else None
            if type(var) is not Var:
                continue
            for limit in (self._upper if k > 0 else self._lower).get(var, ()):
                # s <= s with k*var replaced by k*limit (pointwise), so proving that suffices.
                t = s.add(Sum({mono: k}, 0, s.dtype), -1).add(self.canon.to_sum(limit), k)
                if self.prove_nonpos(t, depth + 1):
                    return True
        return False

    # -- bounds ----------------------------------------------------------------------------------
    def _bound(self, expr: PrimExpr) -> Interval:
        hit = self._bound_memo.get(id(expr))
        if hit is not None:
            return hit[1]
        if type(expr) is Var:
            iv = self._var_bounds.get(expr)
            if iv is None:
                iv = dtype_range(expr.dtype)
        else:
            fn = BOUND_RULES.get(type(expr))
            iv = dtype_range(expr.dtype) if fn is None else finalize(fn(expr, self._bound), expr.dtype)
        self._bound_memo[id(expr)] = (expr, iv)
        return iv

    def const_int_bound(self, expr) -> ConstIntBound:
        """Inclusive constant bounds of an integer expression (NEG_INF / POS_INF where unbounded)."""
        expr = convert(expr)
        iv = self._bound(expr)
        if iv[0] != iv[1]:
            simplified = self.simplify(expr)
            iv = iv_intersect(iv, self._bound(simplified))
            if is_index_dtype(simplified.dtype):
                s = self.normalize_divs(self.canon.to_sum(simplified), force=True)
                iv = iv_intersect(iv, self.sum_bound(s))
        return ConstIntBound(iv[0], iv[1])

    # -- simplify and prove ----------------------------------------------------------------------
    def simplify(self, expr) -> PrimExpr:
        """An equal, simpler expression; the same object if nothing could be simplified."""
        return self._rewrite(convert(expr))

    def can_prove(self, cond) -> bool:
        """True only if `cond` holds for every value of its variables within what is known."""
        result = self.simplify(cond)
        if type(result) is IntImm:
            return result.value != 0
        if type(result) is And:
            return self.can_prove(result.a) and self.can_prove(result.b)
        return False

    def can_prove_equal(self, a, b) -> bool:
        a, b = convert(a), convert(b)
        if is_index_dtype(a.dtype) and a.dtype == b.dtype:
            diff = self.simplify(Sub(a, b))
            if type(diff) is IntImm:
                return diff.value == 0
            return self.can_prove(EQ(a, b))
        return self.canon.same(self.simplify(a), self.simplify(b))

    def _rewrite(self, expr: PrimExpr) -> PrimExpr:
        hit = self._memo.get(id(expr))
        if hit is not None:
            return hit[1]
        if type(expr) in _LEAVES:
            node = expr
        elif type(expr) in _CHAIN and is_index_dtype(expr.dtype):
            node = self._rewrite_chain(expr)
        else:
            node = self._rewrite_children(expr)
        out = self._apply_rules(node)
        self._memo[id(expr)] = (expr, out)
        if out is not expr:
            self._memo[id(out)] = (out, out)
        return out

    def _rewrite_chain(self, expr: PrimExpr) -> PrimExpr:
        """Rebuild an integer + - * node whose Add/Sub children are rebuilt without their own rules: the
        canonical form of the whole chain is built once at its root instead of once per level."""
        a, b = expr.a, expr.b
        new_a = self._rewrite_chain(a) if type(a) in _LAZY and a.dtype is expr.dtype else self._rewrite(a)
        new_b = self._rewrite_chain(b) if type(b) in _LAZY and b.dtype is expr.dtype else self._rewrite(b)
        if new_a is a and new_b is b:
            return expr
        return type(expr)(new_a, new_b)

    def _rewrite_children(self, expr: PrimExpr) -> PrimExpr:
        changes = {}
        for name in _child_fields(type(expr)):
            value = getattr(expr, name)
            if isinstance(value, PrimExpr):
                new = self._rewrite(value)
            elif isinstance(value, tuple) and value and isinstance(value[0], PrimExpr):
                items = tuple(self._rewrite(v) for v in value)
                new = value if all(x is y for x, y in zip(items, value)) else items
            else:
                continue
            if new is not value:
                changes[name] = new
        return replace(expr, **changes) if changes else expr

    def _apply_rules(self, node: PrimExpr) -> PrimExpr:
        for rule in RULE_TABLE.get(type(node), ()):
            result = rule.fn(node, self)
            if result is None or result is node:
                continue
            if self._depth >= _MAX_REWRITE_DEPTH:
                return result
            self._depth += 1
            try:
                return self._rewrite(result)
            finally:
                self._depth -= 1
        return node
