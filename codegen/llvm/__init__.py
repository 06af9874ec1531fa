"""The LLVM backend: lowered PrimFuncs -> LLVM IR (through llvmlite.ir) -> optimized machine code (MCJIT).

`generate_llvm_ir(functions, options)` renders IR text and the calling convention of each kernel;
`jit.py` optimizes and loads it. The rules per node live in expr.py, stmt.py, intrinsics.py (tables keyed by
node class / intrinsic name); memory.py linearizes buffer accesses; parallel.py outlines parallel loops.
"""

from __future__ import annotations

from collections.abc import Mapping

from shapeflow.codegen.llvm.context import (
    STATUS_MESSAGES,
    STATUS_NULL_POINTER_BASE,
    CodegenOptions,
    ModuleContext,
)
from shapeflow.codegen.llvm.function import KernelABI, emit_prim_func, symbol_name, symbolic_vars
from shapeflow.codegen.llvm.jit import (
    JITModule,
    emit_object,
    host_cpu,
    optimize,
    parse_and_verify,
    target_machine,
)
from shapeflow.codegen.llvm.parallel import NUM_THREADS_SYMBOL
from shapeflow.ir.tir.function import PrimFunc


def generate_llvm_ir(
    functions: Mapping[str, PrimFunc],
    options: CodegenOptions | None = None,
    *,
    triple: str = "",
    data_layout: str = "",
    module_name: str = "shapeflow",
) -> tuple[str, dict[str, KernelABI]]:
    """LLVM IR text for `functions` (lowered PrimFuncs by kernel name) and each kernel's calling
    convention."""
    mod = ModuleContext(module_name, options or CodegenOptions(), triple, data_layout)
    abis = {name: emit_prim_func(mod, name, func) for name, func in functions.items()}
    return str(mod.module), abis


__all__ = [
    "CodegenOptions",
    "JITModule",
    "KernelABI",
    "NUM_THREADS_SYMBOL",
    "STATUS_MESSAGES",
    "STATUS_NULL_POINTER_BASE",
    "emit_object",
    "generate_llvm_ir",
    "host_cpu",
    "optimize",
    "parse_and_verify",
    "symbol_name",
    "symbolic_vars",
    "target_machine",
]
