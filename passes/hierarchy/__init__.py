"""The hardware hierarchy (after Vortex): map GEMM-like ops onto the target's levels, sample-free.

- `hardware`: the target as levels (CPU detected from the host; a GPU model slots into the same structure).
- `microkernel`: the register level, an MR x NR vector-FMA block, as loop IR.
- `measure`: bottom-up, enumerate the blocks the register file holds, measure once per machine, cache.
- `gemm_ir`: top-down, the loop IR of a GEMM family built level by level (threads, caches, registers).
- `cost_model`: at run time, pick the decomposition for the actual shape analytically.
- `gemm`: the entry points `build_gemm`, `build_dense`, `build_batched_gemm` (`GemmKernel`).

For compile(): a matmul/dense whose weight is a constant maps to `build_dense(N, K)` / `build_gemm(N, K)`
(built once per (N, K, layout), cached in-process), its weight to `kernel.pack_weights(W)` at compile or
load time, and the call to `kernel(A, packed, C)`. Code that embeds the kernels itself can take the
PrimFuncs from `build_gemm_func` and the tile scalars for a shape from `GemmKernel.choose(M, N, K)`.
"""

from shapeflow.passes.hierarchy.cost_model import CostModel, Decomposition, pick_family
from shapeflow.passes.hierarchy.gemm import (
    GemmKernel,
    PackedWeights,
    build_batched_gemm,
    build_dense,
    build_gemm,
    microkernel_table,
)
from shapeflow.passes.hierarchy.gemm_ir import (
    LEVELS,
    GemmSignature,
    LoopLevel,
    build_gemm_func,
    build_pack_func,
)
from shapeflow.passes.hierarchy.hardware import CPUModel, GPUModel, Level, detect_cpu, host_cpu_model
from shapeflow.passes.hierarchy.measure import (
    MicroKernelResult,
    enumerate_candidates,
    load_or_measure,
    measure_candidates,
)
from shapeflow.passes.hierarchy.microkernel import MicroKernelShape, micro_kernel

__all__ = [
    "LEVELS",
    "CPUModel",
    "CostModel",
    "Decomposition",
    "GPUModel",
    "GemmKernel",
    "GemmSignature",
    "Level",
    "LoopLevel",
    "MicroKernelResult",
    "MicroKernelShape",
    "PackedWeights",
    "build_batched_gemm",
    "build_dense",
    "build_gemm",
    "build_gemm_func",
    "build_pack_func",
    "detect_cpu",
    "enumerate_candidates",
    "host_cpu_model",
    "load_or_measure",
    "measure_candidates",
    "micro_kernel",
    "microkernel_table",
    "pick_family",
]
