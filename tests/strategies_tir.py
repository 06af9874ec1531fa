"""Hypothesis strategies for random loop IR, shared by the test areas (`from strategies_tir import ...`;
tests/conftest.py puts tests/ on sys.path).

Two families:

* `prim_funcs()` draws **executable** PrimFuncs, meant for differential tests (interpreter vs passes vs
  codegen). Guarantees, for every value of the symbolic dimensions within the function's `var_bounds`
  attribute (every dimension variable is int64 with bounds (1, 16)):
    - every buffer access is in bounds (indices are loop variables over that very dimension, a constant 0,
      `T.min(i, d - 1)`, or `x % d` with `d >= 1`);
    - no division or modulo by zero, and no integer division by a negative number (divisors are positive
      constants), no float division by zero (divisors are nonzero constants);
    - no float-to-integer casts, shift amounts are constants in [0, bits), no integer `abs` (which wraps at
      the minimum), so there is no undefined behaviour for a backend to exploit;
    - each store nest writes every point of its output buffer once per iteration point, reading inputs and
      only the point being written of the output, so parallel/vectorized/unrolled loops have no races;
      vectorized and unrolled loops have constant extents; reductions are blocks with an init and a serial
      reduce loop;
    - parameters are buffers only; the first `n_outputs` buffers after the inputs are written.
  Integer arithmetic may wrap (defined as two's-complement wrapping); floats may become inf or nan (via
  `log`, `pow`, ...), which numpy and LLVM agree on.

* `ir_prim_funcs()`, `exprs(..., safe=False)`, `stmts()` draw **well-formed but not necessarily executable**
  IR covering every node kind: all dtypes (vectors, bool, bfloat16), every intrinsic in
  `shapeflow.ir.tir.intrinsics.INTRINSICS`, calls the registry does not know, strings, lets, every
  statement kind, blocks with init/reads/writes/alloc_buffers/predicates/annotations, loops of every kind,
  buffers with strides, offsets, scopes, alignment and shared data. Meant for the printer/parser and
  structural tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.intrinsics import INTRINSICS

INT64 = DataType("int64")
BOOL = DataType("bool")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")
SAFE_DTYPES = ("float32", "float64", "int32", "int64")
ALL_SCALAR_DTYPES = INT_DTYPES + FLOAT_DTYPES + ("bool",)


@dataclass
class Env:
    """What an expression may refer to: variables and (in-bounds) loads, by dtype."""

    vars: list = field(default_factory=list)
    loads: list = field(default_factory=list)
    safe: bool = True

    def leaves(self, dtype: DataType) -> list:
        return [v for v in self.vars if v.dtype == dtype] + [x for x in self.loads if x.dtype == dtype]


# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------


def _const(draw, dtype: DataType, safe: bool) -> E.PrimExpr:
    if dtype.is_vector:
        return E.Broadcast(_const(draw, dtype.element_of(), safe), dtype.lanes)
    if dtype.is_bool:
        return E.IntImm(dtype, draw(st.integers(0, 1)))
    if dtype.is_float:
        if safe:
            return E.FloatImm(dtype, draw(st.integers(-16, 16)) / 4)
        width = 16 if dtype.bits == 16 else dtype.bits
        return E.FloatImm(dtype, draw(st.floats(width=width if dtype.kind == "float" else 32)))
    lo, hi = dtype.min_value(), dtype.max_value()
    if safe:
        lo, hi = max(lo, -8), min(hi, 8)
    return E.IntImm(dtype, draw(st.integers(lo, hi)))


def _positive_const(draw, dtype: DataType) -> E.PrimExpr:
    if dtype.is_vector:
        return E.Broadcast(_positive_const(draw, dtype.element_of()), dtype.lanes)
    if dtype.is_float:
        return E.FloatImm(dtype, draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, -1.5])))
    return E.IntImm(dtype, draw(st.integers(1, 7)))


# ---------------------------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------------------------


def _gen(draw, dtype: DataType, env: Env, depth: int) -> E.PrimExpr:
    leaves = env.leaves(dtype)
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        choice = draw(st.integers(0, 2))
        if leaves and choice:
            return draw(st.sampled_from(leaves))
        if dtype.is_vector and choice:
            scalar = _gen(draw, dtype.element_of(), env, 0)
            return E.Broadcast(scalar, dtype.lanes)
        return _const(draw, dtype, env.safe)
    builders = [_arith, _select, _let]
    if dtype.is_bool:
        builders = [_compare, _logic, _select, _float_predicate]
    else:
        builders.append(_cast)
        builders.append(_intrinsic)
        if dtype.is_integer:
            builders.append(_int_division)
            if dtype.is_vector:
                builders.append(_ramp)
        if dtype.is_float:
            builders.append(_float_division)
        if dtype.is_vector:
            builders.append(_broadcast)
    if not env.safe:
        builders.append(_unregistered_call)
    return draw(st.sampled_from(builders))(draw, dtype, env, depth - 1)


def _arith(draw, dtype, env, depth):
    cls = draw(st.sampled_from([E.Add, E.Sub, E.Mul, E.Min, E.Max]))
    return cls(_gen(draw, dtype, env, depth), _gen(draw, dtype, env, depth))


def _select(draw, dtype, env, depth):
    cond = _gen(draw, BOOL.with_lanes(dtype.lanes), env, depth)
    return E.Select(cond, _gen(draw, dtype, env, depth), _gen(draw, dtype, env, depth))


def _let(draw, dtype, env, depth):
    value_dtype = DataType(draw(st.sampled_from(SAFE_DTYPES if env.safe else ALL_SCALAR_DTYPES)))
    value = _gen(draw, value_dtype, env, depth)
    var = E.Var(draw(st.sampled_from(["x", "t", "v"])), value_dtype)
    inner = Env(env.vars + [var], env.loads, env.safe)
    return E.Let(var, value, _gen(draw, dtype, inner, depth))


def _cast(draw, dtype, env, depth):
    sources = SAFE_DTYPES if env.safe else ALL_SCALAR_DTYPES
    if env.safe and dtype.is_integer:
        sources = tuple(s for s in sources if s.startswith("int"))  # no float-to-int casts
    source = DataType(draw(st.sampled_from(sources))).with_lanes(dtype.lanes)
    return E.Cast(dtype, _gen(draw, source, env, depth))


def _intrinsic(draw, dtype, env, depth):
    names = []
    for name, intr in INTRINSICS.items():
        if intr.returns_bool:
            continue
        if intr.operand_kind == "float" and not dtype.is_float:
            continue
        if intr.operand_kind == "int" and not dtype.is_integer:
            continue
        if env.safe and name == "abs" and dtype.is_integer:
            continue
        names.append(name)
    name = draw(st.sampled_from(names))
    intr = INTRINSICS[name]
    args = [_gen(draw, dtype, env, depth) for _ in range(intr.arity)]
    if env.safe and name in ("shift_left", "shift_right"):
        args[1] = E.make_const(dtype, draw(st.integers(0, dtype.bits - 1)))
    return E.Call(dtype, name, tuple(args))


def _int_division(draw, dtype, env, depth):
    cls = draw(st.sampled_from([E.FloorDiv, E.FloorMod, E.Div, E.Mod]))
    divisor = _positive_const(draw, dtype) if env.safe else _gen(draw, dtype, env, depth)
    return cls(_gen(draw, dtype, env, depth), divisor)


def _float_division(draw, dtype, env, depth):
    divisor = _positive_const(draw, dtype) if env.safe else _gen(draw, dtype, env, depth)
    return E.Div(_gen(draw, dtype, env, depth), divisor)


def _ramp(draw, dtype, env, depth):
    scalar = dtype.element_of()
    return E.Ramp(_gen(draw, scalar, env, depth), _gen(draw, scalar, env, depth), dtype.lanes)


def _broadcast(draw, dtype, env, depth):
    return E.Broadcast(_gen(draw, dtype.element_of(), env, depth), dtype.lanes)


def _compare(draw, dtype, env, depth):
    operand = DataType(draw(st.sampled_from(SAFE_DTYPES if env.safe else INT_DTYPES + FLOAT_DTYPES)))
    operand = operand.with_lanes(dtype.lanes)
    cls = draw(st.sampled_from([E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE]))
    return cls(_gen(draw, operand, env, depth), _gen(draw, operand, env, depth))


def _logic(draw, dtype, env, depth):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return E.Not(_gen(draw, dtype, env, depth))
    cls = E.And if kind == 1 else E.Or
    return cls(_gen(draw, dtype, env, depth), _gen(draw, dtype, env, depth))


def _float_predicate(draw, dtype, env, depth):
    operand = DataType(draw(st.sampled_from(["float32", "float64"]))).with_lanes(dtype.lanes)
    name = draw(st.sampled_from(["isnan", "isinf"]))
    return E.Call(dtype, name, (_gen(draw, operand, env, depth),))


def _unregistered_call(draw, dtype, env, depth):
    """Calls the registry does not describe (printed as T.call): an extern with a string, or a known
    intrinsic whose dtype differs from the registry's."""
    if draw(st.booleans()):
        args = (E.StringImm(draw(st.text(max_size=6))), _gen(draw, dtype, env, depth))
        return E.Call(dtype, draw(st.sampled_from(["my_extern", "min", "float32", "x.y"])), args)
    return E.Call(dtype, "exp", (_gen(draw, DataType("float32"), env, depth),))


