"""The `call_gemm` instruction: a matmul/linear on the hierarchy GEMM (passes/graph/schedule_rules.py).

    ["call_gemm", kind, a_reg, b, c_reg, fallback]
        kind: "dense" | "gemm" | "batched"
        b: a register, or ["const", index] for a constant weight
        fallback: None, or [kernel index, max rows]: with at most that many rows (the product of A's dims
                  but the last; per batch entry for "batched"), call that kernel (A, B, C) instead; for a
                  B in a register, where packing it would cost more than the few rows' loop nest

The kernel family is built (or taken from the process cache) when the program is loaded. A constant weight
is packed into the micro-kernels' layout right then, once per load: compile() loads the program, and so
does loading an artifact, which stores the weight unpacked (packed bytes depend on the machine's measured
register block, so they are not portable). A weight in a register (a model parameter, an activation) is
packed by the kernel at each call.
"""

from __future__ import annotations

import hashlib

import numpy as np

from shapeflow.errors import Error
from shapeflow.runtime.vm.steps import builds, reg_index

GEMM_KINDS = ("dense", "gemm", "batched")


def _packed(vm, kind: str, kernel, weight: np.ndarray):
    """`weight` packed for `kernel`, once per program load and distinct weight: layers sharing a weight (equal
    constants, even as separate constant entries) share the packed copy."""
    if kind == "batched" or not weight.size:
        return weight
    cache = vm.__dict__.setdefault("packed_weights", {})
    key = (kind, weight.shape, hashlib.sha256(weight.tobytes()).digest())
    found = cache.get(key)
    if found is None or not np.array_equal(found[0], weight):
        found = cache[key] = (weight, kernel.pack_weights(weight))
    return found[1]


@builds("call_gemm")
def _call_gemm(vm, func, kind, a, b, c, fallback):
    from shapeflow.passes.graph.schedule_rules import gemm_kernel, run_gemm  # noqa: PLC0415

    if kind not in GEMM_KINDS:
        raise Error(f"VM function '{func.name}': unknown GEMM kind {kind!r}")
    a, c = reg_index(func, a), reg_index(func, c)
    kernel = gemm_kernel(kind)
    if isinstance(b, list):
        if len(b) != 2 or b[0] != "const" or type(b[1]) is not int or not 0 <= b[1] < len(vm.constants):
            raise Error(f"VM function '{func.name}': bad constant operand {b!r}")
        packed = _packed(vm, kind, kernel, vm.constants[b[1]])

        def step(R, H):
            run_gemm(kind, kernel, R[a], packed, R[c])

        return step
    b = reg_index(func, b)
    if fallback is None:

        def step(R, H):
            run_gemm(kind, kernel, R[a], R[b], R[c])

        return step
    if not (isinstance(fallback, list) and len(fallback) == 2 and type(fallback[0]) is int):
        raise Error(f"VM function '{func.name}': bad GEMM fallback {fallback!r}")
    if not 0 <= fallback[0] < len(vm.kernels) or type(fallback[1]) is not int:
        raise Error(f"VM function '{func.name}': GEMM fallback {fallback!r} out of range")
    small, max_rows = vm.kernels[fallback[0]], fallback[1]

    batched = kind == "batched"

    def step(R, H):
        x = R[a]
        if (x.shape[-2] <= max_rows) if batched else (x.size <= max_rows * x.shape[-1]):
            small(x, R[b], R[c])
        else:
            run_gemm(kind, kernel, x, R[b], R[c])

    return step
