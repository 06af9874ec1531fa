"""Reading graph functions (`@R.function`) of the module text back into graph IR (docs/text-format.md).

This file reads the statements: bindings, blocks, regions (function bodies and If branches) and functions;
types and expressions are `graph_parse_expr`'s. Nodes are built as written, and a binding without an
annotation gets the type inference gives it, as the BlockBuilder would.

One scope serves the whole function, as in Python: a name bound in a branch or block stays visible after
it, and a later binding of a name shadows the earlier one. Printed names are unique, so printed text never
relies on shadowing.
"""

from __future__ import annotations

import ast

from shapeflow.ir import expr as E
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import types as GT
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.text.graph_parse_expr import (
    GraphExprParser,
    is_graph_function,
    is_r_call,
    parse_metadata,
    r_name,
)
from shapeflow.ir.text.parse_expr import _describe, t_name


class GraphParser(GraphExprParser):
    """Parses one graph function (see GraphExprParser for `functions` and `metadata`)."""

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
        if is_r_call(value_node, "bare"):
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
            if call is not None and is_r_call(call, "dataflow", "bindings"):
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
        if dataflow and stmts and stmts[-1].__class__ is ast.Expr and is_r_call(stmts[-1].value, "output"):
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
            and is_r_call(node.items[0].context_expr, "seq")
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
        if is_r_call(value_node, "var") or t_name(getattr(value_node, "func", None)) == "var":
            raise self.error(node, "T.var declarations belong at the top of a function body")
        annotation = self.type(annotation_node) if annotation_node is not None else None
        if is_r_call(value_node, "match_cast"):
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
        if k < len(body) and body[k].__class__ is ast.Expr and is_r_call(body[k].value, "func_attr"):
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


__all__ = ["GraphParser", "is_graph_function", "parse_metadata"]
