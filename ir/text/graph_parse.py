"""Reading graph functions (`@R.function`) of the module text back into graph IR (docs/text-format.md).

Scalar expressions (symbolic dims, attribute values) are read by the loop level's expression parser, which
this parser extends; graph expressions dispatch on the ast class and then on the `R.<name>` they call, and
`R.<op>` falls through to the op registry, so every registered op parses without an entry here. Nodes are
built as written: op calls go through `make_call` (attributes checked, defaults filled in), and a binding
without an annotation gets the type inference gives it, as the BlockBuilder would.

One scope serves the whole function, as in Python: a name bound in a branch or block stays visible after
it, and a later binding of a name shadows the earlier one. Printed names are unique, so printed text never
relies on shadowing.
"""

from __future__ import annotations

import ast
import base64
import binascii

import numpy as np

from shapeflow.errors import ParseError
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import types as GT
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops.registry import get_op, get_op_def, is_registered, make_call
from shapeflow.ir.text.parse_expr import _describe, t_name
from shapeflow.ir.text.parse_stmt import StmtParser


def r_name(func) -> str | None:
    """`name` for an ast of `R.name`, else None."""
    if func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "R":
        return func.attr
    return None


def _is_r_call(node, *names: str) -> bool:
    return node.__class__ is ast.Call and r_name(node.func) in names


def is_graph_function(node) -> bool:
    """Whether a module item is `@R.function def ...`."""
    return (
        node.__class__ is ast.FunctionDef
        and len(node.decorator_list) == 1
        and r_name(node.decorator_list[0]) == "function"
    )


