"""Emitters of statements, one rule per node class (registered in `STMT_RULES`).

Loops have a phi-based induction variable of the loop variable's dtype and are emitted rotated (guard,
body, latch), which is the shape LLVM's loop passes expect. `unroll` loops ask for full unrolling and
`vectorized` loops that lowering left as loops ask for vectorization, through loop metadata. Parallel
loops are outlined (parallel.py) unless they sit inside another parallel loop, where they run serially.
An Allocate is zero-filled each time it runs, as the interpreter defines it. A store that is a reduction's
accumulator update gets the reduction float flags (reduction.py); loops keep `FunctionContext.loop_scopes`
up to date for that test.
"""

from __future__ import annotations

import llvmlite.ir as ir

from shapeflow.codegen.llvm.context import STATUS_OUT_OF_MEMORY, stmt_rule
from shapeflow.codegen.llvm.memory import emit_store
from shapeflow.codegen.llvm.reduction import reduction_update
from shapeflow.codegen.llvm.types import I1, I8, I64, PTR, VOID, memory_type
from shapeflow.errors import UnsupportedError
from shapeflow.ir.expr import IntImm, is_const_int
from shapeflow.ir.tir.buffer import allocation_extent
from shapeflow.ir.tir.stmt import (
    Allocate,
    AssertStmt,
    Block,
    BlockRealize,
    BufferStore,
    DeclBuffer,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    SeqStmt,
)

# Allocations up to this many bytes with a constant size go on the stack; larger or symbolic ones on the heap.
STACK_ALLOCATION_LIMIT = 16 * 1024


@stmt_rule(BufferStore)
def _buffer_store(ctx, stmt: BufferStore):
    outer = ctx.reduction_update
    ctx.reduction_update = reduction_update(stmt, ctx.loop_scopes)
    try:
        emit_store(ctx, stmt.buffer, stmt.indices, stmt.value)
    finally:
        ctx.reduction_update = outer


@stmt_rule(Evaluate)
def _evaluate(ctx, stmt: Evaluate):
    if not isinstance(stmt.value, IntImm):
        ctx.emit_expr(stmt.value)


@stmt_rule(SeqStmt)
def _seq(ctx, stmt: SeqStmt):
    for s in stmt.seq:
        ctx.emit_stmt(s)


@stmt_rule(LetStmt)
def _let_stmt(ctx, stmt: LetStmt):
    value = ctx.emit_expr(stmt.value)
    with ctx.bind(stmt.var, value):
        ctx.emit_stmt(stmt.body)


@stmt_rule(AssertStmt)
def _assert(ctx, stmt: AssertStmt):
    cond = ctx.emit_expr(stmt.condition)
    if cond.type != I1:
        raise UnsupportedError(f"AssertStmt condition must be a scalar bool, got {stmt.condition.dtype}")
    ctx.fail_unless(cond, ctx.message_code(stmt.message), "assert")


@stmt_rule(IfThenElse)
def _if_then_else(ctx, stmt: IfThenElse):
    cond = ctx.emit_expr(stmt.condition)
    if cond.type != I1:
        raise UnsupportedError(f"IfThenElse condition must be a scalar bool, got {stmt.condition.dtype}")
    b = ctx.builder
    then_block = ctx.function.append_basic_block("if.then")
    else_block = ctx.function.append_basic_block("if.else") if stmt.else_case is not None else None
    join = ctx.function.append_basic_block("if.end")
    b.cbranch(cond, then_block, else_block or join)
    b.position_at_end(then_block)
    ctx.emit_stmt(stmt.then_case)
    b.branch(join)
    if else_block is not None:
        b.position_at_end(else_block)
        ctx.emit_stmt(stmt.else_case)
        b.branch(join)
    b.position_at_end(join)


def emit_serial_loop(ctx, loop_var, start: ir.Value, end: ir.Value, body, hints=()) -> None:
    """`for loop_var in [start, end)`: emit `body()` once per iteration with `loop_var` bound."""
    b = ctx.builder
    pre = b.block
    body_block = ctx.function.append_basic_block("for.body")
    exit_block = ctx.function.append_basic_block("for.end")
    b.cbranch(b.icmp_signed("<", start, end), body_block, exit_block)
    b.position_at_end(body_block)
    phi = b.phi(start.type, name=loop_var.name)
    phi.add_incoming(start, pre)
    ctx.loop_scopes.append(set())
    try:
        with ctx.bind(loop_var, phi):
            body()
    finally:
        ctx.loop_scopes.pop()
    step = b.add(phi, ir.Constant(start.type, 1), flags=("nsw",))
    latch = b.cbranch(b.icmp_signed("<", step, end), body_block, exit_block)
    phi.add_incoming(step, b.block)
    hints = list(hints)
    if hints:
        latch.set_metadata("llvm.loop", ctx.mod.loop_metadata(hints))
    b.position_at_end(exit_block)


