"""Printing statements, functions and modules in the text format (docs/text-format.md).

A function is printed in one pass over its parameters, attributes and body; variables that turn out to be
free are declared afterwards at the top of the body (`n = T.var("int32")`), which is why the body is
rendered into a list of lines before the header is assembled.
"""

from __future__ import annotations

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir import expr as E
from shapeflow.ir.module import IRModule
from shapeflow.ir.text.names import HEADER, RESERVED
from shapeflow.ir.text.print_expr import ADD, INT64, ExprPrinter
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc

INDENT = "    "


def _is_zero64(e) -> bool:
    return isinstance(e, E.IntImm) and e.dtype is INT64 and e.value == 0


def _is_true(e) -> bool:
    return isinstance(e, E.IntImm) and e.dtype.is_bool and e.value == 1


class StmtPrinter(ExprPrinter):
    """Prints statements into `self.lines`, one string per line, indented by nesting depth."""

    def __init__(self, namer=None) -> None:
        super().__init__(namer)
        self.lines: list[str] = []
        cls = type(self)
        self._stmt_table = {
            S.BufferStore: cls._store,
            S.Evaluate: cls._evaluate,
            S.LetStmt: cls._let_stmt,
            S.AssertStmt: cls._assert,
            S.IfThenElse: cls._if,
            S.For: cls._for,
            S.SeqStmt: cls._seq,
            S.Allocate: cls._allocate,
            S.DeclBuffer: cls._decl_buffer,
            S.BlockRealize: cls._block_realize,
            S.Block: cls._bare_block,
        }

    def stmt(self, s, indent: str) -> None:
        method = self._stmt_table.get(s.__class__)
        if method is None:
            raise UnsupportedError(f"the text printer cannot print {type(s).__name__} as a statement")
        method(self, s, indent)

    # -- buffers -----------------------------------------------------------------------------------
    def buffer_decl(self, buf: Buffer, callee: str) -> str:
        """`T.Buffer((n, 4), "float32", ...)` with keywords only where `buf` differs from the defaults."""
        parts = [self.shape(buf.shape), f'"{buf.dtype}"']
        if buf.strides:
            parts.append("strides=" + self.shape(buf.strides))
        if not _is_zero64(buf.elem_offset):
            parts.append("elem_offset=" + self.expr(buf.elem_offset))
        if buf.scope != "global":
            parts.append(f"scope={buf.scope!r}")
        if buf.align != 64:
            parts.append(f"align={buf.align!r}")
        data_name = self.namer.names.get(id(buf.data))
        if data_name is not None:
            parts.append(f"data={data_name}")
        return f"{callee}({', '.join(parts)})"

    def shape(self, dims) -> str:
        if len(dims) == 1:
            return f"({self.expr(dims[0])},)"
        return "(" + ", ".join(self.expr(d) for d in dims) + ")"

    def define_buffer(self, buf: Buffer, callee: str) -> tuple[str, str]:
        """Name `buf` and print its declaration; a data variable not seen before becomes `<name>.data`."""
        name = self.namer.define(buf, buf.name)
        decl = self.buffer_decl(buf, callee)
        if id(buf.data) not in self.namer.names:
            self.namer.alias(buf.data, f"{name}.data")
        return name, decl

    # -- statements --------------------------------------------------------------------------------
    def _store(self, s, indent):
        self.lines.append(
            f"{indent}{self.name_of(s.buffer)}[{self.indices(s.indices)}] = {self.expr(s.value)}"
        )

    def _evaluate(self, s, indent):
        self.lines.append(f"{indent}T.evaluate({self.expr(s.value)})")

    def _assert(self, s, indent):
        self.lines.append(f"{indent}T.Assert({self.expr(s.condition)}, {s.message!r})")

    def _seq(self, s, indent):
        for item in s.seq:
            self.stmt(item, indent)

    def _let_stmt(self, s, indent):
        value = self.expr(s.value)
        name = self.namer.define(s.var, s.var.name)
        extra = "" if s.var.dtype == s.value.dtype else f', dtype="{s.var.dtype}"'
        self.lines.append(f"{indent}with T.let({value}{extra}) as {name}:")
        self.stmt(s.body, indent + INDENT)

    def _if(self, s, indent, keyword="if"):
        self.lines.append(f"{indent}{keyword} {self.expr(s.condition)}:")
        self.stmt(s.then_case, indent + INDENT)
        other = s.else_case
        if isinstance(other, S.IfThenElse):
            self._if(other, indent, "elif")
        elif other is not None:
            self.lines.append(f"{indent}else:")
            self.stmt(other, indent + INDENT)

    def _for(self, s, indent):
        args = [self.expr(s.min), self.expr(s.extent)]
        if s.thread_tag:
            args.append(f"thread={s.thread_tag!r}")
        if s.annotations:
            args.append(f"annotations={self.value(s.annotations)}")
        if s.loop_var.dtype != s.min.dtype:
            args.append(f'dtype="{s.loop_var.dtype}"')
        name = self.namer.define(s.loop_var, s.loop_var.name)
        self.lines.append(f"{indent}for {name} in T.{s.kind.value}({', '.join(args)}):")
        self.stmt(s.body, indent + INDENT)

    def _allocate(self, s, indent):
        name, decl = self.define_buffer(s.buffer, "T.allocate")
        self.lines.append(f"{indent}with {decl} as {name}:")
        self.stmt(s.body, indent + INDENT)

    def _decl_buffer(self, s, indent):
        name, decl = self.define_buffer(s.buffer, "T.decl_buffer")
        self.lines.append(f"{indent}with {decl} as {name}:")
        self.stmt(s.body, indent + INDENT)

    # -- blocks ------------------------------------------------------------------------------------
    def _block_realize(self, s, indent):
        block = s.block
        if len(s.iter_values) != len(block.iter_vars):
            raise VerifyError(
                f"block {block.name!r}: {len(s.iter_values)} values for {len(block.iter_vars)} iter vars",
                s,
            )
        self._block(block, s.iter_values, s.predicate, indent)

    def _bare_block(self, s, indent):
        self._block(s, None, None, indent)

    def _block(self, block, values, predicate, indent):
        inner = indent + INDENT
        header = f"{indent}with T.block({block.name!r}{'' if values is not None else ', no_realize=True'}):"
        self.lines.append(header)
        for k, iv in enumerate(block.iter_vars):
            args = [self.expr(iv.dom.extent)]
            if values is not None:
                args.append(self.expr(values[k]))
            dom_min = iv.dom.min
            extent_dtype = iv.dom.extent.dtype
            if not (isinstance(dom_min, E.IntImm) and dom_min.dtype == extent_dtype and dom_min.value == 0):
                args.append(f"min={self.expr(dom_min)}")
            if iv.var.dtype != extent_dtype:
                args.append(f'dtype="{iv.var.dtype}"')
            name = self.namer.define(iv.var, iv.var.name)
            self.lines.append(f"{inner}{name} = T.axis.{iv.iter_type.value}({', '.join(args)})")
        if predicate is not None and not _is_true(predicate):
            self.lines.append(f"{inner}T.where({self.expr(predicate)})")
        allocs = []
        for buf in block.alloc_buffers:
            name, decl = self.define_buffer(buf, "T.alloc_buffer")
            allocs.append(f"{inner}{name} = {decl}")
        self.lines.append(f"{inner}T.reads({self.regions(block.reads)})")
        self.lines.append(f"{inner}T.writes({self.regions(block.writes)})")
        if block.annotations:
            self.lines.append(f"{inner}T.block_attr({self.value(block.annotations)})")
        self.lines.extend(allocs)
        if block.init is not None:
            self.lines.append(f"{inner}with T.init():")
            self.stmt(block.init, inner + INDENT)
        self.stmt(block.body, inner)

    def regions(self, regions) -> str:
        return ", ".join(f"{self.name_of(r.buffer)}[{self.region(r.region)}]" for r in regions)

    def region(self, ranges) -> str:
        if not ranges:
            return "()"
        parts = []
        for rng in ranges:
            ext = rng.extent
            if isinstance(ext, E.IntImm) and ext.dtype is INT64 and ext.value == 1:
                parts.append(self.expr(rng.min))
            elif _is_zero64(rng.min):
                parts.append(f"0:{self.expr(ext)}")
            else:
                # Printed once: a Let inside would otherwise be named twice and the two copies differ.
                low, level = self.prec(rng.min)
                left = low if level >= ADD else f"({low})"
                parts.append(f"{low}:{left} + {self.operand(ext, ADD, True)}")
        return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Functions and modules
