"""Types of graph expressions, and comparison of a declared type with an inferred one.

`type_of(expr)` reads variable types and infers the rest: op calls through the op registry, calls of module
functions from `type_args` or from the callee's signature (with the callee's symbolic Vars matched against
the argument shapes), `If` as the join of its branches. It dispatches through a table keyed by node class.
"""

from __future__ import annotations

from collections.abc import Callable

from shapeflow.errors import VerifyError
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import substitute
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.ops.registry import infer_call_type
from shapeflow.ir.graph.shape import compare_dims, format_shape, same_expr
from shapeflow.ir.graph.types import (
    FuncType,
    ObjectType,
    PrimType,
    ShapeType,
    TensorType,
    TupleType,
    Type,
)


def type_of(expr: G.Expr, module=None) -> Type:
    """The type of `expr`; `module` (an IRModule) resolves calls of module functions without type_args."""
    rule = _TYPE_RULES.get(type(expr))
    if rule is None:
        raise VerifyError(f"cannot type a {type(expr).__name__}", expr)
    return rule(expr, module)


def _tuple_get_item(expr: G.TupleGetItem, module) -> Type:
    t = type_of(expr.tuple_value, module)
    if isinstance(t, ObjectType):
        return ObjectType()
    if not isinstance(t, TupleType):
        raise VerifyError(f"TupleGetItem of a non-tuple of type {type(t).__name__}", expr)
    if not 0 <= expr.index < len(t.fields):
        raise VerifyError(f"tuple index {expr.index} out of range for {len(t.fields)} fields", expr)
    return t.fields[expr.index]


def function_type(func) -> FuncType:
    return FuncType(tuple(p.type for p in func.params), func.ret_type)


def call_return_type(func, arg_types) -> Type:
    """The return type of calling graph function `func` with arguments of `arg_types`: the callee's symbolic
    Vars that appear as whole dims of its parameters are replaced by the caller's dims."""
    mapping: dict[Var, object] = {}

    def bind(param_type, arg_type):
        if isinstance(param_type, TensorType) and isinstance(arg_type, TensorType):
            if param_type.shape is not None and arg_type.shape is not None:
                for p, a in zip(param_type.shape, arg_type.shape):
                    if isinstance(p, Var) and p not in mapping:
                        mapping[p] = a
        elif isinstance(param_type, ShapeType) and isinstance(arg_type, ShapeType):
            if param_type.values is not None and arg_type.values is not None:
                for p, a in zip(param_type.values, arg_type.values):
                    if isinstance(p, Var) and p not in mapping:
                        mapping[p] = a
        elif isinstance(param_type, TupleType) and isinstance(arg_type, TupleType):
            for p, a in zip(param_type.fields, arg_type.fields):
                bind(p, a)

    for param, arg_type in zip(func.params, arg_types):
        bind(param.type, arg_type)
    return substitute(func.ret_type, mapping)


def _call(expr: G.Call, module) -> Type:
    arg_types = [type_of(a, module) for a in expr.args]
    if isinstance(expr.op, G.Op):
        return infer_call_type(expr, arg_types)
    if expr.type_args:
        return expr.type_args[0]
    if isinstance(expr.op, G.GlobalName):
        func = module.functions.get(expr.op.name) if module is not None else None
        if isinstance(func, G.GraphFunction):
            return call_return_type(func, arg_types)
        return ObjectType()
    callee = type_of(expr.op, module)
    return callee.ret if isinstance(callee, FuncType) else ObjectType()


def _global_name(expr: G.GlobalName, module) -> Type:
    func = module.functions.get(expr.name) if module is not None else None
    return function_type(func) if isinstance(func, G.GraphFunction) else ObjectType()


_TYPE_RULES: dict[type, Callable[[G.Expr, object], Type]] = {
    G.GraphVar: lambda e, m: e.type,
    G.DataflowVar: lambda e, m: e.type,
    G.Constant: lambda e, m: e.type,
    G.PrimValue: lambda e, m: PrimType(e.value.dtype),
    G.ShapeExpr: lambda e, m: ShapeType(e.values),
    G.Tuple: lambda e, m: TupleType(tuple(type_of(f, m) for f in e.fields)),
    G.TupleGetItem: _tuple_get_item,
    G.Call: _call,
    G.If: lambda e, m: join(type_of(e.true_branch, m), type_of(e.false_branch, m)),
    G.SeqExpr: lambda e, m: type_of(e.body, m),
    G.Op: lambda e, m: ObjectType(),
    G.ExternFunc: lambda e, m: ObjectType(),
    G.GlobalName: _global_name,
}


