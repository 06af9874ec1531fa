"""Ops imported by inlining ONNX graphs: ops that ONNX defines by a function body (SwiGLU, the window
functions, CausalConvWithState, LinearAttention, ...), and control flow whose decisions are known at import
time (If on a known condition, Scan and Loop over a static number of iterations, unrolled).

Inlining converts the body's nodes in the caller's context under fresh tensor names, so every op of the body
goes through its own converter and its own checks: a body that uses an op, attribute or dtype shapeflow
does not run is refused, naming the op that was being expanded. Unrolling is bounded (MAX_UNROLL
iterations); a trip count or sequence length unknown at import time is refused, naming the tensor, so that
from_onnx(constants=...) can fix it.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnx.defs
from onnx import helper

from shapeflow.errors import UnsupportedError
from shapeflow.frontend.onnx.context import ONNX_DTYPES, Context, Node, _needs_value
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int

# More iterations than this are refused rather than unrolled (the graph grows with each one).
MAX_UNROLL = 512

_fresh = itertools.count()
_TO_ONNX = {v: k for k, v in ONNX_DTYPES.items()}


def _convert_node(ctx: Context, proto: onnx.NodeProto, opset: int) -> None:
    from shapeflow.frontend.onnx.importer import _convert_node as convert  # noqa: PLC0415 - import cycle

    convert(ctx, proto, opset)


# ---------------------------------------------------------------------------------------------
# Renaming graphs and resolving attribute references
# ---------------------------------------------------------------------------------------------


def _defined_names(nodes) -> list[str]:
    return [name for n in nodes for name in n.output if name]


def _rename_node(
    proto: onnx.NodeProto, mapping: dict[str, str], attrs: dict[str, onnx.AttributeProto] | None
) -> onnx.NodeProto:
    """A copy of `proto` with tensor names in `mapping` replaced (in nested graphs too) and, when `attrs`
    is given (a function body), attribute references resolved against the caller's attributes."""
    out = onnx.NodeProto()
    out.CopyFrom(proto)
    del out.input[:]
    out.input.extend(mapping.get(n, n) for n in proto.input)
    del out.output[:]
    out.output.extend(mapping.get(n, n) for n in proto.output)
    del out.attribute[:]
    for attr in proto.attribute:
        if attr.ref_attr_name and attrs is not None:
            given = attrs.get(attr.ref_attr_name)
            if given is None:
                continue  # neither set by the caller nor defaulted by the function: the op's default
            resolved = onnx.AttributeProto()
            resolved.CopyFrom(given)
            resolved.name = attr.name
            out.attribute.append(resolved)
            continue
        copy = onnx.AttributeProto()
        copy.CopyFrom(attr)
        if copy.type == onnx.AttributeProto.GRAPH:
            copy.g.CopyFrom(_rename_graph(attr.g, mapping, attrs))
        elif copy.type == onnx.AttributeProto.GRAPHS:
            del copy.graphs[:]
            copy.graphs.extend(_rename_graph(g, mapping, attrs) for g in attr.graphs)
        out.attribute.append(copy)
    return out


def _rename_graph(graph: onnx.GraphProto, mapping: dict[str, str], attrs) -> onnx.GraphProto:
    """A nested graph with references to renamed outer names replaced; its own names stay (they are
    renamed when the graph itself is inlined)."""
    local = (
        {v.name for v in graph.input} | {i.name for i in graph.initializer} | set(_defined_names(graph.node))
    )
    inner = {k: v for k, v in mapping.items() if k not in local}
    out = onnx.GraphProto()
    out.CopyFrom(graph)
    del out.node[:]
    out.node.extend(_rename_node(n, inner, attrs) for n in graph.node)
    for value in out.output:
        value.name = inner.get(value.name, value.name)
    return out


def _value(ctx: Context, name: str):
    """Tensor `name` as a converter output: the known array, or the graph expression."""
    known = ctx.known_value(name)
    return known if known is not None and name not in ctx.values else ctx.expr(name)


