"""Reading statements, functions and modules of the text format from Python ast nodes.

Statement nodes dispatch on their ast class; `with` statements and expression statements then dispatch on
the `T.<name>` they call. A name binds for the lexical extent of the construct that defines it (a `for`
body, a `with` body, a block), so shadowing in hand-written text behaves as in Python.
"""

from __future__ import annotations

import ast

from shapeflow.errors import ParseError
from shapeflow.ir import expr as E
from shapeflow.ir.text.parse_expr import BOOL, INT64, ExprParser, _describe, t_name
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer

_BUFFER_KEYWORDS = ("strides", "elem_offset", "scope", "align", "data")
_HEADER_CALLS = ("where", "reads", "writes", "block_attr")


def _is_t_call(node, *names: str) -> bool:
    return node.__class__ is ast.Call and t_name(node.func) in names


class StmtParser(ExprParser):
    def __init__(self, text: str, source: str) -> None:
        super().__init__(text, source)
        self._stmt_table = {
            ast.Assign: self._assign,
            ast.AugAssign: self._aug_assign,
            ast.Expr: self._expr_stmt,
            ast.With: self._with,
            ast.For: self._for,
            ast.If: self._if,
            ast.Pass: lambda node: S.no_op(),
        }
        self._with_table = {
            "let": self._let_stmt,
            "allocate": self._allocate,
            "decl_buffer": self._decl_buffer,
            "block": self._block,
        }

    # -- statement lists ---------------------------------------------------------------------------
    def body(self, nodes: list, owner) -> S.Stmt:
        if not nodes:
            raise self.error(owner, "expected at least one statement here")
        if len(nodes) == 1:
            return self.stmt(nodes[0])
        return S.SeqStmt(tuple([self.stmt(n) for n in nodes]))

    def stmt(self, node) -> S.Stmt:
        handler = self._stmt_table.get(node.__class__)
        if handler is None:
            raise self.error(node, f"unsupported statement: {type(node).__name__}")
        try:
            return handler(node)
        except ParseError:
            raise
        except Exception as exc:
            raise self.error(node, _describe(exc)) from None

    # -- simple statements -------------------------------------------------------------------------
    def _assign(self, node):
        if len(node.targets) != 1 or node.targets[0].__class__ is not ast.Subscript:
            if (
                _is_t_call(node.value, "alloc_buffer")
                or isinstance(node.value, ast.Call)
                and (
                    node.value.func.__class__ is ast.Attribute
                    and node.value.func.value.__class__ is ast.Attribute
                )
            ):
                raise self.error(node, "block axes and T.alloc_buffer belong at the top of a T.block")
            if _is_t_call(node.value, "var"):
                raise self.error(node, "T.var declarations belong at the top of a function body")
            raise self.error(node, "the only assignment is a buffer store: A[i] = value")
        target = node.targets[0]
        buf = self.buffer(target.value)
        indices = tuple([self.expr(i) for i in self.index_nodes(target)])
        return S.BufferStore(buf, self.expr(node.value), indices)

    def _aug_assign(self, node):
        target = node.target
        if target.__class__ is not ast.Subscript:
            raise self.error(node, "the only assignment is a buffer store: A[i] += value")
        load = self._load(target)
        value = ast.BinOp(left=target, op=node.op, right=node.value)
        ast.copy_location(value, node)
        cls_value = self._binop(value)
        return S.BufferStore(load.buffer, cls_value, load.indices)

    def _expr_stmt(self, node):
        call = node.value
        name = t_name(call.func) if call.__class__ is ast.Call else None
        if name == "evaluate":
            (value,) = self.positional(call, 1)
            return S.Evaluate(self.expr(value))
        if name == "Assert":
            cond, message = self.positional(call, 2)
            return S.AssertStmt(self.expr(cond), self.literal(message, (str,), "a message string"))
        if name in _HEADER_CALLS or name == "func_attr":
            raise self.error(
                node, f"T.{name} belongs at the top of a {'function' if name == 'func_attr' else 'block'}"
            )
        raise self.error(node, "an expression statement must be T.evaluate(...) or T.Assert(...)")

    def _if(self, node):
        cond = self.expr(node.test)
        then_case = self.body(node.body, node)
        else_case = self.body(node.orelse, node) if node.orelse else None
        return S.IfThenElse(cond, then_case, else_case)

    def _for(self, node):
        if node.orelse:
            raise self.error(node, "for ... else is not part of the text format")
        if node.target.__class__ is not ast.Name:
            raise self.error(node.target, "a loop binds one name")
        call = node.iter
        kind = t_name(call.func) if call.__class__ is ast.Call else None
        if kind not in ("serial", "parallel", "vectorized", "unroll", "thread_binding"):
            raise self.error(
                call, "a loop iterates over T.serial/parallel/vectorized/unroll/thread_binding(...)"
            )
        allowed = ("annotations", "dtype", "thread") if kind == "thread_binding" else ("annotations", "dtype")
        for kw in call.keywords:
            if kw.arg not in allowed:
                raise self.error(kw if kw.arg else call, f"unexpected keyword argument {kw.arg!r}")
        if len(call.args) == 2:
            lo, extent = self.expr(call.args[0]), self.expr(call.args[1])
        elif len(call.args) == 1:
            extent = self.expr(call.args[0])
            lo = E.IntImm(extent.dtype, 0)
        else:
            raise self.error(call, f"T.{kind} takes (min, extent) or (extent)")
        thread = self.keyword(call, "thread")
        thread_tag = self.literal(thread, (str,), "a thread tag string") if thread is not None else ""
        annotations_node = self.keyword(call, "annotations")
        annotations = self.value(annotations_node) if annotations_node is not None else {}
        if not isinstance(annotations, dict):
            raise self.error(annotations_node, "annotations must be a dict")
        dtype_node = self.keyword(call, "dtype")
        dtype = self.dtype_literal(dtype_node) if dtype_node is not None else lo.dtype
        name = node.target.id
        var = E.Var(name, dtype)
        previous = self.bind(node.target, name, var)
        try:
            body = self.body(node.body, node)
        finally:
            self.unbind(name, previous)
        return S.For(var, lo, extent, S.ForKind(kind), body, thread_tag, annotations)

    # -- with statements ---------------------------------------------------------------------------
    def _with(self, node):
        if len(node.items) != 1:
            raise self.error(node, "a with statement takes one T.<name>(...) item")
        item = node.items[0]
        call = item.context_expr
        name = t_name(call.func) if call.__class__ is ast.Call else None
        handler = self._with_table.get(name)
        if handler is None:
            if name == "init":
                raise self.error(node, "with T.init() belongs at the top of a T.block")
            raise self.error(call, "expected with T.block/let/allocate/decl_buffer(...)")
        target = item.optional_vars
        if name == "block":
            if target is not None:
                raise self.error(target, "with T.block(...) binds no name")
        elif target is None or target.__class__ is not ast.Name:
            raise self.error(node, f"with T.{name}(...) must bind one name: `as x`")
        return handler(node, call, target)

    def _scoped_body(self, node, target, obj):
        previous = self.bind(target, target.id, obj)
        try:
            return self.body(node.body, node)
        finally:
            self.unbind(target.id, previous)

    def _let_stmt(self, node, call, target):
        (value_node,) = self.positional(call, 1, ("dtype",))
        value = self.expr(value_node)
        dtype_node = self.keyword(call, "dtype")
        var = E.Var(target.id, self.dtype_literal(dtype_node) if dtype_node is not None else value.dtype)
        return S.LetStmt(var, value, self._scoped_body(node, target, var))

    def _allocate(self, node, call, target):
        buf = self.buffer_decl(call, target.id)
        return S.Allocate(buf, self._scoped_body(node, target, buf))

    def _decl_buffer(self, node, call, target):
        buf = self.buffer_decl(call, target.id)
        return S.DeclBuffer(buf, self._scoped_body(node, target, buf))

    def buffer_decl(self, call, name: str) -> Buffer:
        """A Buffer from `T.Buffer/allocate/alloc_buffer/decl_buffer(shape, dtype, **keywords)`."""
        for kw in call.keywords:
            if kw.arg not in _BUFFER_KEYWORDS:
                raise self.error(kw if kw.arg else call, f"unexpected keyword argument {kw.arg!r}")
        if not 1 <= len(call.args) <= 2:
            raise self.error(call, "a buffer declaration takes (shape, dtype) and keywords")
        shape = self.dims(call.args[0])
        dtype = self.dtype_literal(call.args[1]) if len(call.args) == 2 else "float32"
        strides_node = self.keyword(call, "strides")
        strides = self.dims(strides_node) if strides_node is not None else ()
        offset_node = self.keyword(call, "elem_offset")
        elem_offset = self.expr(offset_node) if offset_node is not None else E.IntImm(INT64, 0)
        scope_node = self.keyword(call, "scope")
        scope = self.literal(scope_node, (str,), "a scope string") if scope_node is not None else "global"
        align_node = self.keyword(call, "align")
        align = self.literal(align_node, (int,), "an int alignment") if align_node is not None else 64
        data_node = self.keyword(call, "data")
        data = None
        if data_node is not None:
            data = self.expr(data_node)
            if not isinstance(data, E.Var):
                raise self.error(data_node, "data= must be a variable, such as A.data")
        return Buffer(name, shape, dtype, strides, elem_offset, scope, data, align)

    def dims(self, node) -> tuple:
        if node.__class__ in (ast.Tuple, ast.List):
            return tuple([self.expr(d) for d in node.elts])
        return (self.expr(node),)

    # -- blocks ------------------------------------------------------------------------------------
    def _block(self, node, call, target):
        for kw in call.keywords:
            if kw.arg != "no_realize":
                raise self.error(kw if kw.arg else call, f"unexpected keyword argument {kw.arg!r}")
        (name_node,) = self.positional(call, 1, ("no_realize",))
        name = self.literal(name_node, (str,), "a block name string")
        realize_node = self.keyword(call, "no_realize")
        realize = not (realize_node is not None and self.literal(realize_node, (bool,), "True or False"))
        saved = dict(self.scope)
        try:
            return self._block_contents(node, name, realize)
        finally:
            self.scope = saved

    def _block_contents(self, node, name: str, realize: bool):
        iter_vars, values, deferred, allocs, init_node = [], [], {}, [], None
        stmts = node.body
        k = 0
        # Header: axes and allocations bind as they come; the rest waits until all names are bound.
        while k < len(stmts):
            s = stmts[k]
            if s.__class__ is ast.Assign and len(s.targets) == 1 and s.targets[0].__class__ is ast.Name:
                target, value = s.targets[0], s.value
                if _is_t_call(value, "alloc_buffer"):
                    allocs.append(self._located(s, self.buffer_decl, value, target.id))
                    self.bind(target, target.id, allocs[-1])
                elif value.__class__ is ast.Call and self._axis_kind(value.func) is not None:
                    iv, bound = self._located(s, self._axis, value, target.id, realize)
                    iter_vars.append(iv)
                    values.append(bound)
                    self.bind(target, target.id, iv.var)
                else:
                    break
            elif s.__class__ is ast.Expr and _is_t_call(s.value, *_HEADER_CALLS):
                which = t_name(s.value.func)
                if which in deferred:
                    raise self.error(s, f"T.{which} appears twice in one block")
                deferred[which] = s.value
            elif (
                s.__class__ is ast.With and len(s.items) == 1 and _is_t_call(s.items[0].context_expr, "init")
            ):
                if init_node is not None:
                    raise self.error(s, "with T.init() appears twice in one block")
                self.positional(s.items[0].context_expr, 0)
                init_node = s
            else:
                break
            k += 1
        if k == len(stmts):
            raise self.error(node, f"block {name!r} has no body")
        predicate = E.IntImm(BOOL, 1)
        if "where" in deferred:
            (cond,) = self.positional(deferred["where"], 1)
            predicate = self.expr(cond)
        if not realize and "where" in deferred:
            raise self.error(deferred["where"], "a block with no_realize=True has no predicate")
        reads = self._regions(deferred.get("reads"))
        writes = self._regions(deferred.get("writes"))
        annotations = {}
        if "block_attr" in deferred:
            (attrs_node,) = self.positional(deferred["block_attr"], 1)
            annotations = self.value(attrs_node)
            if not isinstance(annotations, dict):
                raise self.error(attrs_node, "T.block_attr takes a dict")
        init = self.body(init_node.body, init_node) if init_node is not None else None
        body = self.body(stmts[k:], node)
        block = S.Block(name, tuple(iter_vars), reads, writes, body, init, tuple(allocs), annotations)
        if not realize:
            return block
        return S.BlockRealize(tuple(values), predicate, block)

    def _located(self, node, fn, *args):
        try:
            return fn(*args)
        except ParseError:
            raise
        except Exception as exc:
            raise self.error(node, _describe(exc)) from None

    @staticmethod
    def _axis_kind(func) -> str | None:
        if (
            func.__class__ is ast.Attribute
            and func.value.__class__ is ast.Attribute
            and func.value.attr == "axis"
            and func.value.value.__class__ is ast.Name
            and func.value.value.id == "T"
        ):
            return func.attr
        return None

    def _axis(self, call, name: str, realize: bool):
        kind = self._axis_kind(call.func)
        if kind not in ("spatial", "reduce"):
            raise self.error(call.func, f"unknown axis kind T.axis.{kind}; use spatial or reduce")
        count = 2 if realize else 1
        for kw in call.keywords:
            if kw.arg not in ("min", "dtype"):
                raise self.error(kw if kw.arg else call, f"unexpected keyword argument {kw.arg!r}")
        if len(call.args) != count:
            what = "(extent, value)" if realize else "(extent) in a no_realize block"
            raise self.error(call, f"T.axis.{kind} takes {what}")
        extent = self.expr(call.args[0])
        bound = self.expr(call.args[1]) if realize else None
        min_node = self.keyword(call, "min")
        lo = self.expr(min_node) if min_node is not None else E.IntImm(extent.dtype, 0)
        dtype_node = self.keyword(call, "dtype")
        var = E.Var(name, self.dtype_literal(dtype_node) if dtype_node is not None else extent.dtype)
        return S.IterVar(var, S.Range(lo, extent), S.IterType(kind)), bound

    def _regions(self, call) -> tuple:
        if call is None:
            return ()
        if call.keywords:
            raise self.error(call, "T.reads/T.writes take buffer regions only")
        return tuple([self._region(r) for r in call.args])

    def _region(self, node) -> S.BufferRegion:
        if node.__class__ is ast.Name:  # a whole buffer
            return S.BufferRegion.full(self.buffer(node))
        if node.__class__ is not ast.Subscript:
            raise self.error(node, "expected a buffer region such as A[i, 0:n]")
        buf = self.buffer(node.value)
        ranges = []
        items = self.index_nodes(node)
        if len(items) == 1 and items[0].__class__ is ast.Tuple and not items[0].elts:
            items = []
        for dim, item in enumerate(items):
            if item.__class__ is not ast.Slice:
                ranges.append(S.Range(self.expr(item), E.IntImm(INT64, 1)))
                continue
            ranges.append(self._slice(item, buf, dim))
        return S.BufferRegion(buf, tuple(ranges))

    def _slice(self, item, buf: Buffer, dim: int) -> S.Range:
        if item.step is not None:
            raise self.error(item, "a region slice has no step")
        lower, upper = item.lower, item.upper
        if upper is None:
            if dim >= len(buf.shape):
                raise self.error(item, f"buffer {buf.name} has {len(buf.shape)} dimensions")
        if lower is None or (
            lower.__class__ is ast.Constant and lower.value.__class__ is int and lower.value == 0
        ):
            lo = E.IntImm(INT64, 0)
            return S.Range(lo, buf.shape[dim] if upper is None else self.expr(upper))
        lo = self.expr(lower)
        if upper is None:
            return S.Range(lo, E.Sub(buf.shape[dim], lo))
        # `m:m + e` is Range(m, e) exactly, as the printer writes it; any other `lo:hi` is Range(lo, hi - lo).
        if (
            upper.__class__ is ast.BinOp
            and upper.op.__class__ is ast.Add
            and ast.dump(upper.left) == ast.dump(lower)
        ):
            return S.Range(lo, self.expr(upper.right))
        return S.Range(lo, E.Sub(self.expr(upper), lo))
