"""PrimFunc: a loop-level function over buffer and scalar parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

from shapeflow.errors import VerifyError
from shapeflow.ir.expr import Var
from shapeflow.ir.node import Node, node, set_computed
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import Stmt


class BaseFunc(Node):
    """A function that can live in an IRModule (PrimFunc here; graph functions in shapeflow.ir.graph)."""

    __slots__ = ()


@node
class PrimFunc(BaseFunc):
    """A loop-level function in destination-passing style.

    `params` are Buffers (tensors passed by pointer) or scalar Vars. Variables that first appear in the
    shapes, strides or offsets of buffer parameters are symbolic dimensions: they are bound by the arguments
    at a call. `attrs` holds e.g. "global_symbol" and "var_bounds" ({name: (lo, hi)}, inclusive).
    """

    params: tuple[Buffer | Var, ...]
    body: Stmt
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_computed(self, "params", tuple(self.params))
        set_computed(self, "attrs", dict(self.attrs))
        for p in self.params:
            if not isinstance(p, (Buffer, Var)):
                raise VerifyError(f"PrimFunc parameter must be a Buffer or Var, got {type(p).__name__}", self)
        if not isinstance(self.body, Stmt):
            raise VerifyError(f"PrimFunc body must be a Stmt, got {type(self.body).__name__}", self)

    def with_body(self, body: Stmt) -> PrimFunc:
        return PrimFunc(self.params, body, self.attrs)

    def with_attr(self, key: str, value: Any) -> PrimFunc:
        attrs = dict(self.attrs)
        attrs[key] = value
        return PrimFunc(self.params, self.body, attrs)

    @property
    def buffer_params(self) -> tuple[Buffer, ...]:
        return tuple(p for p in self.params if isinstance(p, Buffer))

    def script(self) -> str:
        from shapeflow.ir.text import to_text  # noqa: PLC0415

        return to_text(self)
