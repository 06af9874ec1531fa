"""Reading graph-level types and expressions of the text format (docs/text-format.md).

Scalar expressions (symbolic dims, attribute values) are read by the loop level's expression parser, which
this parser extends; graph expressions dispatch on the ast class and then on the `R.<name>` they call, and
`R.<op>` falls through to the op registry, so every registered op parses without an entry here. Op calls go
through `make_call` (attributes checked, defaults filled in). A name first met in a type is a new int64
symbolic variable.
"""

from __future__ import annotations

import ast
import base64
import binascii

import numpy as np

from shapeflow.errors import ParseError
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import types as GT
from shapeflow.ir.graph.ops.registry import get_op, get_op_def, is_registered, make_call
from shapeflow.ir.text.parse_expr import _describe
from shapeflow.ir.text.parse_stmt import StmtParser


def r_name(func) -> str | None:
    """`name` for an ast of `R.name`, else None."""
    if func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "R":
        return func.attr
    return None


def is_r_call(node, *names: str) -> bool:
    return node.__class__ is ast.Call and r_name(node.func) in names


def is_graph_function(node) -> bool:
    """Whether a module item is `@R.function def ...`."""
    return (
        node.__class__ is ast.FunctionDef
        and len(node.decorator_list) == 1
        and r_name(node.decorator_list[0]) == "function"
    )


