"""The reference interpreter of the loop IR: it defines what a PrimFunc means, and every compiled kernel is
tested against it.

    run(func, A, B, n)        # destination-passing: buffer params get numpy arrays, written in place

A function is compiled once into nested Python closures (one per IR node, chosen through tables keyed by
node class), then the closures run over an environment list indexed by slots assigned to Vars and Buffers.
Value semantics (wrapping integers, per-op float rounding, casts, intrinsics) live in `interpreter_values`.

Meaning of the statements, exactly:
- every For kind runs serially in order (parallel, vectorized, unrolled and thread-bound loops mean the
  serial loop); a loop whose end `min + extent` does not fit its variable's dtype is undefined (compiled
  code compares against the wrapped end) and raises `InterpreterError`;
- a BlockRealize skips its block when the predicate is false, otherwise binds the iteration variables (each
  must lie in its domain), allocates the block's `alloc_buffers` as fresh zero-filled arrays, runs `init`
  when every reduction variable equals its domain minimum, then the body;
- Allocate gives a fresh zero-filled array; DeclBuffer views the storage of its `data` var with the new
  buffer's shape, strides, offset (and dtype, reinterpreting the bytes);
- every access is bounds-checked per dimension against the buffer's shape and against the storage, and
  faults raise `InterpreterError` (an `shapeflow.Error`) naming the buffer and the index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from shapeflow.errors import ShapeError, UnsupportedError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm, PrimExpr, Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.interpreter_exprs import EXPR_COMPILERS
from shapeflow.ir.tir.interpreter_stmts import STMT_COMPILERS
from shapeflow.ir.tir.interpreter_values import (
    AssertionFailed,
    InterpreterError,
    compact_strides,
    numpy_dtype,
)

Closure = Callable[[list], Any]


class FunctionCompiler:
    """Turns one PrimFunc into closures over an environment list; `slot` numbers Vars and Buffers."""

    def __init__(self, func: PrimFunc, name: str):
        self.func = func
        self.name = name
        self._slots: dict[int, int] = {}
        self._alive: list = []  # keeps keyed objects alive so their ids stay unique

    @property
    def num_slots(self) -> int:
        return len(self._slots)

    def slot(self, obj) -> int:
        key = id(obj)
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = len(self._slots)
            self._alive.append(obj)
        return found

    def has_slot(self, obj) -> bool:
        return id(obj) in self._slots

    def keyed_objects(self) -> list:
        """Every Var and Buffer that has a slot."""
        return list(self._alive)

    def expr(self, expr: PrimExpr) -> Closure:
        compiler = EXPR_COMPILERS.get(type(expr))
        if compiler is None:
            raise UnsupportedError(f"the interpreter has no rule for expression {type(expr).__name__}")
        return compiler(self, expr)

    def stmt(self, stmt) -> Closure:
        compiler = STMT_COMPILERS.get(type(stmt))
        if compiler is None:
            raise UnsupportedError(f"the interpreter has no rule for statement {type(stmt).__name__}")
        return compiler(self, stmt)


class CompiledFunction:
    """A PrimFunc compiled to closures; call it like `run` (without the function)."""

    def __init__(self, func: PrimFunc, name: str | None = None):
        self.func = func
        symbol = func.attrs.get("global_symbol")
        self.name = name or (symbol if isinstance(symbol, str) and symbol else "prim_func")
        compiler = FunctionCompiler(func, self.name)
        self._params = [(p, compiler.slot(p)) for p in func.params]
        self._data_slots = {id(p): compiler.slot(p.data) for p in func.params if isinstance(p, Buffer)}
        self._dim_slots: dict[int, int] = {}
        for p in func.params:
            if isinstance(p, Buffer):
                for e in (*p.shape, *p.strides, p.elem_offset):
                    if isinstance(e, Var):
                        self._dim_slots[id(e)] = compiler.slot(e)
        # Dimensions given by expressions (n * 2, n + 1) are checked after every variable is bound.
        self._dim_checks = [
            (p, d, compiler.expr(dim), dim, sorted({compiler.slot(v) for v in collect(dim, Var)}))
            for p in func.params
            if isinstance(p, Buffer)
            for d, dim in enumerate(p.shape)
            if not isinstance(dim, (Var, IntImm))
        ]
        # Layouts of buffer parameters, compiled before the body so every slot exists when `env` is made.
        self._layouts = {
            id(p): ([compiler.expr(st) for st in p.strides], compiler.expr(p.elem_offset))
            for p in func.params
            if isinstance(p, Buffer)
        }
        self._body = compiler.stmt(func.body)
        self._compiler = compiler
        # var_values may name any variable the function uses (by Var or by name).
        self._vars_by_name: dict[str, list[Var]] = {}
        for obj in compiler.keyed_objects():
            if isinstance(obj, Var):
                self._vars_by_name.setdefault(obj.name, []).append(obj)

    def __call__(self, *args, var_values: dict | None = None) -> None:
        func, name = self.func, self.name
        if len(args) != len(func.params):
            raise ShapeError(
                "wrong number of arguments", function=name, expected=len(func.params), actual=len(args)
            )
        env: list = [None] * self._compiler.num_slots
        for key, value in (var_values or {}).items():
            targets = [key] if isinstance(key, Var) else self._vars_by_name.get(str(key), [])
            for var in targets:
                if not self._compiler.has_slot(var):
                    continue  # a variable this function does not use
                env[self._compiler.slot(var)] = _scalar_argument(value, var.dtype, name, var.name)
        for (param, slot), arg in zip(self._params, args):
            if isinstance(param, Var):
                value = _scalar_argument(arg, param.dtype, name, param.name)
                if env[slot] is not None and env[slot] != value:
                    raise ShapeError(
                        "scalar disagrees with a dimension bound earlier",
                        function=name,
                        parameter=param.name,
                        expected=env[slot],
                        actual=value,
                    )
                env[slot] = value
            else:
                self._bind_buffer(env, param, slot, arg)
        self._check_expression_dims(env)
        with np.errstate(all="ignore"):
            self._body(env)

    def _check_expression_dims(self, env: list) -> None:
        """Check dimensions given by expressions; one still-unknown variable in a linear dimension
        (`n * 4`, `n + 1`) is solved for first, so such shapes bind as a plain `n` would."""
        name = self.name
        for param, d, fn, dim, var_slots in self._dim_checks:
            actual = env[self._compiler.slot(param)][1][d]
            unknown = [s for s in var_slots if env[s] is None]
            if len(unknown) == 1:
                _solve_linear(env, unknown[0], fn, actual)
            try:
                expected = fn(env)
            except InterpreterError as exc:
                raise ShapeError(
                    f"dimension {dim} cannot be determined from the arguments ({exc})",
                    function=name,
                    parameter=param.name,
                    dimension=d,
                ) from None
            if expected != actual:
                raise ShapeError(
                    f"shape mismatch ({dim})",
                    function=name,
                    parameter=param.name,
                    dimension=d,
                    expected=expected,
                    actual=actual,
                )

    def _bind_buffer(self, env: list, param: Buffer, slot: int, arg) -> None:
        name = self.name
        if not isinstance(arg, np.ndarray):
            raise ShapeError(
                "expected a numpy array",
                function=name,
                parameter=param.name,
                expected="numpy.ndarray",
                actual=type(arg).__name__,
            )
        want = numpy_dtype(param.dtype)
        if arg.dtype != want:
            raise ShapeError(
                "wrong dtype", function=name, parameter=param.name, expected=want, actual=arg.dtype
            )
        if arg.ndim != param.ndim:
            raise ShapeError(
                "wrong rank", function=name, parameter=param.name, expected=param.ndim, actual=arg.ndim
            )
        if not arg.flags.c_contiguous:
            raise ShapeError(
                "array is not C-contiguous",
                function=name,
                parameter=param.name,
                expected="C-contiguous",
                actual="strided",
            )
        for d, dim in enumerate(param.shape):
            self._bind_dim(env, param, d, dim, int(arg.shape[d]))
        itemsize = arg.itemsize
        stride_fns, offset_fn = self._layouts[id(param)]
        strides = []
        for d, (stride, fn) in enumerate(zip(param.strides, stride_fns)):
            if isinstance(stride, Var) and env[self._dim_slots[id(stride)]] is None:
                env[self._dim_slots[id(stride)]] = arg.strides[d] // itemsize
            strides.append(self._eval_layout(env, param, stride, fn))
        offset_expr = param.elem_offset
        if isinstance(offset_expr, Var) and env[self._dim_slots[id(offset_expr)]] is None:
            env[self._dim_slots[id(offset_expr)]] = 0
        offset = self._eval_layout(env, param, offset_expr, offset_fn)
        storage = arg.reshape(-1)
        env[self._data_slots[id(param)]] = storage
        shape = tuple(int(s) for s in arg.shape)
        env[slot] = (storage, shape, tuple(strides) if strides else compact_strides(shape), offset)

    def _eval_layout(self, env: list, param: Buffer, expr: PrimExpr, fn: Closure) -> int:
        try:
            return int(fn(env))
        except InterpreterError as exc:
            raise ShapeError(
                f"{expr} cannot be determined from the arguments ({exc})",
                function=self.name,
                parameter=param.name,
            ) from None

    def _bind_dim(self, env: list, param: Buffer, d: int, dim: PrimExpr, actual: int) -> None:
        if isinstance(dim, Var):
            dslot = self._dim_slots[id(dim)]
            if env[dslot] is None:
                env[dslot] = actual
                return
            expected = env[dslot]
        elif isinstance(dim, IntImm):
            expected = dim.value
        else:
            return  # checked once every variable is bound
        if expected != actual:
            raise ShapeError(
                f"shape mismatch ({dim})",
                function=self.name,
                parameter=param.name,
                dimension=d,
                expected=expected,
                actual=actual,
            )


def _solve_linear(env: list, slot: int, fn: Closure, actual: int) -> None:
    """Bind `env[slot]` so that `fn(env) == actual`, assuming `fn` is linear in it; leave it unbound when
    that has no integer solution (the check that follows then reports the dimension)."""
    try:
        env[slot] = 0
        at_zero = fn(env)
        env[slot] = 1
        step = fn(env) - at_zero
    except InterpreterError:
        step = 0
    env[slot] = None
    if step and (actual - at_zero) % step == 0 and (actual - at_zero) // step >= 0:
        env[slot] = (actual - at_zero) // step


def _scalar_argument(value, dtype: DataType, function: str, parameter: str):
    """Convert a Python/numpy scalar argument to the interpreter's representation of `dtype`."""
    if dtype.is_handle:
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if dtype.is_bool:
        return bool(value)
    if dtype.is_integer:
        if isinstance(value, (float, np.floating)) or not isinstance(value, (int, np.integer)):
            raise ShapeError(
                "expected an integer",
                function=function,
                parameter=parameter,
                expected=str(dtype),
                actual=repr(value),
            )
        value = int(value)
        if not dtype.min_value() <= value <= dtype.max_value():
            raise ShapeError(
                "value out of range",
                function=function,
                parameter=parameter,
                expected=str(dtype),
                actual=value,
            )
        return value
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise ShapeError(
            "expected a number",
            function=function,
            parameter=parameter,
            expected=str(dtype),
            actual=repr(value),
        )
    return numpy_dtype(dtype).type(value)


