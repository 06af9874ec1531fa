"""`shapeflow.compile`: a graph-level model to an `Executable` (the VM program and its kernels).

    exe = shapeflow.compile(mod, target="cpu", dims={"n": (1, 64)}, dump_ir="ir/")
    y = exe(x)

The pipeline is the flat list `PIPELINE` below, read top to bottom. Graph-level steps are passes run
through the current `PassContext`, so its instruments (print, verify, time, dump) see each of them;
`dump_ir=DIR` adds a `DumpIR(DIR)` instrument that writes the module after every pass.
"""

from __future__ import annotations

# The graph IR, the passes and the code generators are imported when compile() runs, not with `shapeflow`.
import dataclasses
import os
from collections.abc import Callable
from typing import Any

from shapeflow.errors import UnsupportedError
from shapeflow.ir.module import IRModule
from shapeflow.target import Target


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
    from shapeflow.passes.graph import graph_pipeline  # noqa: PLC0415

    state.mod = graph_pipeline(state.opt_level)(state.mod)


def _default_schedules(state: CompileState) -> None:
    """Default schedule rule 1 (passes/graph/schedule_rules.py): matmul/linear kernels become hierarchy GEMM
    calls plus their fused epilogue; storage is re-planned since the GEMM outputs are new intermediates."""
    if state.opt_level < 1:
        return
    from shapeflow.passes.graph.memory import KillAfterLastUse, StaticPlanBlockMemory  # noqa: PLC0415
    from shapeflow.passes.graph.schedule_rules import SplitGemm  # noqa: PLC0415
    from shapeflow.passes.infra import Sequential  # noqa: PLC0415

    passes = [SplitGemm(), StaticPlanBlockMemory(), KillAfterLastUse()]
    state.mod = Sequential(passes, name="default-schedules")(state.mod)


def _broadcast_guards(state: CompileState) -> None:
    state.guards = broadcast_guards(state.mod)


def _legalize(state: CompileState) -> None:
    from shapeflow.passes.graph import LegalizeOps  # noqa: PLC0415

    state.mod = LegalizeOps(strict=True)(state.mod)


def _build_kernels(state: CompileState) -> None:
    from shapeflow.build import build_cached  # noqa: PLC0415
    from shapeflow.ir.tir.function import PrimFunc  # noqa: PLC0415

    # Only the kernels the program calls: SplitGemm leaves the fused kernels it replaced in the module
    # (about half of a model's kernels), and they need no machine code.
    called = _called_kernels(state.mod)
    prims = {name: f for name, f in state.mod.items() if isinstance(f, PrimFunc) and name in called}
    prepare = None
    if state.opt_level >= 1:
        # Default schedule rule 2 (passes/tir/default_schedule.py): parallel + vectorized elementwise and
        # injective kernels, row-parallel reductions; a rule that does not apply leaves the kernel as is.
        from shapeflow.passes.tir.default_schedule import apply_default_schedule  # noqa: PLC0415

        bounds = _declared_bounds(state.mod)

        def prepare(func):
            return apply_default_schedule(func, bounds=bounds)

    # Repeated layers give structurally equal kernels: each distinct one is scheduled and compiled once, and
    # its object code comes from the disk cache where it was compiled before (codegen/llvm/object_cache).
    state.library = build_cached(prims, state.target, prepare=prepare)


def _called_kernels(mod: IRModule) -> set[str]:
    """Names of the functions the graph functions can call: through a GlobalName, or named by a call's
    "fallback" attribute (the small-M kernel of a GEMM call, passes/graph/schedule_rules.py)."""
    from shapeflow.ir.functor import collect  # noqa: PLC0415
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415
    from shapeflow.passes.graph.dead_code import reachable_functions  # noqa: PLC0415

    graph = [name for name, f in mod.items() if isinstance(f, G.GraphFunction)]
    called = reachable_functions(mod, graph)
    for name in graph:
        for call in collect(mod[name].body, G.Call):
            fallback = (call.attrs or {}).get("fallback")
            if isinstance(fallback, str):
                called.add(fallback)
    return called


def _declared_bounds(mod: IRModule) -> dict:
    """{dim name: (lo, hi)} of every graph function's "var_bounds" (kernels name their dims alike)."""
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415

    bounds: dict = {}
    for func in mod.functions.values():
        if isinstance(func, G.GraphFunction):
            bounds.update(func.attrs.get("var_bounds") or {})
    return bounds


def _vm_codegen(state: CompileState) -> None:
    from shapeflow.runtime.vm import codegen  # noqa: PLC0415

    state.program, state.constants = codegen(state.mod, state.library, state.guards)


# The pipeline, top to bottom.
PIPELINE: list[tuple[str, Callable[[CompileState], None]]] = [
    # Shape relations that inference could not prove (broadcasts, contracted dims, ...): remembered
    # before ops turn into opaque kernels, checked by the VM at run time (a kernel would read out of
    # bounds otherwise).
    ("broadcast_guards", _broadcast_guards),
    # Normalize, fold, CSE, DCE, legalize, fuse, plan memory (passes/graph/pipeline.py): the whole
    # graph level, ending with the memory plan and free points the VM codegen reads.
    ("graph_passes", _graph_passes),
    # Default schedule rules on the fused kernels: matmul/linear stages run on the hierarchy GEMM (a
    # constant weight packed once when the program is loaded), their epilogues stay one fused kernel.
    ("default_schedules", _default_schedules),
    # Strict legalization: an op the pipeline could not legalize is an UnsupportedError naming it here,
    # rather than a VM codegen failure (the VM runs kernels only). A no-op when everything is legalized.
    ("legalize", _legalize),
    # Lower and compile every PrimFunc into one Library (shapeflow.build: lowering passes, LLVM, MCJIT).
    ("build_kernels", _build_kernels),
    # The glue to VM instructions; needs the kernels' calling conventions, so it comes last.
    ("vm_codegen", _vm_codegen),
]


