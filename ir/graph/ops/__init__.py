"""Graph operators: the registry and one small module per op family. Importing this package declares
every op (each family registers its ops when imported)."""

from shapeflow.ir.graph.ops import (  # noqa: F401
    attention,
    binary,
    bitcast,
    bitwise,
    create,
    cumulative,
    dps,
    index,
    linalg,
    manipulate,
    nn,
    norm,
    pool_indices,
    reduce,
    resize,
    roi,
    sampling,
    scatter,
    reindex,
    slice,
    spectral,
    trig,
    unary,
)
from shapeflow.ir.graph.ops.dps import get_library_function, register_library_function
from shapeflow.ir.graph.ops.registry import (
    REQUIRED,
    Attr,
    CallInfo,
    OpDef,
    get_op,
    get_op_def,
    infer_call_type,
    is_registered,
    list_ops,
    make_call,
    register_op,
)

__all__ = [
    "REQUIRED",
    "Attr",
    "CallInfo",
    "OpDef",
    "get_op",
    "get_op_def",
    "infer_call_type",
    "is_registered",
    "list_ops",
    "make_call",
    "register_op",
    "get_library_function",
    "register_library_function",
]
