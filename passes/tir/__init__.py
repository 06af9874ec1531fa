"""shapeflow.passes.tir: lowering passes over the loop IR, and the default lowering pipeline.

Each pass lives in its own file whose docstring says what it does and why; all are registered by name in
`shapeflow.passes.PASSES`. `lower(mod)` runs `lower_pipeline()` and returns what the code generators
consume: no blocks, 1-D buffer accesses, loops that are serial, parallel or unrolled, and vector IR (Ramp,
Broadcast) where vectorized loops could be vectorized.
"""

from shapeflow.passes.tir.convert_blocks_to_loops import ConvertBlocksToLoops
from shapeflow.passes.tir.flatten_buffer import FlattenBuffer
from shapeflow.passes.tir.lower_init_block import LowerInitBlock

__all__ = ["ConvertBlocksToLoops", "FlattenBuffer", "LowerInitBlock"]
