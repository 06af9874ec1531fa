"""shapeflow.passes.schedule: TensorIR-style schedule primitives on the block IR, usable directly.

    from shapeflow.passes.schedule import Schedule
    sch = Schedule(func)
    b = sch.get_block("C"); i, j = sch.get_loops(b)
    io, ii = sch.split(i, [None, 4]); sch.parallel(io); sch.vectorize(j)
    sch.mod  # the scheduled IRModule; sch.trace lists the applied primitives

One module per family of primitives: `loops` (get_block, get_loops, get_child_blocks, split, fuse, reorder,
parallel, vectorize, unroll, bind), `compute_location` (compute_at, reverse_compute_at, compute_inline,
reverse_compute_inline), `caching` (cache_read, cache_write), `reduction` (decompose_reduction, rfactor),
`layout` (storage_align, transform_layout, pad). Each primitive checks legality and raises
`shapeflow.ScheduleError` whose `rule` names what would have been violated.
"""

from shapeflow.passes.schedule import caching, compute_location, layout, loops, reduction  # noqa: F401  (registers the primitives)
from shapeflow.passes.schedule.state import PRIMITIVES, BlockRV, LoopRV, Schedule

__all__ = ["PRIMITIVES", "BlockRV", "LoopRV", "Schedule"]
