"""Printing graph functions (`@R.function`) in the module text, next to PrimFuncs (docs/text-format.md).

The printer walks a function once, in the order the parser reads it back (parameters, attributes, body,
then the return annotation), so names given here are the names the parser binds, and printing parsed
text reproduces it. Expressions dispatch through a table keyed by node class; ops print generically as
`R.<op>(operands..., attr=value)` from the op registry, so a new op needs no edit here.

Large constants do not print inline: they go to a metadata table printed once at the end of the module
(`I.metadata({...})`, base64 of the raw bytes) and the function refers to them as `R.const_ref("c0")`.
"""

from __future__ import annotations

import base64
import keyword
import math

import numpy as np

from shapeflow.errors import UnsupportedError
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import types as GT
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops.registry import REQUIRED, get_op_def, is_registered
from shapeflow.ir.graph.shape import same_expr
from shapeflow.ir.text.names import HEADER, RESERVED
from shapeflow.ir.text.print_expr import INT64, ExprPrinter, float_literal

INDENT = "    "

# Constants with at most this many elements print inline as nested lists.
INLINE_CONSTANT_LIMIT = 16

# `R.<name>` spellings with a fixed meaning; an op with one of these names prints as R.call_op("name", ...).
FIXED_R_NAMES = frozenset(
    {
        "function", "func_attr", "dataflow", "output", "bindings", "seq", "Tensor", "Shape", "Tuple",
        "Prim", "Object", "Callable", "const", "const_ref", "prim_value", "shape", "extern", "op",
        "call_op", "If", "bare", "match_cast",
    }
)  # fmt: skip

# Names a graph function never gives a variable: the loop level's reserved words, `R` and the class name.
GRAPH_RESERVED = RESERVED | {"R", "Module"}

# Ops whose single output type prints as `out=` rather than `type_args=(...,)`.
_OUT_KEYWORD_OPS = frozenset({"call_tir", "call_dps_library"})


def quoted(text: str) -> str:
    """A string literal in double quotes (as dtypes print) when that needs no escapes, else `repr`."""
    if '"' not in text and "\\" not in text and text.isprintable():
        return f'"{text}"'
    return repr(text)


def op_spelling(name: str) -> str | None:
    """`R.<name>` when that spelling reads back as this op, else None (use R.call_op)."""
    if name.isidentifier() and not keyword.iskeyword(name) and name not in FIXED_R_NAMES:
        return f"R.{name}"
    return None


