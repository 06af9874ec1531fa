"""Parallel loops: outline the loop into functions and run them on libgomp's thread team.

For `for i in T.parallel(min, extent): body`, three pieces are emitted:

1. `i32 @<kernel>.par.N(<captured values>, start, end)`: the loop over [start, end). Captured buffer pointers
   keep their `noalias`, so the loop optimizes as it would inline (the inliner turns noalias parameters into
   alias scopes).
2. `void @<kernel>.par.N.worker(ptr closure)`: what `GOMP_parallel` runs on every thread. It reads the
   closure (error slot, next-iteration counter, min, extent, captured values) and claims chunks of
   ceil(extent / (threads x CHUNKS_PER_THREAD)) iterations from the shared counter (an atomic add) until
   none are left, calling the loop on each. Claiming rather than a fixed split is what keeps a loaded
   machine from stalling the call: a thread the scheduler starts late finds the work done by the others
   instead of holding its fixed share (and uneven iterations balance). Called directly (one thread), it
   runs the whole range in one call. A nonzero status (a failed assertion) is stored into the error slot
   and that thread stops claiming.
3. At the loop's place: fill the closure on the stack, call `GOMP_parallel(worker, closure, n, 0)` with
   n = min(threads, extent) (the thread count is the runtime's global `__shapeflow_num_threads`), or call
   the worker directly (on this thread, no thread team) when n <= 1 or when the loop's estimated work is
   below the runtime's threshold `__shapeflow_parallel_min_work`, then return the stored status if one
   was set.

The work estimate is computed where the loop starts, from the extents known then: trip count x the body's
cost, where a statement costs about one unit per arithmetic operation, load and store (`CALL_COST` per
call of a math function), an inner loop costs its trip count x its body (an inner extent is evaluated at
the first iteration of every loop, let variables at their values; one that needs a buffer read counts
`UNKNOWN_TRIP`, and a division by a run-time value divides by at least 1), and an `if` costs its
condition and its costlier branch. It is a double, so no product of extents overflows. Waking a thread
team costs microseconds (and, on a loaded machine, a scheduler timeslice when a team thread is not
running), so a small loop is faster on the calling thread; the threshold and how it was chosen are in
shapeflow.runtime.threadpool.

No Python and no GIL are involved. Parallel loops inside the body run serially.
"""

from __future__ import annotations

import llvmlite.ir as ir

from shapeflow.codegen.llvm.context import FunctionContext
from shapeflow.codegen.llvm.types import I32, PTR, VOID
from shapeflow.ir import expr as E
from shapeflow.ir.functor import Mutator, collect, substitute
from shapeflow.ir.node import init_fields_of
from shapeflow.ir.tir.stmt import (
    Allocate,
    AssertStmt,
    BufferStore,
    DeclBuffer,
    Evaluate,
    For,
    IfThenElse,
    LetStmt,
    SeqStmt,
)

Var = E.Var
F64 = ir.DoubleType()
NUM_THREADS_SYMBOL = "__shapeflow_num_threads"
PARALLEL_MIN_WORK_SYMBOL = "__shapeflow_parallel_min_work"  # a double: run serially below this much work
CALL_COST = 16  # work units of one math-function call (exp, tanh, ...) against 1 for an add or a load
CHUNKS_PER_THREAD = 4  # chunks per thread of a parallel loop, claimed dynamically (see the worker above)
UNKNOWN_TRIP = 16  # trip count assumed for an inner loop whose extent cannot be evaluated before the loop


def _captured(ctx: FunctionContext, loop: For) -> list[Var]:
    seen: set[int] = set()
    out: list[Var] = []
    for var in collect(loop.body, Var):
        if id(var) in seen or var is loop.loop_var:
            continue
        seen.add(id(var))
        if var in ctx.env:
            out.append(var)
    return out