def join(a: Type, b: Type) -> Type:
    """The most specific type that both `a` and `b` are (used for the two branches of an If)."""
    if same_expr(a, b):
        return a
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        dtype = a.dtype if a.dtype == b.dtype else None
        ndim = a.ndim if a.ndim == b.ndim else -1
        if a.shape is not None and b.shape is not None and a.ndim == b.ndim:
            if all(compare_dims(x, y) is True for x, y in zip(a.shape, b.shape)):
                return TensorType(a.shape, dtype)
        return TensorType(None, dtype, ndim)
    if isinstance(a, TupleType) and isinstance(b, TupleType) and len(a.fields) == len(b.fields):
        return TupleType(tuple(join(x, y) for x, y in zip(a.fields, b.fields)))
    if type(a) is type(b) and isinstance(a, (ShapeType, PrimType)):
        return a if same_expr(a, b) else (type(a)() if isinstance(a, ShapeType) else ObjectType())
    return ObjectType()


def describe(t: Type) -> str:
    """A short description of a type for messages: `Tensor((n, 4), float32)`."""
    if isinstance(t, TensorType):
        shape = format_shape(t.shape) if t.shape is not None else f"ndim={t.ndim}"
        return f"Tensor({shape}, {t.dtype or '?'})"
    if isinstance(t, TupleType):
        return "Tuple(" + ", ".join(describe(f) for f in t.fields) + ")"
    if isinstance(t, ShapeType):
        return f"Shape({format_shape(t.values) if t.values is not None else f'ndim={t.ndim}'})"
    if isinstance(t, PrimType):
        return f"Prim({t.dtype})"
    return type(t).__name__


def type_mismatch(declared: Type, actual: Type) -> str | None:
    """Why a value of type `actual` cannot be bound to a variable declared `declared`, or None if it can.
    A declared type may be less specific than the actual one; dims that cannot be proved different are
    accepted (they are checked at run time)."""
    if isinstance(declared, ObjectType):
        return None
    if isinstance(declared, TensorType):
        if not isinstance(actual, TensorType):
            return f"expected {describe(declared)}, got {describe(actual)}"
        if declared.dtype is not None and declared.dtype != actual.dtype:
            return f"dtype {actual.dtype} is not the declared {declared.dtype}"
        if declared.known_rank and declared.ndim != actual.ndim:
            return f"rank {actual.ndim} is not the declared rank {declared.ndim}"
        if declared.shape is not None:
            if actual.shape is None:
                return f"shape is unknown where {format_shape(declared.shape)} is declared"
            for i, (d, a) in enumerate(zip(declared.shape, actual.shape)):
                if compare_dims(d, a) is False:
                    shapes = f"{format_shape(actual.shape)} vs declared {format_shape(declared.shape)}"
                    return f"dimension {i} differs: {shapes}"
        return None
    if isinstance(declared, TupleType):
        if not isinstance(actual, TupleType) or len(actual.fields) != len(declared.fields):
            return f"expected {describe(declared)}, got {describe(actual)}"
        for i, (d, a) in enumerate(zip(declared.fields, actual.fields)):
            why = type_mismatch(d, a)
            if why is not None:
                return f"field {i}: {why}"
        return None
    if isinstance(declared, ShapeType):
        if not isinstance(actual, ShapeType):
            return f"expected {describe(declared)}, got {describe(actual)}"
        if declared.ndim >= 0 and declared.ndim != actual.ndim:
            return f"expected {declared.ndim} values, got {actual.ndim}"
        return None
    if isinstance(declared, PrimType):
        if not isinstance(actual, PrimType) or actual.dtype != declared.dtype:
            return f"expected {describe(declared)}, got {describe(actual)}"
        return None
    if isinstance(declared, FuncType):
        return None if isinstance(actual, FuncType) else f"expected a function, got {describe(actual)}"
    return f"unknown declared type {type(declared).__name__}"
