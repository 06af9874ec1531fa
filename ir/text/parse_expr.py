"""Reading expressions and attribute values of the text format from Python ast nodes.

`ast.parse` does the tokenizing; this maps each ast node to an IR node through tables keyed by ast class
and by the `T.<name>` being called, so the cost per node is a dict lookup and a constructor. Nodes are
built with their constructors directly (never through the operator overloads, which promote dtypes), so
the parsed tree is exactly the printed tree. Any exception raised while building a node becomes a
ParseError at that node's position.
"""

from __future__ import annotations

import ast

from shapeflow.errors import ParseError
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.text.names import dtype_of_name
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.intrinsics import INTRINSICS

INT64 = DataType("int64")
BOOL = DataType("bool")

_BINOPS = {
    ast.Add: E.Add,
    ast.Sub: E.Sub,
    ast.Mult: E.Mul,
    ast.Div: E.Div,
    ast.FloorDiv: E.FloorDiv,
    ast.Mod: E.FloorMod,
}
_CMPOPS = {ast.Eq: E.EQ, ast.NotEq: E.NE, ast.Lt: E.LT, ast.LtE: E.LE, ast.Gt: E.GT, ast.GtE: E.GE}
_TWO_ARG = {"truncdiv": E.Div, "truncmod": E.Mod, "min": E.Min, "max": E.Max}


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ParseError) else text


def t_name(func: ast.expr) -> str | None:
    """`name` for an ast of `T.name`, else None."""
    if func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "T":
        return func.attr
    return None