@st.composite
def exprs(draw, dtype="int64", vars=(), loads=(), max_depth: int = 4, safe: bool = True) -> E.PrimExpr:
    """An expression of `dtype` (any scalar or vector dtype, bool included) over `vars` and `loads`.
    `safe=True` keeps it free of division by zero and undefined behaviour (see the module docstring)."""
    return _gen(draw, DataType(dtype), Env(list(vars), list(loads), safe), max_depth)


@st.composite
def int_exprs(draw, vars=(), max_depth: int = 3) -> E.PrimExpr:
    """An int64 index-style expression over `vars`: + - * // % min max with positive constant divisors."""
    env = Env([v for v in vars if v.dtype == INT64], [], True)
    return _index_expr(draw, env, max_depth)


def _index_expr(draw, env: Env, depth: int) -> E.PrimExpr:
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if env.vars and draw(st.booleans()):
            return draw(st.sampled_from(env.vars))
        return E.IntImm(INT64, draw(st.integers(-4, 9)))
    kind = draw(st.integers(0, 2))
    a = _index_expr(draw, env, depth - 1)
    if kind == 0:
        cls = draw(st.sampled_from([E.Add, E.Sub, E.Mul, E.Min, E.Max]))
        return cls(a, _index_expr(draw, env, depth - 1))
    cls = draw(st.sampled_from([E.FloorDiv, E.FloorMod]))
    return cls(a, E.IntImm(INT64, draw(st.integers(1, 8))))


