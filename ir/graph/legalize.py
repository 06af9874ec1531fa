"""Legalization: graph op calls become loop-level PrimFuncs called with `call_tir`.

Each op's registry entry holds its legalization as a te-level function (we chose this form over one that
builds a PrimFunc itself: the op writes only the computation, and one place here makes parameters, names,
scalar arguments and checks for every op alike):

    legalize(inputs: list[te.Tensor], out: Type, **attrs) -> te.Tensor | tuple[te.Tensor, ...]

`inputs` are te placeholders with the arguments' symbolic shapes (the same int64 Vars as the graph types),
`out` is the call's inferred type, `attrs` the normalized attributes (PrimExpr attributes such as reshape's
shape stay symbolic). `legalize_call` turns the result into `te.create_prim_func(inputs + outputs + scalars)`.

Symbolic Vars that no buffer parameter has as a plain dimension (a Var that only appears inside `n * m`,
or only in an attribute such as a slice bound) become trailing int64 scalar parameters of the PrimFunc, in
order; the call_tir passes them as its ShapeExpr of tir_vars, so every kernel can be run on arrays alone
plus those values.

`legalize_module` rewrites every op call of every graph function into a call_tir of a PrimFunc added to
the module; structurally equal kernels are added once (structural_hash, then structural_equal).
"""

from __future__ import annotations

from collections.abc import Sequence

from shapeflow import te
from shapeflow.errors import UnsupportedError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import IntImm, PrimExpr, Var
from shapeflow.ir.functor import Mutator
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops.registry import get_op_def, infer_call_type, make_call
from shapeflow.ir.graph.ops.te_util import with_index_checks, with_shape_asserts
from shapeflow.ir.graph.shape import free_vars, record_requirements
from shapeflow.ir.graph.types import TensorType, TupleType, Type
from shapeflow.ir.module import IRModule
from shapeflow.ir.structural import structural_equal, structural_hash
from shapeflow.ir.tir.function import PrimFunc

_NOT_LEGALIZED = ("call_tir", "call_dps_library")


def _tensor_fields(t: Type, what: str, op: str) -> tuple[TensorType, ...]:
    fields = t.fields if isinstance(t, TupleType) else (t,)
    for f in fields:
        if not isinstance(f, TensorType) or f.shape is None or f.dtype is None:
            raise UnsupportedError(
                f"op '{op}': cannot legalize with {what} of type {f!r} (shape and dtype needed)"
            )
    return fields


def _attr_vars(attrs) -> list[Var]:
    exprs: list[PrimExpr] = []

    def walk(value):
        if isinstance(value, PrimExpr):
            exprs.append(value)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)

    for value in attrs.values():
        walk(value)
    return free_vars(exprs)


def _copy_if_input(tensor, inputs, op_name: str, index: int):
    if not any(tensor is x for x in inputs):
        return tensor
    return te.compute(tensor.shape, lambda *idx: tensor[idx], name=f"{op_name}_copy{index}")


