"""Parallel loops: outline the loop into functions and run them on libgomp's thread team.

For `for i in T.parallel(min, extent): body`, three pieces are emitted:

1. `i32 @<kernel>.par.N(<captured values>, start, end)`: the loop over [start, end). Captured buffer pointers
   keep their `noalias`, so the loop optimizes as it would inline (the inliner turns noalias parameters into
   alias scopes).
2. `void @<kernel>.par.N.worker(ptr closure)`: what `GOMP_parallel` runs on every thread. It reads the
   closure (error slot, min, extent, captured values), takes the thread's static chunk
   (ceil(extent / threads) iterations per thread, by `omp_get_thread_num`/`omp_get_num_threads`) and calls
   the loop. A nonzero status (a failed assertion) is stored into the error slot.
3. At the loop's place: fill the closure on the stack, call `GOMP_parallel(worker, closure, n, 0)` with
   n = min(threads, extent) (the thread count is the runtime's global `__shapeflow_num_threads`), or call
   the worker directly when n <= 1, then return the stored status if one was set.

No Python and no GIL are involved. Parallel loops inside the body run serially.
"""

from __future__ import annotations

import llvmlite.ir as ir

from shapeflow.codegen.llvm.context import FunctionContext
from shapeflow.codegen.llvm.types import I32, PTR, VOID
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.stmt import For

NUM_THREADS_SYMBOL = "__shapeflow_num_threads"


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

    error_slot, lo, extent = field(0), field(1), field(2)
    values = [field(3 + i) for i in range(len(captured))]
    tid = b.sext(b.call(mod.declare("omp_get_thread_num", I32, []), []), index_ty)
    nthreads = b.sext(b.call(mod.declare("omp_get_num_threads", I32, []), []), index_ty)
    one = ir.Constant(index_ty, 1)
    chunk = b.sdiv(b.sub(b.add(extent, nthreads), one), nthreads)
    begin = b.add(lo, b.mul(tid, chunk))
    stop = b.add(lo, extent)
    end = b.add(begin, chunk)
    end = b.select(b.icmp_signed("<", end, stop), end, stop)
    run = worker.append_basic_block("run")
    failed = worker.append_basic_block("failed")
    done = worker.append_basic_block("done")
    b.cbranch(b.icmp_signed("<", begin, end), run, done)
    b.position_at_end(run)
    status = b.call(loop_fn, [*values, begin, end])
    b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), failed, done)
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
    closure_ty = ir.LiteralStructType([PTR, index_ty, index_ty, *[ctx.env[v].type for v in captured]])
    worker = _emit_worker(ctx, loop_fn, closure_ty, captured, index_ty)

    closure = ctx.alloca(closure_ty, align=16)
    error_slot = ctx.alloca(I32, align=4)
    b.store(ir.Constant(I32, 0), error_slot)
    lo = ctx.emit_expr(loop.min)
    extent = ctx.emit_expr(loop.extent)
    for i, value in enumerate([error_slot, lo, extent, *[ctx.env[v] for v in captured]]):
        b.store(value, b.gep(closure, [ir.Constant(I32, 0), ir.Constant(I32, i)], source_etype=closure_ty))

    if ctx.options.num_threads is not None:
        wanted = ir.Constant(index_ty, ctx.options.num_threads)
    else:
        wanted = b.sext(b.load(mod.global_i32(NUM_THREADS_SYMBOL), typ=I32), index_ty)
    threads = b.select(b.icmp_signed("<", extent, wanted), extent, wanted)
    team = ctx.function.append_basic_block("par.team")
    alone = ctx.function.append_basic_block("par.alone")
    joined = ctx.function.append_basic_block("par.joined")
    b.cbranch(b.icmp_signed(">", threads, ir.Constant(index_ty, 1)), team, alone)
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
