"""The default lowering pipeline: from block IR to what the code generators consume.

The output of `lower` has no Block/BlockRealize, only 1-D buffer accesses, loops that are serial, parallel,
unroll or thread-bound (vectorized loops are vector IR or serial loops), and the statements Allocate,
DeclBuffer, LetStmt, IfThenElse, AssertStmt, SeqStmt, BufferStore, Evaluate.
"""

from __future__ import annotations

from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.passes.infra import Pass, PassContext, Sequential
from shapeflow.passes.tir.convert_blocks_to_loops import ConvertBlocksToLoops
from shapeflow.passes.tir.flatten_buffer import FlattenBuffer
from shapeflow.passes.tir.loop_partition import LoopPartition
from shapeflow.passes.tir.lower_init_block import LowerInitBlock
from shapeflow.passes.tir.remove_no_op import RemoveNoOp
from shapeflow.passes.tir.simplify import Simplify
from shapeflow.passes.tir.storage_rewrite import StorageRewrite
from shapeflow.passes.tir.unroll_loop import UnrollLoop
from shapeflow.passes.tir.vectorize_loop import VectorizeLoop


def lower_pipeline(opt_level: int = 2) -> Sequential:
    """The lowering passes for `opt_level` (0: only what correctness needs; 2: the optimizing steps too)."""
    optimize = opt_level >= 1
    steps: list[Pass | None] = [
        # Init blocks first: the "first reduction step" condition needs the block's iteration variables.
        LowerInitBlock(),
        # Blocks go next; every later pass works on plain loops and sees the predicates as ifs.
        ConvertBlocksToLoops(),
        # Flatten before simplifying, so the address arithmetic is what gets simplified.
        FlattenBuffer(),
        # Fold the substituted bindings and flat indices; decide guards the loop ranges already imply.
        Simplify() if optimize else None,
        # Split symbolic tails off loops once guards are in simplest form (the partitioner reads them).
        LoopPartition() if opt_level >= 2 else None,
        # Clean up the split points and the guards that partitioning made constant.
        Simplify() if opt_level >= 2 else None,
        # Vectorize after partitioning: a main loop free of guards vectorizes; guarded tails go serial.
        VectorizeLoop(enable=optimize),
        # Unroll after vectorizing, so an unrolled loop copies vector code rather than scalar code.
        UnrollLoop() if optimize else None,
        # Fold the constants that unrolling substituted and the Ramp bases vectorizing built.
        Simplify() if optimize else None,
        # Remove what the previous steps emptied (dead ifs, no-op evaluations, unused allocations).
        RemoveNoOp(),
        # Share storage last: it needs the final, flat allocations and their final uses.
        StorageRewrite() if opt_level >= 2 else None,
    ]
    return Sequential([s for s in steps if s is not None], name=f"lower-O{opt_level}")


def lower(mod_or_func, opt_level: int | None = None) -> IRModule:
    """Lower a PrimFunc or IRModule with the default pipeline (opt_level: the current PassContext's)."""
    ctx = PassContext.current()
    level = ctx.opt_level if opt_level is None else opt_level
    if isinstance(mod_or_func, PrimFunc):
        name = mod_or_func.attrs.get("global_symbol")
        name = name if isinstance(name, str) and name.isidentifier() else "main"
        mod_or_func = IRModule({name: mod_or_func})
    return lower_pipeline(level)(mod_or_func, ctx)
