"""Default schedule rule 2: parallel + vectorized loops for the kernels compile() builds.

Applied by compile() to every PrimFunc by its "op_pattern" (passes/graph/op_pattern.py), with the
primitives of passes/schedule:

- elementwise / broadcast / injective (and fused epilogues, which are chains of those): intermediate blocks
  writing local buffers are inlined into their consumers (a fused chain becomes one pass over memory), then
  each remaining block's innermost loop is split by the vector width (a predicate masks the tail) and its
  inner part vectorized, and the outer spatial loops run in parallel (fused into one loop when the
  schedule's analysis proves the fused iterations independent, else the biggest single loop that starts
  at most MAX_REGIONS parallel regions per call, judged by the model's declared dim bounds);
- reduction / opaque (softmax, layer_norm, rms_norm, sums): row-parallel, i.e. the leading spatial loops
  (the rows) run in parallel as above; reductions stay sequential inside a row, so results equal the
  unscheduled kernel's bit for bit. A kernel of several blocks over the same rows (softmax: max, sum of
  exp, normalize; layer_norm: five) first has every earlier block moved into the last block's innermost
  row loop (compute_at, consumers first), so one parallel loop runs the whole row: one parallel region
  per call instead of one per block (and per outer row, where the rows could not be fused), and a row's
  statistics are computed while the row is in cache. Where that does not apply, each block is
  row-parallel on its own.

A single row loop is chosen (when fusing the rows is not proven safe) by the most iterations it is sure
to have (the lower bound of its extent, capped at `ENOUGH_ITERATIONS`), then by its largest extent, then
by the fewest parallel regions it starts: (12 heads, s) runs the 12 heads in parallel in one region
rather than s rows (perhaps 1) in 12 regions; (b, s) with both at least 1 keeps choosing s, the larger.

Kernels of small constant shape (fewer than `PARALLEL_MIN` elements) are not parallelized (a thread-pool
dispatch costs more than the work). A step that raises ScheduleError is undone and the kernel keeps what was
applied before it: a rule never fails the compile.
"""

from __future__ import annotations

import dataclasses
import math

from shapeflow.errors import ScheduleError
from shapeflow.ir.expr import IntImm, Var
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import IterType
from shapeflow.passes.infra import PassContext, PrimFuncPass, register_pass

PARALLEL_MIN = 1 << 14  # elements: a kernel of constant shape smaller than this stays on one thread
MAX_REGIONS = 16  # most parallel regions one kernel call may start (see _parallel_rows)
UNKNOWN_EXTENT = 16  # assumed upper bound of a symbolic extent without declared bounds
ENOUGH_ITERATIONS = 64  # iterations that keep any CPU's threads busy: more do not make a row loop better
SPATIAL_PATTERNS = ("elementwise", "broadcast", "injective")
ROW_PATTERNS = ("reduction", "opaque")


def _lanes() -> int:
    try:
        from shapeflow.passes.hierarchy import host_cpu_model  # noqa: PLC0415

        return max(1, host_cpu_model().lanes(4))
    except Exception:  # noqa: BLE001  (an undetectable CPU: a conservative width)
        return 4


def _try(sch, step) -> object:
    """Run `step(copy)` on a copy of `sch`; the copy when it succeeded, else `sch` unchanged."""
    trial = sch.copy()
    try:
        step(trial)
    except ScheduleError:
        return sch
    return trial


def _extent(sch, loop):
    for_, _ = sch.find_loop(loop)
    return for_.extent


def _upper(extent, bounds: dict) -> int:
    """An upper bound of a loop extent: constants as they are, symbolic dims from the declared bounds
    (by name), anything else assumed `UNKNOWN_EXTENT`."""
    if isinstance(extent, IntImm):
        return extent.value
    if isinstance(extent, Var) and extent.name in bounds:
        return int(bounds[extent.name][1])
    return UNKNOWN_EXTENT


def _lower(extent, bounds: dict) -> int:
    """A lower bound of a loop extent: a constant, a symbolic dim's declared lower bound, else 1."""
    if isinstance(extent, IntImm):
        return extent.value
    if isinstance(extent, Var) and extent.name in bounds:
        return max(1, int(bounds[extent.name][0]))
    return 1


def _block(sch, rv):
    realize, _ = sch.find_block(rv)
    return realize.block


def _parallel_rows(sch, block, rows: list, bounds: dict) -> object:
    """Parallelize the rows: the fused `rows` loops when the schedule's analysis proves the fused iterations
    independent (one parallel region per call), else the single row loop with the largest extent among
    those entered at most `MAX_REGIONS` times per call (each entry starts a parallel region, whose
    thread wake-up costs more than a small kernel's work)."""
    loops = sch.get_loops(block)
    extents = [_extent(sch, x) for x in loops]
    constant = all(isinstance(e, IntImm) for e in extents)
    if not rows or (constant and math.prod(e.value for e in extents) < PARALLEL_MIN):
        return sch

    def fused(s):
        s.parallel(s.fuse(*rows) if len(rows) > 1 else rows[0])

    trial = _try(sch, fused)
    if trial is not sch:
        return trial
    uppers = [_upper(e, bounds) for e in extents[: len(rows)]]
    lowers = [min(_lower(e, bounds), ENOUGH_ITERATIONS) for e in extents[: len(rows)]]
    candidates = [i for i in range(len(rows)) if math.prod(uppers[:i]) <= MAX_REGIONS and uppers[i] > 1]
    for i in sorted(candidates, key=lambda i: (-lowers[i], -uppers[i], math.prod(uppers[:i]), -i)):
        trial = _try(sch, lambda s, i=i: s.parallel(rows[i]))
        if trial is not sch:
            return trial
    return sch


