"""Structural equality and hashing of IR, up to consistent renaming of variables and buffers.

Two programs are equal when they have the same node classes and attributes in the same places, and their
variables (and buffers) correspond one to one: the first time a variable is met on each side the two are
paired, and every later use must respect the pairing. Names of variables and buffers are ignored; names of
blocks and functions are not. On inequality `assert_structural_equal` reports the path of the first
difference and prints both sides there.
"""

from __future__ import annotations

import enum
import math
from typing import Any

from shapeflow.errors import VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Var
from shapeflow.ir.module import IRModule
from shapeflow.ir.node import Node, fields_of
from shapeflow.ir.tir.buffer import Buffer

# Fields that are names chosen by the printer or the user, not structure.
_IGNORED = {Var: ("name",), Buffer: ("name",)}
# Node classes that are bound objects: paired on first meeting, compared by that pairing afterwards.
_BOUND: tuple[type, ...] = (Var, Buffer)


def register_bound_node(cls: type, ignored: tuple[str, ...] = ("name",)) -> None:
    """Treat nodes of `cls` as bound variables (like Var and Buffer) whose `ignored` fields are not structure;
    used by IR levels defined elsewhere (the graph IR's variables)."""
    global _BOUND
    _IGNORED[cls] = tuple(ignored)
    if cls not in _BOUND:
        _BOUND = (*_BOUND, cls)


class _Mismatch(Exception):
    def __init__(self, path: str, lhs: Any, rhs: Any, reason: str):
        super().__init__(reason)
        self.path, self.lhs, self.rhs, self.reason = path, lhs, rhs, reason


class _Equal:
    def __init__(self) -> None:
        self.lhs_to_rhs: dict[int, Any] = {}
        self.rhs_to_lhs: dict[int, Any] = {}
        self.keep: list[Any] = []  # keep ids alive while comparing

    def pair(self, a, b, path: str) -> bool:
        """Pair bound objects a and b. True if they were already paired (so the caller stops there)."""
        seen_a = self.lhs_to_rhs.get(id(a))
        seen_b = self.rhs_to_lhs.get(id(b))
        if seen_a is None and seen_b is None:
            self.lhs_to_rhs[id(a)] = b
            self.rhs_to_lhs[id(b)] = a
            self.keep.extend((a, b))
            return False
        if seen_a is b and seen_b is a:
            return True
        raise _Mismatch(path, a, b, "variables or buffers are not used consistently")

    def compare(self, a, b, path: str) -> None:
        if a is b and not isinstance(a, _BOUND):
            return
        if isinstance(a, Node) or isinstance(b, Node):
            if type(a) is not type(b):
                raise _Mismatch(path, a, b, f"{type(a).__name__} vs {type(b).__name__}")
            if isinstance(a, _BOUND):
                if self.pair(a, b, path):
                    return
            ignored = _IGNORED.get(type(a), ())
            for name in fields_of(type(a)):
                if name in ignored:
                    continue
                self.compare(getattr(a, name), getattr(b, name), f"{path}.{name}")
            return
        if isinstance(a, IRModule) or isinstance(b, IRModule):
            if not (isinstance(a, IRModule) and isinstance(b, IRModule)):
                raise _Mismatch(path, a, b, "module vs non-module")
            if sorted(a.functions) != sorted(b.functions):
                raise _Mismatch(path, sorted(a.functions), sorted(b.functions), "different function names")
            self.compare(a.attrs, b.attrs, f"{path}.attrs")
            for name in sorted(a.functions):
                # Each function binds its own variables: the same function object may sit under two names.
                _Equal().compare(a.functions[name], b.functions[name], f"{path}[{name!r}]")
            return
        if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
            if len(a) != len(b):
                raise _Mismatch(path, a, b, f"length {len(a)} vs {len(b)}")
            for i, (x, y) in enumerate(zip(a, b)):
                self.compare(x, y, f"{path}[{i}]")
            return
        if isinstance(a, dict) and isinstance(b, dict):
            if set(a) != set(b):
                raise _Mismatch(path, sorted(map(str, a)), sorted(map(str, b)), "different keys")
            for key in a:
                self.compare(a[key], b[key], f"{path}[{key!r}]")
            return
        if isinstance(a, float) and isinstance(b, float):
            if a == b or (math.isnan(a) and math.isnan(b)):
                if a != 0.0 or math.copysign(1, a) == math.copysign(1, b):
                    return
            raise _Mismatch(path, a, b, f"{a!r} vs {b!r}")
        if type(a) is not type(b) and not (isinstance(a, enum.Enum) or isinstance(b, enum.Enum)):
            raise _Mismatch(path, a, b, f"{type(a).__name__} vs {type(b).__name__}")
        if a != b:
            raise _Mismatch(path, a, b, f"{a!r} vs {b!r}")


def _describe(obj) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = object.__repr__(obj)
    return text if len(text) < 2000 else text[:2000] + " ..."


def structural_equal(a, b) -> bool:
    """True if `a` and `b` are the same program up to renaming of variables and buffers."""
    try:
        _Equal().compare(a, b, "root")
    except _Mismatch:
        return False
    return True


def assert_structural_equal(a, b) -> None:
    """Raise VerifyError naming the first difference (its path and both sides there) if not equal."""
    try:
        _Equal().compare(a, b, "root")
    except _Mismatch as m:
        raise VerifyError(
            f"structural mismatch at {m.path}: {m.reason}\n"
            f"--- lhs at {m.path}:\n{_describe(m.lhs)}\n--- rhs at {m.path}:\n{_describe(m.rhs)}\n"
            f"--- whole lhs:\n{_describe(a)}\n--- whole rhs:\n{_describe(b)}",
            node=m.lhs,
        ) from None


class _Hasher:
    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.keep: list[Any] = []

    def hash(self, obj) -> int:
        if isinstance(obj, Node):
            if isinstance(obj, _BOUND):
                found = self.index.get(id(obj))
                if found is not None:
                    return hash(("bound", found))
                self.index[id(obj)] = len(self.index)
                self.keep.append(obj)
            ignored = _IGNORED.get(type(obj), ())
            parts = [type(obj).__name__]
            for name in fields_of(type(obj)):
                if name not in ignored:
                    parts.append(self.hash(getattr(obj, name)))
            return hash(tuple(parts))
        if isinstance(obj, IRModule):
            return hash(
                (
                    "module",
                    self.hash(obj.attrs),
                    tuple((n, _Hasher().hash(obj.functions[n])) for n in sorted(obj.functions)),
                )
            )
        if isinstance(obj, (tuple, list)):
            return hash(("seq", tuple(self.hash(x) for x in obj)))
        if isinstance(obj, dict):
            return hash(("dict", tuple(sorted((str(k), self.hash(v)) for k, v in obj.items()))))
        if isinstance(obj, float) and math.isnan(obj):
            return hash("nan")
        if isinstance(obj, DataType):
            return hash(str(obj))
        return hash(obj)


def structural_hash(obj) -> int:
    """A hash consistent with structural_equal: equal programs hash equally."""
    return _Hasher().hash(obj)