def legalize_call(call: G.Call, arg_types: Sequence[Type]) -> tuple[PrimFunc, Type]:
    """The PrimFunc computing op call `call` on arguments of `arg_types`, and the call's output type.

    The PrimFunc's parameters are the inputs, the outputs, then the int64 scalars for symbolic Vars that no
    buffer has as a plain dimension (pass them as call_tir's tir_vars). UnsupportedError if the op has no
    legalization or a type lacks its shape or dtype."""
    op_def = get_op_def(call.op)
    if op_def.legalize is None:
        raise UnsupportedError(f"op '{op_def.name}' has no legalization to loops")
    with record_requirements() as requirements:  # the shape relations the kernel will rely on
        out_type = infer_call_type(call, arg_types)
    in_fields = [_tensor_fields(t, f"argument {i}", op_def.name)[0] for i, t in enumerate(arg_types)]
    for i, t in enumerate(arg_types):
        if isinstance(t, TupleType):
            raise UnsupportedError(f"op '{op_def.name}': argument {i} is a tuple")
    out_fields = _tensor_fields(out_type, "output", op_def.name)
    attrs = op_def.normalize_attrs(call.attrs)
    inputs = [te.placeholder(t.shape, t.dtype, name=f"x{i}") for i, t in enumerate(in_fields)]
    result = op_def.legalize(inputs, out_type, **attrs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    # An op that is the identity for these attributes (pad by zero, a full slice, ...) may hand back an
    # input; destination-passing style still needs a kernel that writes the output, so copy it.
    outputs = [_copy_if_input(t, inputs, op_def.name, k) for k, t in enumerate(outputs)]
    if len(outputs) != len(out_fields):
        raise UnsupportedError(
            f"op '{op_def.name}': legalization made {len(outputs)} outputs, not {len(out_fields)}"
        )
    for k, (tensor, field) in enumerate(zip(outputs, out_fields)):
        if tensor.dtype != field.dtype or len(tensor.shape) != len(field.shape):
            raise UnsupportedError(
                f"op '{op_def.name}': legalized output {k} is {tensor.dtype}{list(tensor.shape)}, "
                f"inferred {field.dtype}{list(field.shape)}"
            )
    direct = {id(d) for t in (*in_fields, *out_fields) for d in t.shape if isinstance(d, Var)}
    candidates = free_vars([d for t in (*in_fields, *out_fields) for d in t.shape]) + _attr_vars(attrs)
    scalars: list[Var] = []
    for v in candidates:
        if id(v) not in direct and all(v is not s for s in scalars):
            scalars.append(v)
    func = te.create_prim_func([*inputs, *outputs, *scalars], name=op_def.name)
    # Unproved shape relations (also checked by the VM on entry, with better messages) and the values of
    # index inputs are asserted in the kernel itself: it then never reads out of bounds, whoever calls
    # it and wherever (inside If branches too).
    func = with_shape_asserts(func, requirements)
    if op_def.index_checks is not None:
        func = with_index_checks(func, inputs, op_def.index_checks(inputs, **attrs))
    return func, out_type


def scalar_params(func: PrimFunc) -> list[Var]:
    """The trailing scalar parameters of a legalized PrimFunc (call_tir's tir_vars)."""
    return [p for p in func.params if isinstance(p, Var)]


def _frozen(value):
    """A hashable, exact stand-in for an attribute value or type (Vars by identity), or None where there is
    none: then the call is legalized without the memo."""
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", repr(value))  # -0.0 and 0.0 make different kernels
    if isinstance(value, (tuple, list)):
        parts = tuple(_frozen(v) for v in value)
        return None if any(p is None for p in parts) else (type(value).__name__, parts)
    if isinstance(value, IntImm):
        return ("IntImm", str(value.dtype), value.value)
    if isinstance(value, Var):
        return ("Var", id(value))
    if isinstance(value, DataType):
        return ("dtype", str(value))
    if isinstance(value, TensorType) and value.shape is not None:
        return ("TensorType", str(value.dtype), _frozen(value.shape))
    return None


def _memo_key(call: G.Call, arg_types: Sequence[Type]):
    parts = (
        call.op.name,
        _frozen(tuple((k, v) for k, v in sorted((call.attrs or {}).items()))),
        _frozen(tuple(arg_types)),
    )
    return None if any(p is None for p in parts) else parts


class _Legalizer(Mutator):
    def __init__(self, functions: dict, strict: bool):
        super().__init__()
        self.functions = functions
        self.strict = strict
        self.by_hash: dict[int, list[tuple[str, PrimFunc]]] = {}
        # Calls of one op with equal attributes on equal types (repeated layers) legalize to the same
        # kernel: built once. Keys hold Vars by id, so the types they came from are kept alive here.
        self.memo: dict[tuple, tuple[str, tuple[Var, ...], Type]] = {}
        self.keep: list = []

    def add_kernel(self, func: PrimFunc, base: str) -> str:
        # Kernels are compared with one neutral global_symbol: the name they get is not part of what they do.
        neutral = func.with_attr("global_symbol", "kernel")
        key = structural_hash(neutral)
        for name, seen in self.by_hash.get(key, []):
            if structural_equal(seen, neutral):
                return name
        name, k = base, 0
        while name in self.functions:
            k += 1
            name = f"{base}{k}"
        self.functions[name] = func.with_attr("global_symbol", name)
        self.by_hash.setdefault(key, []).append((name, neutral))
        return name

    def visit_Call(self, call: G.Call):
        call = self.generic_visit(call)
        if not isinstance(call.op, G.Op) or call.op.name in _NOT_LEGALIZED:
            return call
        try:
            arg_types = [type_of(a) for a in call.args]
            key = _memo_key(call, arg_types)
            found = self.memo.get(key) if key is not None else None
            if found is None:
                func, out_type = legalize_call(call, arg_types)
                found = (self.add_kernel(func, call.op.name), tuple(scalar_params(func)), out_type)
                if key is not None:
                    self.memo[key] = found
                    self.keep.append(arg_types)
        except UnsupportedError:
            if self.strict:
                raise
            return call
        name, scalars, out_type = found
        call_args = [G.GlobalName(name), G.Tuple(tuple(call.args))]
        if scalars:
            call_args.append(G.ShapeExpr(tuple(scalars)))
        return make_call("call_tir", call_args, type_args=(out_type,))


def legalize_module(mod: IRModule, *, strict: bool = False) -> IRModule:
    """A module in which every op call of every graph function is a call_tir of a PrimFunc of the module.

    Calls that cannot be legalized (an op without a legalization, or argument types without a shape or
    dtype) stay op calls, unless `strict`, where they raise UnsupportedError."""
    functions = dict(mod.functions)
    legalizer = _Legalizer(functions, strict)
    for name, func in list(mod.functions.items()):
        if isinstance(func, G.GraphFunction):
            functions[name] = legalizer.visit(func)
    return IRModule(functions, dict(mod.attrs))


def legalize_function(func: G.GraphFunction, *, strict: bool = False) -> IRModule:
    """`legalize_module` of a module holding only `func` (under its global_symbol, or "main")."""
    return legalize_module(IRModule({func.name or "main": func}), strict=strict)