# ---------------------------------------------------------------------------------------------
# Executable PrimFuncs
# ---------------------------------------------------------------------------------------------


@dataclass
class _Func:
    dims: list  # int64 dimension Vars
    inputs: list
    outputs: list
    safe: bool
    counter: list = field(default_factory=lambda: [0])

    def fresh(self, hint: str) -> str:
        self.counter[0] += 1
        return f"{hint}{self.counter[0]}"


def _in_bounds_index(draw, extent, loop_vars) -> E.PrimExpr:
    """An int64 index in [0, extent) given loop vars (var, extent) pairs; `extent` is >= 1."""
    same = [v for v, e in loop_vars if e is extent]
    choice = draw(st.integers(0, 3))
    if choice == 0 and same:
        return draw(st.sampled_from(same))
    if choice == 1:
        return E.IntImm(INT64, 0)
    if choice == 2 and loop_vars:
        v = draw(st.sampled_from([v for v, _ in loop_vars]))
        return E.Min(v, E.Sub(extent, E.IntImm(INT64, 1)))
    inner = _index_expr(draw, Env([v for v, _ in loop_vars], [], True), 2)
    return E.FloorMod(inner, extent)


def _loads(draw, fn: _Func, loop_vars, own_store=None) -> list:
    loads = []
    for buf in fn.inputs:
        for _ in range(draw(st.integers(0, 2))):
            idx = tuple(_in_bounds_index(draw, e, loop_vars) for e in buf.shape)
            loads.append(E.BufferLoad(buf, idx))
    if own_store is not None:
        loads.append(E.BufferLoad(*own_store))
    return loads


