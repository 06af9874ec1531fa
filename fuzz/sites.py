"""Numbered places in a PrimFunc where a mutator may act, with what is in scope at each.

One walker serves both jobs: listing the sites (every PrimExpr and Stmt in pre-order, each with the
variables, loop extents and buffers in scope there) and rebuilding the function with the site numbered
`target` replaced. The walk is generic over node fields (`init_fields_of`); only binders need table
entries (which field sees which new variables), so a new node kind is walked without edits here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shapeflow.ir import expr as E
from shapeflow.ir.node import Node, init_fields_of, replace
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc


@dataclass(frozen=True)
class Site:
    """A PrimExpr or Stmt at pre-order position `index`; `role` is "index" (a buffer index, `extent`
    is that dimension's extent), "binding" (a block iter value), or "" (anything else)."""

    index: int
    node: Node
    vars: tuple
    loops: tuple  # (var, extent) of enclosing loops and block iteration variables
    buffers: tuple
    role: str = ""
    extent: E.PrimExpr | None = None
    in_block: bool = False


# Fields that hold a binder's variable itself (never replaced by a general expression).
_BINDER_FIELDS = {"loop_var", "var", "dtype", "buffer", "alloc_buffers", "op", "name", "iter_type"}


def _binder_scope(node, field: str, site_vars, loops, buffers):
    """Extra scope that `field` of `node` sees (None when the node binds nothing for that field)."""
    if isinstance(node, S.For) and field == "body":
        return site_vars + (node.loop_var,), loops + ((node.loop_var, node.extent),), buffers
    if isinstance(node, (S.LetStmt, E.Let)) and field == "body":
        return site_vars + (node.var,), loops, buffers
    if isinstance(node, S.Block) and field in ("body", "init", "reads", "writes"):
        iv = tuple(iv.var for iv in node.iter_vars)
        ext = tuple((iv.var, iv.dom.extent) for iv in node.iter_vars)
        return site_vars + iv, loops + ext, buffers + node.alloc_buffers
    if isinstance(node, (S.Allocate, S.DeclBuffer)) and field == "body":
        return site_vars, loops, buffers + (node.buffer,)
    return None


class Walker:
    """List sites (`target=None`) or rebuild with site `target` replaced by `fn(site)`."""

    def __init__(self, target: int | None = None, fn: Callable[[Site], Node] | None = None):
        self.target = target
        self.fn = fn
        self.count = 0
        self.sites: list[Site] = []

    def walk_func(self, func: PrimFunc) -> PrimFunc:
        params_vars = tuple(p for p in func.params if isinstance(p, E.Var))
        dims = []
        for p in func.params:
            if isinstance(p, Buffer):
                dims += [d for d in p.shape if isinstance(d, E.Var) and all(d is not x for x in dims)]
        buffers = tuple(p for p in func.params if isinstance(p, Buffer))
        body = self.node(func.body, params_vars + tuple(dims), (), buffers, "", None, False)
        return func if body is func.body else PrimFunc(func.params, body, func.attrs)

    def node(self, obj, site_vars, loops, buffers, role, extent, in_block):
        if isinstance(obj, (E.PrimExpr, S.Stmt)):
            index = self.count
            self.count += 1
            site = Site(index, obj, site_vars, loops, buffers, role, extent, in_block)
            if self.target is None:
                self.sites.append(site)
            elif index == self.target:
                return self.fn(site)
        if isinstance(obj, Buffer):
            return obj
        if isinstance(obj, S.Block):
            in_block = True
        changes = {}
        for field in init_fields_of(type(obj)):
            if field in _BINDER_FIELDS:
                continue
            value = getattr(obj, field)
            scope = _binder_scope(obj, field, site_vars, loops, buffers)
            fv, fl, fb = scope if scope is not None else (site_vars, loops, buffers)
            if field == "indices" and isinstance(obj, (E.BufferLoad, S.BufferStore)):
                shape = obj.buffer.shape
                new = tuple(
                    self.node(ix, fv, fl, fb, "index", shape[k] if k < len(shape) else None, in_block)
                    for k, ix in enumerate(value)
                )
                new = value if all(a is b for a, b in zip(new, value)) else new
            elif field == "iter_values":
                new = self._seq(value, fv, fl, fb, "binding", None, in_block)
            else:
                new = self._value(
                    value, fv, fl, fb, role if isinstance(obj, E.PrimExpr) else "", extent, in_block
                )
            if new is not value:
                changes[field] = new
        return replace(obj, **changes) if changes else obj

    def _seq(self, value, *ctx):
        new = tuple(self._value(v, *ctx) for v in value)
        return value if all(a is b for a, b in zip(new, value)) else new

    def _value(self, value, *ctx):
        if isinstance(value, Node):
            return self.node(value, *ctx)
        if isinstance(value, tuple):
            return self._seq(value, *ctx)
        return value


def sites_of(func: PrimFunc) -> list[Site]:
    walker = Walker()
    walker.walk_func(func)
    return walker.sites


def replace_site(func: PrimFunc, index: int, fn: Callable[[Site], Node]) -> PrimFunc:
    """`func` with the site numbered `index` replaced by `fn(site)`."""
    return Walker(index, fn).walk_func(func)


__all__ = ["Site", "Walker", "sites_of", "replace_site"]
