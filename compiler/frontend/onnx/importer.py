"""`from_onnx`: an ONNX model to a graph IRModule with one function, "main".

    mod = from_onnx("model.onnx", dims={"seq": (1, 2048)})

- opsets 13 and newer of the default domain; an older model is taken as it is when no op's schema changed
  between its opset and 13, else (from opset 11 on) it goes through onnx's version converter first, and
  is refused otherwise (UnsupportedError naming the op and both schema versions);
- `dim_param` dims become int64 Vars (one Var per name), unnamed dynamic dims fresh Vars; `dims` bounds
  land in the function's "var_bounds";
- initializers and Constant nodes are values known at import time: shape subgraphs over them and over
  `Shape` of symbolic tensors fold into symbolic target shapes (see context.py);
- every op, attribute and dtype is checked here, so that a model shapeflow cannot run is refused now and
  never at run time.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import onnx
import onnx.inliner
import onnx.version_converter
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from shapeflow.errors import CompileError, Error, ParseError, UnsupportedError, VerifyError
from shapeflow.frontend.onnx import (  # noqa: F401 - importing a family registers its converters
    convert_attention,
    convert_cast,
    convert_elementwise,
    convert_function,
    convert_index,
    convert_misc,
    convert_nn,
    convert_rearrange,
    convert_reduce,
    convert_resize,
    convert_rnn,
    convert_shape,
    convert_signal,
    lowp,
)
from shapeflow.frontend.onnx.context import ONNX_DTYPES, Context, Node, onnx_dtype, safe_name
from shapeflow.frontend.onnx.registry import CONVERTERS, Known, lookup
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.builder import BlockBuilder
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType
from shapeflow.ir.module import IRModule

MIN_OPSET = 13
CONVERTIBLE_OPSET = 11  # from here on onnx's version converter is trusted to reach opset 13


def load_model(model) -> onnx.ModelProto:
    """A ModelProto from a proto, serialized bytes or a path (external data resolved next to the file)."""
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, bytes):
            return onnx.load_from_string(model)
        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.exists(path):
                raise ParseError(f"ONNX model file not found: {path}", source=path)
            return onnx.load(path)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ParseError(f"cannot read the ONNX model: {exc}") from None
    raise UnsupportedError(f"from_onnx takes a ModelProto, bytes or a path, got {type(model).__name__}")


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise UnsupportedError("the model imports no opset of the default ONNX domain")


def checked_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` validated by onnx's checker, at an opset the converters read (see `_older_opset`), with
    local functions inlined; ParseError / UnsupportedError otherwise."""
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        raise ParseError(f"invalid ONNX model: {first}") from None
    opset = default_opset(model)
    if opset < MIN_OPSET:
        model = _older_opset(model, opset)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return model


def _older_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """A model of opset < 13 as it is when every node's schema at that opset is one a converter implements
    (see `changed_schemas`); else, from opset 11 on, converted to opset 13 by onnx's version converter;
    else refused naming the first op whose schema differs and both versions."""
    changed = changed_schemas(model.graph, opset)
    if not changed:
        return model
    op_type, old, new = changed[0]
    now = f"version {new}" if new is not None else "no version (the op was removed)"
    why = (
        f"ONNX opset {opset} is not supported: op '{op_type}' is version {old} of its schema at opset "
        f"{opset} and {now} at opset {MIN_OPSET}, which shapeflow implements"
    )
    if opset < CONVERTIBLE_OPSET:
        raise UnsupportedError(f"{why} (opset {MIN_OPSET} or newer)")
    try:
        return onnx.version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # noqa: BLE001 - the converter raises assorted errors
        raise UnsupportedError(
            f"{why}, and converting the model to opset {MIN_OPSET} failed: {exc}"
        ) from None


def changed_schemas(graph: onnx.GraphProto, opset: int) -> list[tuple[str, int, int | None]]:
    """(op, version at `opset`, version at opset 13 or None) for each default-domain op of `graph` (and of
    its subgraphs) whose schema at `opset` is neither the one in effect at opset 13 (the definition did not
    change since, so the opset-13 converter reads it the same way) nor one a converter is registered for
    explicitly (`since` equal to that version and above 1; `since=1` is the table's default)."""
    out = []
    seen = set()
    for node in _all_nodes(graph):
        if node.domain not in ("", "ai.onnx") or node.op_type in seen:
            continue
        seen.add(node.op_type)
        try:
            old = onnx.defs.get_schema(node.op_type, opset, "").since_version
        except onnx.defs.SchemaError:
            continue  # not an operator of this opset: _convert_node refuses it by name
        try:
            new = onnx.defs.get_schema(node.op_type, MIN_OPSET, "").since_version
        except onnx.defs.SchemaError:
            new = None
        explicit = any(e.since == old > 1 for e in CONVERTERS.get(node.op_type, ()))
        if old != new and not explicit:
            out.append((node.op_type, old, new))
    return out


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _all_nodes(sub)