class GraphExprParser(StmtParser):
    """Graph types and expressions of one function. `functions` (the module's function names) checks
    `Module.f` references; `metadata` holds the constants `R.const_ref("c0")` names."""

    def __init__(self, text: str, source: str, functions=None, metadata=None) -> None:
        super().__init__(text, source)
        self.functions = functions
        self.metadata = metadata if metadata is not None else {}
        self._graph_table = {
            ast.Name: self._graph_name,
            ast.Tuple: lambda node: G.Tuple(tuple([self.gexpr(f) for f in node.elts])),
            ast.Subscript: self._tuple_get_item,
            ast.Attribute: self._global_name,
            ast.Call: self._graph_call,
        }
        self._r_calls = {
            "const": self._const,
            "const_ref": self._const_ref,
            "prim_value": lambda node: G.PrimValue(self.expr(self.positional(node, 1)[0])),
            "shape": self._shape_expr,
            "extern": lambda node: G.ExternFunc(self._string_arg(node, "a function name")),
            "op": lambda node: self._op_node(self._string_arg(node, "an op name")),
            "call_op": self._call_op,
            "If": self._if_expr,
        }
        self._type_table = {
            "Tensor": self._tensor_type,
            "Shape": self._shape_type,
            "Tuple": lambda node: GT.TupleType(
                tuple([self.type(f) for f in self.positional(node, len(node.args))])
            ),
            "Prim": lambda node: GT.PrimType(self.dtype_literal(self.positional(node, 1)[0])),
            "Callable": self._func_type,
        }

    def positional(self, node, count: int, keywords: tuple[str, ...] = ()) -> list:
        """As the loop level's, with the message naming `R.<name>` calls by their own prefix."""
        name = r_name(node.func)
        if name is None:
            return super().positional(node, count, keywords)
        for kw in node.keywords:
            if kw.arg not in keywords:
                raise self.error(kw if kw.arg else node, f"unexpected keyword argument {kw.arg!r}")
        if len(node.args) != count or any(a.__class__ is ast.Starred for a in node.args):
            raise self.error(node, f"R.{name} takes {count} positional arguments, got {len(node.args)}")
        return node.args

    # -- names -------------------------------------------------------------------------------------
    def _name(self, node):
        found = self.scope.get(node.id)
        if isinstance(found, G.GraphVar):
            raise self.error(
                node, f"{node.id!r} is a graph variable, not a scalar; R.prim_value holds scalars"
            )
        return super()._name(node)

    def _graph_name(self, node):
        found = self.scope.get(node.id)
        if found is None:
            raise self.error(node, f"undefined name {node.id!r}")
        if not isinstance(found, G.GraphVar):
            raise self.error(
                node, f"{node.id!r} is a symbolic variable; use R.prim_value({node.id}) as a value"
            )
        return found

    # -- types -------------------------------------------------------------------------------------
    def type(self, node) -> GT.Type:
        """A type; a name first met in it is a new int64 symbolic variable defined there."""
        saved, self.implicit_dims = self.implicit_dims, True
        try:
            return self._located(node, self._type, node)
        finally:
            self.implicit_dims = saved

    def _type(self, node):
        if r_name(node) == "Object":
            return GT.ObjectType()
        name = r_name(node.func) if node.__class__ is ast.Call else None
        handler = self._type_table.get(name)
        if handler is None:
            raise self.error(
                node, "expected a type: R.Tensor, R.Shape, R.Tuple, R.Prim, R.Object or R.Callable"
            )
        return handler(node)

    def _keywords(self, node, allowed: tuple[str, ...]) -> dict:
        out = {}
        for kw in node.keywords:
            if kw.arg not in allowed:
                raise self.error(kw if kw.arg else node, f"unexpected keyword argument {kw.arg!r}")
            out[kw.arg] = kw.value
        return out

    def _ndim(self, node) -> int:
        return self.literal(node, (int,), "a rank (an int literal)")

    def _tensor_type(self, node):
        kws = self._keywords(node, ("ndim", "dtype"))
        if len(node.args) > 2:
            raise self.error(node, "R.Tensor takes (shape, dtype) or keywords ndim= and dtype=")
        shape = None
        if node.args:
            shape_node = node.args[0]
            if shape_node.__class__ not in (ast.Tuple, ast.List):
                raise self.error(shape_node, "a tensor shape is a tuple, such as (n, 4)")
            shape = tuple([self.expr(d) for d in shape_node.elts])
        dtype_node = node.args[1] if len(node.args) == 2 else kws.get("dtype")
        if len(node.args) == 2 and "dtype" in kws:
            raise self.error(node, "R.Tensor: dtype given twice")
        dtype = self.dtype_literal(dtype_node) if dtype_node is not None else None
        ndim = self._ndim(kws["ndim"]) if "ndim" in kws else -1
        return GT.TensorType(shape, dtype, ndim)

    def _shape_type(self, node):
        kws = self._keywords(node, ("ndim",))
        if len(node.args) > 1:
            raise self.error(node, "R.Shape takes a list of dims, or ndim=")
        values = tuple(self._dim_list(node.args[0])) if node.args else None
        ndim = self._ndim(kws["ndim"]) if "ndim" in kws else -1
        return GT.ShapeType(values, ndim)

    def _func_type(self, node):
        params_node, ret_node = self.positional(node, 2)
        if params_node.__class__ not in (ast.Tuple, ast.List):
            raise self.error(params_node, "R.Callable takes a tuple of parameter types and a return type")
        return GT.FuncType(tuple([self.type(p) for p in params_node.elts]), self.type(ret_node))

    def _dim_list(self, node) -> list:
        if node.__class__ not in (ast.Tuple, ast.List):
            raise self.error(node, "expected a list of dims, such as [n, 4]")
        return [self.expr(d) for d in node.elts]

    # -- expressions -------------------------------------------------------------------------------
    def gexpr(self, node) -> G.Expr:
        handler = self._graph_table.get(node.__class__)
        if handler is None:
            raise self.error(node, f"unsupported syntax in a graph expression: {type(node).__name__}")
        return self._located(node, handler, node)

    def _tuple_get_item(self, node):
        index = node.slice
        return G.TupleGetItem(self.gexpr(node.value), self.literal(index, (int,), "a tuple index (an int)"))

    def _global_name(self, node):
        if node.value.__class__ is not ast.Name or node.value.id != "Module":
            raise self.error(node, "a function of the module is spelled Module.<name>")
        if self.functions is not None and node.attr not in self.functions:
            raise self.error(node, f"the module has no function {node.attr!r}")
        return G.GlobalName(node.attr)

    def _string_arg(self, node, what: str) -> str:
        (arg,) = self.positional(node, 1)
        return self.literal(arg, (str,), what)

    @staticmethod
    def _op_node(name: str) -> G.Op:
        return get_op(name) if is_registered(name) else G.Op(name)

    def _shape_expr(self, node):
        (values,) = self.positional(node, 1)
        return G.ShapeExpr(tuple(self._dim_list(values)))

    def _const(self, node):
        value_node, dtype_node = self.positional(node, 2)
        dtype = self.dtype_literal(dtype_node)
        try:
            value = ast.literal_eval(value_node)
        except ValueError:
            raise self.error(value_node, "R.const takes a number or nested lists of numbers") from None
        array = np.array(value, dtype=to_numpy_dtype(dtype))
        if array.dtype == object:
            raise self.error(value_node, "R.const takes a number or nested lists of numbers")
        return G.Constant.from_array(array)

    def _const_ref(self, node):
        name = self._string_arg(node, "a metadata entry name")
        found = self.metadata.get(name)
        if found is None:
            raise self.error(node, f"no constant {name!r} in I.metadata")
        return found

    def _if_expr(self, node):
        cond, then_node, else_node = self.positional(node, 3)
        return G.If(self.gexpr(cond), self.gexpr(then_node), self.gexpr(else_node))

    def _graph_call(self, node):
        name = r_name(node.func)
        if name is None:
            callee = self.gexpr(node.func)
            kws = self._keywords(node, ("type_args", "attrs"))
            args = tuple([self.gexpr(a) for a in node.args])
            attrs = self.value(kws["attrs"]) if "attrs" in kws else {}
            if not isinstance(attrs, dict):
                raise self.error(kws["attrs"], "attrs= takes a dict")
            return G.Call(callee, args, attrs, self._type_args(kws.get("type_args")))
        handler = self._r_calls.get(name)
        if handler is not None:
            return handler(node)
        if name in ("match_cast", "bare"):
            raise self.error(node, f"R.{name} belongs at the top of a binding's or a return's value")
        if name in self._type_table or name == "Object":
            raise self.error(node, f"R.{name} is a type, not a value")
        if not is_registered(name):
            raise self.error(node.func, f"unknown name R.{name} (not a graph op)")
        return self._op_call(node, name, node.args)

    def _call_op(self, node):
        if not node.args:
            raise self.error(node, 'R.call_op takes the op name first: R.call_op("name", ...)')
        name = self.literal(node.args[0], (str,), "an op name string")
        return self._op_call(node, name, node.args[1:])

    def _type_args(self, node) -> tuple:
        if node is None:
            return ()
        if node.__class__ not in (ast.Tuple, ast.List):
            raise self.error(node, "type_args= takes a tuple of types")
        return tuple([self.type(t) for t in node.elts])

    def _op_call(self, node, name: str, arg_nodes):
        op_def = get_op_def(name)
        attr_names = [a.name for a in op_def.attrs]
        max_args = op_def.num_args if isinstance(op_def.num_args, int) else op_def.num_args[1]
        if max_args is not None and len(arg_nodes) > max_args:
            # Extra positional arguments fill the attributes in order, as in `op.<name>(...)`.
            operands, extra = arg_nodes[:max_args], arg_nodes[max_args:]
        else:
            operands, extra = arg_nodes, []
        if len(extra) > len(attr_names):
            raise self.error(
                node, f"op {name!r} takes at most {max_args} operands and {len(attr_names)} attributes"
            )
        attrs = {}
        for attr, value_node in zip(attr_names, extra):
            attrs[attr] = self.value(value_node)
        type_args: tuple = ()
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(node, "`**` is not allowed in a call")
            if kw.arg in attrs:
                raise self.error(kw, f"attribute {kw.arg!r} given twice")
            if kw.arg not in attr_names and kw.arg in ("out", "type_args"):
                type_args = (self.type(kw.value),) if kw.arg == "out" else self._type_args(kw.value)
            else:
                attrs[kw.arg] = self.value(kw.value)
        args = [self.gexpr(a) for a in operands]
        return self._located(node, make_call, name, args, attrs, type_args)