def _loop_kind(draw, extent, allow_parallel: bool = True) -> S.ForKind:
    kinds = [S.ForKind.SERIAL]
    if allow_parallel:
        kinds.append(S.ForKind.PARALLEL)
    if isinstance(extent, E.IntImm):
        kinds += [S.ForKind.UNROLLED, S.ForKind.VECTORIZED]
    return draw(st.sampled_from(kinds))


def _wrap_body(draw, fn: _Func, store: S.BufferStore, env: Env, loop_vars) -> S.Stmt:
    """Optionally wrap a store in a let, an if, an assert, a local allocation or a flat alias."""
    kind = draw(st.integers(0, 6))
    dtype = store.buffer.dtype
    if kind == 1:
        var = E.Var("x", dtype)
        value = _gen(draw, dtype, env, 2)
        inner = Env(env.vars + [var], env.loads, env.safe)
        body = S.BufferStore(store.buffer, _gen(draw, dtype, inner, 2), store.indices)
        return S.LetStmt(var, value, body)
    if kind == 2:
        cond = _gen(draw, BOOL, env, 2)
        other = S.BufferStore(store.buffer, _gen(draw, dtype, env, 2), store.indices)
        return S.IfThenElse(cond, store, other if draw(st.booleans()) else None)
    if kind == 3 and loop_vars:
        v, extent = draw(st.sampled_from(loop_vars))
        return S.seq(S.AssertStmt(E.LT(v, extent), "loop variable in range"), store)
    if kind == 4:
        tmp = Buffer(fn.fresh("tmp"), (E.IntImm(INT64, 1),), dtype, scope="local")
        zero = (E.IntImm(INT64, 0),)
        fill = S.BufferStore(tmp, store.value, zero)
        use = S.BufferStore(store.buffer, E.BufferLoad(tmp, zero), store.indices)
        return S.Allocate(tmp, S.seq(fill, use))
    if kind == 5 and fn.inputs:
        src = draw(st.sampled_from(fn.inputs))
        if src.shape and not src.strides:
            size = src.shape[0]
            for e in src.shape[1:]:
                size = E.Mul(size, e)
            flat = Buffer(fn.fresh(src.name + "_flat"), (size,), src.dtype, data=src.data)
            load = E.BufferLoad(flat, (_in_bounds_index(draw, size, loop_vars),))
            inner = Env(env.vars, env.loads + [load], env.safe)
            body = S.BufferStore(store.buffer, _gen(draw, dtype, inner, 2), store.indices)
            return S.DeclBuffer(flat, body)
    return store


def _elementwise(draw, fn: _Func) -> S.Stmt:
    out = draw(st.sampled_from(fn.outputs))
    loop_vars = [(E.Var(fn.fresh("i"), INT64), extent) for extent in out.shape]
    point = tuple(v for v, _ in loop_vars)
    loads = _loads(draw, fn, loop_vars, (out, point))
    env = Env([v for v, _ in loop_vars], loads, fn.safe)
    body = _wrap_body(draw, fn, S.BufferStore(out, _gen(draw, out.dtype, env, 3), point), env, loop_vars)
    for v, extent in reversed(loop_vars):
        body = S.For(v, E.IntImm(INT64, 0), extent, _loop_kind(draw, extent), body)
    return body


