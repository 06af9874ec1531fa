"""The hardware model: what the target is, as a list of levels, detected from the host.

A target is a stack of `Level`s, outermost first. Each level says how many units run in parallel there and
how much storage one unit owns, which is all the top-down decomposition needs to size its blocks:

    CPU:  threads (cores) -> L3 -> L2 -> L1 -> registers (vector registers x SIMD lanes, FMA units)
    GPU:  grid (SMs) -> shared memory (per SM) -> warps -> registers -> tensor-core instruction

`CPUModel` is detected from the host (`detect_cpu`): cores from the affinity mask, SIMD width and features
from LLVM's host feature list, cache sizes from sysfs. Every value can be overridden, and whatever cannot be
detected falls back to a conservative value with a warning, never an exception. `GPUModel` fills the same
structure for GPUs; nothing detects it yet (the CUDA backend will).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# Conservative values used when the host cannot tell us (an old x86 core with AVX2-free SSE, small caches).
FALLBACK = {
    "cores": 1,
    "simd_bits": 128,
    "vector_registers": 16,
    "fma_units": 2,
    "l1_bytes": 32 * 1024,
    "l2_bytes": 256 * 1024,
    "l3_bytes": 2 * 1024 * 1024,
}

CACHE_SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True)
class Level:
    """One level of a hardware hierarchy.

    `units`: how many instances of this level work in parallel (cores, SMs, warps per SM; 1 for a shared
    cache). `capacity_bytes`: storage one instance owns (a cache, shared memory, the register file).
    `kind` says what the decomposition does with the level: "parallel" levels get the parallel loops,
    "memory" levels get temporal blocks sized to their capacity, "register" is the micro-kernel's.
    """

    name: str
    kind: str
    units: int = 1
    capacity_bytes: int = 0
    notes: str = ""


@dataclass(frozen=True)
class CPUModel:
    """A CPU target: the numbers the GEMM hierarchy sizes itself from."""

    name: str = "generic"
    features: frozenset[str] = frozenset()
    cores: int = FALLBACK["cores"]
    simd_bits: int = FALLBACK["simd_bits"]
    vector_registers: int = FALLBACK["vector_registers"]
    fma_units: int = FALLBACK["fma_units"]
    l1_bytes: int = FALLBACK["l1_bytes"]
    l2_bytes: int = FALLBACK["l2_bytes"]
    l3_bytes: int = FALLBACK["l3_bytes"]
    # Sustained DRAM bandwidth per core, bytes/s: a modest default, used only to rank decompositions.
    memory_bandwidth: float = 20e9
    # Which fields came from the host and which are fallbacks or overrides, for `describe()`.
    provenance: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    kind: str = "cpu"

    def lanes(self, dtype_bytes: int = 4) -> int:
        """SIMD lanes of one vector register for elements of `dtype_bytes`."""
        return max(1, self.simd_bits // (8 * dtype_bytes))

    @property
    def levels(self) -> tuple[Level, ...]:
        return (
            Level("threads", "parallel", self.cores, 0, "one thread per core"),
            Level("L3", "memory", 1, self.l3_bytes, "shared by all cores"),
            Level("L2", "memory", self.cores, self.l2_bytes),
            Level("L1", "memory", self.cores, self.l1_bytes),
            Level(
                "registers",
                "register",
                self.fma_units,
                self.vector_registers * self.simd_bits // 8,
                f"{self.vector_registers} x {self.simd_bits}-bit registers, {self.fma_units} FMA units",
            ),
        )

    def key(self) -> str:
        """What identifies this hardware for cached measurements (name and the features that matter)."""
        feats = ",".join(sorted(self.features))
        return f"{self.kind}|{self.name}|{self.simd_bits}|{self.vector_registers}|{feats}"

    def describe(self) -> str:
        lines = [f"CPU {self.name}: {self.cores} cores, {self.simd_bits}-bit SIMD"]
        for lv in self.levels:
            size = f", {lv.capacity_bytes // 1024} KiB" if lv.capacity_bytes else ""
            lines.append(f"  {lv.name:<10} {lv.kind:<9} x{lv.units}{size}  {lv.notes}".rstrip())
        if self.provenance:
            lines.append("  sources: " + ", ".join(f"{k}={v}" for k, v in sorted(self.provenance.items())))
        return "\n".join(lines)


@dataclass(frozen=True)
class GPUModel:
    """A GPU target in the same level structure (SMs, warps, registers, shared memory, tensor cores).

    Not detected yet; the CUDA backend will fill it from the driver's device attributes."""

    name: str
    sms: int
    warp_size: int = 32
    warps_per_sm: int = 64
    registers_per_sm: int = 65536
    shared_memory_per_sm: int = 228 * 1024
    l2_bytes: int = 50 * 1024 * 1024
    tensor_core_shapes: tuple[tuple[int, int, int], ...] = ((16, 8, 16),)
    kind: str = "gpu"

    @property
    def levels(self) -> tuple[Level, ...]:
        return (
            Level("grid", "parallel", self.sms, 0, "thread blocks in waves over the SMs"),
            Level("L2", "memory", 1, self.l2_bytes),
            Level("shared", "memory", self.sms, self.shared_memory_per_sm),
            Level("warps", "parallel", self.warps_per_sm, 0, f"{self.warp_size} threads each"),
            Level("registers", "register", self.warp_size, self.registers_per_sm * 4 // self.warps_per_sm),
            Level("tensor-core", "register", 1, 0, f"mma shapes {self.tensor_core_shapes}"),
        )

    def key(self) -> str:
        return f"{self.kind}|{self.name}|{self.sms}"


def parse_size(text: str) -> int:
    """'48K' / '1024K' / '32M' / '512' (as sysfs writes cache sizes) -> bytes."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in "KMG" else text
    if text.endswith("B"):
        digits, scale = text[:-1], 1
    value = int(digits) * scale
    if value <= 0:
        raise ValueError(f"cache size must be positive: {text!r}")
    return value


def read_caches(root: Path = CACHE_SYSFS) -> dict[str, int]:
    """{'l1_bytes': ..., 'l2_bytes': ..., 'l3_bytes': ...} for the data/unified caches sysfs lists."""
    found: dict[str, int] = {}
    for index in sorted(root.glob("index*")):
        kind = (index / "type").read_text().strip()
        if kind not in ("Data", "Unified"):
            continue
        level = int((index / "level").read_text().strip())
        if 1 <= level <= 3:
            found[f"l{level}_bytes"] = parse_size((index / "size").read_text())
    return found


def _host_features() -> tuple[str, frozenset[str]]:
    from shapeflow.codegen.llvm.jit import host_cpu  # noqa: PLC0415

    name, text = host_cpu()
    enabled = frozenset(f[1:] for f in text.split(",") if f.startswith("+"))
    return name, enabled


def simd_from_features(features: frozenset[str]) -> tuple[int, int] | None:
    """(SIMD bits, vector registers) implied by the feature set, or None when it says nothing."""
    if "avx512f" in features:
        return 512, 32
    if "avx" in features or "avx2" in features:
        return 256, 16
    if "neon" in features or "sve" in features:
        return 128, 32
    if "sse2" in features:
        return 128, 16
    return None


def detect_cpu(*, features_probe=_host_features, cache_root: Path = CACHE_SYSFS, **overrides) -> CPUModel:
    """The host CPU as a `CPUModel`; `overrides` (any CPUModel field) win over detection.

    Whatever cannot be detected gets the conservative FALLBACK value and one warning naming it."""
    values: dict[str, object] = {}
    provenance: dict[str, str] = {}
    failed: list[str] = []

    try:
        values["cores"] = max(1, len(os.sched_getaffinity(0)))
        provenance["cores"] = "affinity"
    except (AttributeError, OSError):
        count = os.cpu_count()
        if count:
            values["cores"], provenance["cores"] = count, "cpu_count"
        else:
            failed.append("cores")

    try:
        name, features = features_probe()
        values["name"], values["features"] = name, frozenset(features)
        simd = simd_from_features(frozenset(features))
        if simd is None:
            failed.append("simd")
        else:
            values["simd_bits"], values["vector_registers"] = simd
            provenance["simd"] = "llvm host features"
    except Exception as exc:  # noqa: BLE001 - any failure of the probe means "unknown", never a crash
        failed.append(f"features ({type(exc).__name__}: {exc})")

    try:
        caches = read_caches(cache_root)
    except (OSError, ValueError) as exc:
        caches = {}
        failed.append(f"caches ({type(exc).__name__})")
    for key in ("l1_bytes", "l2_bytes", "l3_bytes"):
        if key in caches:
            values[key], provenance[key] = caches[key], "sysfs"
        elif not any(f.startswith("caches") for f in failed):
            failed.append(key)

    for key, value in overrides.items():
        if key not in {f.name for f in dataclasses.fields(CPUModel)}:
            raise TypeError(f"detect_cpu: unknown hardware field {key!r}")
        values[key], provenance[key] = value, "override"
    failed = [f for f in failed if f.split(" ")[0] not in overrides]
    if failed:
        warnings.warn(
            "hardware detection incomplete, using conservative values for: " + ", ".join(failed),
            RuntimeWarning,
            stacklevel=2,
        )
        for f in failed:
            provenance.setdefault(f.split(" ")[0], "fallback")
    return CPUModel(**values, provenance=provenance)


_HOST: CPUModel | None = None


def host_cpu_model() -> CPUModel:
    """The detected host model, once per process."""
    global _HOST
    if _HOST is None:
        _HOST = detect_cpu()
    return _HOST