def _emit_loop_function(
    ctx: FunctionContext, loop: For, captured: list[Var], index_ty: ir.Type
) -> ir.Function:
    from shapeflow.codegen.llvm.stmt import emit_serial_loop  # noqa: PLC0415

    mod = ctx.mod
    arg_types = [ctx.env[v].type for v in captured] + [index_ty, index_ty]
    fn = ir.Function(mod.module, ir.FunctionType(I32, arg_types), name=mod.unique(f"{ctx.kernel_name}.par"))
    fn.linkage = "internal"
    inner = FunctionContext(
        mod, fn, ctx.kernel_name, ctx.messages, noalias=set(ctx.noalias), in_parallel=True
    )
    for var, arg in zip(captured, fn.args):
        arg.name = var.name
        inner.env[var] = arg
        if var in ctx.noalias:
            arg.add_attribute("noalias")
    start, end = fn.args[-2], fn.args[-1]
    emit_serial_loop(inner, loop.loop_var, start, end, lambda: inner.emit_stmt(loop.body))
    inner.builder.ret(ir.Constant(I32, 0))
    inner.finish()
    return fn


def _emit_worker(ctx: FunctionContext, loop_fn: ir.Function, closure_ty, captured, index_ty) -> ir.Function:
    mod = ctx.mod
    worker = ir.Function(mod.module, ir.FunctionType(VOID, [PTR]), name=f"{loop_fn.name}.worker")
    worker.linkage = "internal"
    b = ir.IRBuilder(worker.append_basic_block("entry"))
    closure = worker.args[0]

    def field(i):
        pointer = b.gep(closure, [ir.Constant(I32, 0), ir.Constant(I32, i)], source_etype=closure_ty)
        return b.load(pointer, typ=closure_ty.elements[i])

    error_slot, next_slot, lo, extent = field(0), field(1), field(2), field(3)
    values = [field(4 + i) for i in range(len(captured))]
    nthreads = b.sext(b.call(mod.declare("omp_get_num_threads", I32, []), []), index_ty)
    one = ir.Constant(index_ty, 1)
    pieces = b.mul(nthreads, ir.Constant(index_ty, CHUNKS_PER_THREAD))
    chunk = b.sdiv(b.sub(b.add(extent, pieces), one), pieces)
    chunk = b.select(b.icmp_signed("<", chunk, one), one, chunk)
    alone = b.icmp_signed("<=", nthreads, one)  # called directly: the whole range in one call
    chunk = b.select(alone, b.select(b.icmp_signed("<", extent, one), one, extent), chunk)
    stop = b.add(lo, extent)
    claim = worker.append_basic_block("claim")
    run = worker.append_basic_block("run")
    failed = worker.append_basic_block("failed")
    done = worker.append_basic_block("done")
    b.branch(claim)
    b.position_at_end(claim)
    begin = b.atomic_rmw("add", next_slot, chunk, "monotonic")
    b.cbranch(b.icmp_signed("<", begin, stop), run, done)
    b.position_at_end(run)
    end = b.add(begin, chunk)
    end = b.select(b.icmp_signed("<", end, stop), end, stop)
    status = b.call(loop_fn, [*values, begin, end])
    b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), failed, claim)
    b.position_at_end(failed)
    b.atomic_rmw("xchg", error_slot, status, "monotonic")  # several threads may fail at once
    b.branch(done)
    b.position_at_end(done)
    b.ret_void()
    return worker