def _spatial_rule(sch, block, lanes: int, bounds: dict) -> object:
    loops = sch.get_loops(block)
    if not loops or any(iv.iter_type != IterType.SPATIAL for iv in _block(sch, block).iter_vars):
        return sch

    def vector(s):
        extent = _extent(s, loops[-1])
        if isinstance(extent, IntImm) and extent.value < lanes:
            raise ScheduleError("narrower than a vector")
        _, inner = s.split(loops[-1], [None, lanes])
        s.vectorize(inner)

    sch = _try(sch, vector)
    rows = loops[:-1] if len(loops) > 1 else []
    return _parallel_rows(sch, block, rows, bounds)


def _row_count(sch, block) -> int:
    """How many leading loops of `block` are rows: its leading spatial iteration variables, but the last
    axis of an all-spatial block (a normalize step) stays inside the row."""
    iters = _block(sch, block).iter_vars
    rows = 0
    for iv in iters:
        if iv.iter_type != IterType.SPATIAL:
            break
        rows += 1
    if rows == len(iters):
        rows -= 1
    return min(rows, len(sch.get_loops(block)))


def _row_rule(sch, block, bounds: dict) -> object:
    loops = sch.get_loops(block)
    return _parallel_rows(sch, block, loops[: _row_count(sch, block)], bounds)


def _same_rows(sch, producer, row_extents: list) -> bool:
    """Whether `producer` iterates over the same leading rows (by domain extent) as the last block."""
    iters = _block(sch, producer).iter_vars
    if len(iters) < len(row_extents) or any(
        iv.iter_type != IterType.SPATIAL for iv in iters[: len(row_extents)]
    ):
        return False
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415

    return all(structural_equal(iv.dom.extent, e) for iv, e in zip(iters, row_extents))


def _reads_own_rows(sch, blocks: list, nrows: int) -> bool:
    """Whether every block reads what the earlier blocks write only at its own rows (the first `nrows`
    indices are its first `nrows` iteration variables): then moving the producers into the row loop
    computes each value once, not once per row that reads it."""
    from shapeflow.ir.expr import BufferLoad  # noqa: PLC0415
    from shapeflow.ir.functor import collect  # noqa: PLC0415

    written: set[int] = set()
    for rv in blocks:
        block = _block(sch, rv)
        own = [iv.var for iv in block.iter_vars[:nrows]]
        for load in collect(block.body, BufferLoad):
            if id(load.buffer) in written and any(a is not b for a, b in zip(load.indices[:nrows], own)):
                return False
        written.update(id(r.buffer) for r in block.writes)
    return True


def _one_region_rows(sch, blocks: list, bounds: dict) -> object:
    """Every block computed inside the last block's row loop, the rows parallel (module docstring); `sch`
    unchanged when a step does not apply or no row loop ends up parallel."""
    last = blocks[-1]
    loops = sch.get_loops(last)
    rows = loops[: _row_count(sch, last)]
    if len(blocks) < 2 or not rows:
        return sch
    row_extents = [_extent(sch, x) for x in rows]
    if not all(_same_rows(sch, b, row_extents) for b in blocks[:-1]):
        return sch
    if not _reads_own_rows(sch, blocks, len(rows)):
        return sch

    def gather(s):
        for producer in reversed(blocks[:-1]):  # consumers first, so each producer's readers are inside
            s.compute_at(producer, rows[-1])

    gathered = _try(sch, gather)
    if gathered is sch:
        return sch
    scheduled = _parallel_rows(gathered, last, rows, bounds)
    return sch if scheduled is gathered else scheduled


def apply_default_schedule(func: PrimFunc, lanes: int | None = None, bounds: dict | None = None) -> PrimFunc:
    """`func` scheduled by the rule of its "op_pattern" (module docstring); unchanged when none applies.
    `bounds` ({dim name: (lo, hi)}, the model's declared dims) bound symbolic loop extents."""
    from shapeflow.passes.schedule import Schedule  # noqa: PLC0415

    pattern = func.attrs.get("op_pattern")
    if pattern not in SPATIAL_PATTERNS + ROW_PATTERNS or func.attrs.get("default_schedule") is False:
        return func
    lanes = lanes or _lanes()
    bounds = {**(func.attrs.get("var_bounds") or {}), **(bounds or {})}
    try:
        sch = Schedule(func)
        blocks = sch.get_child_blocks(sch.get_block("root"))
    except ScheduleError:
        return func
    if pattern in SPATIAL_PATTERNS:
        for rv in blocks[:-1]:  # inline the chain's intermediates into their consumers
            sch = _try(sch, lambda s, rv=rv: s.compute_inline(rv))
        blocks = sch.get_child_blocks(sch.get_block("root"))
        for rv in blocks:
            sch = _spatial_rule(sch, rv, lanes, bounds)
    else:
        gathered = _one_region_rows(sch, blocks, bounds)
        if gathered is not sch:
            sch = gathered
        else:
            for rv in blocks:
                sch = _row_rule(sch, rv, bounds)
    if not sch.trace:
        return func
    return dataclasses.replace(sch.func, attrs={**func.attrs, **sch.func.attrs})


@register_pass
@dataclasses.dataclass(frozen=True)
class DefaultSchedule(PrimFuncPass):
    """Apply `apply_default_schedule` to every PrimFunc of the module."""

    name = "tir.default_schedule"

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        return apply_default_schedule(func)


def schedule_module(mod: IRModule) -> IRModule:
    """Every PrimFunc of `mod` through `apply_default_schedule` (other functions kept)."""
    return DefaultSchedule()(mod)
