"""Generic traversal of IR: visitors and rewriters that dispatch through a table keyed by node class.

Subclasses define `visit_<ClassName>(self, node)` for the nodes they care about; every other node is walked
generically through its dataclass fields. Tables are built once per visitor class (hidet's habit), so
dispatch is one dict lookup. A rewriter returns the original object when nothing below it changed, so
unchanged subtrees are shared, and it rewrites each Buffer once, so a buffer stays one object everywhere.
"""

from __future__ import annotations

from typing import Any

from shapeflow.ir.node import Node, fields_of, init_fields_of, replace


def _dispatch_table(visitor_cls: type, cache_attr: str) -> dict[type, Any]:
    table = visitor_cls.__dict__.get(cache_attr)
    if table is None:
        table = {}
        setattr(visitor_cls, cache_attr, table)
    return table


def _lookup(visitor, node_cls: type, cache_attr: str, generic):
    table = _dispatch_table(type(visitor), cache_attr)
    method = table.get(node_cls)
    if method is None:
        method = generic
        for klass in node_cls.__mro__:
            found = getattr(type(visitor), f"visit_{klass.__name__}", None)
            if found is not None:
                method = found
                break
        table[node_cls] = method
    return method


class Visitor:
    """Walks a tree of nodes in field order. Override `visit_<Class>`; call `self.generic_visit(node)` to
    continue into the children."""

    visit_buffers = True

    def __init__(self) -> None:
        self._seen_buffers: set[int] = set()

    def visit(self, obj) -> None:
        if isinstance(obj, Node):
            method = _lookup(self, type(obj), "_visit_table", type(self).generic_visit)
            method(self, obj)
        elif isinstance(obj, (tuple, list)):
            for item in obj:
                self.visit(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                self.visit(item)

    def generic_visit(self, node: Node) -> None:
        from shapeflow.ir.tir.buffer import Buffer  # noqa: PLC0415

        if isinstance(node, Buffer):
            if not self.visit_buffers or id(node) in self._seen_buffers:
                return
            self._seen_buffers.add(id(node))
        for name in fields_of(type(node)):
            if name == "dtype":
                continue
            value = getattr(node, name)
            if isinstance(value, (Node, tuple, list, dict)):
                self.visit(value)


class Mutator:
    """Rebuilds a tree bottom-up. Override `visit_<Class>` to return a replacement; the default rebuilds a
    node only if some child changed, and rewrites each Buffer once (memoized by identity)."""

    mutate_buffers = True

    def __init__(self) -> None:
        self.buffer_map: dict[int, Node] = {}

    def visit(self, obj):
        if isinstance(obj, Node):
            method = _lookup(self, type(obj), "_mutate_table", type(self).generic_visit)
            return method(self, obj)
        if isinstance(obj, tuple):
            items = tuple(self.visit(item) for item in obj)
            return obj if all(a is b for a, b in zip(items, obj)) else items
        if isinstance(obj, list):
            return list(self.visit(tuple(obj)))
        if isinstance(obj, dict):
            new = {k: self.visit(v) for k, v in obj.items()}
            return obj if all(new[k] is obj[k] for k in obj) else new
        return obj

    def generic_visit(self, node: Node):
        from shapeflow.ir.tir.buffer import Buffer  # noqa: PLC0415

        if isinstance(node, Buffer):
            if not self.mutate_buffers:
                return node
            done = self.buffer_map.get(id(node))
            if done is not None:
                return done
            new = self._rebuild(node)
            self.buffer_map[id(node)] = new
            return new
        return self._rebuild(node)

    def _rebuild(self, node: Node):
        changes = {}
        for name in init_fields_of(type(node)):
            value = getattr(node, name)
            if isinstance(value, (Node, tuple, list, dict)):
                new = self.visit(value)
                if new is not value:
                    changes[name] = new
        return replace(node, **changes) if changes else node


def post_order_visit(obj, fn) -> None:
    """Call `fn(node)` on every node below and including `obj`, children first."""

    class _PostOrder(Visitor):
        def generic_visit(self, node):
            super().generic_visit(node)
            fn(node)

    _PostOrder().visit(obj)


def collect(obj, node_type) -> list:
    """Every node of `node_type` below `obj`, in post-order (a Buffer is visited once)."""
    found: list = []
    post_order_visit(obj, lambda n: found.append(n) if isinstance(n, node_type) else None)
    return found


def substitute(obj, mapping: dict) -> Any:
    """Replace Vars (keys, by identity) with expressions throughout `obj`, buffer shapes included."""
    from shapeflow.ir.expr import Var  # noqa: PLC0415

    if not mapping:
        return obj

    class _Substitute(Mutator):
        def visit_Var(self, var: Var):
            return mapping.get(var, var)

    return _Substitute().visit(obj)