# ---------------------------------------------------------------------------------------------


def function_lines(func: PrimFunc, name: str, indent: str = "") -> list[str]:
    """The lines of `@T.prim_func def name(...)`, at `indent`."""
    p = StmtPrinter()
    for param in func.params:  # scalars first, so that a buffer shape using one refers to it
        if isinstance(param, E.Var):
            p.namer.define(param, param.name)
    params = []
    for param in func.params:
        if isinstance(param, E.Var):
            params.append(f"{p.namer.names[id(param)]}: T.{param.dtype}")
        else:
            p.implicit_dims = True
            pname, decl = p.define_buffer(param, "T.Buffer")
            p.implicit_dims = False
            params.append(f"{pname}: {decl}")
    body_indent = indent + INDENT
    attrs = f"{body_indent}T.func_attr({p.value(func.attrs)})" if func.attrs else None
    p.stmt(func.body, body_indent)
    lines = [f"{indent}@T.prim_func", f"{indent}def {name}({', '.join(params)}):"]
    for var in p.free_vars:
        lines.append(f'{body_indent}{p.namer.names[id(var)]} = T.var("{var.dtype}")')
    if attrs is not None:
        lines.append(attrs)
    lines.extend(p.lines)
    return lines


def _function_name(func: PrimFunc) -> str:
    symbol = func.attrs.get("global_symbol")
    if isinstance(symbol, str) and symbol.isidentifier() and symbol not in RESERVED:
        return symbol
    return "main"


