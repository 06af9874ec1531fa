"""IRModule: named functions of every level (PrimFuncs, graph functions) in one container."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shapeflow.errors import VerifyError


class IRModule:
    """A mapping from global names to functions, plus module attributes.

    Modules are treated as values: passes return new modules (`with_function`, `from_functions`) rather
    than editing one in place; `__setitem__` exists for building a module up.
    """

    __slots__ = ("functions", "attrs")

    def __init__(self, functions: Mapping[str, Any] | None = None, attrs: Mapping[str, Any] | None = None):
        from shapeflow.ir.tir.function import BaseFunc  # noqa: PLC0415

        self.functions: dict[str, Any] = {}
        for name, func in (functions or {}).items():
            if not isinstance(name, str) or not name.isidentifier():
                raise VerifyError(f"function name {name!r} is not an identifier")
            if not isinstance(func, BaseFunc):
                raise VerifyError(f"module entry {name!r} is not a function: {type(func).__name__}")
            self.functions[name] = func
        self.attrs: dict[str, Any] = dict(attrs or {})

    def __getitem__(self, name: str):
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"no function named {name!r} in module (has: {sorted(self.functions)})") from None

    def __setitem__(self, name: str, func) -> None:
        self.functions[name] = IRModule({name: func}).functions[name]

    def __contains__(self, name: str) -> bool:
        return name in self.functions

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def __len__(self) -> int:
        return len(self.functions)

    def items(self):
        return self.functions.items()

    def with_function(self, name: str, func) -> IRModule:
        functions = dict(self.functions)
        functions[name] = func
        return IRModule(functions, self.attrs)

    def without_function(self, name: str) -> IRModule:
        return IRModule({k: v for k, v in self.functions.items() if k != name}, self.attrs)

    def script(self) -> str:
        """The module in the text format; `shapeflow.ir.parse` reads it back."""
        from shapeflow.ir.text import to_text  # noqa: PLC0415

        return to_text(self)

    def __repr__(self) -> str:
        try:
            return self.script()
        except Exception:
            return f"IRModule({list(self.functions)})"
