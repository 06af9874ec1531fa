"""The base of every IR node: frozen, slotted dataclasses that declare their children once.

A node class is declared with `@node`; its dataclass fields are its children and attributes, in order.
Generic traversal (`shapeflow.ir.functor`), structural equality and the printers read `fields_of(cls)`
instead of keeping per-class lists, so a new node needs no edits elsewhere to be walked or compared.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


class Node:
    """Base class of all IR nodes. Identity is object identity; use structural_equal for structure."""

    __slots__ = ()

    def __repr__(self) -> str:
        try:
            from shapeflow.ir.text import to_text  # noqa: PLC0415

            return to_text(self)
        except Exception:  # the printer may not handle a fragment; fall back to the fields
            inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields_of(type(self)))
            return f"{type(self).__name__}({inner})"

    __str__ = __repr__


def node(cls):
    """Declare an IR node class: a frozen, slotted dataclass compared by identity."""
    out = dataclasses.dataclass(frozen=True, eq=False, slots=True, repr=False)(cls)
    _FIELDS[out] = tuple(f.name for f in dataclasses.fields(out))
    return out


def fields_of(cls: type) -> tuple[str, ...]:
    """Names of a node class's fields, in declaration order (computed fields included)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = tuple(f.name for f in dataclasses.fields(cls))
        _FIELDS[cls] = found
    return found


def init_fields_of(cls: type) -> tuple[str, ...]:
    """Names of the fields passed to the constructor (computed ones, such as `dtype` of Add, excluded)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def replace(obj: Node, **changes: Any) -> Node:
    """A copy of `obj` with some constructor fields changed (computed fields are recomputed)."""
    return dataclasses.replace(obj, **changes)


def set_computed(obj: Node, name: str, value: Any) -> None:
    """Set a computed field inside `__post_init__` of a frozen node."""
    object.__setattr__(obj, name, value)
