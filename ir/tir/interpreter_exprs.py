"""Expression rules of the loop-IR interpreter: one compile function per node class (EXPR_COMPILERS), each
turning a node into a closure `env -> value`, plus the bounds-checked buffer addressing that loads and
stores share. Values are represented as described in `interpreter_values`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapeflow.ir import expr as E
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.interpreter_values import (
    CMP_OPS,
    InterpreterError,
    binary_fn,
    call_fn,
    cast_fn,
    compact_strides,
    const_value,
    int_wrapper,
    numpy_dtype,
)
from shapeflow.ir.tir.intrinsics import INTRINSICS

Closure = Callable[[list], Any]
EXPR_COMPILERS: dict[type, Callable[[Any, Any], Closure]] = {}


def rule(*classes: type):
    """Register the decorated function as the compile rule of `classes`."""

    def register(fn):
        for cls in classes:
            EXPR_COMPILERS[cls] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# Buffer addressing
# ---------------------------------------------------------------------------------------------


def view_maker(c, buffer: Buffer) -> Closure:
    """`env -> (storage, shape, strides, offset)` for `buffer` over the storage its `data` var holds.

    A buffer whose dtype differs from the storage's reinterprets the bytes (numpy `view`).
    """
    dslot = c.slot(buffer.data)
    shape_fns = [c.expr(s) for s in buffer.shape]
    stride_fns = [c.expr(s) for s in buffer.strides]
    offset_fn = c.expr(buffer.elem_offset)
    npdt = numpy_dtype(buffer.dtype)
    name = buffer.name

    def make(env: list):
        storage = env[dslot]
        if storage is None:
            raise InterpreterError(f"buffer {name}: its storage {buffer.data.name} is not defined here")
        if storage.dtype != npdt:
            if storage.nbytes % npdt.itemsize:
                raise InterpreterError(f"buffer {name}: cannot view {storage.dtype} storage as {npdt}")
            storage = storage.view(npdt)
        shape = tuple(int(f(env)) for f in shape_fns)
        strides = tuple(int(f(env)) for f in stride_fns) if stride_fns else compact_strides(shape)
        return (storage, shape, strides, int(offset_fn(env)))

    return make


def view_getter(c, buffer: Buffer) -> Closure:
    """The bound view of `buffer`; a buffer never declared is viewed afresh over its data var's storage."""
    bslot = c.slot(buffer)
    make = view_maker(c, buffer)

    def get(env: list):
        view = env[bslot]
        return view if view is not None else make(env)

    return get


def _oob(kind: str, buffer: Buffer, index_fns, env, detail: str) -> InterpreterError:
    try:
        shown = ", ".join(str(f(env)) for f in index_fns)
    except Exception:  # the message must not hide the fault
        shown = "?"
    return InterpreterError(f"out-of-bounds {kind} {buffer.name}[{shown}]: {detail}")


def address_fn(c, buffer: Buffer, indices, lanes: int, kind: str) -> Closure:
    """`env -> (storage, flat)`: the flat element (an int, or an int64 array of `lanes`) after checking
    every index against its dimension and the flat element against the storage."""
    if len(indices) != buffer.ndim:
        raise InterpreterError(
            f"{kind} of {buffer.name} with {len(indices)} indices, but the buffer has {buffer.ndim} dims"
        )
    get = view_getter(c, buffer)
    index_fns = [c.expr(i) for i in indices]

    if lanes == 1:

        def scalar_address(env: list):
            storage, shape, strides, flat = get(env)
            for d, f in enumerate(index_fns):
                i = f(env)
                if i < 0 or i >= shape[d]:
                    detail = f"index {i} of dimension {d} is outside [0, {shape[d]})"
                    raise _oob(kind, buffer, index_fns, env, detail)
                flat += i * strides[d]
            if flat < 0 or flat >= storage.size:
                raise _oob(
                    kind,
                    buffer,
                    index_fns,
                    env,
                    f"element {flat} is outside the storage of {storage.size} elements",
                )
            return storage, flat

        return scalar_address

    def vector_address(env: list):
        storage, shape, strides, offset = get(env)
        flat = np.full(lanes, offset, dtype=np.int64)
        for d, f in enumerate(index_fns):
            i = np.asarray(f(env)).astype(np.int64)
            if (i < 0).any() or (i >= shape[d]).any():
                raise _oob(kind, buffer, index_fns, env, f"dimension {d} is [0, {shape[d]})")
            flat = flat + i * strides[d]
        if (flat < 0).any() or (flat >= storage.size).any():
            raise _oob(kind, buffer, index_fns, env, f"the storage has {storage.size} elements")
        return storage, flat

    return vector_address