class Metadata:
    """The module's table of large constants: one entry per Constant object, named c0, c1, ..."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.entries: list[tuple[str, G.Constant]] = []

    def ref(self, const: G.Constant) -> str:
        name = self.names.get(id(const))
        if name is None:
            name = self.names[id(const)] = f"c{len(self.entries)}"
            self.entries.append((name, const))
        return name

    def lines(self, indent: str) -> list[str]:
        if not self.entries:
            return []
        out = [f"{indent}I.metadata({{"]
        for name, c in self.entries:
            shape = f"({c.shape[0]},)" if len(c.shape) == 1 else "(" + ", ".join(map(str, c.shape)) + ")"
            data = base64.b64encode(c.data).decode("ascii")
            out.append(f'{indent}{INDENT}"{name}": ("{c.dtype}", {shape}, "{data}"),')
        out.append(f"{indent}}})")
        return out


def inline_constant(const: G.Constant) -> str | None:
    """The literal of a small constant if reading it back gives the same bytes and shape, else None."""
    if int(np.prod(const.shape, dtype=np.int64)) > INLINE_CONSTANT_LIMIT or 0 in const.shape:
        return None
    try:
        np_dtype = to_numpy_dtype(const.dtype)
    except UnsupportedError:
        return None
    values = const.array.tolist()
    flat = values if isinstance(values, list) else [values]
    while flat and isinstance(flat[0], list):
        flat = [x for row in flat for x in row]
    if any(isinstance(v, float) and not math.isfinite(v) for v in flat):
        return None
    try:
        back = np.array(values, dtype=np_dtype)
    except (OverflowError, ValueError, TypeError):
        return None
    if back.shape != const.shape or back.tobytes() != const.data:
        return None
    return repr(values)


class GraphPrinter(ExprPrinter):
    """Prints one graph function; `lines` collects the statements of its body."""

    def __init__(self, metadata: Metadata) -> None:
        super().__init__()
        self.namer.taken |= GRAPH_RESERVED
        self.metadata = metadata
        self.lines: list[str] = []
        cls = type(self)
        self._graph_table = {
            G.GraphVar: cls._graph_var,
            G.DataflowVar: cls._graph_var,
            G.Constant: cls._constant,
            G.PrimValue: lambda self, e: f"R.prim_value({self.expr(e.value)})",
            G.ShapeExpr: lambda self, e: f"R.shape([{', '.join(self.expr(v) for v in e.values)}])",
            G.Op: lambda self, e: f"R.op({quoted(e.name)})",
            G.GlobalName: cls._global_name,
            G.ExternFunc: lambda self, e: f"R.extern({quoted(e.name)})",
            G.Tuple: cls._tuple,
            G.TupleGetItem: lambda self, e: f"{self.gexpr(e.tuple_value)}[{e.index}]",
            G.Call: cls._call,
            G.If: cls._if_expr,
        }
        self._type_table = {
            GT.TensorType: cls._tensor_type,
            GT.ShapeType: cls._shape_type,
            GT.TupleType: lambda self, t: f"R.Tuple({', '.join(self.type(f) for f in t.fields)})",
            GT.PrimType: lambda self, t: f'R.Prim("{t.dtype}")',
            GT.ObjectType: lambda self, t: "R.Object",
            GT.FuncType: cls._func_type,
        }

    # -- types (symbolic dims first named in a type are defined there, as the parser reads them) ------
    def type(self, t: GT.Type) -> str:
        method = self._type_table.get(t.__class__)
        if method is None:
            raise UnsupportedError(f"the text printer cannot print {type(t).__name__} as a type")
        saved, self.implicit_dims = self.implicit_dims, True
        try:
            return method(self, t)
        finally:
            self.implicit_dims = saved

    def dims(self, dims) -> str:
        if len(dims) == 1:
            return f"({self.expr(dims[0])},)"
        return "(" + ", ".join(self.expr(d) for d in dims) + ")"

    def _tensor_type(self, t):
        args = []
        if t.shape is not None:
            args.append(self.dims(t.shape))
        elif t.ndim >= 0:
            args.append(f"ndim={t.ndim}")
        if t.dtype is not None:
            args.append(f'"{t.dtype}"' if t.shape is not None else f'dtype="{t.dtype}"')
        return f"R.Tensor({', '.join(args)})"

    def _shape_type(self, t):
        if t.values is not None:
            return f"R.Shape([{', '.join(self.expr(v) for v in t.values)}])"
        return "R.Shape()" if t.ndim < 0 else f"R.Shape(ndim={t.ndim})"

    def _func_type(self, t):
        params = ", ".join(self.type(p) for p in t.params)
        if len(t.params) == 1:
            params += ","
        return f"R.Callable(({params}), {self.type(t.ret)})"

    # -- expressions -------------------------------------------------------------------------------
    def gexpr(self, e: G.Expr) -> str:
        method = self._graph_table.get(e.__class__)
        if method is None:
            if isinstance(e, G.SeqExpr):
                raise UnsupportedError(
                    "a SeqExpr prints only as a function body, an If branch or a binding's value"
                )
            raise UnsupportedError(f"the text printer cannot print {type(e).__name__} as a graph expression")
        return method(self, e)

    def _graph_var(self, v):
        name = self.namer.names.get(id(v))
        # A variable used but never bound (not well-formed): named here, the parser will refuse the text.
        return name if name is not None else self.namer.define(v, v.name)

    def _global_name(self, e):
        if not e.name.isidentifier() or keyword.iskeyword(e.name):
            raise UnsupportedError(f"function name {e.name!r} cannot be spelled in the text format")
        return f"Module.{e.name}"

    def _constant(self, c):
        literal = inline_constant(c)
        if literal is not None:
            return f'R.const({literal}, "{c.dtype}")'
        return f'R.const_ref("{self.metadata.ref(c)}")'

    def _tuple(self, e):
        if len(e.fields) == 1:
            return f"({self.gexpr(e.fields[0])},)"
        return "(" + ", ".join(self.gexpr(f) for f in e.fields) + ")"

    def _if_expr(self, e):
        return f"R.If({self.gexpr(e.cond)}, {self.gexpr(e.true_branch)}, {self.gexpr(e.false_branch)})"

    def attr_value(self, v) -> str:
        """An op attribute: dtypes as strings, int64 constants bare (the registry normalizes them back)."""
        if isinstance(v, DataType):
            return f'"{v}"'
        if isinstance(v, E.IntImm) and v.dtype is INT64:
            return self.expr(v)
        if isinstance(v, tuple):
            if len(v) == 1:
                return f"({self.attr_value(v[0])},)"
            return "(" + ", ".join(self.attr_value(x) for x in v) + ")"
        if isinstance(v, list):
            return "[" + ", ".join(self.attr_value(x) for x in v) + "]"
        if isinstance(v, float) and not math.isfinite(v):
            return f"float({float_literal(v)})"
        return self.value(v)

    def _call(self, e):
        parts = []
        op = e.op
        op_def = None
        if isinstance(op, G.Op):
            head = op_spelling(op.name)
            if head is None:
                head, parts = "R.call_op", [quoted(op.name)]
            if is_registered(op.name):
                op_def = get_op_def(op.name)
        else:
            head = self.gexpr(op)
        parts.extend(self.gexpr(a) for a in e.args)
        defaults = {a.name: a.default for a in op_def.attrs} if op_def is not None else {}
        if op_def is None and e.attrs:
            if isinstance(op, G.Op):
                parts.extend(f"{k}={self.attr_value(v)}" for k, v in e.attrs.items())
            else:
                parts.append(f"attrs={self.value(e.attrs)}")
        else:
            for k, v in e.attrs.items():
                d = defaults.get(k, REQUIRED)
                if d is not REQUIRED and type(v) is type(d) and v == d:
                    continue  # the parser fills in defaults
                parts.append(f"{k}={self.attr_value(v)}")
        if e.type_args:
            taken = set(defaults) | set(e.attrs)
            if (
                isinstance(op, G.Op)
                and op.name in _OUT_KEYWORD_OPS
                and len(e.type_args) == 1
                and "out" not in taken
            ):
                parts.append(f"out={self.type(e.type_args[0])}")
            else:
                if "type_args" in taken:
                    raise UnsupportedError(f"op {op.name!r} has an attribute named 'type_args'")
                types = ", ".join(self.type(t) for t in e.type_args)
                parts.append(f"type_args=({types}{',' if len(e.type_args) == 1 else ''})")
        return f"{head}({', '.join(parts)})"

    # -- bindings and regions ------------------------------------------------------------------------
    def region(self, e: G.Expr, indent: str, target) -> None:
        """A function body or If branch: blocks then a terminator (`return v` or `target = v`); an If
        whose branches are regions prints as an if statement; any other expression as `R.bare(e)`."""
        if isinstance(e, G.SeqExpr):
            self.blocks(e.blocks, indent)
            self.terminator(e.body, indent, target, bare=False)
        elif isinstance(e, G.If):
            self.lines.append(f"{indent}if {self.gexpr(e.cond)}:")
            self.region(e.true_branch, indent + INDENT, target)
            self.lines.append(f"{indent}else:")
            self.region(e.false_branch, indent + INDENT, target)
        else:
            self.terminator(e, indent, target, bare=True)

    def terminator(self, e: G.Expr, indent: str, target, bare: bool) -> None:
        if target is None:
            prefix = "return "
        else:
            name, annotated = target
            prefix = f"{name}: {self.type(annotated)} = " if annotated is not None else f"{name} = "
        value = self.gexpr(e)
        self.lines.append(f"{indent}{prefix}{f'R.bare({value})' if bare else value}")

    def blocks(self, blocks, indent: str) -> None:
        after_plain = False
        for block in blocks:
            if isinstance(block, G.DataflowBlock):
                self.lines.append(f"{indent}with R.dataflow():")
                self.bindings(block.bindings, indent + INDENT, dataflow=True)
                after_plain = False
            elif after_plain or not block.bindings:
                # Written out, so that it does not merge with the block before it.
                self.lines.append(f"{indent}with R.bindings():")
                self.bindings(block.bindings, indent + INDENT, dataflow=False)
                after_plain = False
            else:
                self.bindings(block.bindings, indent, dataflow=False)
                after_plain = True

    def bindings(self, bindings, indent: str, dataflow: bool) -> None:
        outputs = []
        for b in bindings:
            is_dataflow_var = isinstance(b.var, G.DataflowVar)
            if is_dataflow_var and not dataflow:
                raise UnsupportedError(
                    f"DataflowVar {b.var.name!r} is bound outside a dataflow block (not well-formed)"
                )
            name = self.binding(b, indent)
            if dataflow and not is_dataflow_var:
                outputs.append(name)
        if outputs:
            self.lines.append(f"{indent}R.output({', '.join(outputs)})")
        elif not bindings:
            self.lines.append(f"{indent}pass")

    def binding(self, b: G.Binding, indent: str) -> str:
        var = b.var
        if isinstance(b, G.MatchCast):
            annotated = None if same_expr(var.type, b.type) else var.type
            ann = f": {self.type(annotated)}" if annotated is not None else ""
            value = f"R.match_cast({self.gexpr(b.value)}, {self.type(b.type)})"
            name = self.namer.define(var, var.name)
            self.lines.append(f"{indent}{name}{ann} = {value}")
            return name
        if not isinstance(b, G.VarBinding):
            raise UnsupportedError(f"the text printer cannot print a {type(b).__name__} binding")
        annotated = None if self._inferred(var.type, b.value) else var.type
        value = b.value
        if isinstance(value, (G.If, G.SeqExpr)):
            # Named first: the terminators inside spell the name.
            name = self.namer.define(var, var.name)
            if isinstance(value, G.SeqExpr):
                self.lines.append(f"{indent}with R.seq():")
                self.region(value, indent + INDENT, (name, annotated))
            else:
                self.region(value, indent, (name, annotated))
            return name
        ann = f": {self.type(annotated)}" if annotated is not None else ""
        text = self.gexpr(value)
        name = self.namer.define(var, var.name)
        self.lines.append(f"{indent}{name}{ann} = {text}")
        return name

    @staticmethod
    def _inferred(declared: GT.Type, value: G.Expr) -> bool:
        """Whether the parser, inferring the type of `value` (without the module, as it does), gets
        `declared` back; then the annotation is left out."""
        try:
            return same_expr(declared, type_of(value))
        except Exception:  # inference refused: the annotation says it
            return False


# ---------------------------------------------------------------------------------------------
# Functions and modules
# ---------------------------------------------------------------------------------------------


def graph_function_lines(func: G.GraphFunction, name: str, indent: str, metadata: Metadata) -> list[str]:
    """The lines of `@R.function def name(...) -> ret:` at `indent`; large constants go to `metadata`."""
    if not isinstance(func, G.GraphFunction):
        raise UnsupportedError(f"the text printer cannot print a {type(func).__name__} ({name!r})")
    p = GraphPrinter(metadata)
    params = []
    for param in func.params:
        annotation = p.type(param.type)
        params.append(f"{p.namer.define(param, param.name)}: {annotation}")
    body_indent = indent + INDENT
    attrs = f"{body_indent}R.func_attr({p.value(func.attrs)})" if func.attrs else None
    p.region(func.body, body_indent, None)
    ret = p.type(func.ret_type)
    lines = [f"{indent}@R.function", f"{indent}def {name}({', '.join(params)}) -> {ret}:"]
    for var in p.free_vars:
        lines.append(f'{body_indent}{p.namer.names[id(var)]} = T.var("{var.dtype}")')
    if attrs is not None:
        lines.append(attrs)
    lines.extend(p.lines)
    return lines


def lone_function_text(func: G.GraphFunction) -> str:
    """A graph function on its own: its metadata, if any, follows it at the top level."""
    symbol = func.attrs.get("global_symbol")
    ok = isinstance(symbol, str) and symbol.isidentifier() and symbol not in GRAPH_RESERVED
    name = symbol if ok else "main"
    metadata = Metadata()
    lines = [HEADER, *graph_function_lines(func, name, "", metadata)]
    if metadata.entries:
        lines.extend(["", *metadata.lines("")])
    return "\n".join(lines) + "\n"


def fragment_text(obj) -> str:
    """The text of a graph type, expression, binding or block on its own (for repr)."""
    p = GraphPrinter(Metadata())
    if isinstance(obj, G.GraphFunction):
        return lone_function_text(obj)
    if isinstance(obj, GT.Type):
        return p.type(obj)
    if isinstance(obj, G.SeqExpr):
        p.region(obj, "", None)
        return "\n".join(p.lines)
    if isinstance(obj, G.Expr):
        return p.gexpr(obj)
    if isinstance(obj, G.Binding):
        p.binding(obj, "")
        return "\n".join(p.lines)
    if isinstance(obj, G.BindingBlock):
        p.blocks((obj,), "")
        return "\n".join(p.lines)
    raise UnsupportedError(f"the text printer cannot print {type(obj).__name__}")
