"""Random well-formed, executable PrimFuncs from a seeded `random.Random` (the campaign's generator).

Hypothesis strategies (tests/strategies_tir.py) shrink well but cannot be driven by a plain seed inside a
worker process, so the campaign has its own generator. What it guarantees, for every value of the symbolic
dimensions within the function's `var_bounds` attribute:

- buffer accesses are in bounds (an index is the loop variable over that very dimension, a constant 0,
  `min(i, d - 1)` or `x % d` with `d >= 1`);
- no integer division by zero or by a negative number (divisors are positive constants or `max(x, 1)`),
  no float-to-integer casts, shift amounts are constants in [0, bits): no undefined behaviour;
- each statement writes every point of its output once per iteration point and reads only that point of
  the output, so parallel, vectorized and unrolled loops have no races; reductions are blocks with an init
  and a serial reduce loop.

Integer arithmetic may wrap and floats may become inf or nan; the reference interpreter defines both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.intrinsics import INTRINSICS

INT64 = DataType("int64")
BOOL = DataType("bool")
# Weighted towards the dtypes kernels use; the rest keep the integer and half-precision paths covered.
DTYPES = ("float32",) * 4 + (
    "float64",
    "int32",
    "int32",
    "int64",
    "int8",
    "uint8",
    "int16",
    "uint32",
    "float16",
)
DIM_BOUNDS = (1, 12)


@dataclass
class Scope:
    """What an expression may refer to: scalar variables and in-bounds loads, by dtype."""

    vars: list = field(default_factory=list)
    loads: list = field(default_factory=list)

    def leaves(self, dtype: DataType) -> list:
        return [v for v in self.vars if v.dtype == dtype] + [x for x in self.loads if x.dtype == dtype]

    def with_var(self, var: E.Var) -> Scope:
        return Scope([*self.vars, var], self.loads)


class ExprGen:
    """Typed random expressions; `safe` ones have no undefined behaviour (see the module docstring)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.counter = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def const(self, dtype: DataType) -> E.PrimExpr:
        rng = self.rng
        if dtype.is_vector:
            return E.Broadcast(self.const(dtype.element_of()), dtype.lanes)
        if dtype.is_bool:
            return E.IntImm(dtype, rng.randint(0, 1))
        if dtype.is_float:
            return E.FloatImm(dtype, rng.randint(-16, 16) / 4)
        return E.IntImm(dtype, rng.randint(max(dtype.min_value(), -8), min(dtype.max_value(), 8)))

    def positive_const(self, dtype: DataType) -> E.PrimExpr:
        if dtype.is_float:
            return E.FloatImm(dtype, self.rng.choice([0.5, 1.0, 2.0, 3.0, -1.5]))
        return E.IntImm(dtype, self.rng.randint(1, 7))

    def expr(self, dtype: DataType, scope: Scope, depth: int) -> E.PrimExpr:
        rng = self.rng
        leaves = scope.leaves(dtype)
        if depth <= 0 or rng.randint(0, 4) == 0:
            if leaves and rng.randint(0, 3):
                return rng.choice(leaves)
            return self.const(dtype)
        if dtype.is_bool:
            builders = [self._compare, self._compare, self._logic, self._select, self._float_predicate]
        else:
            builders = [self._arith, self._arith, self._select, self._let, self._cast, self._intrinsic]
            builders.append(self._int_division if dtype.is_integer else self._float_division)
        return rng.choice(builders)(dtype, scope, depth - 1)

    def _arith(self, dtype, scope, depth):
        cls = self.rng.choice([E.Add, E.Sub, E.Mul, E.Min, E.Max])
        return cls(self.expr(dtype, scope, depth), self.expr(dtype, scope, depth))

    def _select(self, dtype, scope, depth):
        cond = self.expr(BOOL, scope, depth)
        return E.Select(cond, self.expr(dtype, scope, depth), self.expr(dtype, scope, depth))

    def _let(self, dtype, scope, depth):
        value_dtype = DataType(self.rng.choice(["int64", "int32", "float32", dtype.element_of()._str]))
        var = E.Var(self.fresh("t"), value_dtype)
        value = self.expr(value_dtype, scope, depth)
        return E.Let(var, value, self.expr(dtype, scope.with_var(var), depth))

    def _cast(self, dtype, scope, depth):
        sources = ["int32", "int64", "int8", "uint8"] if dtype.is_integer else ["int32", "float64", "float32"]
        return E.Cast(dtype, self.expr(DataType(self.rng.choice(sources)), scope, depth))

    def _intrinsic(self, dtype, scope, depth):
        names = [
            name
            for name, intr in INTRINSICS.items()
            if not intr.returns_bool
            and not (intr.operand_kind == "float" and not dtype.is_float)
            and not (intr.operand_kind == "int" and not dtype.is_integer)
            and not (name == "abs" and dtype.is_integer)
        ]
        name = self.rng.choice(names)
        intr = INTRINSICS[name]
        args = [self.expr(dtype, scope, depth) for _ in range(intr.arity)]
        if name in ("shift_left", "shift_right"):
            args[1] = E.make_const(dtype, self.rng.randint(0, dtype.bits - 1))
        return E.Call(dtype, name, tuple(args))

    def _int_division(self, dtype, scope, depth):
        cls = self.rng.choice([E.FloorDiv, E.FloorMod, E.Div, E.Mod])
        if self.rng.randint(0, 2):
            divisor = self.positive_const(dtype)
        else:  # a guarded variable divisor
            divisor = E.Max(self.expr(dtype, scope, depth), E.IntImm(dtype, 1))
        return cls(self.expr(dtype, scope, depth), divisor)

    def _float_division(self, dtype, scope, depth):
        return E.Div(self.expr(dtype, scope, depth), self.positive_const(dtype))

    def _compare(self, dtype, scope, depth):
        operand = DataType(self.rng.choice(["int64", "int32", "float32", "float64"]))
        cls = self.rng.choice([E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE])
        return cls(self.expr(operand, scope, depth), self.expr(operand, scope, depth))

    def _logic(self, dtype, scope, depth):
        kind = self.rng.randint(0, 2)
        if kind == 0:
            return E.Not(self.expr(dtype, scope, depth))
        cls = E.And if kind == 1 else E.Or
        return cls(self.expr(dtype, scope, depth), self.expr(dtype, scope, depth))

    def _float_predicate(self, dtype, scope, depth):
        name = self.rng.choice(["isnan", "isinf"])
        return E.Call(dtype, name, (self.expr(DataType("float32"), scope, depth),))

    def index(self, loop_vars: list, depth: int = 2) -> E.PrimExpr:
        """An int64 index-style expression over loop variables (may be out of range; wrap it)."""
        rng = self.rng
        if depth <= 0 or rng.randint(0, 3) == 0:
            if loop_vars and rng.randint(0, 1):
                return rng.choice(loop_vars)
            return E.IntImm(INT64, rng.randint(-4, 9))
        a = self.index(loop_vars, depth - 1)
        if rng.randint(0, 2):
            cls = rng.choice([E.Add, E.Sub, E.Mul, E.Min, E.Max])
            return cls(a, self.index(loop_vars, depth - 1))
        return rng.choice([E.FloorDiv, E.FloorMod])(a, E.IntImm(INT64, rng.randint(1, 8)))

    def in_bounds_index(self, extent: E.PrimExpr, loop_vars: list) -> E.PrimExpr:
        """An int64 index in [0, extent) for `extent >= 1`; loop_vars are (var, extent) pairs."""
        rng = self.rng
        same = [v for v, e in loop_vars if e is extent]
        choice = rng.randint(0, 3)
        if choice == 0 and same:
            return rng.choice(same)
        if choice == 1:
            return E.IntImm(INT64, 0)
        if choice == 2 and loop_vars:
            return E.Min(rng.choice(loop_vars)[0], E.Sub(extent, E.IntImm(INT64, 1)))
        return E.FloorMod(self.index([v for v, _ in loop_vars]), extent)