_LOOP_HINTS = {
    ForKind.SERIAL: [],
    ForKind.UNROLLED: [("llvm.loop.unroll.full", None)],
    ForKind.VECTORIZED: [("llvm.loop.vectorize.enable", ir.Constant(I1, 1))],
}


@stmt_rule(For)
def _for(ctx, stmt: For):
    if stmt.kind == ForKind.THREAD_BINDING:
        raise UnsupportedError(f"thread_binding loop '{stmt.loop_var.name}' cannot run on the CPU target")
    if not (stmt.loop_var.dtype.is_int and stmt.loop_var.dtype.is_scalar):
        raise UnsupportedError(f"loop variable '{stmt.loop_var.name}' has dtype {stmt.loop_var.dtype}")
    if stmt.kind == ForKind.PARALLEL and not ctx.in_parallel and ctx.options.parallel:
        from shapeflow.codegen.llvm.parallel import emit_parallel_loop  # noqa: PLC0415

        emit_parallel_loop(ctx, stmt)
        return
    start = ctx.emit_expr(stmt.min)
    end = ctx.builder.add(start, ctx.emit_expr(stmt.extent))
    hints = _LOOP_HINTS.get(stmt.kind, [])
    emit_serial_loop(ctx, stmt.loop_var, start, end, lambda: ctx.emit_stmt(stmt.body), hints)


def _constant_size(shape) -> int | None:
    total = 1
    for extent in shape:
        if not isinstance(extent, IntImm):
            return None
        total *= extent.value
    return total


def _zero_fill(ctx, pointer: ir.Value, nbytes: ir.Value) -> None:
    """memset(pointer, 0, nbytes) where the Allocate runs, every time it runs (as the interpreter's fresh
    zeroed array): the IR defines an allocation as zero-filled. LLVM deletes the memset where stores provably
    overwrite it first (an accumulator initialized before its loop), so initializing kernels pay nothing."""
    memset = ctx.mod.declare("llvm.memset.p0.i64", VOID, [PTR, I8, I64, I1])
    ctx.builder.call(memset, [pointer, ir.Constant(I8, 0), nbytes, ir.Constant(I1, 0)])


@stmt_rule(Allocate)
def _allocate(ctx, stmt: Allocate):
    buffer = stmt.buffer
    elem = memory_type(buffer.dtype.element_of())
    nbytes = buffer.dtype.bytes
    shape = buffer.shape
    if buffer.strides or not is_const_int(buffer.elem_offset, 0):
        # Unflattened IR (build(lower=False)): a strided or offset buffer spans more than its shape's
        # product; allocate what flatten-buffer would (0 when an extent is 0), not the product.
        shape = (allocation_extent(buffer),)
    count = _constant_size(shape)
    if count is not None and count * nbytes <= STACK_ALLOCATION_LIMIT:
        pointer = ctx.alloca(elem, max(count, 1), align=max(64, nbytes))
        _zero_fill(ctx, pointer, ir.Constant(I64, max(count, 0) * nbytes))
        with ctx.bind(buffer.data, pointer):
            ctx.emit_stmt(stmt.body)
        return
    b = ctx.builder
    size = ir.Constant(I64, nbytes)
    for extent in shape:
        value = ctx.emit_expr(extent)
        value = value if value.type == I64 else b.sext(value, I64)
        size = b.mul(size, value)
    used = b.select(b.icmp_signed("<", size, ir.Constant(I64, 0)), ir.Constant(I64, 0), size)
    # aligned_alloc wants a multiple of the alignment; at least one line so a zero-size buffer is not NULL.
    size = b.and_(b.add(size, ir.Constant(I64, 63)), ir.Constant(I64, -64))
    size = b.select(b.icmp_signed("<", size, ir.Constant(I64, 64)), ir.Constant(I64, 64), size)
    aligned_alloc = ctx.mod.declare("aligned_alloc", PTR, [I64, I64])
    pointer = b.call(aligned_alloc, [ir.Constant(I64, 64), size])
    ctx.fail_unless(b.icmp_unsigned("!=", pointer, ir.Constant(PTR, None)), STATUS_OUT_OF_MEMORY, "alloc")
    _zero_fill(ctx, pointer, used)
    ctx.heap_live.append(pointer)
    with ctx.bind(buffer.data, pointer):
        ctx.emit_stmt(stmt.body)
    ctx.heap_live.pop()
    b.call(ctx.mod.declare("free", ir.VoidType(), [PTR]), [pointer])


@stmt_rule(DeclBuffer)
def _decl_buffer(ctx, stmt: DeclBuffer):
    ctx.lookup(stmt.buffer.data)  # the storage must already be defined
    ctx.emit_stmt(stmt.body)


@stmt_rule(Block, BlockRealize)
def _block(ctx, stmt):
    raise UnsupportedError(
        f"{type(stmt).__name__} reached the LLVM code generator: lower the function first "
        "(shapeflow.passes.tir.lower, which shapeflow.build runs by default)"
    )
