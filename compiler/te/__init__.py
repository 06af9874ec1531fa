"""shapeflow.te: the tensor-expression DSL, with TVM's names.

Describe tensors as placeholders and element-wise computes, then turn them into a loop-level PrimFunc:

    from shapeflow import te
    n = te.var("n")
    A = te.placeholder((n, 1024), "float32", name="A")
    k = te.reduce_axis((0, 1024), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    func = te.create_prim_func([A, B])          # a TensorIR PrimFunc with a block "B"

Reductions (`sum`, `prod`, `max`, `min`, `comm_reducer`) may only be the whole body of a compute, as in TVM.
`te.max(a, b)` / `te.min(a, b)` with two expressions are binary (also `te.maximum` / `te.minimum`).
"""

from shapeflow.te.create import create_prim_func
from shapeflow.te.ops import (
    MATH_FUNCTIONS,
    abs,
    all,
    any,
    cast,
    ceil,
    const,
    cos,
    erf,
    exp,
    exp2,
    floor,
    floordiv,
    floormod,
    fma,
    if_then_else,
    isinf,
    isnan,
    log,
    log1p,
    log2,
    max_value,
    min_value,
    pow,
    power,
    round,
    rsqrt,
    sigmoid,
    sin,
    sqrt,
    tanh,
    trunc,
    truncdiv,
    truncmod,
)
from shapeflow.te.reduce import CommReducer, comm_reducer, max, maximum, min, minimum, prod, reduce_axis, sum
from shapeflow.te.tensor import (
    ComputeOp,
    Operation,
    PlaceholderOp,
    Reduce,
    ReduceAxis,
    Tensor,
    TensorLoad,
    compute,
    placeholder,
    size_var,
    var,
)

__all__ = [
    "create_prim_func",
    "MATH_FUNCTIONS",
    "abs",
    "all",
    "any",
    "cast",
    "ceil",
    "const",
    "cos",
    "erf",
    "exp",
    "exp2",
    "floor",
    "floordiv",
    "floormod",
    "fma",
    "if_then_else",
    "isinf",
    "isnan",
    "log",
    "log1p",
    "log2",
    "max_value",
    "min_value",
    "pow",
    "power",
    "round",
    "rsqrt",
    "sigmoid",
    "sin",
    "sqrt",
    "tanh",
    "trunc",
    "truncdiv",
    "truncmod",
    "CommReducer",
    "comm_reducer",
    "max",
    "maximum",
    "min",
    "minimum",
    "prod",
    "reduce_axis",
    "sum",
    "ComputeOp",
    "Operation",
    "PlaceholderOp",
    "Reduce",
    "ReduceAxis",
    "Tensor",
    "TensorLoad",
    "compute",
    "placeholder",
    "size_var",
    "var",
]
