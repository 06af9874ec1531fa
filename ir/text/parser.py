"""`parse(text)`: the text format back to an IRModule or a PrimFunc (docs/text-format.md).

Python syntax errors and every semantic error become `shapeflow.errors.ParseError` with a 1-based line and
column; no other exception escapes, whatever the input.
"""

from __future__ import annotations

import ast
import gc

from shapeflow.errors import ParseError
from shapeflow.ir import expr as E
from shapeflow.ir.module import IRModule
from shapeflow.ir.text.names import dtype_of_name
from shapeflow.ir.text.parse_expr import _describe, t_name
from shapeflow.ir.text.parse_stmt import StmtParser
from shapeflow.ir.tir.function import PrimFunc


def _is_decorated(node, prefix: str, name: str) -> bool:
    if len(node.decorator_list) != 1:
        return False
    dec = node.decorator_list[0]
    return (
        dec.__class__ is ast.Attribute
        and dec.value.__class__ is ast.Name
        and dec.value.id == prefix
        and dec.attr == name
    )


class Parser(StmtParser):
    def function(self, node) -> PrimFunc:
        if node.__class__ is not ast.FunctionDef or not _is_decorated(node, "T", "prim_func"):
            raise self.error(node, "expected a function decorated with @T.prim_func or @R.function")
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            raise self.error(node, "a prim_func takes plain parameters only (no defaults, *args or **kwargs)")
        self.scope = {}
        body = node.body
        k = 0
        # `n = T.var("int32")`: free variables, declared before the parameters can mention them.
        while k < len(body) and self._is_var_decl(body[k]):
            decl = body[k]
            (dtype_node,) = self.positional(decl.value, 1)
            name = decl.targets[0].id
            if name in self.scope:
                raise self.error(decl, f"{name!r} is declared twice")
            self.scope[name] = E.Var(name, self._located(decl, self.dtype_literal, dtype_node))
            k += 1
        params: list = [None] * len(args.args)
        # Scalars first, so that a buffer shape may use one declared after it.
        for pos, arg in enumerate(args.args):
            ann = arg.annotation
            if ann is None:
                raise self.error(
                    arg, f"parameter {arg.arg!r} needs an annotation (T.Buffer(...) or T.<dtype>)"
                )
            if ann.__class__ is ast.Attribute:
                name = t_name(ann)
                dtype = dtype_of_name(name) if name else None
                if dtype is None:
                    raise self.error(ann, "a scalar parameter is annotated with a dtype, such as T.int64")
                found = self.scope.get(arg.arg)
                if found is not None:
                    if not isinstance(found, E.Var) or found.dtype != dtype:
                        raise self.error(arg, f"parameter {arg.arg!r} conflicts with its declaration")
                    params[pos] = found
                else:
                    params[pos] = self.scope[arg.arg] = E.Var(arg.arg, dtype)
        for pos, arg in enumerate(args.args):
            if params[pos] is not None:
                continue
            ann = arg.annotation
            if not (ann.__class__ is ast.Call and t_name(ann.func) == "Buffer"):
                raise self.error(ann, "a parameter is annotated with T.Buffer(shape, dtype) or T.<dtype>")
            if arg.arg in self.scope:
                raise self.error(arg, f"parameter {arg.arg!r} is defined twice")
            self.implicit_dims = True
            try:
                buf = self._located(ann, self.buffer_decl, ann, arg.arg)
            finally:
                self.implicit_dims = False
            params[pos] = self.scope[arg.arg] = buf
        attrs = {}
        if k < len(body) and self._is_t_expr(body[k], "func_attr"):
            call = body[k].value
            (attrs_node,) = self.positional(call, 1)
            attrs = self.value(attrs_node)
            if not isinstance(attrs, dict):
                raise self.error(attrs_node, "T.func_attr takes a dict")
            k += 1
        if k == len(body):
            raise self.error(node, f"function {node.name!r} has no body")
        stmt = self.body(body[k:], node)
        return self._located(node, PrimFunc, tuple(params), stmt, attrs)

    @staticmethod
    def _is_var_decl(node) -> bool:
        return (
            node.__class__ is ast.Assign
            and len(node.targets) == 1
            and node.targets[0].__class__ is ast.Name
            and node.value.__class__ is ast.Call
            and t_name(node.value.func) == "var"
        )

    @staticmethod
    def _is_t_expr(node, name: str) -> bool:
        return (
            node.__class__ is ast.Expr
            and node.value.__class__ is ast.Call
            and t_name(node.value.func) == name
        )

    def module(self, node) -> IRModule:
        if not _is_decorated(node, "I", "ir_module"):
            raise self.error(node, "expected a class decorated with @I.ir_module")
        if node.bases or node.keywords:
            raise self.error(node, "an ir_module class has no bases")
        functions: dict[str, PrimFunc] = {}
        attrs = {}
        names = {item.name for item in node.body if item.__class__ is ast.FunctionDef}
        metadata = None  # large constants of graph functions, read before the functions that use them
        for item in node.body:
            if _is_i_call(item, "metadata"):
                if metadata is not None:
                    raise self.error(item, "I.metadata appears twice")
                metadata = _graph_parse().parse_metadata(self, item.value)
        for k, item in enumerate(node.body):
            if item.__class__ is ast.Pass or _is_i_call(item, "metadata"):
                continue
            if item.__class__ is ast.Expr and item.value.__class__ is ast.Call:
                func = item.value.func
                if k == 0 and func.__class__ is ast.Attribute and func.value.__class__ is ast.Name:
                    if func.value.id == "I" and func.attr == "module_attrs":
                        (attrs_node,) = self.positional(item.value, 1)
                        self.scope = {}
                        attrs = self.value(attrs_node)
                        if not isinstance(attrs, dict):
                            raise self.error(attrs_node, "I.module_attrs takes a dict")
                        continue
            if item.__class__ is not ast.FunctionDef:
                raise self.error(
                    item,
                    "an ir_module holds @T.prim_func and @R.function functions "
                    "(I.module_attrs first, I.metadata anywhere)",
                )
            if item.name in functions:
                raise self.error(item, f"function {item.name!r} is defined twice")
            functions[item.name] = self.any_function(item, names, metadata)
        return IRModule(functions, attrs)

    def any_function(self, node, names=None, metadata=None):
        """A PrimFunc or, for `@R.function`, a graph function (its parser is loaded on first use)."""
        if node.__class__ is ast.FunctionDef and node.decorator_list:
            dec = node.decorator_list[0]
            if dec.__class__ is ast.Attribute and dec.value.__class__ is ast.Name and dec.value.id == "R":
                graph_parse = _graph_parse()
                if not graph_parse.is_graph_function(node):
                    raise self.error(dec, "expected a function decorated with @R.function")
                return graph_parse.GraphParser(self.text, self.source, names, metadata).function(node)
        return self.function(node)