def emit_parallel_loop(ctx: FunctionContext, loop: For) -> None:
    mod = ctx.mod
    b = ctx.builder
    index_ty = ctx.emit_expr(loop.min).type
    captured = _captured(ctx, loop)
    loop_fn = _emit_loop_function(ctx, loop, captured, index_ty)
    closure_ty = ir.LiteralStructType([PTR, PTR, index_ty, index_ty, *[ctx.env[v].type for v in captured]])
    worker = _emit_worker(ctx, loop_fn, closure_ty, captured, index_ty)

    closure = ctx.alloca(closure_ty, align=16)
    error_slot = ctx.alloca(I32, align=4)
    b.store(ir.Constant(I32, 0), error_slot)
    lo = ctx.emit_expr(loop.min)
    extent = ctx.emit_expr(loop.extent)
    next_slot = ctx.alloca(index_ty, align=8)  # the first iteration no thread has claimed yet
    b.store(lo, next_slot)
    for i, value in enumerate([error_slot, next_slot, lo, extent, *[ctx.env[v] for v in captured]]):
        b.store(value, b.gep(closure, [ir.Constant(I32, 0), ir.Constant(I32, i)], source_etype=closure_ty))

    if ctx.options.num_threads is not None:
        wanted = ir.Constant(index_ty, ctx.options.num_threads)
    else:
        wanted = b.sext(b.load(mod.global_i32(NUM_THREADS_SYMBOL), typ=I32), index_ty)
    threads = b.select(b.icmp_signed("<", extent, wanted), extent, wanted)
    work = b.fmul(_nonnegative_double(b, extent), _as_double(b, _loop_work(ctx, loop, lo)))
    min_work = b.load(mod.external_global(PARALLEL_MIN_WORK_SYMBOL, F64), typ=F64)
    team = ctx.function.append_basic_block("par.team")
    alone = ctx.function.append_basic_block("par.alone")
    joined = ctx.function.append_basic_block("par.joined")
    enough = b.fcmp_ordered(">=", work, min_work)
    b.cbranch(b.and_(b.icmp_signed(">", threads, ir.Constant(index_ty, 1)), enough), team, alone)
    b.position_at_end(team)
    gomp = mod.declare("GOMP_parallel", VOID, [PTR, PTR, I32, I32])
    b.call(
        gomp, [worker, closure, b.trunc(threads, I32) if index_ty != I32 else threads, ir.Constant(I32, 0)]
    )
    b.branch(joined)
    b.position_at_end(alone)
    b.call(worker, [closure])
    b.branch(joined)
    b.position_at_end(joined)
    status = b.load(error_slot, typ=I32)
    ctx.fail_unless(b.icmp_signed("==", status, ir.Constant(I32, 0)), status, "par")


# -- the work estimate ---------------------------------------------------------------------------
# Values are Python numbers while constant (folded here) and LLVM doubles once a run-time extent enters.
# Extents are evaluated at the first iteration of everything: the parallel loop variable is its min, an
# inner loop variable its loop's min, a let variable its value (all substituted into the extent).

_SAFE_EXTENT_NODES = (E.Var, E.IntImm, E.Cast, E.Add, E.Sub, E.Mul, E.Min, E.Max, E.Select, E.Not)
_SAFE_EXTENT_NODES += (E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE, E.And, E.Or)
_DIVISIONS = (E.FloorDiv, E.FloorMod, E.Div, E.Mod)


class _NoTrap(Mutator):
    """Divisions by a non-constant get the divisor max(b, 1): an estimate must not divide by zero."""

    def generic_visit(self, node):
        node = super().generic_visit(node)
        if isinstance(node, _DIVISIONS) and not isinstance(node.b, E.IntImm):
            return type(node)(node.a, E.max_expr(node.b, E.IntImm(node.b.dtype, 1)))
        return node


def _as_double(b: ir.IRBuilder, value) -> ir.Value:
    return ir.Constant(F64, float(value)) if isinstance(value, (int, float)) else value


def _nonnegative_double(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    as_double = b.sitofp(value, F64)
    return b.select(b.fcmp_ordered("<", as_double, ir.Constant(F64, 0.0)), ir.Constant(F64, 0.0), as_double)


def _add(b: ir.IRBuilder, x, y):
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x + y
    return b.fadd(_as_double(b, x), _as_double(b, y))


def _mul(b: ir.IRBuilder, x, y):
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x * y
    if x == 0 or y == 0:  # a Python zero (an ir.Value never equals 0)
        return 0
    return b.fmul(_as_double(b, x), _as_double(b, y))


def _max(b: ir.IRBuilder, x, y):
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return max(x, y)
    x, y = _as_double(b, x), _as_double(b, y)
    return b.select(b.fcmp_ordered(">", x, y), x, y)


def _expr_work(expr) -> int:
    """Operations in `expr`: one per arithmetic node and load (its indices included, not its buffer's
    shape), `CALL_COST` per call."""
    if isinstance(expr, (E.Var, E.IntImm, E.FloatImm, E.StringImm)):
        return 0
    if isinstance(expr, E.BufferLoad):
        return 1 + sum(_expr_work(i) for i in expr.indices)
    own = CALL_COST if isinstance(expr, E.Call) else 1
    for name in init_fields_of(type(expr)):
        value = getattr(expr, name)
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, E.PrimExpr):
                own += _expr_work(child)
    return own


