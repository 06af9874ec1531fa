"""BlockBuilder: write graph functions in Python, Relax style.

    bb = BlockBuilder()
    n = Var("n")
    x = GraphVar("x", TensorType((n, 784), "float32"))
    w = GraphVar("w", TensorType((784, 128), "float32"))
    with bb.function("main", [x, w]):
        with bb.dataflow():
            h = bb.emit(op.relu(op.matmul(x, w)))     # nested calls are bound one by one
            out = bb.emit_output(h)
        bb.emit_func_output(out)
    mod = bb.get()

Every emitted value is normalized (its nested calls bound to variables first) and typed by inference, so
provable shape conflicts surface here as ShapeError, and ill-typed calls as VerifyError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from shapeflow.errors import VerifyError
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.shape import free_vars
from shapeflow.ir.graph.types import ObjectType, ShapeType, TensorType, TupleType, Type
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import BaseFunc


def type_vars(t: Type) -> list[Var]:
    """Symbolic Vars appearing in a type's shapes, in order."""
    if isinstance(t, TensorType) and t.shape is not None:
        return free_vars(t.shape)
    if isinstance(t, ShapeType) and t.values is not None:
        return free_vars(t.values)
    if isinstance(t, TupleType):
        out: list[Var] = []
        for field in t.fields:
            out.extend(v for v in type_vars(field) if all(v is not w for w in out))
        return out
    return []


class _FunctionFrame:
    def __init__(self, name: str, params: Sequence[G.GraphVar], attrs: dict[str, Any]):
        self.name = name
        self.params = tuple(params)
        self.attrs = attrs
        self.blocks: list[G.BindingBlock] = []
        self.bindings: list[G.Binding] = []
        self.in_dataflow = False
        self.output: G.Expr | None = None
        self.symbolic: dict[int, Var] = {}
        for p in self.params:
            for v in type_vars(p.type):
                self.symbolic.setdefault(id(v), v)

    def flush(self) -> None:
        if self.bindings:
            kind = G.DataflowBlock if self.in_dataflow else G.BindingBlock
            self.blocks.append(kind(tuple(self.bindings)))
            self.bindings = []