def parse_metadata(parser, call) -> dict[str, G.Constant]:
    """The constants of `I.metadata({"c0": ("float32", (768, 3072), "<base64>"), ...})`."""
    (table_node,) = parser.positional(call, 1)
    try:
        table = ast.literal_eval(table_node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise parser.error(table_node, "I.metadata takes a dict of literals") from None
    if not isinstance(table, dict):
        raise parser.error(table_node, "I.metadata takes a dict")
    out = {}
    for key, value_node in zip(table_node.keys, table_node.values):
        name = ast.literal_eval(key) if key is not None else None
        entry = table[name]
        if not isinstance(name, str) or not (isinstance(entry, tuple) and len(entry) == 3):
            raise parser.error(value_node, 'a metadata entry is "name": (dtype, shape, base64 data)')
        dtype, shape, data = entry
        try:
            if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(f"bad shape {shape!r}")
            raw = base64.b64decode(data.encode("ascii"), validate=True)
            out[name] = G.Constant(raw, shape, DataType(dtype))
        except ParseError:
            raise
        except (binascii.Error, AttributeError, UnicodeEncodeError) as exc:
            raise parser.error(value_node, f"bad base64 data: {exc}") from None
        except Exception as exc:
            raise parser.error(value_node, _describe(exc)) from None
    return out


__all__ = ["GraphExprParser", "is_graph_function", "is_r_call", "parse_metadata", "r_name"]