_CACHE: OrderedDict[int, CompiledFunction] = OrderedDict()
_CACHE_SIZE = 128


def compile_func(func: PrimFunc, name: str | None = None) -> CompiledFunction:
    """The closures of `func` (cached by identity, a bounded number of functions)."""
    if not isinstance(func, PrimFunc):
        raise UnsupportedError(f"the loop-IR interpreter runs PrimFuncs, got {type(func).__name__}")
    key = id(func)
    found = _CACHE.get(key)
    if found is not None and found.func is func and (name is None or found.name == name):
        _CACHE.move_to_end(key)
        return found
    compiled = CompiledFunction(func, name)
    _CACHE[key] = compiled
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def run(func: PrimFunc, *args, var_values: dict | None = None) -> None:
    """Interpret `func` on numpy arrays (written in place) and scalars; see the module docstring."""
    compile_func(func)(*args, var_values=var_values)


def run_module(mod, name: str, *args, var_values: dict | None = None) -> None:
    """Interpret the PrimFunc called `name` in IRModule `mod`."""
    compile_func(mod[name], name=name)(*args, var_values=var_values)


interpret = run

__all__ = [
    "run",
    "run_module",
    "interpret",
    "compile_func",
    "CompiledFunction",
    "InterpreterError",
    "AssertionFailed",
    "compact_strides",
]
