"""`shapeflow.build`: loop-level functions to callable kernels.

    lib = shapeflow.build(mod, target="cpu")
    lib["add"](a, b, out)

The pipeline, top to bottom:
1. lower (shapeflow.passes.tir.lower): blocks to loops, flattening, vectorization; the code generator takes
   lowered IR only.
2. render LLVM IR (shapeflow.codegen.llvm), with the thread-runtime and numpy-ABI facts of this process.
3. optimize at `target.opt_level` for the target CPU, then load with MCJIT.
4. wrap each kernel with its argument checker (shapeflow.runtime.library).
"""

from __future__ import annotations

from shapeflow.errors import UnsupportedError
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.target import Target


def _functions(mod) -> dict[str, PrimFunc]:
    if isinstance(mod, PrimFunc):
        name = str(mod.attrs.get("global_symbol", "main"))
        return {name: mod}
    if isinstance(mod, IRModule):
        out = {}
        for name, func in mod.items():
            if not isinstance(func, PrimFunc):
                raise UnsupportedError(
                    f"build compiles loop-level functions; '{name}' is a {type(func).__name__} "
                    "(use shapeflow.compile for graph-level programs)"
                )
            out[name] = func
        return out
    raise UnsupportedError(f"build takes an IRModule or a PrimFunc, got {type(mod).__name__}")


def _lower(functions: dict[str, PrimFunc]) -> dict[str, PrimFunc]:
    from shapeflow.passes.tir import lower  # noqa: PLC0415

    lowered = lower(IRModule(functions))
    return {name: lowered[name] for name in lowered.functions}


def build(mod, target: str | Target = "cpu", *, lower: bool = True):
    """Compile the PrimFuncs of `mod` (an IRModule or one PrimFunc) for `target`; a `Library` of kernels.

    `lower=False` skips the lowering passes, for IR that is already lowered (tests of the code generator).
    """
    target = Target.from_str(target)
    if target.kind != "cpu":
        raise UnsupportedError(f"target '{target.kind}' is not supported by build yet (only cpu)")
    functions = _functions(mod)
    if lower:
        functions = _lower(functions)
    return build_cpu(functions, target)


def build_cpu(functions: dict[str, PrimFunc], target: Target):
    from shapeflow.codegen.llvm import (  # noqa: PLC0415
        CodegenOptions,
        JITModule,
        generate_llvm_ir,
        optimize,
        parse_and_verify,
        target_machine,
    )
    from shapeflow.runtime.library import Library  # noqa: PLC0415
    from shapeflow.runtime.pyabi import ndarray_data_offset  # noqa: PLC0415
    from shapeflow.runtime.threadpool import thread_runtime_available  # noqa: PLC0415

    options = CodegenOptions(
        float_mode=target.float_mode,
        parallel=thread_runtime_available(),
        ndarray_data_offset=ndarray_data_offset(),
        num_threads=target.num_threads,
    )
    machine = target_machine(target.cpu, target.features, target.opt_level)
    text, abis = generate_llvm_ir(
        functions, options, triple=machine.triple, data_layout=str(machine.target_data)
    )
    module = parse_and_verify(text)
    optimize(module, machine, target.opt_level)
    return Library(JITModule(module, machine), abis, text, target)
