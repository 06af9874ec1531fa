"""Statement rules of the loop-IR interpreter: one compile function per statement class (STMT_COMPILERS),
each returning a closure `env -> None`. The meaning of each statement is spelled out in `interpreter`'s
module docstring; the rules here are that meaning, written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapeflow.ir.expr import IntImm
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.interpreter_exprs import address_fn, view_maker
from shapeflow.ir.tir.interpreter_values import (
    AssertionFailed,
    InterpreterError,
    compact_strides,
    numpy_dtype,
)

Closure = Callable[[list], Any]
STMT_COMPILERS: dict[type, Callable[[Any, Any], Closure]] = {}


def rule(*classes: type):
    def register(fn):
        for cls in classes:
            STMT_COMPILERS[cls] = fn
        return fn

    return register


def allocator(c, buffer: Buffer) -> Closure:
    """`env -> None` binding fresh zero-filled storage (and the view) of `buffer`; returns nothing."""
    bslot, dslot = c.slot(buffer), c.slot(buffer.data)
    shape_fns = [c.expr(s) for s in buffer.shape]
    stride_fns = [c.expr(s) for s in buffer.strides]
    offset_fn = c.expr(buffer.elem_offset)
    npdt = numpy_dtype(buffer.dtype)
    name = buffer.name

    def allocate(env: list) -> None:
        shape = tuple(int(f(env)) for f in shape_fns)
        if any(n < 0 for n in shape):
            raise InterpreterError(f"allocation of {name} with negative shape {shape}")
        strides = tuple(int(f(env)) for f in stride_fns) if stride_fns else compact_strides(shape)
        offset = int(offset_fn(env))
        size = 0
        if all(n > 0 for n in shape):
            size = max(0, offset + sum((n - 1) * st for n, st in zip(shape, strides)) + 1)
        try:
            storage = np.zeros(size, dtype=npdt)
        except MemoryError:
            raise InterpreterError(f"allocation of {name} ({size} elements) does not fit in memory") from None
        env[dslot] = storage
        env[bslot] = (storage, shape, strides, offset)

    return allocate


def _scoped(slots: list[int], run: Closure) -> Closure:
    """Run `run`, then give `slots` back the values they had (lexical scoping of bindings)."""

    def scoped(env: list) -> None:
        saved = [env[s] for s in slots]
        try:
            run(env)
        finally:
            for s, v in zip(slots, saved):
                env[s] = v

    return scoped


@rule(S.SeqStmt)
def _seq(c, s: S.SeqStmt) -> Closure:
    stmts = tuple(c.stmt(x) for x in s.seq)

    def seq(env):
        for f in stmts:
            f(env)

    return seq


@rule(S.Evaluate)
def _evaluate(c, s: S.Evaluate) -> Closure:
    value = c.expr(s.value)

    def evaluate(env):
        value(env)

    return evaluate


@rule(S.BufferStore)
def _store(c, s: S.BufferStore) -> Closure:
    lanes = max([1, *(i.dtype.lanes for i in s.indices)])
    address = address_fn(c, s.buffer, s.indices, lanes, "store")
    value = c.expr(s.value)

    def store(env):
        v = value(env)
        storage, flat = address(env)
        storage[flat] = v

    return store


@rule(S.For)
def _for(c, s: S.For) -> Closure:
    # Every kind means the serial loop: parallel/vectorized/unrolled/thread-bound iterations are independent
    # by contract, so running them in order is one of their allowed executions.
    # The end `min + extent` must fit the loop variable's dtype: an end that overflows is undefined, as
    # C's signed overflow (the compiled loop compares against the wrapped end and runs no iteration, the
    # simplifier assumes `min < min + extent` means `extent > 0`), so the interpreter refuses such a loop
    # instead of running values the dtype cannot hold (or, wrapped, for ever).
    slot = c.slot(s.loop_var)
    lo_fn, extent_fn, body = c.expr(s.min), c.expr(s.extent), c.stmt(s.body)
    dtype = s.loop_var.dtype
    lowest, highest = (dtype.min_value(), dtype.max_value()) if dtype.is_integer else (None, None)
    name = s.loop_var.name

    def loop(env):
        lo = lo_fn(env)
        end = lo + extent_fn(env)
        if lowest is not None and not lowest <= end <= highest:
            raise InterpreterError(
                f"loop {name}: its end min + extent = {end} does not fit {dtype}; such a loop is "
                "undefined (compiled code compares against the wrapped end)"
            )
        saved = env[slot]
        for i in range(lo, end):
            env[slot] = i
            body(env)
        env[slot] = saved

    return loop


@rule(S.LetStmt)
def _let_stmt(c, s: S.LetStmt) -> Closure:
    slot = c.slot(s.var)
    value, body = c.expr(s.value), c.stmt(s.body)

    def let(env):
        env[slot] = value(env)
        body(env)

    return _scoped([slot], let)


@rule(S.AssertStmt)
def _assert(c, s: S.AssertStmt) -> Closure:
    cond, message = c.expr(s.condition), s.message

    def check(env):
        if not cond(env):
            raise AssertionFailed(message)

    return check


@rule(S.IfThenElse)
def _if(c, s: S.IfThenElse) -> Closure:
    cond, then_case = c.expr(s.condition), c.stmt(s.then_case)
    else_case = c.stmt(s.else_case) if s.else_case is not None else None

    def branch(env):
        if cond(env):
            then_case(env)
        elif else_case is not None:
            else_case(env)

    return branch


@rule(S.Allocate)
def _allocate(c, s: S.Allocate) -> Closure:
    allocate, body = allocator(c, s.buffer), c.stmt(s.body)

    def run(env):
        allocate(env)
        body(env)

    return _scoped([c.slot(s.buffer), c.slot(s.buffer.data)], run)


@rule(S.DeclBuffer)
def _decl_buffer(c, s: S.DeclBuffer) -> Closure:
    make, body, bslot = view_maker(c, s.buffer), c.stmt(s.body), c.slot(s.buffer)

    def run(env):
        env[bslot] = make(env)
        body(env)

    return _scoped([bslot], run)


def _block_runner(c, block: S.Block, value_fns: list[Closure]) -> Closure:
    """`env -> None` running `block` with its iteration variables bound to the values of `value_fns`."""
    if len(value_fns) != len(block.iter_vars):
        raise InterpreterError(
            f"block {block.name}: {len(value_fns)} iter_values for {len(block.iter_vars)} iteration variables"
        )
    slots = [c.slot(iv.var) for iv in block.iter_vars]
    doms = [(c.expr(iv.dom.min), c.expr(iv.dom.extent)) for iv in block.iter_vars]
    reduce_positions = {k for k, iv in enumerate(block.iter_vars) if iv.iter_type == S.IterType.REDUCE}
    allocs = [allocator(c, b) for b in block.alloc_buffers]
    init = c.stmt(block.init) if block.init is not None else None
    body = c.stmt(block.body)
    names = [iv.var.name for iv in block.iter_vars]
    name = block.name

    def run(env):
        values = [f(env) for f in value_fns]
        at_min = True
        for k, (lo_fn, extent_fn) in enumerate(doms):
            lo, v = lo_fn(env), values[k]
            if v < lo or v >= lo + extent_fn(env):
                raise InterpreterError(
                    f"block {name}: {names[k]} = {v} is outside its domain [{lo}, {lo + extent_fn(env)})"
                )
            if k in reduce_positions and v != lo:
                at_min = False
            env[slots[k]] = v
        for allocate in allocs:
            allocate(env)
        if init is not None and at_min:
            init(env)
        body(env)

    return _scoped(
        slots + [c.slot(b) for b in block.alloc_buffers] + [c.slot(b.data) for b in block.alloc_buffers], run
    )


@rule(S.BlockRealize)
def _block_realize(c, s: S.BlockRealize) -> Closure:
    run = _block_runner(c, s.block, [c.expr(v) for v in s.iter_values])
    pred = s.predicate
    if isinstance(pred, IntImm) and pred.value == 1:
        return run
    pred_fn = c.expr(pred)

    def realize(env):
        if pred_fn(env):
            run(env)

    return realize


@rule(S.Block)
def _bare_block(c, s: S.Block) -> Closure:
    # A Block outside a BlockRealize has no bindings: only blocks without iteration variables can run.
    return _block_runner(c, s, [])
