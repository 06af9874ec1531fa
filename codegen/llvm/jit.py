"""From LLVM IR text to machine code: host target machines, the O3 pipeline, MCJIT and object files.

llvmlite 0.50 has only LLVM's new pass manager: `PipelineTuningOptions` + `create_pass_builder` give the
same per-module default pipeline as `opt -O3`, with loop and SLP vectorization on, tuned for the host CPU
(`get_host_cpu_name` / `get_host_cpu_features`, AVX-512 where present).
"""

from __future__ import annotations

import re
import threading
from functools import cache

import llvmlite.binding as llvm

from shapeflow.errors import CompileError

_INIT_LOCK = threading.Lock()
_INITIALIZED = False


def initialize() -> None:
    """Initialize LLVM's native target once per process."""
    global _INITIALIZED
    with _INIT_LOCK:
        if not _INITIALIZED:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()
            _INITIALIZED = True


@cache
def host_cpu() -> tuple[str, str]:
    """(cpu name, feature string) of the machine we run on."""
    initialize()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # some platforms cannot report features
        features = ""
    return llvm.get_host_cpu_name(), features


def target_machine(cpu: str = "", features: str = "", opt: int = 3, pic: bool = False, jit: bool = True):
    """A new target machine for the host triple; `cpu`/`features` empty means the host's.

    Not cached: an MCJIT engine takes ownership of its target machine and deletes it with itself."""
    initialize()
    if not cpu:
        cpu, host_features = host_cpu()
        features = features or host_features
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=cpu,
        features=features,
        opt=opt,
        reloc="pic" if pic else "default",
        codemodel="jitdefault" if jit else "default",
        jit=jit,
    )


_LOOP_ID = re.compile(r'^(!\d+) = !\{ ?!"shapeflow\.loop_id\.\d+"', re.MULTILINE)


def patch_loop_ids(text: str) -> str:
    """Make each marked loop-ID node distinct and self-referential, as LLVM requires (see context.py)."""
    return _LOOP_ID.sub(lambda m: f"{m.group(1)} = distinct !{{ {m.group(1)}", text)


def parse_and_verify(text: str) -> llvm.ModuleRef:
    initialize()
    try:
        module = llvm.parse_assembly(patch_loop_ids(text))
        module.verify()
    except RuntimeError as exc:
        raise CompileError(f"LLVM rejected the generated IR: {exc}") from exc
    return module


def optimize(module: llvm.ModuleRef, machine, speed_level: int = 3) -> None:
    """Run LLVM's default per-module pipeline at `speed_level` (O3 by default) in place."""
    tuning = llvm.PipelineTuningOptions(speed_level=speed_level)
    tuning.loop_vectorization = speed_level >= 2
    tuning.slp_vectorization = speed_level >= 2
    tuning.loop_unrolling = speed_level >= 1
    tuning.loop_interleaving = speed_level >= 2
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


class JITModule:
    """An optimized module loaded into an MCJIT execution engine; addresses of its functions."""

    def __init__(self, module: llvm.ModuleRef, machine):
        self.module = module
        self.engine = llvm.create_mcjit_compiler(module, machine)
        self.engine.finalize_object()
        self.engine.run_static_constructors()

    def address(self, symbol: str) -> int:
        address = self.engine.get_function_address(symbol)
        if not address:
            raise CompileError(f"symbol '{symbol}' is missing from the compiled module")
        return address


def emit_object(text: str, cpu: str = "", features: str = "", speed_level: int = 3) -> bytes:
    """An ELF/Mach-O object (position independent) of the IR `text`, for ahead-of-time artifacts."""
    machine = target_machine(cpu, features, 3, pic=True, jit=False)
    module = parse_and_verify(text)
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    optimize(module, machine, speed_level)
    return machine.emit_object(module)
