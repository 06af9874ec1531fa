"""The loop-level IR (TensorIR-like): buffers, statements, blocks and PrimFuncs."""

from shapeflow.ir.tir.buffer import SCOPES, Buffer, decl_buffer
from shapeflow.ir.tir.function import BaseFunc, PrimFunc
from shapeflow.ir.tir.interpreter import InterpreterError, interpret, run_module
from shapeflow.ir.tir.intrinsics import INTRINSICS, Intrinsic, call_intrinsic, get_intrinsic
from shapeflow.ir.tir.stmt import (
    Allocate,
    AssertStmt,
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    DeclBuffer,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    LetStmt,
    Range,
    SeqStmt,
    Stmt,
    is_no_op,
    no_op,
    seq,
)
from shapeflow.ir.tir.verify import verify, well_formed

__all__ = [
    "SCOPES", "Buffer", "decl_buffer", "BaseFunc", "PrimFunc", "INTRINSICS", "Intrinsic", "call_intrinsic",
    "get_intrinsic", "Allocate", "AssertStmt", "Block", "BlockRealize", "BufferRegion", "BufferStore",
    "DeclBuffer", "Evaluate", "For", "ForKind", "IfThenElse", "IterType", "IterVar", "LetStmt", "Range",
    "SeqStmt", "Stmt", "is_no_op", "no_op", "seq", "interpret", "run_module", "InterpreterError", "verify",
    "well_formed",
]