class FuncGen:
    """One function being generated: its signature and the statements over it."""

    def __init__(self, rng: random.Random, max_stmts: int = 3):
        self.rng = rng
        self.gen = ExprGen(rng)
        self.max_stmts = max_stmts
        names = ("n", "m")[: rng.randint(1, 2)]
        self.dims = [E.Var(name, INT64) for name in names]
        extents = [*self.dims, *self.dims, *(E.IntImm(INT64, c) for c in (1, 3, 4, 8))]

        def make(name: str) -> Buffer:
            shape = tuple(rng.choice(extents) for _ in range(rng.randint(1, 3)))
            return Buffer(name, shape, DataType(rng.choice(DTYPES)))

        self.inputs = [make(f"A{k}") for k in range(rng.randint(1, 3))]
        self.outputs = [make(f"B{k}") for k in range(rng.randint(1, 2))]
        used = {id(e) for b in self.inputs + self.outputs for e in b.shape}
        self.dims = [d for d in self.dims if id(d) in used]

    def loop_kind(self, extent, allow_vector: bool = True) -> S.ForKind:
        kinds = [S.ForKind.SERIAL, S.ForKind.SERIAL, S.ForKind.PARALLEL]
        if isinstance(extent, E.IntImm) and allow_vector:
            kinds += [S.ForKind.UNROLLED, S.ForKind.VECTORIZED]
        return self.rng.choice(kinds)

    def loads(self, loop_vars: list, own=None) -> list:
        out = []
        for buf in self.inputs:
            for _ in range(self.rng.randint(0, 2)):
                idx = tuple(self.gen.in_bounds_index(e, loop_vars) for e in buf.shape)
                out.append(E.BufferLoad(buf, idx))
        if own is not None:
            out.append(E.BufferLoad(*own))
        return out

    def wrap_store(self, store: S.BufferStore, scope: Scope, loop_vars: list) -> S.Stmt:
        """Optionally put a store under a let, an if, an assert or a local allocation."""
        rng, gen, dtype = self.rng, self.gen, store.buffer.dtype
        kind = rng.randint(0, 6)
        if kind == 1:
            var = E.Var(gen.fresh("x"), dtype)
            inner = scope.with_var(var)
            body = S.BufferStore(store.buffer, gen.expr(dtype, inner, 2), store.indices)
            return S.LetStmt(var, gen.expr(dtype, scope, 2), body)
        if kind == 2:
            other = S.BufferStore(store.buffer, gen.expr(dtype, scope, 2), store.indices)
            return S.IfThenElse(gen.expr(BOOL, scope, 2), store, other if rng.randint(0, 1) else None)
        if kind == 3 and loop_vars:
            v, extent = rng.choice(loop_vars)
            return S.seq(S.AssertStmt(E.LT(v, extent), "loop variable in range"), store)
        if kind == 4:
            tmp = Buffer(gen.fresh("tmp"), (E.IntImm(INT64, 1),), dtype, scope="local")
            zero = (E.IntImm(INT64, 0),)
            fill = S.BufferStore(tmp, store.value, zero)
            return S.Allocate(
                tmp, S.seq(fill, S.BufferStore(store.buffer, E.BufferLoad(tmp, zero), store.indices))
            )
        return store

    def elementwise(self) -> S.Stmt:
        rng, gen = self.rng, self.gen
        out = rng.choice(self.outputs)
        loop_vars = [(E.Var(gen.fresh("i"), INT64), extent) for extent in out.shape]
        point = tuple(v for v, _ in loop_vars)
        scope = Scope([v for v, _ in loop_vars], self.loads(loop_vars, (out, point)))
        store = S.BufferStore(out, gen.expr(out.dtype, scope, 3), point)
        if rng.randint(0, 2) == 0:  # as a block with spatial iteration variables
            axes = [(E.Var(gen.fresh("v"), INT64), e) for _, e in loop_vars]
            mapping = {v: a for (v, _), (a, _) in zip(loop_vars, axes)}
            from shapeflow.ir.functor import substitute  # noqa: PLC0415

            body = substitute(self.wrap_store(store, scope, loop_vars), mapping)
            apoint = tuple(a for a, _ in axes)
            block = S.Block(
                gen.fresh("ew"),
                tuple(S.IterVar(a, S.Range(E.IntImm(INT64, 0), e)) for a, e in axes),
                tuple(S.BufferRegion.full(b) for b in self.inputs),
                (S.BufferRegion(out, tuple(S.Range(p, E.IntImm(INT64, 1)) for p in apoint)),),
                body,
            )
            body = S.BlockRealize(point, E.IntImm(BOOL, 1), block)
        else:
            body = self.wrap_store(store, scope, loop_vars)
        for v, extent in reversed(loop_vars):
            body = S.For(v, E.IntImm(INT64, 0), extent, self.loop_kind(extent), body)
        return body

    def reduction(self) -> S.Stmt:
        rng, gen = self.rng, self.gen
        out = rng.choice(self.outputs)
        red_extent = rng.choice([*self.dims, E.IntImm(INT64, 3), E.IntImm(INT64, 1)])
        loops = [(E.Var(gen.fresh("i"), INT64), e) for e in out.shape] + [
            (E.Var(gen.fresh("k"), INT64), red_extent)
        ]
        iter_vars, axes = [], []
        for k, (_, extent) in enumerate(loops):
            axis = E.Var(gen.fresh("v"), INT64)
            kind = S.IterType.REDUCE if k == len(loops) - 1 else S.IterType.SPATIAL
            iter_vars.append(S.IterVar(axis, S.Range(E.IntImm(INT64, 0), extent), kind))
            axes.append((axis, extent))
        point = tuple(a for a, _ in axes[:-1])
        scope = Scope([a for a, _ in axes], self.loads(axes))
        combine = rng.choice([E.Add, E.Add, E.Max, E.Min, E.Mul])
        update = S.BufferStore(out, combine(E.BufferLoad(out, point), gen.expr(out.dtype, scope, 2)), point)
        init = S.BufferStore(out, gen.const(out.dtype), point)
        region = tuple(S.Range(p, E.IntImm(INT64, 1)) for p in point)
        reads = tuple(S.BufferRegion.full(b) for b in self.inputs) + (S.BufferRegion(out, region),)
        block = S.Block(
            gen.fresh("reduce"), tuple(iter_vars), reads, (S.BufferRegion(out, region),), update, init
        )
        body = S.BlockRealize(tuple(v for v, _ in loops), E.IntImm(BOOL, 1), block)
        for k in range(len(loops) - 1, -1, -1):
            v, extent = loops[k]
            kind = S.ForKind.SERIAL if k == len(loops) - 1 else self.loop_kind(extent, allow_vector=False)
            body = S.For(v, E.IntImm(INT64, 0), extent, kind, body)
        return body

    def function(self) -> PrimFunc:
        rng = self.rng
        builders = [self.elementwise, self.elementwise, self.reduction]
        # Write every output first so the result never depends on the arrays' initial contents alone.
        stmts = [self.elementwise_for(out) for out in self.outputs]
        stmts += [rng.choice(builders)() for _ in range(rng.randint(0, self.max_stmts - 1))]
        body = S.seq(*stmts)
        if rng.randint(0, 1):
            body = S.BlockRealize((), E.IntImm(BOOL, 1), S.Block("root", (), (), (), body))
        bounds = {d.name: DIM_BOUNDS for d in self.dims}
        attrs = {"global_symbol": "main", "var_bounds": bounds}
        return PrimFunc(tuple(self.inputs + self.outputs), body, attrs)

    def elementwise_for(self, out: Buffer) -> S.Stmt:
        saved = self.outputs
        self.outputs = [out]
        try:
            return self.elementwise()
        finally:
            self.outputs = saved


def generate_prim_func(rng: random.Random, max_stmts: int = 3) -> PrimFunc:
    """A random executable PrimFunc (see the module docstring for what it guarantees)."""
    return FuncGen(rng, max_stmts).function()


__all__ = ["ExprGen", "FuncGen", "Scope", "generate_prim_func", "DTYPES", "DIM_BOUNDS"]