def _graph_parse():
    # Imported on first use: the graph IR is heavier to import and loop-level texts never need it.
    from shapeflow.ir.text import graph_parse  # noqa: PLC0415

    return graph_parse


def _is_i_call(node, name: str) -> bool:
    if node.__class__ is not ast.Expr or node.value.__class__ is not ast.Call:
        return False
    func = node.value.func
    return (
        func.__class__ is ast.Attribute
        and func.value.__class__ is ast.Name
        and func.value.id == "I"
        and func.attr == name
    )


def parse(text: str, source: str = "<text>") -> IRModule | PrimFunc:
    """Read the text format: an `@I.ir_module class` gives an IRModule, a lone `@T.prim_func def` gives a
    PrimFunc and a lone `@R.function def` a GraphFunction. Any problem raises ParseError with the 1-based
    line and column where it is."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"the text is not UTF-8: {exc}", 1, 1, source) from None
    if not isinstance(text, str):
        raise ParseError(f"parse() takes a str, got {type(text).__name__}", None, None, source)
    # Neither the ast nor the IR built from it has cycles, and the cyclic collector, triggered again and
    # again by the hundreds of thousands of objects a large text allocates, would take most of the time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, source: str) -> IRModule | PrimFunc:
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as exc:
        raise ParseError(exc.msg, exc.lineno or 1, exc.offset or 1, source) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # ValueError: null bytes; RecursionError/MemoryError: nesting too deep for the Python parser.
        line = text.count("\n", 0, text.find("\0")) + 1 if "\0" in text else 1
        raise ParseError(f"cannot read the text: {_describe(exc)}", line, 1, source) from None
    parser = Parser(text, source)
    tops = [n for n in tree.body if not (n.__class__ is ast.Expr and n.value.__class__ is ast.Constant)]
    metadata = None
    # A lone graph function's large constants follow it: `I.metadata({...})` at the top level.
    if len(tops) == 2 and tops[0].__class__ is ast.FunctionDef and _is_i_call(tops[1], "metadata"):
        try:
            metadata = _graph_parse().parse_metadata(parser, tops[1].value)
        except ParseError:
            raise
        except Exception as exc:
            raise parser.error(tops[1], _describe(exc)) from None
        tops = tops[:1]
    if len(tops) != 1:
        where = tops[1] if len(tops) > 1 else None
        message = "expected one @I.ir_module class or one @T.prim_func or @R.function function"
        if where is None:
            raise ParseError(message, 1, 1, source)
        raise parser.error(where, message)
    top = tops[0]
    try:
        if top.__class__ is ast.ClassDef:
            return parser.module(top)
        return parser.any_function(top, None, metadata)
    except ParseError:
        raise
    except Exception as exc:  # the last guard: no raw exception escapes parse()
        raise parser.error(top, _describe(exc)) from None
