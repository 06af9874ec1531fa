"""VectorizeLoop: turn a `vectorized` loop of constant extent L into vector IR over L lanes.

The loop variable becomes `Ramp(min, 1, L)`; scalars meet vectors through `Broadcast`; affine index
arithmetic stays a Ramp (so the code generator sees contiguous or strided accesses); loads and stores take
Ramp indices; an `if` on a vector condition whose two branches store to the same place becomes one store of
a `Select`. The result replaces the loop.

Vectorizing runs each statement for all lanes before the next statement, where the loop ran all statements
for one iteration before the next. That is only the same program when iterations do not communicate, so
the pass checks it instead of trusting the loop kind (the fuzzer changes loop kinds freely): every access to
a buffer the body writes must use one and the same index, a Ramp of constant non-zero stride (each lane
then owns its own element). Whatever cannot be vectorized this way - inner loops with lane-dependent
bounds, stores of lane-independent locations, gathers, allocations, blocks, vector conditions guarding other
statements - makes the loop a serial loop instead. Never wrong code, at worst scalar code.

Merging an `if` into a `Select` evaluates both branches in every lane (a Select evaluates both arms, see
shapeflow.ir.expr.Select), where the loop evaluated each branch only in the iterations its condition chose.
Expressions in this IR cannot fault except by loading out of bounds (integer division by zero is defined),
and the IR has no predicated load, so the merge is taken only when every load in either branch is proven in
bounds for every iteration of the loop, from the loop's range, the enclosing loops' ranges and scalar `if`
conditions, and the function's "var_bounds". A pad loop (`if i < 7: P[i] = b[i] else: P[i] = 0` over 8
lanes) guards exactly such a load, and stays serial.
"""

from __future__ import annotations

import contextlib
import dataclasses

from shapeflow.ir import expr as E
from shapeflow.ir.arith import Analyzer
from shapeflow.ir.expr import Broadcast, IntImm, PrimExpr, Ramp, Var, is_const_int
from shapeflow.ir.functor import Mutator, collect
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.intrinsics import INTRINSICS
from shapeflow.ir.tir.stmt import For, ForKind, Range
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass
from shapeflow.passes.tir.common import defined_vars, has_load, var_ids
from shapeflow.passes.tir.simplify import make_analyzer


class CannotVectorize(Exception):
    """Raised inside the vectorizer when the loop body has no equivalent vector form."""


def _broadcast(e: PrimExpr, lanes: int) -> PrimExpr:
    return e if e.dtype.lanes == lanes else Broadcast(e, lanes)


def _is_vec(e: PrimExpr) -> bool:
    return e.dtype.lanes > 1


def _ramp_add(cls, a, b, lanes):
    """Keep Ramp +/- scalar and Ramp +/- Ramp a Ramp."""
    if isinstance(a, Ramp) and not _is_vec(b):
        return Ramp(cls(a.base, b), a.stride, lanes)
    if isinstance(b, Ramp) and not _is_vec(a):
        if cls is E.Add:
            return Ramp(a + b.base, b.stride, lanes)
        return Ramp(a - b.base, IntImm(b.stride.dtype, 0) - b.stride, lanes)
    if isinstance(a, Ramp) and isinstance(b, Ramp):
        return Ramp(cls(a.base, b.base), cls(a.stride, b.stride), lanes)
    return None


def _ramp_mul(cls, a, b, lanes):
    if isinstance(a, Ramp) and not _is_vec(b):
        return Ramp(a.base * b, a.stride * b, lanes)
    if isinstance(b, Ramp) and not _is_vec(a):
        return Ramp(a * b.base, a * b.stride, lanes)
    return None


_RAMP_RULES = {E.Add: _ramp_add, E.Sub: _ramp_add, E.Mul: _ramp_mul}
_BINARY = (E.Add, E.Sub, E.Mul, E.Div, E.Mod, E.FloorDiv, E.FloorMod, E.Min, E.Max, E.And, E.Or)
_COMPARE = (E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE)


