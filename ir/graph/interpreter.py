"""The reference interpreter of the graph IR: it defines what a graph function means, on numpy arrays.

    run(mod, x, w)                 # calls mod["main"]; or run(mod, x, name="fn"), or run(graph_function, x)

Values: tensors are numpy arrays, tuples are Python tuples, shapes are ShapeValue (a tuple of ints),
PrimValues are Python numbers. Ops run their registry reference; `call_tir` runs the PrimFunc through the
loop-level interpreter, with outputs allocated (zero-filled) from the call's output types evaluated with the
bound symbolic Vars; `call_dps_library` calls the registered function likewise.

Checks, each a ShapeError naming the function, the parameter (or binding variable), the dimension, the
expected symbolic expression and the actual value:
- arguments against parameter types at the boundary: dtype, rank, dims. A dim that is a Var not yet bound
  binds it (parameters left to right); other dims are evaluated once every Var is bound;
- symbolic Vars against the function's "var_bounds" attribute ({name: (lo, hi)}, inclusive);
- every binding's value against its variable's type (this is where build-time assumptions, e.g. a
  broadcast of two dims that could not be proved equal, are checked), MatchCast included (which binds
  new Vars), and the result against the return type;
- an op whose numpy reference refuses its operands (broadcast failure, bad reshape) is reported likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapeflow.errors import ShapeError, UnsupportedError, VerifyError
from shapeflow.ir.dtype import from_numpy_dtype
from shapeflow.ir.expr import PrimExpr, Var
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.ops.dps import get_library_function
from shapeflow.ir.graph.ops.registry import get_op_def
from shapeflow.ir.graph.shape import as_int, evaluate, format_dim
from shapeflow.ir.graph.types import (
    FuncType,
    ObjectType,
    PrimType,
    ShapeType,
    TensorType,
    TupleType,
    Type,
)
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc


class ShapeValue(tuple):
    """A shape at run time: a tuple of ints."""

    __slots__ = ()


class _Frame:
    __slots__ = ("function", "values", "env", "where")

    def __init__(self, function: str):
        self.function = function
        self.values: dict[G.GraphVar, Any] = {}
        self.env: dict[Var, int] = {}
        self.where = ""  # the parameter or binding being evaluated, for error messages


def run(mod_or_func: IRModule | G.GraphFunction, *args, name: str = "main"):
    """Evaluate graph function `name` of a module (or a lone GraphFunction) on numpy arrays."""
    if isinstance(mod_or_func, G.GraphFunction):
        fname = mod_or_func.name or name
        mod_or_func, name = IRModule({fname: mod_or_func}), fname
    storage = getattr(mod_or_func.functions.get(name), "attrs", {}).get("storage_dtypes")
    if storage:  # float8, int4... as the Executable takes them: ml_dtypes arrays, viewed as their bits
        from shapeflow.storage_dtypes import view_inputs, view_outputs  # noqa: PLC0415

        return view_outputs(storage, Interpreter(mod_or_func).call(name, view_inputs(storage, args)))
    return Interpreter(mod_or_func).call(name, args)


class Interpreter:
    """Runs the graph functions of one module."""

    def __init__(self, mod: IRModule):
        self.mod = mod

    # -- functions --------------------------------------------------------------------------------
    def call(self, name: str, args) -> Any:
        func = self.mod[name]
        if not isinstance(func, G.GraphFunction):
            raise VerifyError(
                f"{name!r} is a {type(func).__name__}; call it from a graph function with call_tir"
            )
        frame = _Frame(name)
        if len(args) != len(func.params):
            raise ShapeError(
                "wrong number of arguments", function=name, expected=len(func.params), actual=len(args)
            )
        pending: list[Callable[[], None]] = []
        for param, arg in zip(func.params, args):
            frame.where = param.name
            value = _to_value(arg, param.type, frame)
            self.match(value, param.type, frame, pending)
            frame.values[param] = value
        for check in pending:  # dims such as `n * 2` whose Vars are bound by later parameters
            check()
        _check_bounds(func, frame)
        result = self.eval(func.body, frame)
        frame.where = "return value"
        self.match(result, func.ret_type, frame)
        return result

    # -- matching values against types -------------------------------------------------------------
    def match(self, value, t: Type, frame: _Frame, pending: list | None = None) -> None:
        """Check `value` against type `t`, binding Vars of `t` that are not bound yet."""
        _MATCHERS[type(t)](self, value, t, frame, pending)

    def _match_tensor(self, value, t: TensorType, frame: _Frame, pending) -> None:
        if not isinstance(value, np.ndarray):
            raise _error(frame, "expected a tensor", expected="tensor", actual=type(value).__name__)
        if t.dtype is not None and from_numpy_dtype(value.dtype) != t.dtype:
            raise _error(frame, "dtype mismatch", expected=str(t.dtype), actual=str(value.dtype))
        if t.known_rank and value.ndim != t.ndim:
            raise _error(frame, "rank mismatch", expected=t.ndim, actual=value.ndim)
        if t.shape is not None:
            _match_dims(value.shape, t.shape, frame, pending)

    def _match_tuple(self, value, t: TupleType, frame: _Frame, pending) -> None:
        if not isinstance(value, tuple) or isinstance(value, ShapeValue) or len(value) != len(t.fields):
            actual = f"{len(value)}-tuple" if isinstance(value, tuple) else type(value).__name__
            raise _error(frame, "expected a tuple", expected=f"{len(t.fields)}-tuple", actual=actual)
        for item, field in zip(value, t.fields):
            self.match(item, field, frame, pending)

    def _match_shape(self, value, t: ShapeType, frame: _Frame, pending) -> None:
        if not isinstance(value, ShapeValue):
            raise _error(frame, "expected a shape", expected="shape", actual=type(value).__name__)
        if t.ndim >= 0 and len(value) != t.ndim:
            raise _error(frame, "shape length mismatch", expected=t.ndim, actual=len(value))
        if t.values is not None:
            _match_dims(value, t.values, frame, pending)

    def _match_prim(self, value, t: PrimType, frame: _Frame, pending) -> None:
        ok = isinstance(value, (bool, np.bool_)) if t.dtype.is_bool else None
        if ok is None:
            kinds = (float, int, np.floating, np.integer) if t.dtype.is_float else (int, np.integer)
            ok = isinstance(value, kinds) and not isinstance(value, bool)
        if not ok:
            raise _error(frame, "expected a scalar", expected=str(t.dtype), actual=type(value).__name__)

    # -- expressions ----------------------------------------------------------------------------
    def eval(self, expr: G.Expr, frame: _Frame) -> Any:
        rule = _EVAL.get(type(expr))
        if rule is None:
            raise UnsupportedError(f"the graph interpreter cannot evaluate a {type(expr).__name__}")
        return rule(self, expr, frame)

    def _eval_var(self, var: G.GraphVar, frame: _Frame):
        try:
            return frame.values[var]
        except KeyError:
            raise VerifyError(f"variable {var.name!r} is used before it is defined", var) from None

    def _eval_seq(self, seq: G.SeqExpr, frame: _Frame):
        for block in seq.blocks:
            for binding in block.bindings:
                frame.where = binding.var.name
                value = self.eval(binding.value, frame)
                frame.where = binding.var.name
                # A MatchCast checks against its target type; a VarBinding against the inferred type.
                self.match(
                    value, binding.type if isinstance(binding, G.MatchCast) else binding.var.type, frame
                )
                frame.values[binding.var] = value
        return self.eval(seq.body, frame)

    def _eval_if(self, expr: G.If, frame: _Frame):
        cond = self.eval(expr.cond, frame)
        if isinstance(cond, np.ndarray) and cond.size != 1:
            raise _error(frame, "If condition must be a scalar", expected="1 element", actual=cond.size)
        return self.eval(expr.true_branch if bool(cond) else expr.false_branch, frame)

    def _eval_call(self, call: G.Call, frame: _Frame):
        if isinstance(call.op, G.Op):
            special = _SPECIAL_OPS.get(call.op.name)
            if special is not None:
                return special(self, call, frame)
            return self._call_op(call, frame)
        if isinstance(call.op, G.GlobalName):
            args = [self.eval(a, frame) for a in call.args]
            return self.call(call.op.name, args)
        raise UnsupportedError(f"the graph interpreter cannot call a {type(call.op).__name__}")

    def _call_op(self, call: G.Call, frame: _Frame):
        op_def = get_op_def(call.op)
        if op_def.reference is None:
            raise UnsupportedError(f"op '{op_def.name}' has no numpy reference")
        where = frame.where
        args = [self.eval(a, frame) for a in call.args]
        attrs = {k: _eval_attr(v, frame) for k, v in op_def.normalize_attrs(call.attrs).items()}
        try:
            out = op_def.reference(*args, **attrs)
        except (ValueError, IndexError) as exc:
            raise ShapeError(f"op '{op_def.name}': {exc}", function=frame.function, parameter=where) from None
        return tuple(np.asarray(o) for o in out) if isinstance(out, tuple) else np.asarray(out)

    def _call_dps(self, call: G.Call, frame: _Frame, fn: Callable[..., None]):
        inputs = self.eval(call.args[1], frame)
        out_type = call.type_args[0]
        fields = out_type.fields if isinstance(out_type, TupleType) else (out_type,)
        outputs = [
            np.zeros(tuple(_eval_prim(d, frame) for d in f.shape), dtype=f.dtype.to_numpy()) for f in fields
        ]
        scalars = list(self.eval(call.args[2], frame)) if len(call.args) == 3 else []
        fn(*inputs, *outputs, *scalars)
        return tuple(outputs) if isinstance(out_type, TupleType) else outputs[0]

    def _call_tir(self, call: G.Call, frame: _Frame):
        callee = self.mod.functions.get(call.args[0].name) if isinstance(call.args[0], G.GlobalName) else None
        if not isinstance(callee, PrimFunc):
            raise VerifyError(f"call_tir callee {call.args[0]!r} is not a PrimFunc of the module")
        try:
            from shapeflow.ir.tir.interpreter import run as run_prim_func  # noqa: PLC0415
        except ImportError as exc:
            raise UnsupportedError(
                "call_tir needs the loop-level interpreter (shapeflow.ir.tir.interpreter)"
            ) from exc
        return self._call_dps(call, frame, lambda *arrays: run_prim_func(callee, *arrays))

    def _call_library(self, call: G.Call, frame: _Frame):
        return self._call_dps(call, frame, get_library_function(call.args[0].name))


def _error(frame: _Frame, message: str, *, dimension=None, expected=None, actual=None) -> ShapeError:
    return ShapeError(
        message,
        function=frame.function,
        parameter=frame.where,
        dimension=dimension,
        expected=expected,
        actual=actual,
    )


def _match_dims(actual_dims, dims, frame: _Frame, pending: list | None) -> None:
    for i, (dim, actual) in enumerate(zip(dims, actual_dims)):
        actual = int(actual)
        if isinstance(dim, Var) and dim not in frame.env:
            frame.env[dim] = actual
            continue
        try:
            expected = evaluate(dim, frame.env)
        except KeyError:
            where = frame.where
            if pending is None:
                raise _error(
                    frame, f"cannot determine the symbolic dim {format_dim(dim)}", dimension=i
                ) from None
            pending.append(
                lambda dim=dim, actual=actual, i=i, where=where: _check_late(dim, actual, i, where, frame)
            )
            continue
        if expected != actual:
            shown = format_dim(dim) if as_int(dim) is not None else f"{format_dim(dim)} = {expected}"
            raise _error(frame, "dimension mismatch", dimension=i, expected=shown, actual=actual)


def _check_late(dim: PrimExpr, actual: int, i: int, where: str, frame: _Frame) -> None:
    frame.where = where
    try:
        expected = evaluate(dim, frame.env)
    except KeyError:
        raise _error(frame, f"cannot determine the symbolic dim {format_dim(dim)}", dimension=i) from None
    if expected != actual:
        raise _error(
            frame,
            "dimension mismatch",
            dimension=i,
            expected=f"{format_dim(dim)} = {expected}",
            actual=actual,
        )


def _check_bounds(func: G.GraphFunction, frame: _Frame) -> None:
    bounds = func.attrs.get("var_bounds") or {}
    for var, value in frame.env.items():
        if var.name in bounds:
            lo, hi = bounds[var.name]
            if not lo <= value <= hi:
                raise ShapeError(
                    f"symbolic dim {var.name} out of its declared bounds",
                    function=frame.function,
                    parameter=var.name,
                    expected=f"{lo} <= {var.name} <= {hi}",
                    actual=value,
                )


def _to_value(arg, t: Type, frame: _Frame):
    """Accept numpy arrays, DLPack tensors and scalars for tensor parameters; tuples recursively."""
    if isinstance(t, TensorType) and not isinstance(arg, np.ndarray):
        if hasattr(arg, "__dlpack__"):
            return np.from_dlpack(arg)
        if isinstance(arg, (bool, int, float, np.generic)):
            return np.asarray(arg)
        raise _error(frame, "expected a tensor", expected="tensor", actual=type(arg).__name__)
    if isinstance(t, TupleType) and isinstance(arg, (tuple, list)) and len(arg) == len(t.fields):
        return tuple(_to_value(a, f, frame) for a, f in zip(arg, t.fields))
    if isinstance(t, ShapeType) and isinstance(arg, (tuple, list)):
        return ShapeValue(int(v) for v in arg)
    return arg


def _eval_prim(expr: PrimExpr, frame: _Frame):
    try:
        return evaluate(expr, frame.env)
    except KeyError as exc:
        raise VerifyError(f"symbolic variable {exc.args[0]} is used before it is defined", expr) from None


def _eval_attr(value, frame: _Frame):
    if isinstance(value, PrimExpr):
        return _eval_prim(value, frame)
    if isinstance(value, tuple) and any(isinstance(v, PrimExpr) for v in value):
        return tuple(_eval_attr(v, frame) for v in value)
    return value


_MATCHERS: dict[type, Callable] = {
    TensorType: Interpreter._match_tensor,
    TupleType: Interpreter._match_tuple,
    ShapeType: Interpreter._match_shape,
    PrimType: Interpreter._match_prim,
    ObjectType: lambda self, value, t, frame, pending: None,
    FuncType: lambda self, value, t, frame, pending: None,
}

_EVAL: dict[type, Callable] = {
    G.GraphVar: Interpreter._eval_var,
    G.DataflowVar: Interpreter._eval_var,
    G.Constant: lambda self, e, frame: e.array,
    G.PrimValue: lambda self, e, frame: _eval_prim(e.value, frame),
    G.ShapeExpr: lambda self, e, frame: ShapeValue(_eval_prim(v, frame) for v in e.values),
    G.Tuple: lambda self, e, frame: tuple(self.eval(f, frame) for f in e.fields),
    G.TupleGetItem: lambda self, e, frame: self.eval(e.tuple_value, frame)[e.index],
    G.Call: Interpreter._eval_call,
    G.If: Interpreter._eval_if,
    G.SeqExpr: Interpreter._eval_seq,
}

_SPECIAL_OPS: dict[str, Callable] = {
    "call_tir": Interpreter._call_tir,
    "call_dps_library": Interpreter._call_library,
}
