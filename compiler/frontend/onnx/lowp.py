"""The ONNX low-precision element types (float8 E4M3FN/E4M3FNUZ/E5M2/E5M2FNUZ/E8M0, float4 E2M1,
int4/uint4/int2/uint2) as storage types of the ONNX frontend.

Why storage types and not IR dtypes: no op computes in them (ONNX itself only casts, quantizes and moves
them), so the IR carries their bit patterns as uint8, one element per byte as ml_dtypes stores them (4- and
2-bit values in the low bits), and the frontend remembers per ONNX tensor which type the bits are
(`Context.lowp`). Conversions are explicit graph code built here:

- decode: bits -> float32 by gathering from the type's 256-entry value table (exact: every value of these
  types is a float32);
- encode: float -> bits with round-to-nearest-even, by exact float arithmetic (scaling by powers of two
  only), so that the compiled kernels and the graph interpreter agree bit for bit with ml_dtypes and
  onnx.reference on every input, subnormals, ties, infinities and NaN included. The sign of a NaN input is
  not observable without a bitcast, so -NaN encodes like +NaN (both are NaN, except in float4, where
  ml_dtypes maps NaN to a zero of the opposite sign);
- int4/uint4/int2/uint2: Cast truncates toward zero and wraps (ml_dtypes, the reference), QuantizeLinear
  saturates.

Any other op that reads such a tensor is refused (`check_node`), so these bits are never computed on as
numbers. Data-movement ops pass them through and their outputs keep the type.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import onnx
from onnx import TensorProto

from shapeflow.errors import UnsupportedError
from shapeflow.ir.graph import expr as G
from shapeflow.ir.module import IRModule
from shapeflow.storage_dtypes import numpy_dtype

STORAGE = "uint8"


@dataclasses.dataclass(frozen=True, slots=True)
class LowpType:
    """One storage type. For floats: `mantissa` bits, the smallest and largest normal exponents, the
    largest finite magnitude code, the code of NaN, the magnitude code an overflow gives without saturation,
    and whether zero is unsigned (fnuz: -0 is the NaN code)."""

    onnx: int
    name: str  # the ml_dtypes name
    kind: str  # "float", "e8m0" or "int"
    bits: int
    signed: bool = True
    mantissa: int = 0
    emin: int = 0
    emax: int = 0
    max_code: int = 0
    nan_code: int = 0
    overflow_code: int = 0
    unsigned_zero: bool = False

    @property
    def onnx_name(self) -> str:
        return TensorProto.DataType.Name(self.onnx)

    @property
    def sign_bit(self) -> int:
        return 1 << (self.bits - 1)

    def table(self) -> np.ndarray:
        """float32 value of every byte (bits above the type's width ignored, as ml_dtypes reads them)."""
        return _table(self.name)

    def info(self):
        """(min, max) as integers of an int type."""
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1


@cache
def _table(name: str) -> np.ndarray:
    return np.arange(256, dtype=np.uint8).view(numpy_dtype(name)).astype(np.float32)


_FLOAT = {"kind": "float", "bits": 8}
TYPES: dict[int, LowpType] = {
    t.onnx: t
    for t in (
        LowpType(TensorProto.FLOAT8E4M3FN, "float8_e4m3fn", **_FLOAT, mantissa=3, emin=-6, emax=8,
                 max_code=0x7E, nan_code=0x7F, overflow_code=0x7F),
        LowpType(TensorProto.FLOAT8E4M3FNUZ, "float8_e4m3fnuz", **_FLOAT, mantissa=3, emin=-7, emax=7,
                 max_code=0x7F, nan_code=0x80, overflow_code=0x80, unsigned_zero=True),
        LowpType(TensorProto.FLOAT8E5M2, "float8_e5m2", **_FLOAT, mantissa=2, emin=-14, emax=15,
                 max_code=0x7B, nan_code=0x7E, overflow_code=0x7C),
        LowpType(TensorProto.FLOAT8E5M2FNUZ, "float8_e5m2fnuz", **_FLOAT, mantissa=2, emin=-15, emax=15,
                 max_code=0x7F, nan_code=0x80, overflow_code=0x80, unsigned_zero=True),
        # float4 has no NaN or infinity: ml_dtypes saturates overflow and maps NaN to -0.
        LowpType(TensorProto.FLOAT4E2M1, "float4_e2m1fn", "float", 4, mantissa=1, emin=0, emax=2,
                 max_code=0x7, nan_code=0x8, overflow_code=0x7),
        LowpType(TensorProto.FLOAT8E8M0, "float8_e8m0fnu", "e8m0", 8, signed=False, nan_code=0xFF),
        LowpType(TensorProto.INT4, "int4", "int", 4),
        LowpType(TensorProto.UINT4, "uint4", "int", 4, signed=False),
        LowpType(TensorProto.INT2, "int2", "int", 2),
        LowpType(TensorProto.UINT2, "uint2", "int", 2, signed=False),
    )
}  # fmt: skip

# Ops that only move elements: their outputs hold the same type as their data inputs (by position; None:
# every input). Pad is not one of them (its zero fill is a value, and E8M0 has no zero).
DATA_MOVEMENT: dict[str, tuple[int, ...] | None] = {
    "Identity": (0,),
    "Reshape": (0,),
    "Flatten": (0,),
    "Squeeze": (0,),
    "Unsqueeze": (0,),
    "Transpose": (0,),
    "Concat": None,
    "Slice": (0,),
    "Gather": (0,),
    "GatherElements": (0,),
    "Expand": (0,),
    "Tile": (0,),
    "Split": (0,),
    "DepthToSpace": (0,),
    "SpaceToDepth": (0,),
    "Where": (1, 2),
}
# Ops whose converters decode and encode these types themselves (convert_cast.py), with the input
# positions that may hold them.
CONVERSIONS: dict[str, tuple[int, ...]] = {
    "Cast": (0,),
    "CastLike": (0, 1),
    "QuantizeLinear": (2,),
    "DequantizeLinear": (0, 2),
}
# Ops that read only an input's shape.
SHAPE_ONLY = frozenset({"Shape", "Size"})


def lowp_type(elem_type: int) -> LowpType | None:
    """The storage type of an ONNX element type, None for an ordinary one."""
    return TYPES.get(elem_type)


def of(ctx, name: str) -> LowpType | None:
    """The storage type of ONNX tensor `name`, None when it holds ordinary numbers."""
    return ctx.lowp.get(name) if name else None


# -- the import hooks --------------------------------------------------------------------------------


def declare(ctx, graph: onnx.GraphProto) -> None:
    """Record the storage type of the graph inputs and initializers, and turn the initializers' ml_dtypes
    arrays (as onnx.numpy_helper reads them) into their bits."""
    for value in graph.input:
        if value.type.HasField("tensor_type"):
            t = lowp_type(value.type.tensor_type.elem_type)
            if t is not None:
                ctx.lowp[value.name] = t
    for init in graph.initializer:
        t = lowp_type(init.data_type)
        if t is None:
            continue
        ctx.lowp[init.name] = t
        array = ctx.known.get(init.name)
        if array is not None and array.dtype != np.dtype(STORAGE):
            ctx.known[init.name] = np.ascontiguousarray(array).view(STORAGE)


def check_node(ctx, proto: onnx.NodeProto) -> None:
    """Refuse `proto` when it would compute on a storage-typed tensor; mark the outputs of data movement
    with their input's type. Called before the node's converter runs."""
    for graph in _subgraphs(proto):
        found = _lowp_in_graph(graph, ctx.lowp)
        if found is not None:
            raise UnsupportedError(
                f"ONNX op '{proto.op_type}': dtype {found.onnx_name} inside a subgraph is not supported"
            )
    types = {name: ctx.lowp[name] for name in proto.input if name and name in ctx.lowp}
    if not types or proto.op_type in SHAPE_ONLY:
        return
    first = next(iter(types.values()))
    if proto.op_type in CONVERSIONS:
        if all(i in CONVERSIONS[proto.op_type] for i, n in enumerate(proto.input) if n in types):
            return
    if proto.op_type in DATA_MOVEMENT:
        positions = DATA_MOVEMENT[proto.op_type]
        data = [n for i, n in enumerate(proto.input) if n and (positions is None or i in positions)]
        others = [n for n in types if n not in data]
        if not others and all(types.get(n) is first for n in data):
            for name in proto.output:
                if name:
                    ctx.lowp[name] = first
            return
    raise UnsupportedError(
        f"ONNX op '{proto.op_type}': dtype {first.onnx_name} is not supported (stored as bit patterns: only "
        "Cast, CastLike, QuantizeLinear, DequantizeLinear and data movement take it)"
    )


def _subgraphs(proto: onnx.NodeProto) -> list[onnx.GraphProto]:
    return [g for a in proto.attribute for g in ([a.g] if a.HasField("g") else list(a.graphs))]


def _lowp_in_graph(graph: onnx.GraphProto, outer: dict) -> LowpType | None:
    """A storage type a subgraph reads from outside, declares, or casts or quantizes to (recursively), or
    None. Subgraphs are inlined under fresh names (convert_function.py), which would not carry the type."""
    values = list(graph.input) + list(graph.output) + list(graph.value_info)
    declared = [v.type.tensor_type.elem_type for v in values if v.type.HasField("tensor_type")]
    declared += [i.data_type for i in graph.initializer]
    for proto in graph.node:
        declared += [a.i for a in proto.attribute if a.name in ("to", "output_dtype")]
        declared += [outer[n].onnx for n in proto.input if n in outer]
        declared += [t.onnx for g in _subgraphs(proto) if (t := _lowp_in_graph(g, outer)) is not None]
    return next((TYPES[d] for d in declared if d in TYPES), None)


def annotate(mod: IRModule, ctx, graph: onnx.GraphProto) -> IRModule:
    """`mod` with the storage types of "main"'s parameters and results in its "storage_dtypes" attribute
    (what compile() turns into array views at the Executable's boundary). Checks each graph output's
    declared type against what was computed."""
    func = mod["main"]
    params = [v.name for v in graph.input if isinstance(ctx.values.get(v.name), G.GraphVar)]
    ret = []
    for value in graph.output:
        declared = lowp_type(value.type.tensor_type.elem_type) if value.type.HasField("tensor_type") else None
        computed = ctx.lowp.get(value.name)
        if (declared is not None or computed is not None) and computed is not declared:
            want = declared.onnx_name if declared is not None else "an ordinary dtype"
            have = computed.onnx_name if computed is not None else str(ctx.dtype(value.name))
            raise UnsupportedError(f"ONNX graph output {value.name!r} is declared {want}, computed as {have}")
        ret.append(computed.name if computed is not None else None)
    storage = {"params": [ctx.lowp[n].name if n in ctx.lowp else None for n in params], "ret": ret}
    if not any(storage["params"]) and not any(ret):
        return mod
    func = G.GraphFunction(func.params, func.body, func.ret_type, {**func.attrs, "storage_dtypes": storage})
    return IRModule({**dict(mod.items()), "main": func}, mod.attrs)