class GraphParser(StmtParser):
    """Parses one graph function. `functions` (the module's function names) checks `Module.f`
    references; `metadata` holds the constants `R.const_ref("c0")` names."""

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

    # -- bindings, blocks, regions -------------------------------------------------------------------
    def region(self, stmts: list, owner, target: str | None, annotations: list) -> G.Expr:
        """A function body (target None: ends in `return`) or an If branch (ends in `target = ...`)."""
        if not stmts:
            raise self.error(owner, "expected at least one statement here")
        if len(stmts) == 1 and stmts[0].__class__ is ast.If:
            node = stmts[0]
            if not node.orelse:
                raise self.error(node, "an if in a graph function needs an else branch")
            cond = self.gexpr(node.test)
            then_branch = self.region(node.body, node, target, annotations)
            else_branch = self.region(node.orelse, node, target, annotations)
            return G.If(cond, then_branch, else_branch)
        blocks = self.blocks(stmts[:-1])
        last = stmts[-1]
        value_node = self._terminator(last, target, annotations)
        if _is_r_call(value_node, "bare"):
            if blocks:
                raise self.error(
                    value_node, "R.bare(...) is a whole branch or body, with no bindings before it"
                )
            (inner,) = self.positional(value_node, 1)
            return self.gexpr(inner)
        return G.SeqExpr(tuple(blocks), self.gexpr(value_node))

    def _terminator(self, node, target: str | None, annotations: list):
        if target is None:
            if node.__class__ is not ast.Return or node.value is None:
                raise self.error(node, "a graph function's body ends with `return value`")
            return node.value
        name, annotation, value = self._assignment(node)
        if name != target:
            raise self.error(node, f"each branch ends by assigning {target!r}")
        if annotation is not None:
            annotations.append(self.type(annotation))
        return value

    def _assignment(self, node):
        """(name, annotation node or None, value node) of `x = v` or `x: T = v`."""
        if node.__class__ is ast.Assign and len(node.targets) == 1 and node.targets[0].__class__ is ast.Name:
            return node.targets[0].id, None, node.value
        if node.__class__ is ast.AnnAssign and node.target.__class__ is ast.Name and node.value is not None:
            return node.target.id, node.annotation, node.value
        raise self.error(node, "expected a binding `name = value` or `name: type = value`")

    def blocks(self, stmts: list) -> list:
        blocks, current = [], []
        for s in stmts:
            call = s.items[0].context_expr if s.__class__ is ast.With and len(s.items) == 1 else None
            if call is not None and _is_r_call(call, "dataflow", "bindings"):
                self.positional(call, 0)
                if s.items[0].optional_vars is not None:
                    raise self.error(s, "this with statement binds no name")
                if current:
                    blocks.append(G.BindingBlock(tuple(current)))
                    current = []
                dataflow = r_name(call.func) == "dataflow"
                bindings = self.bindings(s.body, dataflow)
                blocks.append((G.DataflowBlock if dataflow else G.BindingBlock)(tuple(bindings)))
            else:
                current.append(self.binding(s, None))
        if current:
            blocks.append(G.BindingBlock(tuple(current)))
        return blocks

    def bindings(self, stmts: list, dataflow: bool) -> list:
        outputs = None
        if dataflow and stmts and stmts[-1].__class__ is ast.Expr and _is_r_call(stmts[-1].value, "output"):
            call = stmts[-1].value
            self.positional(call, len(call.args))
            outputs = {}
            for arg in call.args:
                if arg.__class__ is not ast.Name:
                    raise self.error(arg, "R.output takes the names of the block's outputs")
                outputs[arg.id] = arg
            stmts = stmts[:-1]
        out = []
        bound = set()
        for s in stmts:
            if s.__class__ is ast.Pass:
                continue
            b = self.binding(s, outputs if dataflow else None, dataflow)
            bound.add(b.var.name)
            out.append(b)
        for name, arg in (outputs or {}).items():
            if name not in bound:
                raise self.error(arg, f"R.output names {name!r}, which the block does not bind")
        return out

    def binding(self, node, outputs, dataflow: bool = False) -> G.Binding:
        if node.__class__ is ast.If:
            target = _if_target(node)
            if target is None:
                raise self.error(node, "an if binding ends each branch by assigning one name")
            annotations: list = []
            value = self.region([node], node, target, annotations)
            return self._bind(node, target, annotations[0] if annotations else None, value, dataflow, outputs)
        if (
            node.__class__ is ast.With
            and len(node.items) == 1
            and _is_r_call(node.items[0].context_expr, "seq")
        ):
            self.positional(node.items[0].context_expr, 0)
            last = node.body[-1]
            target = self._assignment(last)[0] if last.__class__ in (ast.Assign, ast.AnnAssign) else None
            if target is None:
                raise self.error(last, "with R.seq() ends by assigning its value to a name")
            annotations = []
            value = self.region(node.body, node, target, annotations)
            return self._bind(node, target, annotations[0] if annotations else None, value, dataflow, outputs)
        if node.__class__ is ast.With:
            raise self.error(node, "expected with R.dataflow(), R.bindings() or R.seq()")
        if node.__class__ is ast.Return:
            raise self.error(node, "return ends a function's body; no bindings may follow it")
        name, annotation_node, value_node = self._assignment(node)
        if _is_r_call(value_node, "var") or t_name(getattr(value_node, "func", None)) == "var":
            raise self.error(node, "T.var declarations belong at the top of a function body")
        annotation = self.type(annotation_node) if annotation_node is not None else None
        if _is_r_call(value_node, "match_cast"):
            value_arg, type_node = self.positional(value_node, 2)
            value = self.gexpr(value_arg)
            cast = self.type(type_node)
            var = self._new_var(name, annotation if annotation is not None else cast, dataflow, outputs)
            self.bind(node, name, var)
            return G.MatchCast(var, value, cast)
        value = self.gexpr(value_node)
        return self._bind(node, name, annotation, value, dataflow, outputs)

    def _bind(self, node, name: str, annotation, value, dataflow: bool, outputs) -> G.VarBinding:
        if annotation is None:
            try:
                annotation = type_of(value)
            except Exception as exc:
                raise self.error(
                    node, f"cannot infer the type of {name!r} ({_describe(exc)}); annotate it"
                ) from None
        var = self._new_var(name, annotation, dataflow, outputs)
        self.bind(node, name, var)
        return G.VarBinding(var, value)

    @staticmethod
    def _new_var(name: str, t, dataflow: bool, outputs) -> G.GraphVar:
        if dataflow and (outputs is None or name not in outputs):
            return G.DataflowVar(name, t)
        return G.GraphVar(name, t)

    # -- functions ---------------------------------------------------------------------------------
    def function(self, node) -> G.GraphFunction:
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            raise self.error(
                node, "a graph function takes plain parameters only (no defaults, *args or **kwargs)"
            )
        self.scope = {}
        body = node.body
        k = 0
        while k < len(body) and _is_var_decl(body[k]):
            decl = body[k]
            (dtype_node,) = self.positional(decl.value, 1)
            name = decl.targets[0].id
            if name in self.scope:
                raise self.error(decl, f"{name!r} is declared twice")
            self.scope[name] = E.Var(name, self._located(decl, self.dtype_literal, dtype_node))
            k += 1
        params = []
        for arg in args.args:
            if arg.annotation is None:
                raise self.error(
                    arg, f'parameter {arg.arg!r} needs a type annotation, such as R.Tensor((n, 4), "float32")'
                )
            t = self.type(arg.annotation)
            if arg.arg in self.scope:
                raise self.error(arg, f"parameter {arg.arg!r} is defined twice")
            params.append(G.GraphVar(arg.arg, t))
            self.scope[arg.arg] = params[-1]
        attrs = {}
        if k < len(body) and body[k].__class__ is ast.Expr and _is_r_call(body[k].value, "func_attr"):
            (attrs_node,) = self.positional(body[k].value, 1)
            attrs = self.value(attrs_node)
            if not isinstance(attrs, dict):
                raise self.error(attrs_node, "R.func_attr takes a dict")
            k += 1
        if k == len(body):
            raise self.error(node, f"function {node.name!r} has no body")
        result = self.region(body[k:], node, None, [])
        if node.returns is not None:
            ret = self.type(node.returns)
        else:
            try:
                ret = type_of(result)
            except Exception:
                ret = GT.ObjectType()
        return self._located(node, G.GraphFunction, tuple(params), result, ret, attrs)


def _is_var_decl(node) -> bool:
    return (
        node.__class__ is ast.Assign
        and len(node.targets) == 1
        and node.targets[0].__class__ is ast.Name
        and node.value.__class__ is ast.Call
        and t_name(node.value.func) == "var"
    )


def _if_target(node) -> str | None:
    """The name an if binding assigns: the target of the last statement of its first branch (descending
    through branches that are themselves a single if)."""
    while node.__class__ is ast.If:
        if not node.body:
            return None
        last = node.body[-1]
        if len(node.body) == 1 and last.__class__ is ast.If:
            node = last
            continue
        node = last
    if node.__class__ is ast.Assign and len(node.targets) == 1 and node.targets[0].__class__ is ast.Name:
        return node.targets[0].id
    if node.__class__ is ast.AnnAssign and node.target.__class__ is ast.Name:
        return node.target.id
    return None


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


__all__ = ["GraphParser", "is_graph_function", "parse_metadata"]
