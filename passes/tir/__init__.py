"""shapeflow.passes.tir: lowering passes over the loop IR, and the default lowering pipeline.

Each pass lives in its own file whose docstring says what it does and why; all are registered by name in
`shapeflow.passes.PASSES`. `lower(mod)` runs `lower_pipeline()` and returns what the code generators
consume (see pipeline.py).
"""

from shapeflow.passes.tir.convert_blocks_to_loops import ConvertBlocksToLoops
from shapeflow.passes.tir.flatten_buffer import FlattenBuffer
from shapeflow.passes.tir.loop_partition import LoopPartition
from shapeflow.passes.tir.lower_init_block import LowerInitBlock
from shapeflow.passes.tir.pipeline import lower, lower_pipeline
from shapeflow.passes.tir.remove_no_op import RemoveNoOp
from shapeflow.passes.tir.simplify import Simplify
from shapeflow.passes.tir.storage_rewrite import StorageRewrite
from shapeflow.passes.tir.unroll_loop import UnrollLoop
from shapeflow.passes.tir.vectorize_loop import CannotVectorize, VectorizeLoop

__all__ = [
    "ConvertBlocksToLoops",
    "FlattenBuffer",
    "LoopPartition",
    "LowerInitBlock",
    "RemoveNoOp",
    "Simplify",
    "StorageRewrite",
    "UnrollLoop",
    "VectorizeLoop",
    "CannotVectorize",
    "lower",
    "lower_pipeline",
]