class _WorkEstimate:
    """The work of one iteration of a parallel loop's body, emitted where the loop starts."""

    def __init__(self, ctx: FunctionContext, loop: For, lo: ir.Value):
        self.ctx, self.loop, self.lo = ctx, loop, lo
        self.first: dict = {}  # Var -> its value at the first iteration, as an expression

    def at_first(self, expr):
        """`expr` at the first iteration, or None when it cannot be computed before the loop."""
        expr = substitute(expr, self.first) if self.first else expr
        for node in collect(expr, E.PrimExpr):
            if isinstance(node, E.Var):
                if node is not self.loop.loop_var and node not in self.ctx.env:
                    return None
            elif not isinstance(node, (*_SAFE_EXTENT_NODES, *_DIVISIONS)):
                return None
        if not (expr.dtype.is_int and expr.dtype.is_scalar):
            return None
        return _NoTrap().visit(expr)

    def trip(self, extent):
        if isinstance(extent, E.IntImm):
            return max(extent.value, 0)
        expr = self.at_first(extent)
        if expr is None:
            return UNKNOWN_TRIP
        with self.ctx.bind(self.loop.loop_var, self.lo):
            value = self.ctx.emit_expr(expr)
        return _nonnegative_double(self.ctx.builder, value)

    def binding(self, var, value, body):
        """The work of `body` with `var` at `value` (None: unknown there)."""
        known = self.at_first(value) if value is not None else None
        old = self.first.get(var)
        if known is not None:
            self.first[var] = known
        try:
            return self.stmt(body)
        finally:
            if old is not None:
                self.first[var] = old
            else:
                self.first.pop(var, None)

    def stmt(self, stmt):
        rule = _WORK_RULES.get(type(stmt))
        return 1 if rule is None else rule(self, stmt)


def _for_work(w: _WorkEstimate, stmt: For):
    trip = w.trip(stmt.extent)
    return _mul(w.ctx.builder, trip, w.binding(stmt.loop_var, stmt.min, stmt.body))


def _seq_work(w: _WorkEstimate, stmt: SeqStmt):
    total = 0
    for s in stmt.seq:
        total = _add(w.ctx.builder, total, w.stmt(s))
    return total


def _if_work(w: _WorkEstimate, stmt: IfThenElse):
    """An `if` runs one of its branches: the condition plus the costlier branch."""
    branch = w.stmt(stmt.then_case)
    if stmt.else_case is not None:
        branch = _max(w.ctx.builder, branch, w.stmt(stmt.else_case))
    return _add(w.ctx.builder, _expr_work(stmt.condition), branch)


def _let_work(w: _WorkEstimate, stmt: LetStmt):
    return _add(w.ctx.builder, _expr_work(stmt.value), w.binding(stmt.var, stmt.value, stmt.body))


_WORK_RULES = {
    For: _for_work,
    SeqStmt: _seq_work,
    IfThenElse: _if_work,
    LetStmt: _let_work,
    BufferStore: lambda w, s: 1 + _expr_work(s.value) + sum(_expr_work(i) for i in s.indices),
    Evaluate: lambda w, s: _expr_work(s.value),
    AssertStmt: lambda w, s: 1 + _expr_work(s.condition),
    Allocate: lambda w, s: w.stmt(s.body),
    DeclBuffer: lambda w, s: w.stmt(s.body),
}


def _loop_work(ctx: FunctionContext, loop: For, lo: ir.Value):
    """Work units of one iteration of the parallel `loop`: a Python number or an LLVM double."""
    return _WorkEstimate(ctx, loop, lo).stmt(loop.body)
