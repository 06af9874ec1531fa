"""The state of one ONNX import: graph values by ONNX tensor name, values known at import time, and the
BlockBuilder the converters emit into.

A tensor's value is either a graph expression (emitted binding, parameter, constant) or `known`: a numpy
array computed at import time. Known arrays are numeric (initializers, Constant nodes, folded arithmetic on
them) or of dtype object holding int64 PrimExprs (the result of `Shape` on a tensor with symbolic dims and
of shape arithmetic on it). A known value becomes a graph Constant only when some converter needs it as a
run-time tensor; Reshape, Expand and friends read it as a target shape instead.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import TensorProto

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.frontend.onnx.lowp import STORAGE as LOWP_STORAGE
from shapeflow.frontend.onnx.lowp import TYPES as LOWP_TYPES
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.builder import BlockBuilder
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops.registry import get_op_def
from shapeflow.ir.graph.shape import as_int, simplify
from shapeflow.ir.graph.types import TensorType

# ONNX element types shapeflow runs; every other one is refused at import time by name.
ONNX_DTYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.UINT8: "uint8",
    TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
}


def onnx_dtype(elem_type: int, where: str, storage: bool = False) -> DataType:
    """The shapeflow dtype of an ONNX element type; UnsupportedError naming the dtype otherwise. With
    `storage`, a low-precision type (float8, float4, int4, int2: lowp.py) gives the dtype of its bits."""
    if storage and elem_type in LOWP_TYPES:
        return DataType(LOWP_STORAGE)
    try:
        return DataType(ONNX_DTYPES[elem_type])
    except KeyError:
        name = (
            TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        )
        raise UnsupportedError(f"{where}: ONNX dtype {name} is not supported") from None


def safe_name(name: str) -> str:
    text = re.sub(r"\W", "_", name)
    return text if text and not text[0].isdigit() else f"v_{text}"


class Node:
    """A view of one NodeProto: inputs ("" for an omitted optional input), attributes by name (reads are
    recorded, so that an attribute no converter looked at is refused rather than silently ignored)."""

    def __init__(self, proto: onnx.NodeProto, version: int):
        self.proto = proto
        self.op_type = proto.op_type
        self.version = version
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self._attrs = {a.name: a for a in proto.attribute}
        self.read: set[str] = set()

    def input(self, i: int) -> str:
        """Input `i`, or "" when it is omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def attr(self, name: str, default=None):
        self.read.add(name)
        proto = self._attrs.get(name)
        if proto is None:
            return default
        if proto.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedError(f"ONNX op '{self.op_type}': subgraph attribute {name!r} is not supported")
        value = onnx.helper.get_attribute_value(proto)
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [v.decode() for v in value]
        if isinstance(value, list):
            return list(value)
        return value

    def unread_attrs(self) -> list[str]:
        return sorted(set(self._attrs) - self.read)

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"ONNX op '{self.op_type}' (opset {self.version}): {what}")


def _is_int_expr(v) -> bool:
    return isinstance(v, (int, np.integer)) or (isinstance(v, E.PrimExpr) and v.dtype.is_integer)


def normalize_known(array: np.ndarray) -> np.ndarray:
    """Object arrays simplified element-wise; all-constant ones become int64 arrays."""
    if array.dtype != object:
        return array
    out = np.empty(array.shape, dtype=object)
    ints = True
    for idx, v in np.ndenumerate(array):
        if not _is_int_expr(v):
            raise UnsupportedError(f"a shape value {v!r} is not an integer expression")
        value = simplify(E.convert(int(v) if isinstance(v, np.integer) else v, "int64"))
        out[idx] = value
        ints = ints and as_int(value) is not None
    if ints:
        return np.array([as_int(v) for v in out.flat], dtype=np.int64).reshape(array.shape)
    return out


