"""`shapeflow.compile`: a graph-level model to an `Executable` (the VM program and its kernels).

    exe = shapeflow.compile(mod, target="cpu", dims={"n": (1, 64)}, dump_ir="ir/")
    y = exe(x)

The pipeline is the flat list `PIPELINE` below, read top to bottom. Graph-level steps are passes run
through the current `PassContext`, so its instruments (print, verify, time, dump) see each of them;
`dump_ir=DIR` adds a `DumpIR(DIR)` instrument that writes the module after every pass.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from typing import Any, ClassVar

from shapeflow.errors import UnsupportedError
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.ops.registry import get_op_def
from shapeflow.ir.graph.shape import as_int, compare_dims, format_shape
from shapeflow.ir.graph.types import TensorType, Type
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.passes.infra import DumpIR, Pass, PassContext
from shapeflow.target import Target


@dataclasses.dataclass(frozen=True)
class LegalizeOps(Pass):
    """Every remaining op call becomes a call_tir of a te-built PrimFunc (strict: an op without a
    legalization is an UnsupportedError naming it, since the VM runs kernels only)."""

    name: ClassVar[str] = "legalize_ops"

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        from shapeflow.ir.graph.legalize import legalize_module  # noqa: PLC0415

        return legalize_module(mod, strict=True)


@dataclasses.dataclass
class CompileState:
    """What flows down the pipeline."""

    mod: IRModule
    target: Target
    opt_level: int
    guards: dict = dataclasses.field(default_factory=dict)
    library: Any = None
    program: Any = None
    constants: list = dataclasses.field(default_factory=list)


def _graph_passes(state: CompileState) -> None:
    """Normalize, fold, DCE, CSE, fuse, plan memory (passes/graph), when that package is installed."""
    try:
        pipeline = importlib.import_module("shapeflow.passes.graph.pipeline")
    except ImportError:
        return
    state.mod = pipeline.graph_pipeline(state.opt_level)(state.mod)


def _broadcast_guards(state: CompileState) -> None:
    state.guards = broadcast_guards(state.mod)


def _legalize(state: CompileState) -> None:
    state.mod = LegalizeOps()(state.mod)


def _build_kernels(state: CompileState) -> None:
    from shapeflow.build import build  # noqa: PLC0415

    prims = {name: f for name, f in state.mod.items() if isinstance(f, PrimFunc)}
    state.library = build(IRModule(prims), state.target)


def _vm_codegen(state: CompileState) -> None:
    from shapeflow.runtime.vm import codegen  # noqa: PLC0415

    state.program, state.constants = codegen(state.mod, state.library, state.guards)


# The pipeline, top to bottom.
PIPELINE: list[tuple[str, Callable[[CompileState], None]]] = [
    # Broadcasts that inference could not prove valid: remembered before ops turn into opaque kernels,
    # checked by the VM at run time (a kernel would read out of bounds otherwise).
    ("broadcast_guards", _broadcast_guards),
    # Graph-level optimizations on ops, while their meaning is still visible (fusion needs op patterns).
    ("graph_passes", _graph_passes),
    # Ops to call_tir of PrimFuncs: after this the module is kernels plus the glue that calls them.
    ("legalize", _legalize),
    # Lower and compile every PrimFunc into one Library (shapeflow.build: lowering passes, LLVM, MCJIT).
    ("build_kernels", _build_kernels),
    # The glue to VM instructions; needs the kernels' calling conventions, so it comes last.
    ("vm_codegen", _vm_codegen),
]


def compile(mod_or_model, target: str | Target = "cpu", dims=None, dump_ir=None, opt_level: int = 2):  # noqa: A001
    """Compile a graph-level IRModule (graph functions + PrimFuncs) into an `Executable`.

    `dims={"n": (lo, hi)}` declares inclusive bounds of symbolic dims by name (checked at run time, and
    available to passes as each function's "var_bounds"); `dump_ir=DIR` writes the module after each pass.
    """
    from shapeflow.executable import Executable  # noqa: PLC0415

    mod = _as_module(mod_or_model)
    mod = with_dim_bounds(mod, dims)
    target = Target.from_str(target)
    outer = PassContext.current()
    instruments = list(outer.instruments) + ([DumpIR(dump_ir)] if dump_ir is not None else [])
    ctx = PassContext(opt_level, dict(outer.config), instruments, outer.disabled_passes)
    state = CompileState(mod, target, opt_level)
    with ctx:
        for _name, step in PIPELINE:
            step(state)
    return Executable(state.program, state.library, state.constants, signature(state.mod))


def _as_module(value) -> IRModule:
    if isinstance(value, IRModule):
        return value
    if isinstance(value, G.GraphFunction):
        return IRModule({value.name or "main": value})
    if isinstance(value, (str, bytes, os.PathLike)) or type(value).__name__ == "ModelProto":
        raise UnsupportedError(
            "compiling ONNX models is not supported yet; pass an IRModule of graph functions "
            "(built with shapeflow.ir.graph.BlockBuilder)"
        )
    raise UnsupportedError(f"compile takes an IRModule or a GraphFunction, got {type(value).__name__}")


def with_dim_bounds(mod: IRModule, dims) -> IRModule:
    """`mod` with `dims` ({name: (lo, hi)}) merged into the "var_bounds" of every graph function."""
    if not dims:
        return mod
    bounds = {}
    for name, value in dims.items():
        try:
            lo, hi = (int(v) for v in value)
        except (TypeError, ValueError):
            raise UnsupportedError(f"dims[{name!r}] must be a pair (lo, hi) of ints, got {value!r}") from None
        if lo > hi or lo < 0:
            raise UnsupportedError(f"dims[{name!r}] = ({lo}, {hi}) is not a valid range")
        bounds[str(name)] = (lo, hi)
    functions = {}
    for name, func in mod.items():
        if isinstance(func, G.GraphFunction):
            merged = {**(func.attrs.get("var_bounds") or {}), **bounds}
            func = G.GraphFunction(
                func.params, func.body, func.ret_type, {**func.attrs, "var_bounds": merged}
            )
        functions[name] = func
    return IRModule(functions, mod.attrs)


def broadcast_guards(mod: IRModule) -> dict[str, list]:
    """For each graph function, the (binding, dim, input dim, output dim) of broadcasting op calls whose
    validity (input dim 1 or equal to the output's) inference could not prove."""
    out: dict[str, list] = {}
    for fname, func in mod.items():
        if not isinstance(func, G.GraphFunction) or not isinstance(func.body, G.SeqExpr):
            continue
        guards = out.setdefault(fname, [])
        for block in func.body.blocks:
            for b in block.bindings:
                call = b.value
                if not isinstance(call, G.Call) or not isinstance(call.op, G.Op):
                    continue
                try:
                    pattern = get_op_def(call.op).pattern
                except UnsupportedError:
                    continue
                if pattern not in ("elementwise", "broadcast") or len(call.args) < 2:
                    continue
                out_t = b.var.type
                if not isinstance(out_t, TensorType) or out_t.shape is None:
                    continue
                for arg in call.args:
                    t = arg.type if isinstance(arg, (G.GraphVar, G.Constant)) else None
                    if not isinstance(t, TensorType) or t.shape is None or len(t.shape) > len(out_t.shape):
                        continue
                    offset = len(out_t.shape) - len(t.shape)
                    for d, dim in enumerate(t.shape):
                        want = out_t.shape[offset + d]
                        if as_int(dim) == 1 or compare_dims(dim, want) is True:
                            continue
                        guards.append((b.var.name, offset + d, dim, want))
    return out


def _type_text(t: Type) -> str:
    if isinstance(t, TensorType):
        dtype = "?" if t.dtype is None else str(t.dtype)
        shape = format_shape(t.shape) if t.shape is not None else f"(ndim={t.ndim})"
        return f"{dtype}{shape}"
    return type(t).__name__


def signature(mod: IRModule) -> dict:
    """{function: {"params": [[name, type text]...], "ret": type text}} of the graph functions."""
    return {
        name: {"params": [[p.name, _type_text(p.type)] for p in f.params], "ret": _type_text(f.ret_type)}
        for name, f in mod.items()
        if isinstance(f, G.GraphFunction)
    }