@rule(E.BufferLoad)
def _buffer_load(c, e: E.BufferLoad) -> Closure:
    address = address_fn(c, e.buffer, e.indices, e.dtype.lanes, "load")
    if e.dtype.lanes > 1 or e.dtype.is_float:

        def load_numpy(env):
            storage, flat = address(env)
            return storage[flat]

        return load_numpy

    def load_python(env):  # ints and bools become Python values
        storage, flat = address(env)
        return storage.item(flat)

    return load_python


# ---------------------------------------------------------------------------------------------
# Leaves, arithmetic, logic
# ---------------------------------------------------------------------------------------------


@rule(E.Var)
def _var(c, v: E.Var) -> Closure:
    slot = c.slot(v)
    name = v.name

    def var(env):
        value = env[slot]
        if value is None:
            raise InterpreterError(f"variable {name} is used where it is not defined")
        return value

    return var


@rule(E.IntImm, E.FloatImm)
def _const(c, e) -> Closure:
    value = const_value(e.dtype, e.value)
    return lambda env: value


@rule(E.StringImm)
def _string(c, e: E.StringImm) -> Closure:
    value = e.value
    return lambda env: value


@rule(E.Add, E.Sub, E.Mul, E.Div, E.Mod, E.FloorDiv, E.FloorMod, E.Min, E.Max, E.And, E.Or)
def _binary(c, e) -> Closure:
    fa, fb = c.expr(e.a), c.expr(e.b)
    op = binary_fn(type(e).__name__, e.dtype)
    return lambda env: op(fa(env), fb(env))


@rule(E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE)
def _compare(c, e) -> Closure:
    fa, fb = c.expr(e.a), c.expr(e.b)
    op = CMP_OPS[type(e).__name__]
    return lambda env: op(fa(env), fb(env))


@rule(E.Not)
def _not(c, e: E.Not) -> Closure:
    fa = c.expr(e.a)
    if e.dtype.is_vector:
        return lambda env: np.logical_not(fa(env))
    return lambda env: not fa(env)


@rule(E.Select)
def _select(c, e: E.Select) -> Closure:
    cond, t, f = c.expr(e.condition), c.expr(e.true_value), c.expr(e.false_value)
    if e.condition.dtype.is_vector:
        npdt = numpy_dtype(e.dtype)
        return lambda env: np.where(cond(env), t(env), f(env)).astype(npdt)

    def select(env):  # both branches are evaluated, so faults in either surface (as in the IR's meaning)
        tv, fv = t(env), f(env)
        return tv if cond(env) else fv

    return select


@rule(E.Cast)
def _cast(c, e: E.Cast) -> Closure:
    fv = c.expr(e.value)
    fn = cast_fn(e.value.dtype, e.dtype)
    return lambda env: fn(fv(env))


@rule(E.Call)
def _call(c, e: E.Call) -> Closure:
    intrinsic = INTRINSICS.get(e.op)
    if intrinsic is not None and intrinsic.arity != len(e.args):
        raise InterpreterError(f"intrinsic {e.op} takes {intrinsic.arity} arguments, got {len(e.args)}")
    fn = call_fn(e.op, [a.dtype for a in e.args], e.dtype)
    arg_fns = [c.expr(a) for a in e.args]
    return lambda env: fn(*[f(env) for f in arg_fns])


@rule(E.Ramp)
def _ramp(c, e: E.Ramp) -> Closure:
    if e.base.dtype.is_vector or e.stride.dtype.is_vector:
        raise InterpreterError("Ramp base and stride must be scalars")
    base, stride = c.expr(e.base), c.expr(e.stride)
    lanes = e.lanes
    npdt = numpy_dtype(e.dtype)
    if e.dtype.is_float:
        steps = np.arange(lanes, dtype=npdt)
        return lambda env: base(env) + steps * stride(env)
    wrap = int_wrapper(e.dtype.element_of())

    def ramp(env):
        b, s = base(env), stride(env)
        return np.array([wrap(b + k * s) for k in range(lanes)], dtype=npdt)

    return ramp


@rule(E.Broadcast)
def _broadcast(c, e: E.Broadcast) -> Closure:
    if e.value.dtype.is_vector:
        raise InterpreterError("Broadcast of a vector value")
    fv = c.expr(e.value)
    lanes, npdt = e.lanes, numpy_dtype(e.dtype)
    return lambda env: np.full(lanes, fv(env), dtype=npdt)


@rule(E.Let)
def _let(c, e: E.Let) -> Closure:
    slot = c.slot(e.var)
    value, body = c.expr(e.value), c.expr(e.body)

    def let(env):
        saved = env[slot]
        env[slot] = value(env)
        try:
            return body(env)
        finally:
            env[slot] = saved

    return let
