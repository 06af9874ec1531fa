"""The one error hierarchy of shapeflow (DESIGN.md, "Semantics that hold everywhere").

Every error a user can cause is a subclass of `Error`. Each carries the facts that locate it, so that the
command line can print it as a single line and a test can assert on the fields rather than on prose.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error shapeflow raises on purpose."""


class ParseError(Error):
    """Malformed text. `line` and `column` are 1-based positions in the source."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, source: str = ""):
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        where = ""
        if line is not None:
            where = f"{source or '<text>'}:{line}:{column if column is not None else 0}: "
        super().__init__(f"{where}{message}")


class VerifyError(Error):
    """Ill-formed IR. `node` is the offending node (or a description of it)."""

    def __init__(self, message: str, node: object = None, where: str = ""):
        self.message = message
        self.node = node
        self.where = where
        prefix = f"in {where}: " if where else ""
        super().__init__(f"{prefix}{message}")


class ShapeError(Error):
    """An argument whose shape, rank or dtype does not match what a function was compiled for."""

    def __init__(
        self,
        message: str = "",
        *,
        function: str | None = None,
        parameter: str | None = None,
        dimension: int | None = None,
        expected: object = None,
        actual: object = None,
    ):
        self.function = function
        self.parameter = parameter
        self.dimension = dimension
        self.expected = expected
        self.actual = actual
        parts = []
        if function is not None:
            parts.append(f"function '{function}'")
        if parameter is not None:
            parts.append(f"parameter '{parameter}'")
        if dimension is not None:
            parts.append(f"dimension {dimension}")
        head = ", ".join(parts)
        detail = message
        if expected is not None or actual is not None:
            detail = f"{message}{': ' if message else ''}expected {expected}, got {actual}"
        super().__init__(f"{head}: {detail}" if head else detail)


class UnsupportedError(Error):
    """Something valid that shapeflow cannot do (yet): an op, an opset, a dtype, an intrinsic on a target."""


class ScheduleError(Error):
    """A schedule primitive that would be illegal. `rule` names the violated rule."""

    def __init__(self, message: str, rule: str = ""):
        self.rule = rule
        super().__init__(f"[{rule}] {message}" if rule else message)


class CompileError(Error):
    """A failure while compiling that is not the user's fault in a more specific way."""


__all__ = [
    "Error",
    "ParseError",
    "VerifyError",
    "ShapeError",
    "UnsupportedError",
    "ScheduleError",
    "CompileError",
]