class Context:
    """What converters read and write (see the module docstring)."""

    def __init__(self, bb: BlockBuilder, opset: int):
        self.bb = bb
        self.opset = opset
        self.values: dict[str, G.Expr] = {}
        self.known: dict[str, np.ndarray] = {}
        self.lowp: dict = {}  # ONNX tensor name -> the low-precision type its uint8 bits hold (lowp.py)
        self._counter = 0

    # -- reading values ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.values or name in self.known

    def expr(self, name: str) -> G.Expr:
        """Tensor `name` as a graph expression (a known value becomes a constant on first use)."""
        if name in self.values:
            return self.values[name]
        if name in self.known:
            value = self.materialize(self.known[name])
            self.values[name] = value
            return value
        raise VerifyError(f"ONNX tensor {name!r} is used before it is defined")

    def materialize(self, array: np.ndarray) -> G.Expr:
        if array.dtype != object:
            return G.Constant.from_array(np.array(array, order="C"))
        # Symbolic shape values used as data: one arange(d, d + 1) per element, concatenated.
        parts = [op.arange(start=v, end=v + 1, step=1, dtype="int64") for v in array.flat]
        flat = self.emit(op.concat(parts, axis=0)) if len(parts) > 1 else self.emit(parts[0])
        return self.emit(op.reshape(flat, tuple(array.shape)))

    def known_value(self, name: str) -> np.ndarray | None:
        return self.known.get(name) if name else None

    def const(self, node: Node, index: int, what: str) -> np.ndarray | None:
        """Input `index` as a numeric array known at import time (None if omitted); UnsupportedError
        when it is computed at run time."""
        name = node.input(index)
        if not name:
            return None
        value = self.known.get(name)
        if value is None or value.dtype == object:
            raise _needs_value(node, name, f"input {what!r} must be a constant known at import time")
        return value

    def shape_arg(self, node: Node, index: int, what: str) -> list:
        """Input `index` as a list of ints and int64 PrimExprs (known at import time, maybe symbolic)."""
        name = node.input(index)
        value = self.known.get(name) if name else None
        if value is None:
            raise _needs_value(
                node, name, f"input {what!r} must be known at import time (computed at run time)"
            )
        return [int(v) if isinstance(v, (int, np.integer)) else v for v in value.reshape(-1).tolist()]

    def type(self, name: str) -> TensorType:
        if name in self.known and name not in self.values:
            array = self.known[name]
            dtype = "int64" if array.dtype == object else DataType(str(array.dtype))
            return TensorType(array.shape, dtype)
        t = type_of(self.expr(name))
        if not isinstance(t, TensorType):
            raise UnsupportedError(f"ONNX tensor {name!r} is not a tensor")
        return t

    def shape(self, name: str) -> tuple:
        t = self.type(name)
        if t.shape is None:
            raise UnsupportedError(f"ONNX tensor {name!r} has a shape unknown at import time")
        return t.shape

    def rank(self, name: str) -> int:
        return len(self.shape(name))

    def dtype(self, name: str) -> DataType:
        return self.type(name).dtype

    # -- writing values -----------------------------------------------------------------------------
    def emit(self, expr: G.Expr, name: str | None = None) -> G.Expr:
        if not isinstance(expr, (G.Call, G.Tuple, G.TupleGetItem)):
            return expr
        if name is not None:
            self._counter += 1
            name = f"{safe_name(name)}_{self._counter}"
        return self.bb.emit(expr, name)

    def fold_or_emit(self, expr: G.Expr) -> G.Expr:
        """`expr` as a constant when it folds at import time, else bound to a variable."""
        folded = fold_constant(expr)
        return G.Constant.from_array(np.array(folded, order="C")) if folded is not None else self.emit(expr)

    def set(self, name: str, value) -> None:
        if not name:
            return
        if isinstance(value, np.ndarray | np.generic):
            self.known[name] = normalize_known(np.asarray(value))
            return
        folded = fold_constant(value)
        if folded is not None:
            self.known[name] = folded
            return
        self.values[name] = self.emit(value, name)


def _needs_value(node: Node, tensor: str, message: str) -> UnsupportedError:
    """The refusal of a run-time tensor where a value is needed now; `.tensor` names the ONNX tensor, so
    that a caller may supply it with from_onnx(..., constants={name: value}) if it is a graph input."""
    error = node.unsupported(message)
    error.tensor = tensor
    return error


def scalar(value, dtype) -> G.Constant:
    """A rank-0 constant of `dtype`."""
    return G.Constant.from_array(np.array(value, dtype=DataType(dtype).to_numpy()))


def fold_constant(expr: G.Expr) -> np.ndarray | None:
    """The value of a tree of op calls over constants, by the ops' numpy references (None if any leaf is
    not a constant or an attribute is symbolic)."""
    if isinstance(expr, G.Constant):
        return np.array(expr.array)
    if not isinstance(expr, G.Call) or not isinstance(expr.op, G.Op):
        return None
    attrs = {}
    for key, value in expr.attrs.items():
        plain = _plain_attr(value)
        if plain is _SYMBOLIC:
            return None
        attrs[key] = plain
    op_def = get_op_def(expr.op)
    if op_def.reference is None:
        return None
    args = []
    for a in expr.args:
        value = fold_constant(a)
        if value is None:
            return None
        args.append(value)
    with np.errstate(all="ignore"):
        out = op_def.reference(*args, **attrs)
    return np.asarray(out) if isinstance(out, np.ndarray | np.generic) else None


_SYMBOLIC = object()


def _plain_attr(value):
    """An attribute with constant PrimExprs turned into Python numbers; _SYMBOLIC if it has a Var."""
    if isinstance(value, E.PrimExpr):
        v = as_int(value) if value.dtype.is_integer else None
        return _SYMBOLIC if v is None else v
    if isinstance(value, tuple) and any(isinstance(v, E.PrimExpr) for v in value):
        out = tuple(_plain_attr(v) for v in value)
        return _SYMBOLIC if any(v is _SYMBOLIC for v in out) else out
    return value