def _input_type(value: onnx.ValueInfoProto, symbols: dict[str, Var]) -> TensorType:
    where = f"input {value.name!r}"
    if not value.type.HasField("tensor_type"):
        raise UnsupportedError(f"{where}: only tensor inputs are supported")
    tt = value.type.tensor_type
    dtype = onnx_dtype(tt.elem_type, where, storage=True)
    if not tt.HasField("shape"):
        raise UnsupportedError(f"{where}: inputs of unknown rank are not supported")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        else:
            name = d.dim_param if d.HasField("dim_param") else f"{safe_name(value.name)}_dim{i}"
            dims.append(symbols.setdefault(name, Var(name, "int64")))
    return TensorType(tuple(dims), dtype)


def _constant_input(value: onnx.ValueInfoProto, data, symbols: dict, label: str) -> np.ndarray:
    """A graph input's fixed value as an array of its declared dtype, checked against its declared dtype
    (a list or an array of another dtype is cast when no value changes), rank and static dims."""
    declared = _input_type(value, symbols)
    want = declared.dtype.to_numpy()
    given = np.asarray(data)
    array = given
    if given.dtype != want:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cast = given.astype(want) if given.dtype.kind in "biuf" else None
        rounding = given.dtype.kind == "f" and want.kind == "f"  # a float of another width: rounded
        fits = cast is not None and (given.dtype.kind != "f" or want.kind == "f")
        if not fits or not (rounding or np.array_equal(cast.astype(given.dtype), given)):
            raise UnsupportedError(
                f"{label}[{value.name!r}]: a {given.dtype} value does not fit its dtype {declared.dtype}"
            )
        array = cast
    static = [as_int(d) for d in declared.shape]
    if array.ndim != len(static) or any(d is not None and d != n for d, n in zip(static, array.shape)):
        raise UnsupportedError(
            f"{label}[{value.name!r}] has shape {list(array.shape)}, the input is {declared.dtype}"
            f"({', '.join('?' if d is None else str(d) for d in static)})"
        )
    return np.array(array)


# Ops that read only the shape of their input: a value needed at import time never depends on that
# input's values through them.
SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})


def value_inputs(graph: onnx.GraphProto, tensor: str, fixed=()) -> list[str]:
    """The graph inputs whose values `tensor` (a value needed at import time) is computed from, in graph
    order: the tensor itself when it is a graph input (of any dtype: Resize scales are floats), else the
    inputs it is computed from (not through Shape/Size) that can be shape arithmetic: integer or bool
    ones and scalars. A tensor of a subgraph or function body ("\0"-prefixed) is not traced: every such
    input of rank <= 1 is named. Inputs in `fixed` are left out; [] when none is left."""
    if not tensor.startswith("\0"):
        tensor = tensor.split("\0", 1)[0]  # "x\0float32": the float32 copy of a 16-bit x (see _upcast)
    inits = {i.name for i in graph.initializer}
    inputs = {v.name: v for v in graph.input if v.name not in inits}
    if tensor in inputs:
        return [] if tensor in fixed else [tensor]
    producer = {out: node for node in graph.node for out in node.output if out}
    traced = tensor in producer
    seen, stack, found = set(), [tensor], set()
    while stack:
        name = stack.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
        node = producer.get(name)
        if node is not None and node.op_type not in SHAPE_ONLY_OPS:
            stack.extend(node.input)
            for attr in node.attribute:  # If/Loop bodies read outer tensors by name
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    stack.extend(name for inner in _all_nodes(sub) for name in inner.input)
    integer = (onnx.TensorProto.BOOL, *(k for k, v in ONNX_DTYPES.items() if "int" in v))

    def shape_arithmetic(value: onnx.ValueInfoProto) -> bool:
        tt = value.type.tensor_type
        rank = len(tt.shape.dim) if tt.HasField("shape") else None
        if traced:
            return tt.elem_type in integer or rank == 0
        return rank is not None and (rank == 0 or (rank == 1 and tt.elem_type in integer))

    return [
        n for n, v in inputs.items() if (n in found or not traced) and n not in fixed and shape_arithmetic(v)
    ]


