"""A PrimFunc as LLVM functions: the kernel with its C calling convention, and a Python entry point.

The kernel is `i32 @shapeflow_<name>(params..., symbolic dims...)`: a buffer parameter is a pointer to its
first element, a scalar parameter is an i64 (integers, bools) or a double (floats), and every symbolic
dimension that is not itself a scalar parameter follows as an i64, in order of first appearance in the buffer
parameters' shapes, strides and offsets. It returns 0, or a status (context.py) on failure.

The Python entry `@shapeflow_<name>.pyentry` takes the addresses of the numpy array objects instead of the
data pointers and reads each array's data pointer at a fixed offset inside the object (the runtime measured
the offset, shapeflow.runtime.pyabi). That saves the 1 to 1.5 us per array that asking numpy for the pointer
costs from Python. A null data pointer returns STATUS_NULL_POINTER_BASE - i.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import llvmlite.ir as ir

# Importing the rule modules fills the dispatch tables.
from shapeflow.codegen.llvm import expr as _expr  # noqa: F401
from shapeflow.codegen.llvm import stmt as _stmt  # noqa: F401
from shapeflow.codegen.llvm.arith import round_bf16
from shapeflow.codegen.llvm.context import STATUS_NULL_POINTER_BASE, FunctionContext, ModuleContext
from shapeflow.codegen.llvm.types import F32, I32, I64, PTR, abi_type, register_type
from shapeflow.errors import UnsupportedError
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc


@dataclass(frozen=True)
class KernelABI:
    """How to call one compiled PrimFunc."""

    name: str
    symbol: str
    entry_symbol: str | None
    func: PrimFunc
    symbolic: tuple[Var, ...]
    messages: tuple[str, ...]


def symbolic_vars(func: PrimFunc) -> tuple[Var, ...]:
    """Variables free in the buffer parameters' shapes, strides and offsets that are not scalar parameters."""
    scalars = {id(p) for p in func.params if isinstance(p, Var)}
    seen: set[int] = set()
    out: list[Var] = []
    for buffer in func.buffer_params:
        for expr in (*buffer.shape, *buffer.strides, buffer.elem_offset):
            for var in collect(expr, Var):
                if id(var) not in seen and id(var) not in scalars:
                    seen.add(id(var))
                    out.append(var)
    return tuple(out)


def symbol_name(name: str) -> str:
    return "shapeflow_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _narrow_scalar(ctx: FunctionContext, value: ir.Value, var: Var) -> ir.Value:
    """An ABI value (i64 or double) as the register value of `var`'s dtype."""
    b = ctx.builder
    dtype = var.dtype
    target = register_type(dtype)
    if dtype.is_bool:
        return b.icmp_unsigned("!=", value, ir.Constant(I64, 0))
    if dtype.is_integer:
        return value if target == I64 else b.trunc(value, target)
    if dtype.kind == "bfloat":
        return round_bf16(ctx, b.fptrunc(value, F32))
    return value if target == value.type else b.fptrunc(value, target)


def emit_prim_func(mod: ModuleContext, name: str, func: PrimFunc) -> KernelABI:
    if not isinstance(func, PrimFunc):
        raise UnsupportedError(f"'{name}' is a {type(func).__name__}; the LLVM backend compiles PrimFuncs")
    symbolic = symbolic_vars(func)
    arg_types: list[ir.Type] = []
    for param in func.params:
        arg_types.append(PTR if isinstance(param, Buffer) else abi_type(param.dtype))
    arg_types.extend(I64 for _ in symbolic)
    symbol = symbol_name(name)
    fn = ir.Function(mod.module, ir.FunctionType(I32, arg_types), name=symbol)
    fn.attributes.add("nounwind")
    messages: list[str] = []
    ctx = FunctionContext(mod, fn, name, messages)
    noalias = bool(func.attrs.get("tir.noalias", False))
    for param, arg in zip(func.params, fn.args):
        arg.name = param.name
        if isinstance(param, Buffer):
            ctx.env[param.data] = arg
            if noalias:
                arg.add_attribute("noalias")
                ctx.noalias.add(param.data)
        else:
            ctx.env[param] = _narrow_scalar(ctx, arg, param)
    for var, arg in zip(symbolic, fn.args[len(func.params) :]):
        arg.name = var.name
        if not var.dtype.is_integer or var.dtype.is_vector:
            raise UnsupportedError(f"symbolic dimension '{var.name}' must be an integer, got {var.dtype}")
        ctx.env[var] = (
            arg if register_type(var.dtype) == I64 else ctx.builder.trunc(arg, register_type(var.dtype))
        )
    ctx.emit_stmt(func.body)
    ctx.builder.ret(ir.Constant(I32, 0))
    ctx.finish()

    entry_symbol = None
    if mod.options.ndarray_data_offset is not None:
        entry_symbol = f"{symbol}.pyentry"
        _emit_python_entry(mod, fn, func, entry_symbol, mod.options.ndarray_data_offset)
    return KernelABI(name, symbol, entry_symbol, func, symbolic, tuple(messages))


def _emit_python_entry(mod: ModuleContext, kernel: ir.Function, func: PrimFunc, symbol: str, offset: int):
    arg_types = [I64 if isinstance(a.type, ir.PointerType) else a.type for a in kernel.args]
    fn = ir.Function(mod.module, ir.FunctionType(I32, arg_types), name=symbol)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    forwarded = []
    for i, (param, arg) in enumerate(zip(func.params, fn.args)):
        if not isinstance(param, Buffer):
            forwarded.append(arg)
            continue
        slot = b.inttoptr(b.add(arg, ir.Constant(I64, offset)), PTR)
        data = b.load(slot, typ=PTR, align=8)
        ok = fn.append_basic_block(f"{param.name}.ok")
        null = fn.append_basic_block(f"{param.name}.null")
        b.cbranch(b.icmp_unsigned("!=", data, ir.Constant(PTR, None)), ok, null)
        b.position_at_end(null)
        b.ret(ir.Constant(I32, STATUS_NULL_POINTER_BASE - i))
        b.position_at_end(ok)
        forwarded.append(data)
    forwarded.extend(fn.args[len(func.params) :])
    b.ret(b.call(kernel, forwarded))