def _inline_graph(ctx: Context, graph: onnx.GraphProto, bound: dict[str, str], tag: str) -> list[str]:
    """Convert `graph`'s nodes in `ctx`: its inputs read the ctx tensors named by `bound`, its other
    names are made fresh. Returns the ctx names of its outputs."""
    prefix = f"\0{tag}{next(_fresh)}/"
    mapping = dict(bound)
    for init in graph.initializer:
        mapping[init.name] = prefix + init.name
        ctx.known[prefix + init.name] = np.array(onnx.numpy_helper.to_array(init))
    for name in _defined_names(graph.node):
        mapping.setdefault(name, prefix + name)
    for proto in graph.node:
        _convert_node(ctx, _rename_node(proto, mapping, None), ctx.opset)
    outputs = [mapping.get(v.name, v.name) for v in graph.output]
    for name in outputs:
        if not ctx.has(name):
            raise UnsupportedError(f"a subgraph output {name.split('/')[-1]!r} is never computed")
    return outputs


def _subgraph(node: Node, name: str) -> onnx.GraphProto:
    node.read.add(name)
    for attr in node.proto.attribute:
        if attr.name == name and attr.type == onnx.AttributeProto.GRAPH:
            return attr.g
    raise node.unsupported(f"the subgraph attribute {name!r} is missing")


def _static_int(node: Node, value, what: str) -> int:
    n = as_int(value) if not isinstance(value, int | np.integer) else int(value)
    if n is None:
        raise node.unsupported(
            f"{what} is symbolic ({value}); only a length known at import time is unrolled"
        )
    if n > MAX_UNROLL:
        raise node.unsupported(f"{what} is {n}; at most {MAX_UNROLL} iterations are unrolled")
    return n


# ---------------------------------------------------------------------------------------------
# Function bodies
# ---------------------------------------------------------------------------------------------

# Ops imported through the function body that ONNX defines for them.
EXPANDED_OPS = (
    "BlackmanWindow",
    "CausalConvWithState",
    "DynamicQuantizeLinear",
    "HammingWindow",
    "HannWindow",
    "LinearAttention",
    "SwiGLU",
)


def _type_proto(ctx: Context, name: str) -> onnx.TypeProto:
    t = ctx.type(name)
    dims = [as_int(d) if not isinstance(d, int) else d for d in t.shape] if t.shape is not None else None
    return helper.make_tensor_type_proto(_TO_ONNX[str(t.dtype)], dims)


def function_body(ctx: Context, node: Node) -> onnx.FunctionProto:
    """The FunctionProto ONNX defines for `node` at the model's opset (context-dependent bodies are built
    for the node's input types)."""
    schema = onnx.defs.get_schema(node.op_type, ctx.opset, "")
    if schema.has_context_dependent_function:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= ctx.opset]
        types = [_type_proto(ctx, n).SerializeToString() if n else b"" for n in node.inputs]
        if not versions:
            raise node.unsupported("ONNX defines no function body for it at this opset")
        raw = schema.get_context_dependent_function_with_opset_version(
            max(versions), node.proto.SerializeToString(), types
        )
    else:
        versions = [v for v in schema.function_opset_versions if v <= ctx.opset]
        if not versions:
            raise node.unsupported("ONNX defines no function body for it at this opset")
        raw = schema.get_function_with_opset_version(max(versions))
    function = onnx.FunctionProto()
    function.ParseFromString(raw if isinstance(raw, bytes) else raw.SerializeToString())
    return function


def _function_opset(function: onnx.FunctionProto, default: int) -> int:
    for entry in function.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return default