class BlockBuilder:
    """Builds graph functions into a module (which may also hold PrimFuncs added with `add_func`)."""

    def __init__(self, mod: IRModule | None = None):
        self._functions: dict[str, BaseFunc] = dict(mod.functions) if mod is not None else {}
        self._attrs = dict(mod.attrs) if mod is not None else {}
        self._frame: _FunctionFrame | None = None
        self._counter = 0

    # -- module ----------------------------------------------------------------------------------
    def add_func(self, func: BaseFunc, name: str) -> G.GlobalName:
        """Add a function (a PrimFunc for call_tir, or a graph function) and return its global name."""
        if name in self._functions and self._functions[name] is not func:
            raise VerifyError(f"module already has a function named {name!r}")
        self._functions[name] = func
        return G.GlobalName(name)

    def get(self) -> IRModule:
        if self._frame is not None:
            raise VerifyError(f"function {self._frame.name!r} is still being built")
        return IRModule(self._functions, self._attrs)

    def _module(self) -> IRModule:
        return IRModule(self._functions, self._attrs)

    # -- function and block scopes -------------------------------------------------------------
    @contextlib.contextmanager
    def function(self, name: str, params: Sequence[G.GraphVar] = (), attrs=None) -> Iterator[None]:
        """Build graph function `name`; the body must end with `emit_func_output`."""
        if self._frame is not None:
            raise VerifyError(f"cannot start function {name!r} inside function {self._frame.name!r}")
        frame = _FunctionFrame(name, params, {"global_symbol": name, **(attrs or {})})
        self._frame = frame
        try:
            yield
        finally:
            self._frame = None
        if frame.output is None:
            raise VerifyError(f"function {name!r} ended without emit_func_output")
        body = G.SeqExpr(tuple(frame.blocks), frame.output)
        ret_type = type_of(frame.output, self._module())
        self._functions[name] = G.GraphFunction(frame.params, body, ret_type, frame.attrs)

    @contextlib.contextmanager
    def dataflow(self) -> Iterator[None]:
        """A dataflow block: its bindings are pure and their variables private (use emit_output)."""
        frame = self._require_frame("dataflow")
        if frame.in_dataflow:
            raise VerifyError("dataflow blocks do not nest")
        frame.flush()
        frame.in_dataflow = True
        try:
            yield
        finally:
            frame.flush()
            frame.in_dataflow = False

    def _require_frame(self, what: str) -> _FunctionFrame:
        if self._frame is None:
            raise VerifyError(f"{what} needs an enclosing `with bb.function(...)`")
        return self._frame

    # -- emitting bindings ---------------------------------------------------------------------
    def _fresh_name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def normalize(self, expr: G.Expr) -> G.Expr:
        """`expr` with nested calls (and ifs, sequences) bound to variables, leaf first; call_tir and calls
        of module functions get their output types in type_args."""
        if isinstance(expr, G.Tuple):
            fields = tuple(self._atom(f) for f in expr.fields)
            return expr if all(a is b for a, b in zip(fields, expr.fields)) else G.Tuple(fields)
        if isinstance(expr, G.TupleGetItem):
            inner = self._atom(expr.tuple_value)
            return expr if inner is expr.tuple_value else G.TupleGetItem(inner, expr.index)
        if isinstance(expr, G.Call):
            args = tuple(
                self._atom(a) if not isinstance(a, G.Tuple) else self.normalize(a) for a in expr.args
            )
            type_args = expr.type_args
            if isinstance(expr.op, G.GlobalName) and not type_args:
                func = self._functions.get(expr.op.name)
                if isinstance(func, G.GraphFunction):
                    type_args = (type_of(G.Call(expr.op, args), self._module()),)
            if all(a is b for a, b in zip(args, expr.args)) and type_args is expr.type_args:
                return expr
            return G.Call(expr.op, args, expr.attrs, type_args)
        return expr

    def _atom(self, expr: G.Expr) -> G.Expr:
        if isinstance(expr, (G.Call, G.If, G.SeqExpr, G.TupleGetItem)):
            return self.emit(expr)
        if isinstance(expr, G.Tuple):
            return self.normalize(expr)
        return expr

    def emit(self, expr: G.Expr, name: str | None = None) -> G.GraphVar:
        """Bind `expr` (normalized, typed by inference) to a new variable: a DataflowVar inside a
        dataflow block, a GraphVar outside."""
        frame = self._require_frame("emit")
        value = self.normalize(expr)
        var_type = type_of(value, self._module())
        cls = G.DataflowVar if frame.in_dataflow else G.GraphVar
        var = cls(name or self._fresh_name("lv" if frame.in_dataflow else "gv"), var_type)
        frame.bindings.append(G.VarBinding(var, value))
        return var

    def emit_output(self, expr: G.Expr, name: str | None = None) -> G.GraphVar:
        """Inside a dataflow block: bind `expr` to a GraphVar, visible after the block."""
        frame = self._require_frame("emit_output")
        if not frame.in_dataflow:
            raise VerifyError("emit_output is only meaningful inside a dataflow block; use emit")
        value = self.normalize(expr)
        var = G.GraphVar(name or self._fresh_name("gv"), type_of(value, self._module()))
        frame.bindings.append(G.VarBinding(var, value))
        return var

    def match_cast(self, expr: G.Expr, target: Type, name: str | None = None) -> G.GraphVar:
        """Bind `expr` to a variable of type `target`, checked at run time. Symbolic Vars of `target`
        not yet defined in this function are defined here."""
        frame = self._require_frame("match_cast")
        value = self.normalize(expr)
        if isinstance(value, (G.Call, G.If, G.SeqExpr)):
            value = self.emit(value)
        actual = type_of(value, self._module())
        if not isinstance(actual, ObjectType) and type(actual) is not type(target):
            raise VerifyError(f"match_cast of a {type(actual).__name__} value to a {type(target).__name__}")
        for v in type_vars(target):
            frame.symbolic.setdefault(id(v), v)
        cls = G.DataflowVar if frame.in_dataflow else G.GraphVar
        var = cls(name or self._fresh_name("lv" if frame.in_dataflow else "gv"), target)
        frame.bindings.append(G.MatchCast(var, value, target))
        return var

    def emit_func_output(self, output: G.Expr | Sequence[G.Expr]) -> None:
        """End the function with `output` (a list or tuple of expressions becomes a Tuple)."""
        frame = self._require_frame("emit_func_output")
        if frame.in_dataflow:
            raise VerifyError("emit_func_output must come after the dataflow block, not inside it")
        if frame.output is not None:
            raise VerifyError(f"function {frame.name!r} already has an output")
        if isinstance(output, (list, tuple)):
            output = G.Tuple(tuple(output))
        output = self._atom(self.normalize(output))
        frame.flush()
        frame.output = output