def _with_fix_hint(exc: UnsupportedError, graph: onnx.GraphProto, fixed) -> UnsupportedError:
    """`exc` (a value needed at import time is computed at run time), naming the graph inputs it comes
    from and how to fix them; `.value_inputs` lists them ([] when it comes from no graph input)."""
    tensor = getattr(exc, "tensor", None)
    names = value_inputs(graph, tensor, fixed) if tensor else []
    if not names:
        exc.value_inputs = []
        return exc
    quoted = ", ".join(repr(n) for n in names)
    example = ", ".join(f"{n!r}: ..." for n in names)
    options = " ".join(f"--fix-input {n}=FILE.npy|[...]" for n in names)
    error = UnsupportedError(
        f"{str(exc).splitlines()[0]}; it is computed from the value of graph input(s) {quoted}: "
        f"shapeflow.compile(model) specializes on their values at call time, or fix them with "
        f"from_onnx(model, fixed_inputs={{{example}}}) or shapeflow compile {options}"
    )
    error.tensor = tensor
    error.value_inputs = names
    return error


def _convert_node(ctx: Context, proto: onnx.NodeProto, opset: int) -> None:
    if proto.domain not in ("", "ai.onnx"):
        raise UnsupportedError(f"ONNX op '{proto.op_type}' of domain {proto.domain!r} is not supported")
    try:
        version = onnx.defs.get_schema(proto.op_type, opset, "").since_version
    except onnx.defs.SchemaError:
        raise UnsupportedError(f"ONNX op '{proto.op_type}' is not an operator of opset {opset}") from None
    conv = lookup(proto.op_type, version)
    for name in proto.input:
        if name and not ctx.has(name):
            raise ParseError(f"ONNX node {proto.name or proto.op_type!r} reads undefined tensor {name!r}")
    lowp.check_node(ctx, proto)
    if proto.op_type not in NO_UPCAST_OPS and _upcast(ctx, conv, proto, version):
        return
    node = Node(proto, version)
    outputs = _run(ctx, conv, node)
    for name, value in zip(node.outputs, outputs):
        if name:
            ctx.set(name, value.array if isinstance(value, Known) else value)


def _run(ctx: Context, conv, node: Node) -> list:
    """The node's outputs, with every attribute and output accounted for."""
    try:
        result = conv.fold(ctx, node) if conv.fold is not None else None
        if result is None:
            result = conv.convert(ctx, node)
    except VerifyError as exc:  # an operand combination the graph ops do not take
        raise node.unsupported(str(exc)) from None
    outputs = list(result) if isinstance(result, (list, tuple)) else [result]
    unread = node.unread_attrs()
    if unread:
        raise node.unsupported(f"attribute {unread[0]!r} is not supported")
    if len(outputs) < len(node.outputs) and any(node.outputs[len(outputs) :]):
        raise node.unsupported(f"output {len(outputs)} ({node.outputs[len(outputs)]!r}) is not supported")
    return outputs


# float16/bfloat16 arithmetic is computed in float32 and rounded once per op, as numpy and onnxruntime do
# (16-bit accumulation in compiled reductions and matmuls drifts past the suite's tolerance). Ops that
# only move or compare data keep their 16-bit operands.
NO_UPCAST_OPS = frozenset(
    {
        "Cast", "CastLike", "Reshape", "Transpose", "Concat", "Slice", "Gather", "GatherElements",
        "Squeeze", "Unsqueeze", "Flatten", "Expand", "Tile", "Identity", "Shape", "Size", "Split",
        "Pad", "Where", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "IsNaN", "IsInf",
        "Dropout", "DepthToSpace", "SpaceToDepth", "Trilu", "Constant", "ConstantOfShape", "Abs", "Neg",
        "Relu", "Max", "Min", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "Sign", "Floor", "Ceil",
    }
)  # fmt: skip
_LOW_PRECISION = ("float16", "bfloat16")
# Accumulating ops whose bfloat16 reference rounds every partial sum to bfloat16: neither float32 compute
# nor compiled bfloat16 arithmetic reproduces that within the suite's tolerance, so they are refused.
BFLOAT16_REFUSED = frozenset(
    {"Attention", "Softmax", "LogSoftmax", "MatMul", "Gemm", "ReduceSum", "ReduceMean"}
)