def expand_function(ctx: Context, node: Node) -> list:
    """Convert `node` by converting the nodes of its ONNX function body."""
    function = function_body(ctx, node)
    declared = set(function.attribute) | {a.name for a in function.attribute_proto}
    schema = onnx.defs.get_schema(node.op_type, ctx.opset, "")
    attrs = {  # the schema's defaults, then the function's, then the caller's
        name: a.default_value
        for name, a in schema.attributes.items()
        if a.default_value.type != onnx.AttributeProto.UNDEFINED
    }
    attrs.update({a.name: a for a in function.attribute_proto})
    for attr in node.proto.attribute:
        if attr.name in declared:
            node.read.add(attr.name)
            attrs[attr.name] = attr
    prefix = f"\0{node.op_type}{next(_fresh)}/"
    mapping = {}
    for formal, actual in zip(function.input, node.inputs):
        if actual:
            mapping[formal] = actual
    for name in _defined_names(function.node):
        mapping.setdefault(name, prefix + name)
    # Bodies written for an opset below 13 run at 13: converters start there, and one that reads a
    # changed schema differently leaves an attribute unread and is refused.
    opset = max(_function_opset(function, ctx.opset), 13)
    try:
        for proto in function.node:
            _convert_node(ctx, _rename_node(proto, mapping, attrs), opset)
    except UnsupportedError as exc:
        error = node.unsupported(f"its ONNX function body needs: {exc}")
        error.tensor = getattr(exc, "tensor", None)
        raise error from None
    outputs = []
    for formal in function.output[: len(node.outputs)]:
        name = mapping.get(formal, formal)
        if not ctx.has(name):
            raise node.unsupported(f"its function body never computes {formal!r}")
        outputs.append(_value(ctx, name))
    return outputs


for _op_type in EXPANDED_OPS:
    converter(_op_type)(expand_function)


# ---------------------------------------------------------------------------------------------
# Control flow
# ---------------------------------------------------------------------------------------------


@converter("If")
def if_(ctx: Context, node: Node) -> list:
    """The branch the known condition selects, inlined; the other branch is never converted."""
    cond = ctx.known_value(node.input(0))
    then_graph, else_graph = _subgraph(node, "then_branch"), _subgraph(node, "else_branch")
    if cond is None or cond.dtype == object:
        raise _needs_value(node, node.input(0), "the condition must be known at import time")
    if cond.size != 1:
        raise node.unsupported(f"the condition has {cond.size} elements, expected one")
    chosen = then_graph if bool(cond.reshape(-1)[0]) else else_graph
    return [_value(ctx, name) for name in _inline_graph(ctx, chosen, {}, "if")]


def _stack(ctx: Context, values: list, axis: int):
    """Per-iteration tensors stacked along a new axis `axis`."""
    exprs = [ctx.emit(op.expand_dims(v if not isinstance(v, np.ndarray) else ctx.materialize(v), axis=axis))
             for v in values]  # fmt: skip
    return exprs[0] if len(exprs) == 1 else op.concat(exprs, axis=axis)


def _bind(ctx: Context, name: str, value) -> str:
    ctx.set(name, value)
    return name


def _scan_attrs(node: Node, count: int, which: str) -> tuple[list[int], list[int]]:
    axes = list(node.attr(f"scan_{which}_axes", [0] * count))
    directions = list(node.attr(f"scan_{which}_directions", [0] * count))
    if len(axes) != count or len(directions) != count:
        raise node.unsupported(f"scan_{which}_axes/directions must have {count} entries")
    return axes, directions