class _Vectorizer:
    """Rewrites one loop body for `lanes` lanes; records every buffer access for the dependence check."""

    def __init__(self, loop: For, lanes: int, analyzer: Analyzer):
        self.lanes = lanes
        # Knows the range of every loop around and inside the body, for proving guarded loads in bounds.
        self.analyzer = analyzer
        _bind_loop(analyzer, loop)
        self.inside = {id(v) for v in defined_vars(loop.body)}
        self.var_map: dict[int, PrimExpr] = {
            id(loop.loop_var): Ramp(loop.min, IntImm(loop.loop_var.dtype, 1), lanes)
        }
        self.accesses: list[tuple[Var, bool, tuple[PrimExpr, ...]]] = []  # (data, is_store, indices)

    # -- expressions ------------------------------------------------------------------------------
    def expr(self, e: PrimExpr) -> PrimExpr:
        rule = _EXPR_RULES.get(type(e))
        if rule is None:
            raise CannotVectorize(f"no vector form for {type(e).__name__}")
        return rule(self, e)

    def _binary(self, e):
        a, b = self.expr(e.a), self.expr(e.b)
        if a is e.a and b is e.b:
            return e
        if not _is_vec(a) and not _is_vec(b):
            return type(e)(a, b)
        ramp_rule = _RAMP_RULES.get(type(e))
        if ramp_rule is not None:
            found = ramp_rule(type(e), a, b, self.lanes)
            if found is not None:
                return found
        return type(e)(_broadcast(a, self.lanes), _broadcast(b, self.lanes))

    def _var(self, e: Var):
        return self.var_map.get(id(e), e)

    def _leaf(self, e):
        return e

    def _not(self, e: E.Not):
        a = self.expr(e.a)
        return e if a is e.a else E.Not(a)

    def _select(self, e: E.Select):
        parts = [self.expr(x) for x in (e.condition, e.true_value, e.false_value)]
        if all(p is q for p, q in zip(parts, (e.condition, e.true_value, e.false_value))):
            return e
        if not any(_is_vec(p) for p in parts):
            return E.Select(*parts)
        return E.Select(*(_broadcast(p, self.lanes) for p in parts))

    def _cast(self, e: E.Cast):
        v = self.expr(e.value)
        if v is e.value:
            return e
        return E.Cast(e.dtype.with_lanes(v.dtype.lanes), v)

    def _call(self, e: E.Call):
        if e.op not in INTRINSICS:
            raise CannotVectorize(f"call of {e.op}")
        args = tuple(self.expr(a) for a in e.args)
        if all(a is b for a, b in zip(args, e.args)):
            return e
        if not any(_is_vec(a) for a in args):
            return E.Call(e.dtype, e.op, args)
        return E.Call(e.dtype.with_lanes(self.lanes), e.op, tuple(_broadcast(a, self.lanes) for a in args))

    def _let(self, e: E.Let):
        value = self.expr(e.value)
        var = Var(e.var.name, value.dtype) if _is_vec(value) else e.var
        self.var_map[id(e.var)] = var
        self.inside.add(id(var))
        return E.Let(var, value, self.expr(e.body))

    def _vector_rejected(self, e):
        raise CannotVectorize("the body already holds vector IR")

    def _indices(self, indices) -> tuple[PrimExpr, ...]:
        out = tuple(self.expr(i) for i in indices)
        vectors = [i for i in out if _is_vec(i)]
        if len(vectors) > 1 or any(not isinstance(v, Ramp) for v in vectors):
            raise CannotVectorize("an index that is not one affine Ramp")
        return out

    def _load(self, e: E.BufferLoad):
        if e.buffer.dtype.is_vector:
            raise CannotVectorize("a buffer of vector elements")
        indices = self._indices(e.indices)
        self.accesses.append((e.buffer.data, False, indices))
        if all(a is b for a, b in zip(indices, e.indices)):
            return e
        return E.BufferLoad(e.buffer, indices)

    # -- statements -------------------------------------------------------------------------------
    def stmt(self, s: S.Stmt) -> S.Stmt:
        rule = _STMT_RULES.get(type(s))
        if rule is None:
            raise CannotVectorize(f"no vector form for {type(s).__name__}")
        return rule(self, s)

    def _store(self, s: S.BufferStore):
        if s.buffer.dtype.is_vector:
            raise CannotVectorize("a buffer of vector elements")
        indices = self._indices(s.indices)
        vector = [i for i in indices if _is_vec(i)]
        if not vector:
            raise CannotVectorize("a store to the same place in every lane")
        if not (is_const_int(vector[0].stride) and vector[0].stride.value != 0):
            raise CannotVectorize("a store whose lanes may overlap")
        value = _broadcast(self.expr(s.value), self.lanes)
        self.accesses.append((s.buffer.data, True, indices))
        return S.BufferStore(s.buffer, value, indices)

    def _seq(self, s: S.SeqStmt):
        return S.SeqStmt(tuple(self.stmt(x) for x in s.seq))

    def _let_stmt(self, s: S.LetStmt):
        if s.value.dtype == s.var.dtype and s.var.dtype.is_integer and not has_load(s.value):
            self.analyzer.bind(s.var, s.value)  # the variable is its value throughout the body
        value = self.expr(s.value)
        var = Var(s.var.name, value.dtype) if _is_vec(value) else s.var
        self.var_map[id(s.var)] = var
        self.inside.add(id(var))
        return S.LetStmt(var, value, self.stmt(s.body))

    def _if(self, s: S.IfThenElse):
        cond = self.expr(s.condition)
        if not _is_vec(cond):
            return S.IfThenElse(cond, *_branches(self.analyzer, s, self.stmt))
        t, f = s.then_case, s.else_case
        same_place = (
            isinstance(t, S.BufferStore)
            and isinstance(f, S.BufferStore)
            and t.buffer.data is f.buffer.data
            and structural_equal(t.buffer, f.buffer)
            and structural_equal(t.indices, f.indices)
        )
        if not same_place:
            raise CannotVectorize("a vector condition guarding statements")
        if not (self._loads_in_bounds(t.value) and self._loads_in_bounds(f.value)):
            raise CannotVectorize(
                "a vector condition guarding a load that may be out of bounds where it is false"
            )
        merged = S.BufferStore(t.buffer, E.select(s.condition, t.value, f.value), t.indices)
        return self.stmt(merged)

    def _loads_in_bounds(self, value: PrimExpr) -> bool:
        """Every load in `value` (a scalar expression of the loop body) is in bounds in every iteration."""
        for load in collect(value, E.BufferLoad):
            if len(load.indices) != len(load.buffer.shape):
                return False
            for index, extent in zip(load.indices, load.buffer.shape):
                if _is_vec(index) or not self.analyzer.can_prove(E.logical_and(index >= 0, index < extent)):
                    return False
        return True

    def _for(self, s: For):
        lo, extent = self.expr(s.min), self.expr(s.extent)
        if _is_vec(lo) or _is_vec(extent):
            raise CannotVectorize("an inner loop whose bounds differ between lanes")
        _bind_loop(self.analyzer, s)
        return dataclasses.replace(s, min=lo, extent=extent, body=self.stmt(s.body))

    def _evaluate(self, s: S.Evaluate):
        if not isinstance(s.value, (IntImm, E.FloatImm)):
            raise CannotVectorize("an evaluated expression")
        return s

    def _assert(self, s: S.AssertStmt):
        cond = self.expr(s.condition)
        if _is_vec(cond):
            raise CannotVectorize("an assertion that differs between lanes")
        return s if cond is s.condition else S.AssertStmt(cond, s.message)

    def check_independent(self) -> None:
        """Every buffer written must be accessed at one index everywhere, an index that does not change
        inside the body (so each lane owns one element for the whole iteration)."""
        written = {id(data) for data, is_store, _ in self.accesses if is_store}
        first: dict[int, tuple[PrimExpr, ...]] = {}
        for data, _, indices in self.accesses:
            if id(data) not in written:
                continue
            if has_load(indices) or var_ids(indices) & self.inside:
                raise CannotVectorize(f"buffer {data.name} is written at a place that moves inside the body")
            seen = first.setdefault(id(data), indices)
            if seen is not indices and not structural_equal(seen, indices):
                raise CannotVectorize(f"buffer {data.name} is accessed at different places across lanes")


