"""shapeflow.ir: symbolic arithmetic (`arith`), the loop IR (`tir`), later the graph IR (`graph`), the text
format (`parse`, `IRModule.script`), structural equality, verifiers and reference interpreters."""

import sys

from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import *  # noqa: F403
from shapeflow.ir.expr import __all__ as _expr_all
from shapeflow.ir.module import IRModule
from shapeflow.ir.node import Node
from shapeflow.ir.structural import assert_structural_equal, structural_equal, structural_hash
from shapeflow.ir import tir
from shapeflow.ir.text import parse

# IR trees are walked recursively; deep expression chains from generated code need more than the default.
if sys.getrecursionlimit() < 20000:
    sys.setrecursionlimit(20000)

__all__ = [
    "DataType", "IRModule", "Node", "assert_structural_equal", "structural_equal", "structural_hash", "tir",
    "parse",
    *_expr_all,
]