@converter("Scan", since=9)
def scan(ctx: Context, node: Node) -> list:
    """Unrolled over the scan axis, whose length must be known at import time."""
    body = _subgraph(node, "body")
    num_scan = node.attr("num_scan_inputs")
    num_state = len(node.inputs) - num_scan
    num_scan_out = len(body.output) - num_state
    if num_state < 0 or num_scan < 1 or len(body.input) != len(node.inputs):
        raise node.unsupported("the body's inputs do not match the node's")
    in_axes, in_dirs = _scan_attrs(node, num_scan, "input")
    out_axes, out_dirs = _scan_attrs(node, num_scan_out, "output")
    scanned = node.inputs[num_state:]
    ranks = [ctx.rank(name) for name in scanned]
    in_axes = [a % r for a, r in zip(in_axes, ranks)]
    length = _static_int(node, ctx.shape(scanned[0])[in_axes[0]], "the scan length")
    for name, axis in zip(scanned, in_axes):
        if _static_int(node, ctx.shape(name)[axis], "the scan length") != length:
            raise node.unsupported("the scan inputs have different lengths")
    if length == 0:
        raise node.unsupported("a scan over zero iterations is not supported")
    states = list(node.inputs[:num_state])
    collected: list[list] = [[] for _ in range(num_scan_out)]
    for t in range(length):
        bound = {body.input[i].name: states[i] for i in range(num_state)}
        for j, (name, axis, direction) in enumerate(zip(scanned, in_axes, in_dirs)):
            index = t if direction == 0 else length - 1 - t
            step = op.take(ctx.expr(name), np.array(index, dtype=np.int64), axis=axis)
            bound[body.input[num_state + j].name] = _bind(ctx, f"\0scan{next(_fresh)}/in{j}", step)
        outputs = _inline_graph(ctx, body, bound, "scan")
        states = outputs[:num_state]
        for k in range(num_scan_out):
            collected[k].append(_value(ctx, outputs[num_state + k]))
    results = [_value(ctx, name) for name in states]
    for k, values in enumerate(collected):
        if out_dirs[k] != 0:
            values = values[::-1]
        rank = len(ctx.type(outputs[num_state + k]).shape) + 1
        results.append(_stack(ctx, values, out_axes[k] % rank))
    return results


@converter("Loop")
def loop(ctx: Context, node: Node) -> list:
    """Unrolled: the trip count and every iteration's condition must be known at import time."""
    body = _subgraph(node, "body")
    num_carried = len(node.inputs) - 2
    num_scan_out = len(body.output) - 1 - num_carried
    if num_carried < 0 or len(body.input) != num_carried + 2 or num_scan_out < 0:
        raise node.unsupported("the body's inputs and outputs do not match the node's")
    trips = ctx.known_value(node.input(0))
    if node.input(0) and (trips is None or trips.dtype == object):
        raise _needs_value(node, node.input(0), "the trip count must be known at import time")
    cond = ctx.known_value(node.input(1))
    if node.input(1) and (cond is None or cond.dtype == object):
        raise _needs_value(node, node.input(1), "the initial condition must be known at import time")
    limit = int(trips.reshape(-1)[0]) if trips is not None else None
    if limit is None and cond is None:
        raise node.unsupported("a loop with neither a trip count nor a condition never ends")
    going = True if cond is None else bool(cond.reshape(-1)[0])
    carried = list(node.inputs[2:])
    collected: list[list] = [[] for _ in range(num_scan_out)]
    count = 0
    while going and (limit is None or count < limit):
        if count >= MAX_UNROLL:
            raise node.unsupported(f"more than {MAX_UNROLL} iterations are not unrolled")
        bound = {
            body.input[0].name: _bind(ctx, f"\0loop{next(_fresh)}/i", np.array(count, dtype=np.int64)),
            body.input[1].name: _bind(ctx, f"\0loop{next(_fresh)}/c", np.array(going)),
        }
        bound.update({body.input[2 + i].name: carried[i] for i in range(num_carried)})
        outputs = _inline_graph(ctx, body, bound, "loop")
        next_cond = ctx.known_value(outputs[0])
        if next_cond is None or next_cond.dtype == object:
            raise node.unsupported("the body's condition output must be known at import time")
        going = bool(next_cond.reshape(-1)[0])
        carried = outputs[1 : 1 + num_carried]
        for k in range(num_scan_out):
            collected[k].append(_value(ctx, outputs[1 + num_carried + k]))
        count += 1
    results = [_value(ctx, name) for name in carried]
    for values in collected:
        if not values:
            raise node.unsupported("a scan output of a loop that runs zero times is not supported")
        results.append(_stack(ctx, values, 0))
    return results


def registered_ops() -> list[str]:
    """The op types this module converts (for tests)."""
    return [*EXPANDED_OPS, "If", "Scan", "Loop"]