def _upcast(ctx: Context, conv, proto: onnx.NodeProto, version: int) -> bool:
    """Convert `proto` on float32 copies of its 16-bit float inputs, casting float32 results back.
    False (nothing done) when no input is a 16-bit float."""
    low = None
    renamed = onnx.NodeProto()
    renamed.CopyFrom(proto)
    for i, name in enumerate(proto.input):
        if name and str(ctx.dtype(name)) in _LOW_PRECISION:
            low = str(ctx.dtype(name))
            alias = f"{name}\0float32"
            known = ctx.known_value(name)
            if ctx.has(alias):
                pass
            elif known is not None and known.dtype != object and name not in ctx.values:
                ctx.known[alias] = known.astype(np.float32)  # still known: Range bounds, Pad values
            else:
                ctx.values[alias] = ctx.emit(op.astype(ctx.expr(name), "float32"))
            renamed.input[i] = alias
    if low is None:
        return False
    if low == "bfloat16" and proto.op_type in BFLOAT16_REFUSED:
        raise UnsupportedError(
            f"ONNX op '{proto.op_type}' (opset {version}): dtype bfloat16 is not supported"
        )
    node = Node(renamed, version)
    for name, value in zip(proto.output, _run(ctx, conv, node)):
        if not name:
            continue
        value = value.array if isinstance(value, Known) else value
        if isinstance(value, np.ndarray):  # folded at import time
            value = value.astype(DataType(low).to_numpy()) if value.dtype == np.float32 else value
        elif str(type_of(value).dtype) == "float32":
            value = op.astype(value, low)
        ctx.set(name, value)
    return True


def from_onnx(
    model, dims: dict | None = None, constants: dict | None = None, fixed_inputs: dict | None = None
) -> IRModule:
    """Import an ONNX model (ModelProto, bytes or path) as an IRModule whose "main" takes the graph inputs
    in order and returns the output (a tuple when there are several).

    `dims={"seq": (lo, hi)}` bounds symbolic dims. `fixed_inputs={input name: array or list}` fixes graph
    inputs at import time (they leave the signature): a model whose shapes depend on an input's value (a
    Reshape target, reduction axes fed as an input) compiles for that value. Without it such a model is
    refused with an UnsupportedError naming those inputs (`.value_inputs`); shapeflow.compile(model)
    instead specializes on them at call time. `constants` is the older name of `fixed_inputs`."""
    fixed = {**(constants or {}), **(fixed_inputs or {})}
    model = checked_model(load_model(model))
    try:
        return _import(model, dims, fixed, "constants" if constants else "fixed_inputs")
    except UnsupportedError as exc:
        raise _with_fix_hint(exc, model.graph, fixed) from None
    except Error:
        raise
    except Exception as exc:  # a converter bug must still surface as a shapeflow error, not a traceback
        raise CompileError(f"importing the ONNX model failed: {type(exc).__name__}: {exc}") from exc


def _import(model: onnx.ModelProto, dims: dict | None, constants: dict, label: str) -> IRModule:
    graph = model.graph
    opset = default_opset(model)
    initializers = {init.name: init for init in graph.initializer}
    symbols: dict[str, Var] = {}
    params = []
    bb = BlockBuilder()
    ctx = Context(bb, opset)
    inputs = {v.name for v in graph.input}
    unknown = sorted(set(constants) - inputs)
    if unknown:
        raise UnsupportedError(f"{label} name no graph input: {', '.join(unknown)}")
    for value in graph.input:
        if value.name in initializers:
            continue
        if value.name in constants:
            ctx.known[value.name] = _constant_input(value, constants[value.name], symbols, label)
            continue
        param = G.GraphVar(safe_name(value.name), _input_type(value, symbols))
        params.append(param)
        ctx.values[value.name] = param
    for name, init in initializers.items():
        onnx_dtype(init.data_type, f"initializer {name!r}", storage=True)
        ctx.known[name] = np.array(numpy_helper.to_array(init))
    lowp.declare(ctx, graph)  # float8, int4...: stored as their bits, refused by ops that compute
    for sparse in graph.sparse_initializer:
        raise UnsupportedError(f"sparse initializer {sparse.values.name!r} is not supported")
    with bb.function("main", params):
        with bb.dataflow():
            for proto in graph.node:
                _convert_node(ctx, proto, opset)
            outputs = []
            for value in graph.output:
                if not ctx.has(value.name):
                    raise ParseError(f"ONNX graph output {value.name!r} is never computed")
                taken = {p.name for p in params}
                name = safe_name(value.name)
                outputs.append(bb.emit_output(ctx.expr(value.name), name + "_out" if name in taken else name))
        if not outputs:
            raise ParseError("the ONNX graph has no outputs")
        bb.emit_func_output(outputs[0] if len(outputs) == 1 else outputs)
    mod = lowp.annotate(bb.get(), ctx, graph)
    if dims:
        from shapeflow.compile import with_dim_bounds  # noqa: PLC0415 - checks names and ranges

        mod = with_dim_bounds(mod, dims)
    return mod