def _reduction(draw, fn: _Func) -> S.Stmt:
    out = draw(st.sampled_from(fn.outputs))
    red_extent = draw(st.sampled_from([*fn.dims, E.IntImm(INT64, 3)]))
    loops = [(E.Var(fn.fresh("i"), INT64), e) for e in out.shape] + [
        (E.Var(fn.fresh("k"), INT64), red_extent)
    ]
    iter_vars, values = [], []
    axes = []
    for k, (v, extent) in enumerate(loops):
        axis = E.Var(fn.fresh("v"), INT64)
        kind = S.IterType.REDUCE if k == len(loops) - 1 else S.IterType.SPATIAL
        iter_vars.append(S.IterVar(axis, S.Range(E.IntImm(INT64, 0), extent), kind))
        values.append(v)
        axes.append((axis, extent))
    point = tuple(a for a, _ in axes[:-1])
    loads = _loads(draw, fn, axes)
    env = Env([a for a, _ in axes], loads, fn.safe)
    contribution = _gen(draw, out.dtype, env, 2)
    update = S.BufferStore(out, E.Add(E.BufferLoad(out, point), contribution), point)
    init = S.BufferStore(out, _const(draw, out.dtype, True), point)
    reads = tuple(S.BufferRegion.full(b) for b in fn.inputs) + (S.BufferRegion(out, _point_region(point)),)
    writes = (S.BufferRegion(out, _point_region(point)),)
    block = S.Block(fn.fresh("reduce"), tuple(iter_vars), reads, writes, update, init)
    body = S.BlockRealize(tuple(values), E.IntImm(BOOL, 1), block)
    for k in range(len(loops) - 1, -1, -1):
        v, extent = loops[k]
        kind = S.ForKind.SERIAL if k == len(loops) - 1 else _loop_kind(draw, extent, True)
        if kind == S.ForKind.VECTORIZED:
            kind = S.ForKind.SERIAL
        body = S.For(v, E.IntImm(INT64, 0), extent, kind, body)
    return body


def _point_region(point) -> tuple:
    return tuple(S.Range(p, E.IntImm(INT64, 1)) for p in point)


@st.composite
def prim_funcs(
    draw, max_stmts: int = 3, dtypes=SAFE_DTYPES, max_inputs: int = 3, n_outputs: int = 1
) -> PrimFunc:
    """An executable PrimFunc (see the module docstring for the guarantees)."""
    fn = _make_signature(draw, dtypes, max_inputs, n_outputs, safe=True)
    nests = [
        draw(st.sampled_from([_elementwise, _reduction]))(draw, fn)
        for _ in range(draw(st.integers(1, max_stmts)))
    ]
    body = S.seq(*nests)
    if draw(st.booleans()):
        root = S.Block("root", (), (), (), body)
        body = S.BlockRealize((), E.IntImm(BOOL, 1), root)
    bounds = {d.name: (1, 16) for d in fn.dims}
    return PrimFunc(tuple(fn.inputs + fn.outputs), body, {"global_symbol": "main", "var_bounds": bounds})


def _make_signature(draw, dtypes, max_inputs, n_outputs, safe: bool) -> _Func:
    dims = [E.Var(name, INT64) for name in ("n", "m")[: draw(st.integers(1, 2))]]
    extents = dims + [E.IntImm(INT64, c) for c in (1, 3, 4)]

    def make(name):
        ndim = draw(st.integers(0 if not safe else 1, 2))
        shape = tuple(draw(st.sampled_from(extents)) for _ in range(ndim))
        return Buffer(name, shape, DataType(draw(st.sampled_from(dtypes))))

    inputs = [make(f"A{k}") for k in range(draw(st.integers(1, max_inputs)))]
    outputs = [make(f"B{k}") for k in range(n_outputs)]
    # Only dimensions some buffer parameter defines: those are bound by the arguments at a call.
    used = [d for d in dims if any(e is d for b in inputs + outputs for e in b.shape)]
    return _Func(used, inputs, outputs, safe)


# The family of well-formed, not necessarily executable IR lives in strategies_tir_rich.py.
from strategies_tir_rich import ir_prim_funcs, stmts  # noqa: E402, F401
