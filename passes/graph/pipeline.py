"""The graph-level pipeline: from a built (or imported) graph module to one the VM runs, kernels included.

`graph_pipeline(opt_level)` is one flat list; each step says why it is where it is. Level 0 keeps only what
correctness needs (normal form, legalization, the memory annotations the VM reads); level 1 adds the
simplifications and fusion; level 2 (the default) is the same list today and is where costlier graph
optimizations go.
"""

from __future__ import annotations

from shapeflow.passes.graph.canonicalize import CanonicalizeBindings
from shapeflow.passes.graph.conv_gemm import ConvToGemm
from shapeflow.passes.graph.cse import CommonSubexpressionElimination
from shapeflow.passes.graph.dead_code import DeadCodeElimination
from shapeflow.passes.graph.fold_constant import FoldConstant
from shapeflow.passes.graph.fuse_ops import FuseOps
from shapeflow.passes.graph.fuse_tir import FuseTIR
from shapeflow.passes.graph.memory import KillAfterLastUse, StaticPlanBlockMemory
from shapeflow.passes.graph.normalize import Normalize
from shapeflow.passes.graph.op_pattern import AnnotateOpPattern, LegalizeOps
from shapeflow.passes.infra import Pass, Sequential


def graph_pipeline(opt_level: int = 2) -> Sequential:
    """The graph passes for `opt_level`, in order."""
    optimize = opt_level >= 1
    steps: list[Pass | None] = [
        # Normal form first: every later pass assumes bound calls and filled-in types.
        Normalize(),
        # Drop the aliases and no-op match_casts builders and importers leave, so values have one name.
        CanonicalizeBindings(),
        # Fold constants while calls are still ops: the numpy reference evaluates them directly.
        FoldConstant() if optimize else None,
        # conv2d as im2col + linear (a GEMM for SplitGemm), channels-last between convs; after folding, so
        # bias / batch-norm terms are Constants it can relayout, and before CSE, which shares its relayouts.
        ConvToGemm() if optimize else None,
        # The identity transposes it cancels are left as aliases: resolve them.
        CanonicalizeBindings() if optimize else None,
        # Share repeated pure calls before they become separate kernels.
        CommonSubexpressionElimination() if optimize else None,
        # Remove what folding and CSE left unused, so it is neither legalized nor fused.
        DeadCodeElimination(),
        # Ops become call_tir of PrimFuncs (equal kernels shared); everything below works on kernels.
        LegalizeOps(),
        # Label each kernel elementwise / broadcast / injective / reduction / ... for the fuser.
        AnnotateOpPattern(),
        # Group kernels along the dataflow graph (post-dominators) into Primitive sub-functions.
        FuseOps() if optimize else None,
        # Merge each group into one kernel with intermediates as local buffers.
        FuseTIR() if optimize else None,
        # Drop the kernels and sub-functions fusion replaced.
        DeadCodeElimination(),
        # Plan storage last: it needs the final bindings, whose tensors it assigns to reusable tokens.
        StaticPlanBlockMemory(),
        # Free points come from the same final liveness, and name the plan's storage tokens.
        KillAfterLastUse(),
    ]
    return Sequential([s for s in steps if s is not None], name=f"graph-O{opt_level}")