def compile(mod_or_model, target: str | Target = "cpu", dims=None, dump_ir=None, opt_level: int = 2):  # noqa: A001
    """Compile a graph-level IRModule (graph functions + PrimFuncs), or an ONNX model (path, bytes or
    onnx.ModelProto, imported by `shapeflow.frontend.from_onnx` with `dims`), into an `Executable`.

    `dims={"n": (lo, hi)}` declares inclusive bounds of symbolic dims by name (checked at run time, and
    available to passes as each function's "var_bounds"); `dump_ir=DIR` writes the module after each pass.
    """
    from shapeflow.executable import Executable  # noqa: PLC0415
    from shapeflow.passes.infra import DumpIR, PassContext  # noqa: PLC0415

    if isinstance(mod_or_model, (str, bytes, os.PathLike)) or type(mod_or_model).__name__ == "ModelProto":
        # An ONNX model: the frontend compiles it, specializing on inputs whose values determine shapes.
        from shapeflow.frontend.onnx.specialize import compile_onnx  # noqa: PLC0415

        return compile_onnx(mod_or_model, target=target, dims=dims, dump_ir=dump_ir, opt_level=opt_level)
    mod = _as_module(mod_or_model, dims)
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


def _as_module(value, dims=None) -> IRModule:
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415

    if isinstance(value, IRModule):
        return value
    if isinstance(value, G.GraphFunction):
        return IRModule({value.name or "main": value})
    if isinstance(value, (str, bytes, os.PathLike)) or type(value).__name__ == "ModelProto":
        # An ONNX model (path, serialized bytes or ModelProto): the frontend imports it, bounds included.
        from shapeflow.frontend import from_onnx  # noqa: PLC0415

        return from_onnx(value, dims=dims or None)
    raise UnsupportedError(f"compile takes an IRModule or a GraphFunction, got {type(value).__name__}")


def with_dim_bounds(mod: IRModule, dims) -> IRModule:
    """`mod` with `dims` ({name: (lo, hi)}) merged into the "var_bounds" of every graph function."""
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415

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
    known = _symbolic_dim_names(mod)
    unknown = sorted(set(bounds) - known)
    if unknown:
        raise UnsupportedError(
            f"dims names symbolic dims the model does not have: {', '.join(unknown)} "
            f"(it has: {', '.join(sorted(known)) or 'none'})"
        )
    functions = {}
    for name, func in mod.items():
        if isinstance(func, G.GraphFunction):
            merged = {**(func.attrs.get("var_bounds") or {}), **bounds}
            func = G.GraphFunction(
                func.params, func.body, func.ret_type, {**func.attrs, "var_bounds": merged}
            )
        functions[name] = func
    return IRModule(functions, mod.attrs)


def _symbolic_dim_names(mod: IRModule) -> set[str]:
    """Names of the symbolic Vars that graph functions define (in parameter and match_cast types)."""
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415
    from shapeflow.ir.graph.builder import type_vars  # noqa: PLC0415

    names: set[str] = set()
    for func in mod.functions.values():
        if not isinstance(func, G.GraphFunction):
            continue
        types = [p.type for p in func.params]
        if isinstance(func.body, G.SeqExpr):
            types += [
                b.type for block in func.body.blocks for b in block.bindings if isinstance(b, G.MatchCast)
            ]
        names.update(v.name for t in types for v in type_vars(t))
    return names


def broadcast_guards(mod: IRModule) -> dict[str, list]:
    """For each graph function, the run-time shape conditions of op calls that inference could not prove
    and a kernel cannot check itself (broadcasts, contracted dims, element counts, slice bounds, ...),
    derived from each op's own inference (shapeflow.runtime.vm.guards)."""
    from shapeflow.runtime.vm.guards import shape_guards  # noqa: PLC0415

    return shape_guards(mod)


def _type_text(t) -> str:
    from shapeflow.ir.graph.shape import format_shape  # noqa: PLC0415
    from shapeflow.ir.graph.types import TensorType  # noqa: PLC0415

    if isinstance(t, TensorType):
        dtype = "?" if t.dtype is None else str(t.dtype)
        shape = format_shape(t.shape) if t.shape is not None else f"(ndim={t.ndim})"
        return f"{dtype}{shape}"
    return type(t).__name__


def signature(mod: IRModule) -> dict:
    """{function: {"params": [[name, type text]...], "ret": type text}} of the graph functions."""
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415

    return {
        name: {
            "params": [[p.name, _type_text(p.type)] for p in f.params],
            "ret": _type_text(f.ret_type),
            # Parameters and results stored as bits (float8, int4...: shapeflow.storage_dtypes).
            **({"storage": f.attrs["storage_dtypes"]} if f.attrs.get("storage_dtypes") else {}),
        }
        for name, f in mod.items()
        if isinstance(f, G.GraphFunction)
    }
