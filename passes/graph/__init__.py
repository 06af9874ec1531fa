"""Graph-level passes (the Relax-style level): normal form, simplification, legalization to kernels, fusion,
memory planning. Importing this package registers each pass by name in `shapeflow.passes.PASSES`;
`graph_pipeline(opt_level)` is the default order.
"""

from shapeflow.passes.graph.canonicalize import CanonicalizeBindings
from shapeflow.passes.graph.common import GraphFunctionPass
from shapeflow.passes.graph.cse import CommonSubexpressionElimination
from shapeflow.passes.graph.dead_code import DeadCodeElimination
from shapeflow.passes.graph.fold_constant import FoldConstant
from shapeflow.passes.graph.fuse_ops import FuseOps
from shapeflow.passes.graph.fuse_tir import FuseTIR
from shapeflow.passes.graph.memory import (
    KillAfterLastUse,
    StaticPlanBlockMemory,
    memory_plan,
    planned_bytes,
)
from shapeflow.passes.graph.normalize import Normalize
from shapeflow.passes.graph.op_pattern import AnnotateOpPattern, LegalizeOps, analyze_op_pattern
from shapeflow.passes.graph.pipeline import graph_pipeline

__all__ = [
    "AnnotateOpPattern",
    "CanonicalizeBindings",
    "CommonSubexpressionElimination",
    "DeadCodeElimination",
    "FoldConstant",
    "FuseOps",
    "FuseTIR",
    "GraphFunctionPass",
    "KillAfterLastUse",
    "LegalizeOps",
    "Normalize",
    "StaticPlanBlockMemory",
    "analyze_op_pattern",
    "graph_pipeline",
    "memory_plan",
    "planned_bytes",
]