class ExprParser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.scope: dict[str, object] = {}
        self.implicit_dims = False
        self._int_cache: dict[int, E.IntImm] = {}
        self._true, self._false = E.IntImm(BOOL, 1), E.IntImm(BOOL, 0)
        self._expr_table = {
            ast.Name: self._name,
            ast.Constant: self._constant,
            ast.BinOp: self._binop,
            ast.UnaryOp: self._unary,
            ast.Compare: self._compare,
            ast.BoolOp: self._boolop,
            ast.Call: self._call,
            ast.Subscript: self._load,
            ast.Attribute: self._attribute,
        }
        self._t_calls = {
            "Select": self._select,
            "Cast": self._cast,
            "call": self._generic_call,
            "Ramp": self._ramp,
            "Broadcast": self._broadcast,
            "Let": self._let,
            "StringImm": self._string,
        }

    # -- errors ------------------------------------------------------------------------------------
    def error(self, node, message: str) -> ParseError:
        line = getattr(node, "lineno", None)
        column = getattr(node, "col_offset", None)
        if line is not None and column is not None:
            # ast columns count UTF-8 bytes; report characters, 1-based.
            lines = self.text.splitlines()
            if 0 < line <= len(lines):
                column = len(lines[line - 1].encode("utf-8")[:column].decode("utf-8", "ignore"))
            column += 1
        return ParseError(message, line, column, self.source)

    # -- scopes ------------------------------------------------------------------------------------
    def bind(self, node, name: str, obj) -> object:
        """Bind `name` to `obj`; returns what it shadowed, for `unbind`."""
        previous = self.scope.get(name)
        self.scope[name] = obj
        return previous

    def unbind(self, name: str, previous) -> None:
        if previous is None:
            self.scope.pop(name, None)
        else:
            self.scope[name] = previous

    # -- expressions -------------------------------------------------------------------------------
    def expr(self, node) -> E.PrimExpr:
        handler = self._expr_table.get(node.__class__)
        if handler is None:
            raise self.error(node, f"unsupported syntax in an expression: {type(node).__name__}")
        try:
            return handler(node)
        except ParseError:
            raise
        except Exception as exc:  # a constructor refused: report it where it happened
            raise self.error(node, _describe(exc)) from None

    def _name(self, node):
        found = self.scope.get(node.id)
        if found is None:
            if self.implicit_dims and node.id not in ("T", "I"):
                var = E.Var(node.id, INT64)
                self.scope[node.id] = var
                return var
            raise self.error(node, f"undefined name {node.id!r}")
        if found.__class__ is Buffer:
            raise self.error(node, f"buffer {node.id!r} used as a value; load from it with {node.id}[...]")
        return found

    def _constant(self, node):
        value = node.value
        if value is True or value is False:
            return self._true if value else self._false
        if value.__class__ is int:
            # Constants are immutable leaves, so one node per value serves the whole text (and saves a
            # constructor per occurrence, the largest single cost on big inputs).
            found = self._int_cache.get(value)
            if found is None:
                found = self._int_cache[value] = E.IntImm(INT64, value)
            return found
        if value.__class__ is float:
            raise self.error(node, f"a float literal needs a dtype, e.g. T.float32({value!r})")
        raise self.error(node, f"a {type(value).__name__} literal is not an expression")

    def _binop(self, node):
        cls = _BINOPS.get(node.op.__class__)
        if cls is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not part of the text format")
        return cls(self.expr(node.left), self.expr(node.right))

    def _unary(self, node):
        op = node.op.__class__
        operand = node.operand
        if op is ast.USub:
            if operand.__class__ is ast.Constant and operand.value.__class__ is int:
                return E.IntImm(INT64, -operand.value)
            value = self.expr(operand)
            return E.Sub(E.make_const(value.dtype, 0), value)
        if op is ast.Not:
            return E.Not(self.expr(operand))
        if op is ast.UAdd:
            return self.expr(operand)
        raise self.error(node, f"operator {type(node.op).__name__} is not part of the text format")

    def _compare(self, node):
        if len(node.ops) != 1:
            raise self.error(node, "chained comparisons are not part of the text format; use `and`")
        cls = _CMPOPS.get(node.ops[0].__class__)
        if cls is None:
            raise self.error(node, f"comparison {type(node.ops[0]).__name__} is not part of the text format")
        return cls(self.expr(node.left), self.expr(node.comparators[0]))

    def _boolop(self, node):
        cls = E.And if node.op.__class__ is ast.And else E.Or
        values = node.values
        out = self.expr(values[0])
        for item in values[1:]:  # `a and b and c` is And(And(a, b), c), as the printer writes it
            out = cls(out, self.expr(item))
        return out

    def buffer(self, node) -> Buffer:
        if node.__class__ is not ast.Name:
            raise self.error(node, "expected a buffer name")
        found = self.scope.get(node.id)
        if found.__class__ is not Buffer:
            raise self.error(
                node, f"{node.id!r} is not a buffer" if found else f"undefined buffer {node.id!r}"
            )
        return found

    def index_nodes(self, node) -> list:
        index = node.slice
        if index.__class__ is ast.Tuple:
            return index.elts
        return [index]

    def _load(self, node):
        buf = self.buffer(node.value)
        return E.BufferLoad(buf, tuple([self.expr(i) for i in self.index_nodes(node)]))

    def _attribute(self, node):
        if node.attr == "data" and node.value.__class__ is ast.Name:
            return self.buffer(node.value).data
        raise self.error(node, "the only attribute in expressions is a buffer's `.data`")

    # -- calls -------------------------------------------------------------------------------------
    def _call(self, node):
        name = t_name(node.func)
        if name is None:
            raise self.error(node.func, "only T.<name>(...) calls are part of the text format")
        handler = self._t_calls.get(name)
        if handler is not None:
            return handler(node)
        cls = _TWO_ARG.get(name)
        if cls is not None:
            a, b = self.positional(node, 2)
            return cls(self.expr(a), self.expr(b))
        dtype = dtype_of_name(name)
        if dtype is not None:
            return self._dtype_call(node, dtype)
        intrinsic = INTRINSICS.get(name)
        if intrinsic is not None:
            args = [self.expr(a) for a in self.positional(node, intrinsic.arity)]
            dtypes = [a.dtype for a in args]
            intrinsic.check(dtypes)
            return E.Call(intrinsic.result_dtype(dtypes), name, tuple(args))
        raise self.error(node.func, f"unknown name T.{name}")

    def positional(self, node, count: int, keywords: tuple[str, ...] = ()) -> list:
        """The positional argument nodes of a call, checking their number and the allowed keywords."""
        for kw in node.keywords:
            if kw.arg not in keywords:
                raise self.error(kw if kw.arg else node, f"unexpected keyword argument {kw.arg!r}")
        if len(node.args) != count or any(a.__class__ is ast.Starred for a in node.args):
            raise self.error(
                node, f"T.{t_name(node.func)} takes {count} positional arguments, got {len(node.args)}"
            )
        return node.args

    def keyword(self, node, name: str):
        for kw in node.keywords:
            if kw.arg == name:
                return kw.value
        return None

    def literal(self, node, kinds: tuple[type, ...], what: str):
        """A Python literal (with unary minus on numbers) of one of `kinds`."""
        value = None
        if node.__class__ is ast.Constant:
            value = node.value
        elif (
            node.__class__ is ast.UnaryOp
            and node.op.__class__ is ast.USub
            and node.operand.__class__ is ast.Constant
            and node.operand.value.__class__ in (int, float)
        ):
            value = -node.operand.value
        if value is None or not isinstance(value, kinds) or (bool not in kinds and value.__class__ is bool):
            raise self.error(node, f"expected {what}")
        return value

    def dtype_literal(self, node) -> DataType:
        return DataType(self.literal(node, (str,), 'a dtype string such as "float32"'))

    def lanes(self, node) -> int:
        return self.literal(node, (int,), "a number of lanes (an int literal)")

    def _dtype_call(self, node, dtype: DataType):
        (arg,) = self.positional(node, 1)
        if dtype.is_float:
            if arg.__class__ is ast.Constant and arg.value.__class__ is str:
                try:
                    return E.FloatImm(dtype, float(arg.value))
                except ValueError:
                    raise self.error(arg, f"not a float: {arg.value!r}") from None
            if (
                arg.__class__ is ast.Constant
                or arg.__class__ is ast.UnaryOp
                and arg.operand.__class__ is ast.Constant
            ):
                return E.FloatImm(dtype, self.literal(arg, (int, float), "a number"))
        elif (
            arg.__class__ is ast.Constant
            or arg.__class__ is ast.UnaryOp
            and arg.operand.__class__ is ast.Constant
        ):
            return E.IntImm(dtype, self.literal(arg, (int, bool), "an integer literal"))
        return E.Cast(dtype, self.expr(arg))  # T.float32(x) of a non-literal converts, as in TVMScript

    def _select(self, node):
        c, t, f = self.positional(node, 3)
        return E.Select(self.expr(c), self.expr(t), self.expr(f))

    def _cast(self, node):
        dtype, value = self.positional(node, 2)
        return E.Cast(self.dtype_literal(dtype), self.expr(value))

    def _generic_call(self, node):
        for kw in node.keywords:
            raise self.error(kw, f"unexpected keyword argument {kw.arg!r}")
        if len(node.args) < 2:
            raise self.error(
                node, 'T.call takes a dtype, an op name and the arguments: T.call("float32", "exp", x)'
            )
        op = self.literal(node.args[1], (str,), "an op name string")
        args = tuple([self.expr(a) for a in node.args[2:]])
        return E.Call(self.dtype_literal(node.args[0]), op, args)

    def _ramp(self, node):
        base, stride, lanes = self.positional(node, 3)
        return E.Ramp(self.expr(base), self.expr(stride), self.lanes(lanes))

    def _broadcast(self, node):
        value, lanes = self.positional(node, 2)
        return E.Broadcast(self.expr(value), self.lanes(lanes))

    def _string(self, node):
        (value,) = self.positional(node, 1)
        return E.StringImm(self.literal(value, (str,), "a string literal"))

    def _let(self, node):
        target, value_node, body_node = self.positional(node, 3, ("dtype",))
        if target.__class__ is not ast.Name:
            raise self.error(target, "T.Let binds a new name: T.Let(x, value, body)")
        value = self.expr(value_node)
        dtype_node = self.keyword(node, "dtype")
        var = E.Var(target.id, self.dtype_literal(dtype_node) if dtype_node is not None else value.dtype)
        previous = self.bind(target, target.id, var)
        try:
            body = self.expr(body_node)
        finally:
            self.unbind(target.id, previous)
        return E.Let(var, value, body)

    # -- attribute values ----------------------------------------------------------------------------
    def value(self, node):
        """An attribute value: Python literals become Python values; anything else is read as IR."""
        cls = node.__class__
        try:
            if cls is ast.Constant:
                if node.value is None or isinstance(node.value, (bool, int, float, str)):
                    return node.value
                raise self.error(node, f"a {type(node.value).__name__} literal cannot be an attribute value")
            if (
                cls is ast.UnaryOp
                and node.op.__class__ is ast.USub
                and node.operand.__class__ is ast.Constant
            ):
                return self.literal(node, (int, float), "a number")
            if cls is ast.Tuple:
                return tuple(self.value(x) for x in node.elts)
            if cls is ast.List:
                return [self.value(x) for x in node.elts]
            if cls is ast.Dict:
                if any(k is None for k in node.keys):
                    raise self.error(node, "`**` is not allowed in an attribute dict")
                out = {}
                for k, v in zip(node.keys, node.values):
                    key = self.value(k)
                    if isinstance(key, (E.PrimExpr, Buffer, list, dict)):
                        raise self.error(
                            k, "attribute keys must be str, int, float, bool, None or tuples of them"
                        )
                    out[key] = self.value(v)
                return out
            if cls is ast.Call and node.func.__class__ is ast.Name and node.func.id == "float":
                (arg,) = node.args
                return float(self.literal(arg, (str,), 'a string such as "inf"'))
            if cls is ast.Name:
                found = self.scope.get(node.id)
                if found.__class__ is Buffer:
                    return found
            return self.expr(node)
        except ParseError:
            raise
        except Exception as exc:
            raise self.error(node, _describe(exc)) from None
