"""Names shared by the printer and the parser: reserved words, the `T.` vocabulary, and the namer.

The printer and the parser must agree on which `T.<name>` spellings mean what; keeping the fixed vocabulary
here (rather than in each of them) means a new spelling is added once. Intrinsic names come from the live
registry (`shapeflow.ir.tir.intrinsics.INTRINSICS`), so an intrinsic registered later prints and parses
without edits here, unless it collides with a fixed spelling, in which case it prints as `T.call(...)`.
"""

from __future__ import annotations

import keyword
import re
from functools import cache

from shapeflow.errors import UnsupportedError
from shapeflow.ir.dtype import DataType

HEADER = "# shapeflow.ir v1"

# Spellings with a fixed meaning; an intrinsic with one of these names must print as T.call(...).
FIXED_T_NAMES = frozenset(
    {
        "Buffer", "prim_func", "func_attr", "block", "axis", "reads", "writes", "init", "where",
        "block_attr", "alloc_buffer", "serial", "parallel", "vectorized", "unroll", "thread_binding",
        "let", "allocate", "decl_buffer", "evaluate", "Assert", "Select", "Cast", "call", "Ramp",
        "Broadcast", "Let", "StringImm", "truncdiv", "truncmod", "min", "max", "var", "handle",
    }
)  # fmt: skip

# Names a variable or buffer may never print as: Python keywords and the two namespace prefixes.
RESERVED = frozenset(keyword.kwlist) | {"T", "I"}

_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]")


def sanitize(hint: str) -> str:
    """An ASCII identifier close to `hint`. ASCII only, because Python NFKC-normalizes other identifiers
    while parsing, which could merge two distinct printed names."""
    name = _NOT_IDENT.sub("_", hint) if hint else "v"
    if not name or name[0].isdigit():
        name = "v" + name
    return name


class Namer:
    """Unique names within one function: the hint, else the hint with `_1`, `_2`, ... appended.

    Objects are keyed by identity, so two distinct variables with one hint get two names, and one variable
    always prints with one name. Names already unique (as the printer's own output is) map to themselves,
    which is what makes print -> parse -> print reproduce the same text.
    """

    __slots__ = ("names", "taken")

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.taken: set[str] = set(RESERVED)

    def define(self, obj: object, hint: str) -> str:
        base = sanitize(hint)
        name = base
        suffix = 1
        while name in self.taken:
            name = f"{base}_{suffix}"
            suffix += 1
        self.taken.add(name)
        self.names[id(obj)] = name
        return name

    def alias(self, obj: object, text: str) -> None:
        """Make `obj` print as `text` (a buffer's data variable prints as `A.data`)."""
        self.names[id(obj)] = text


@cache
def dtype_of_name(name: str) -> DataType | None:
    """The dtype that `T.<name>` spells (`T.float32`, `T.int64x4`), or None."""
    try:
        return DataType(name)
    except UnsupportedError:
        return None