def module_lines(mod: IRModule) -> list[str]:
    lines = [HEADER, "@I.ir_module", "class Module:"]
    if mod.attrs:
        lines.append(f"{INDENT}I.module_attrs({ExprPrinter().value(mod.attrs)})")
    metadata = None  # the graph level's table of large constants, printed after the functions
    for k, (name, func) in enumerate(mod.functions.items()):
        if name in RESERVED:
            raise UnsupportedError(
                f"function name {name!r} is a Python keyword; the text format cannot spell it"
            )
        if k:
            lines.append("")
        if isinstance(func, PrimFunc):
            lines.extend(function_lines(func, name, INDENT))
            continue
        # Imported here: the graph IR is heavier to import and most loop-level users never need it.
        from shapeflow.ir.text import graph_print  # noqa: PLC0415

        if metadata is None:
            metadata = graph_print.Metadata()
        lines.extend(graph_print.graph_function_lines(func, name, INDENT, metadata))
    if metadata is not None and metadata.entries:
        lines.append("")
        lines.extend(metadata.lines(INDENT))
    if not mod.functions and not mod.attrs:
        lines.append(f"{INDENT}pass")
    return lines


def to_text(obj) -> str:
    """The text of an IRModule, PrimFunc, statement, expression, buffer or region (fragments print their free
    variables by name)."""
    if isinstance(obj, IRModule):
        return "\n".join(module_lines(obj)) + "\n"
    if isinstance(obj, PrimFunc):
        return "\n".join([HEADER, *function_lines(obj, _function_name(obj))]) + "\n"
    p = StmtPrinter()
    if isinstance(obj, S.Stmt):
        p.stmt(obj, "")
        return "\n".join(p.lines)
    if isinstance(obj, E.PrimExpr):
        return p.expr(obj)
    if isinstance(obj, Buffer):
        return p.define_buffer(obj, "T.Buffer")[1]
    if isinstance(obj, S.BufferRegion):
        return p.regions((obj,))
    if isinstance(obj, S.Range):
        return p.region((obj,))
    if isinstance(obj, S.IterVar):
        kind = obj.iter_type.value
        return f"{p.expr(obj.var)} = T.axis.{kind}({p.expr(obj.dom.extent)}, min={p.expr(obj.dom.min)})"
    if type(obj).__module__.startswith("shapeflow.ir.graph."):
        from shapeflow.ir.text import graph_print  # noqa: PLC0415

        return graph_print.fragment_text(obj)
    raise UnsupportedError(f"the text printer cannot print {type(obj).__name__}")
