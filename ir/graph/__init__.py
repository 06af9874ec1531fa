"""The graph IR (Relax-like): functions over tensors whose types carry symbolic shapes, living in the same
IRModule as the PrimFuncs they call.

- `types`: TensorType, ShapeType, TupleType, PrimType, ObjectType, FuncType
- `expr`: variables, constants, tuples, calls (of ops, module functions, `call_tir`, `call_dps_library`),
  If, SeqExpr of binding and dataflow blocks, VarBinding / MatchCast, GraphFunction
- `ops`: the op registry (each op declared once: attributes, type inference, numpy reference) and `op`,
  the functions that build calls (`op.add(x, y)`)
- `builder.BlockBuilder`, `interpreter.run` (the numpy reference meaning), `verify.verify` (well-formedness)
"""

from shapeflow.ir.graph import op
from shapeflow.ir.graph.builder import BlockBuilder
from shapeflow.ir.graph.expr import (
    Binding,
    BindingBlock,
    Call,
    Constant,
    DataflowBlock,
    DataflowVar,
    Expr,
    ExternFunc,
    GlobalName,
    GraphFunction,
    GraphVar,
    If,
    MatchCast,
    Op,
    PrimValue,
    SeqExpr,
    ShapeExpr,
    Tuple,
    TupleGetItem,
    VarBinding,
    const,
)
from shapeflow.ir.graph.infer import join, type_mismatch, type_of
from shapeflow.ir.graph.interpreter import run
from shapeflow.ir.graph.ops import get_op, list_ops, register_library_function, register_op
from shapeflow.ir.graph.types import (
    FuncType,
    ObjectType,
    PrimType,
    ShapeType,
    TensorType,
    TupleType,
    Type,
    tensor,
)
from shapeflow.ir.graph.verify import verify

__all__ = [
    "op",
    "BlockBuilder",
    "Binding",
    "BindingBlock",
    "Call",
    "Constant",
    "DataflowBlock",
    "DataflowVar",
    "Expr",
    "ExternFunc",
    "GlobalName",
    "GraphFunction",
    "GraphVar",
    "If",
    "MatchCast",
    "Op",
    "PrimValue",
    "SeqExpr",
    "ShapeExpr",
    "Tuple",
    "TupleGetItem",
    "VarBinding",
    "const",
    "join",
    "type_mismatch",
    "type_of",
    "run",
    "get_op",
    "list_ops",
    "register_library_function",
    "register_op",
    "FuncType",
    "ObjectType",
    "PrimType",
    "ShapeType",
    "TensorType",
    "TupleType",
    "Type",
    "tensor",
    "verify",
]