_EXPR_RULES = {
    **{cls: _Vectorizer._binary for cls in (*_BINARY, *_COMPARE)},
    Var: _Vectorizer._var,
    IntImm: _Vectorizer._leaf,
    E.FloatImm: _Vectorizer._leaf,
    E.StringImm: _Vectorizer._leaf,
    E.Not: _Vectorizer._not,
    E.Select: _Vectorizer._select,
    E.Cast: _Vectorizer._cast,
    E.Call: _Vectorizer._call,
    E.Let: _Vectorizer._let,
    E.BufferLoad: _Vectorizer._load,
    Ramp: _Vectorizer._vector_rejected,
    Broadcast: _Vectorizer._vector_rejected,
}

_STMT_RULES = {
    S.BufferStore: _Vectorizer._store,
    S.SeqStmt: _Vectorizer._seq,
    S.LetStmt: _Vectorizer._let_stmt,
    S.IfThenElse: _Vectorizer._if,
    For: _Vectorizer._for,
    S.Evaluate: _Vectorizer._evaluate,
    S.AssertStmt: _Vectorizer._assert,
}


def _assuming(analyzer: Analyzer, cond: PrimExpr):
    """A context in which `analyzer` knows `cond`: a scalar condition free of loads (a loaded value may
    change between the `if` and a use, so a fact about it could be stale), else nothing."""
    if cond.dtype.is_scalar and not has_load(cond):
        return analyzer.constraint(cond)
    return contextlib.nullcontext()


