"""Sample-free selection: an analytical cost model picks the GEMM decomposition for the actual shape.

Given the hardware model, the measured micro-kernel table and the register blocks compiled into the kernel
family, `choose(M, N, K)` estimates the time of a few dozen decompositions and returns the fastest:

- which compiled micro-kernel (MR) to use (they share NR, the layout the weights are packed in);
- the parallel split of work items over the cores: over M row ranges (pm) or N panel ranges (pn);
- the cache tiles: KC from L1 (a KC x NR micro-panel of B in half of L1, or multiples, or all of K when B
  is not reused across register blocks); MC from L2 (the MC x KC block of A in half of L2); NC from this
  core's share of L3 (the KC x NC block of B);
- whether to pack A: copy each MC x KC block to a buffer with row stride KC when rows K apart would fall
  into too few L2 sets (a power-of-two K), at the cost of the copy.

The estimate per work item is max(compute, memory) + overhead, where compute is flops divided by the
measured rate of each register block used (full MR blocks and the smaller block of the M tail), memory is
the bytes of A and B that miss the caches divided by DRAM bandwidth, and overhead counts micro-kernel calls,
the C tile traffic of K blocking and the copy of packing A. The critical path is the most loaded thread
(static scheduling). It is a ranking model, not a predictor: no shape is ever timed, nothing depends on
samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from shapeflow.passes.hierarchy.hardware import CPUModel
from shapeflow.passes.hierarchy.measure import MicroKernelResult
from shapeflow.passes.hierarchy.microkernel import tail_cover

PARALLEL_OVERHEAD_S = 4e-6  # waking a thread team
CALL_OVERHEAD_S = 25e-9  # one micro-kernel call: loop setup, C tile address math
L2_BANDWIDTH = 64e9  # bytes/s per core, for C tiles re-read between K blocks and for packing A
L2_WAYS = 16  # associativity assumed for the L2 (sysfs does not always say)


@dataclass(frozen=True)
class Decomposition:
    """One way to run the GEMM: micro-kernel, parallel split and cache tiles, with its estimated time."""

    mr: int
    nr: int
    pm: int
    pn: int
    mc: int
    ncp: int
    kc: int
    pack_a: bool
    est_seconds: float
    terms: dict = field(default_factory=dict, compare=False, hash=False)

    def kernel_args(self) -> tuple[int, int, int, int, int, int]:
        """The tile scalars a family kernel takes after its buffers (gemm_ir.TILE_PARAMS)."""
        return (self.pm, self.pn, self.mc, self.ncp, self.kc, int(self.pack_a))

    def summary(self) -> str:
        split = "M" if self.pm > 1 else ("N" if self.pn > 1 else "none")
        return (
            f"micro-kernel {self.mr}x{self.nr}, parallel over {split} (pm={self.pm}, pn={self.pn}), "
            f"MC={self.mc}, NC={self.ncp * self.nr} ({self.ncp} panels), KC={self.kc}, "
            f"{'packed' if self.pack_a else 'unpacked'} A, "
            f"est {self.est_seconds * 1e6:.1f} us"
        )


@dataclass(frozen=True)
class CostModel:
    """The model for one kernel family: hardware, measured rates, and the compiled register blocks."""

    hw: CPUModel
    table: tuple[MicroKernelResult, ...]
    mrs: tuple[int, ...]  # MR of each compiled kernel of the family
    nr: int
    threads: int | None = None  # threads the parallel loop will get (None: one per core)

    @property
    def workers(self) -> int:
        return max(1, min(self.hw.cores, self.threads or self.hw.cores))

    def rate(self, mr: int) -> float:
        """Measured flops/s of an mr x NR block on one core (an unmeasured one is scaled from the best)."""
        for r in self.table:
            if r.mr == mr and r.nr == self.nr:
                return r.gflops * 1e9
        best = max((r for r in self.table if r.nr == self.nr), key=lambda r: r.gflops, default=None)
        if best is None:
            return 1e9
        return best.gflops * 1e9 * min(1.0, mr / best.mr)

    def tiles(self, mr: int, m: int, k: int) -> list[tuple[int, int, int]]:
        """(mc, ncp, kc) candidates sized from the caches, as BLIS sizes its blocks: the KC x NR micro-panel
        of B in half of L1, the MC x KC block of A in half of L2, the KC x NC block of B in this core's
        share of L3 (so A is streamed once per NC columns, not once per panel)."""
        hw, nr = self.hw, self.nr
        kc_l1 = max(8, hw.l1_bytes // 2 // (nr * 4) // 8 * 8)
        kcs = sorted({min(k, kc) for kc in (kc_l1, 2 * kc_l1, 4 * kc_l1, k)})
        out = []
        for kc in kcs:
            mc = max(mr, hw.l2_bytes // 2 // (kc * 4) // mr * mr)
            mc = min(mc, max(mr, math.ceil(m / mr) * mr))
            ncp = max(1, self.l3_share() // 2 // (kc * nr * 4))
            out.append((mc, ncp, kc))
        return out

    def l3_share(self) -> int:
        return max(self.hw.l2_bytes, self.hw.l3_bytes // self.workers)

    def splits(self) -> list[tuple[int, int]]:
        t = self.workers
        out = {(1, 1), (t, 1), (1, t)}
        out |= {(a, t // a) for a in range(1, t + 1) if t % a == 0}
        return sorted(out)

    def estimate(
        self,
        m: int,
        n: int,
        k: int,
        mr: int,
        pm: int,
        pn: int,
        mc: int,
        ncp: int,
        kc: int,
        pack_a: bool = False,
        batch: int = 1,
    ):
        """(seconds, terms) of one decomposition (of `batch` independent GEMMs of this shape)."""
        hw, nr = self.hw, self.nr
        nb = math.ceil(n / nr)
        m_chunk = math.ceil(math.ceil(m / pm) / mr) * mr
        p_chunk = math.ceil(nb / pn)
        rows, panels = min(m_chunk, m), min(p_chunk, nb)
        items = batch * math.ceil(m / m_chunk) * math.ceil(nb / p_chunk)
        threads = min(self.workers, items)
        slots = batch * pm * pn  # the parallel loop's extent, empty items included
        per_thread = min(math.ceil(slots / max(1, min(self.workers, slots))), items)

        full, tail = divmod(rows, mr)
        k_blocks = math.ceil(k / kc)
        flops_per_row = 2.0 * nr * k * panels
        compute = flops_per_row * full * mr / self.rate(mr)
        tail_blocks = tail_cover(mr, tail)  # as microkernel.row_dispatch covers it
        for p in tail_blocks:
            compute += flops_per_row * p / self.rate(p)
        blocks_per_panel = full + len(tail_blocks)
        if kc * nr * 4 > hw.l1_bytes // 2 and blocks_per_panel > 1:
            compute *= 1.15  # the B micro-panel falls out of L1 between register blocks
        jc_blocks = math.ceil(panels / ncp)
        if pack_a:
            pack = rows * k * 4 * 2 * jc_blocks / L2_BANDWIDTH  # copy each MC x KC block once per NC block
        else:
            pack = 0.0
            if blocks_per_panel > 1:
                compute *= self.unpacked_a_factor(k, min(mc, rows))
        calls = panels * blocks_per_panel * k_blocks
        c_traffic = rows * panels * nr * 4 * 2 * (k_blocks - 1) / L2_BANDWIDTH
        overhead = calls * CALL_OVERHEAD_S + c_traffic + pack

        # DRAM traffic: B once if its KC x NC block survives the MC loop in L3; A once if all of this item's
        # rows stay in L3 beside it, else once per NC block.
        share = self.l3_share()
        b_block = kc * ncp * nr * 4
        b_bytes = panels * nr * k * 4 * (1 if b_block <= share else math.ceil(rows / mc))
        a_fits = rows * k * 4 + b_block <= share
        a_bytes = rows * k * 4 * (1 if a_fits else jc_blocks)
        memory = (a_bytes + b_bytes) / hw.memory_bandwidth
        item = max(compute, memory) + overhead
        total = per_thread * item + (PARALLEL_OVERHEAD_S if threads > 1 else 0.0)
        terms = {
            "compute_us": compute * 1e6,
            "memory_us": memory * 1e6,
            "overhead_us": overhead * 1e6,
            "pack_a_us": pack * 1e6,
            "threads": threads,
            "items_per_thread": per_thread,
        }
        return total, terms

    def unpacked_a_factor(self, k: int, block_rows: int) -> float:
        """Slowdown of reading an MC-row block of A in place (row stride K) instead of packed.

        Rows a multiple of the L2 way span apart share few cache sets: past the associativity the block
        evicts itself (a power-of-two K is the usual case). Otherwise reading in place costs nothing extra
        that we could measure on the machines we have (hardware prefetchers follow MR row streams)."""
        way_span = max(4096, self.hw.l2_bytes // L2_WAYS)
        distinct = way_span // math.gcd(k * 4, way_span)  # distinct set groups the rows fall into
        if block_rows > distinct * L2_WAYS // 2:
            return 2.0
        return 1.0

    def candidates(self, m: int, n: int, k: int, batch: int = 1) -> list[Decomposition]:
        out = []
        for mr in self.mrs:
            packs = (False, True) if m > mr else (False,)
            for pm, pn in self.splits():
                for mc, ncp, kc in self.tiles(mr, m, k):
                    for pack_a in packs:
                        t, terms = self.estimate(m, n, k, mr, pm, pn, mc, ncp, kc, pack_a, batch)
                        out.append(Decomposition(mr, self.nr, pm, pn, mc, ncp, kc, pack_a, t, terms))
        out.sort(key=lambda d: (d.est_seconds, -d.mr, d.pm, d.kc, d.pack_a))
        return out

    def choose(self, m: int, n: int, k: int, batch: int = 1) -> Decomposition:
        if m <= 0 or n <= 0 or k <= 0 or batch <= 0:
            return Decomposition(
                self.mrs[0], self.nr, 1, 1, max(1, self.mrs[0]), 1, max(1, k), False, 0.0, {}
            )
        return self.candidates(m, n, k, batch)[0]


def pick_family(
    table: Sequence[MicroKernelResult], hw: CPUModel, count: int = 1, tolerance: float = 0.03
) -> tuple[int, tuple[int, ...]]:
    """NR (the packed layout) and the MR values to compile, from the measured table.

    The measurement runs on L1-resident panels, where most blocks that fit the register file reach about
    the same rate. Among the blocks within `tolerance` of the fastest, the one with the fewest loads per
    FMA wins ((NR/lanes + MR) loads feed MR * NR/lanes FMAs): it leaves the most load bandwidth for panels
    that come from L2 rather than L1. Then the `count` best MR at that NR. MR >= 2 only: one-row blocks are
    compiled anyway as tails."""
    rows = [r for r in table if r.mr >= 2] or list(table)
    if not rows:
        return hw.lanes(4) * 2, (4,)
    best = max(r.gflops for r in rows)
    close = [r for r in rows if r.gflops >= best * (1 - tolerance)]
    lanes = hw.lanes(4)

    def loads_per_fma(r: MicroKernelResult) -> float:
        vectors = max(1, r.nr // lanes)
        return (vectors + r.mr) / (vectors * r.mr)

    top = min(close, key=lambda r: (loads_per_fma(r), -r.gflops))
    same_nr = [r for r in close if r.nr == top.nr]
    ranked = sorted(same_nr, key=lambda r: (loads_per_fma(r), -r.gflops))
    return top.nr, tuple(r.mr for r in ranked[:count])
