"""What the VM codegen proves from static types, before emitting anything.

- which graph variables an expression reads (the liveness of `codegen._FunctionCodegen.emit_seq`);
- which Vars a type names (a binding whose type names a Var not yet in the shape heap must be matched);
- whether one type implies another (a function's result needs no run-time check when its body's type
  already says so);
- whether a kernel call can skip the kernel's own argument checks (`plan_kernel_call`).

They read types and kernel signatures only and emit no code, so they live apart from the emitter.
"""

from __future__ import annotations

from shapeflow.errors import VerifyError
from shapeflow.ir.expr import PrimExpr, Var
from shapeflow.ir.functor import substitute
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.shape import compare_dims, same_expr
from shapeflow.ir.graph.types import FuncType, ObjectType, PrimType, ShapeType, TensorType, TupleType, Type
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.runtime.args import is_constant_zero


def _uses(expr, out: list) -> None:
    """Graph variables read by `expr`, appended to `out`."""
    if isinstance(expr, G.GraphVar):
        out.append(expr)
    elif isinstance(expr, G.Tuple):
        for f in expr.fields:
            _uses(f, out)
    elif isinstance(expr, G.TupleGetItem):
        _uses(expr.tuple_value, out)
    elif isinstance(expr, G.Call):
        _uses(expr.op, out)
        for a in expr.args:
            _uses(a, out)
    elif isinstance(expr, G.If):
        for e in (expr.cond, expr.true_branch, expr.false_branch):
            _uses(e, out)
    elif isinstance(expr, G.SeqExpr):
        for block in expr.blocks:
            for b in block.bindings:
                _uses(b.value, out)
        _uses(expr.body, out)


def value_uses(expr) -> list[G.GraphVar]:
    out: list = []
    _uses(expr, out)
    return out


def type_implies(have: Type, want: Type) -> bool:
    """True when a value known to have type `have` certainly has type `want` (no run-time check needed)."""
    if isinstance(want, (ObjectType, FuncType)):
        return True
    if type(have) is not type(want):
        return False
    if isinstance(want, TensorType):
        if want.dtype is not None and have.dtype != want.dtype:
            return False
        if want.known_rank and have.ndim != want.ndim:
            return False
        return want.shape is None or (have.shape is not None and same_expr(have.shape, want.shape))
    if isinstance(want, ShapeType):
        if want.ndim >= 0 and have.ndim != want.ndim:
            return False
        return want.values is None or (have.values is not None and same_expr(have.values, want.values))
    if isinstance(want, TupleType):
        return len(have.fields) == len(want.fields) and all(
            type_implies(h, w) for h, w in zip(have.fields, want.fields)
        )
    return isinstance(want, PrimType) and have.dtype == want.dtype


def plan_kernel_call(
    kfunc, symbolic, arg_types: list[Type], scalars: list[PrimExpr]
) -> list[PrimExpr] | None:
    """The caller-side expressions of the kernel's symbolic dims if the call can skip argument checks
    (every buffer's dtype, rank and dims proved to match the argument's static type), else None."""
    buffers = [p for p in kfunc.params if isinstance(p, Buffer)]
    scalar_params = [p for p in kfunc.params if isinstance(p, Var)]
    if len(buffers) != len(arg_types) or len(scalar_params) != len(scalars):
        raise VerifyError(
            f"call_tir of '{kfunc.attrs.get('global_symbol')}' passes {len(arg_types)} tensors and "
            f"{len(scalars)} scalars; the kernel takes {len(buffers)} and {len(scalar_params)}"
        )
    if kfunc.attrs.get("var_bounds"):
        return None
    mapping: dict = dict(zip(scalar_params, scalars))
    pending = []
    for buf, t in zip(buffers, arg_types):
        if not isinstance(t, TensorType) or t.shape is None or t.dtype != buf.dtype or t.ndim != buf.ndim:
            return None
        if buf.strides or not is_constant_zero(buf.elem_offset):
            return None
        for dim, actual in zip(buf.shape, t.shape):
            if isinstance(dim, Var) and dim not in mapping:
                mapping[dim] = actual
            else:
                pending.append((dim, actual))
    for dim, actual in pending:
        if compare_dims(substitute(dim, mapping), actual) is not True:
            return None
    if any(v not in mapping for v in symbolic):
        return None
    return [mapping[v] for v in symbolic]