def _branches(analyzer: Analyzer, s: S.IfThenElse, visit) -> tuple:
    """(then, else) of `s` rewritten by `visit`, each while `analyzer` knows its branch's condition."""
    with _assuming(analyzer, s.condition):
        then_case = visit(s.then_case)
    else_case = None
    if s.else_case is not None:
        with _assuming(analyzer, E.Not(s.condition)):
            else_case = visit(s.else_case)
    return then_case, else_case


def _bind_loop(analyzer: Analyzer, loop: For) -> None:
    """Tell `analyzer` the range of `loop`'s variable (not from bounds that load: the loaded value may
    change inside the loop, the range was fixed on entry)."""
    if not has_load(loop.min) and not has_load(loop.extent):
        analyzer.bind(loop.loop_var, Range(loop.min, loop.extent))


def vectorize(loop: For, lanes: int, analyzer: Analyzer | None = None) -> S.Stmt:
    """The vector form of `loop` (extent `lanes`); raises CannotVectorize when there is none.

    `analyzer` knows the variables around the loop (loop ranges, facts, symbolic dimensions); it is
    extended with the loop's own variables, and used to prove guarded loads in bounds."""
    vectorizer = _Vectorizer(loop, lanes, analyzer if analyzer is not None else Analyzer())
    body = vectorizer.stmt(loop.body)
    vectorizer.check_independent()
    return body


class _VectorizeLoops(Mutator):
    mutate_buffers = False

    def __init__(self, enable: bool, max_lanes: int, analyzer: Analyzer):
        super().__init__()
        self.enable = enable
        self.max_lanes = max_lanes
        self.analyzer = analyzer

    def visit_PrimExpr(self, expr):
        return expr

    def visit_IfThenElse(self, op: S.IfThenElse):
        then_case, else_case = _branches(self.analyzer, op, self.visit)
        if then_case is op.then_case and else_case is op.else_case:
            return op
        return S.IfThenElse(op.condition, then_case, else_case)

    def visit_For(self, op: For):
        _bind_loop(self.analyzer, op)
        body = self.visit(op.body)  # innermost loops first
        loop = op if body is op.body else dataclasses.replace(op, body=body)
        if op.kind != ForKind.VECTORIZED:
            return loop
        extent = op.extent
        if self.enable and isinstance(extent, IntImm) and 2 <= extent.value <= self.max_lanes:
            try:
                return vectorize(loop, extent.value, self.analyzer)
            except CannotVectorize:
                pass
        return dataclasses.replace(loop, kind=ForKind.SERIAL)


@register_pass
@dataclasses.dataclass(frozen=True)
class VectorizeLoop(PrimFuncPass):
    """Vectorize `vectorized` loops of constant extent <= max_lanes; make the others serial loops."""

    name = "vectorize-loop"
    enable: bool = True
    max_lanes: int = 64

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        body = _VectorizeLoops(self.enable, self.max_lanes, make_analyzer(func)).visit(func.body)
        return func if body is func.body else func.with_body(body)
