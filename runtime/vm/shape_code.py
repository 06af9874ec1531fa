"""Shape expressions of the VM: int64 arithmetic over the shape heap, as JSON data and as Python code.

A VM function keeps its symbolic dimensions in a shape heap `H` (a list of ints, one slot per symbolic Var).
Instructions that need a dimension (allocations, kernel calls, checks) carry it as a small JSON tree:

    ["c", 7]            the constant 7
    ["h", 2]            heap slot 2
    ["mul", a, b]       also add, sub, floordiv, floormod, div, mod (truncating), min, max

This is what an artifact stores. When a program is loaded, each tree is rendered once to Python source
(`H[2] * 7`) and compiled together with the instruction that uses it, so evaluating a shape at run time is
plain Python integer arithmetic, with no tree walking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir.expr import (
    Cast,
    IntImm,
    PrimExpr,
    Var,
)
from shapeflow.runtime.shape_expr import HELPERS, OP_NAMES, RENDER

ShapeCode = list  # a JSON tree, see the module docstring

# Names the rendered source may use besides `H`.
ENV: dict[str, object] = dict(HELPERS)


def encode(expr: PrimExpr | int, slots: Mapping[int, int]) -> ShapeCode:
    """The JSON tree of an integer expression; `slots` maps id(Var) to its heap slot."""
    if isinstance(expr, int):
        return ["c", int(expr)]
    if isinstance(expr, IntImm):
        return ["c", int(expr.value)]
    if isinstance(expr, Var):
        slot = slots.get(id(expr))
        if slot is None:
            raise VerifyError(f"symbolic variable '{expr.name}' is used before it is defined", expr)
        return ["h", slot]
    if isinstance(expr, Cast) and expr.dtype.is_integer:
        return encode(expr.value, slots)
    name = OP_NAMES.get(type(expr))
    if name is None or not expr.dtype.is_integer:
        raise UnsupportedError(
            f"the VM cannot compute the shape expression {type(expr).__name__} ({expr.dtype})"
        )
    return [name, encode(expr.a, slots), encode(expr.b, slots)]


def render(code: ShapeCode) -> str:
    """Python source of a JSON tree over the heap list `H`; malformed trees are an Error, never eval'd."""
    if not isinstance(code, list) or not code:
        raise VerifyError(f"malformed shape expression {code!r}")
    head = code[0]
    if head == "c" and len(code) == 2 and type(code[1]) is int:
        return str(code[1])
    if head == "h" and len(code) == 2 and type(code[1]) is int and code[1] >= 0:
        return f"H[{code[1]}]"
    fn = RENDER.get(head) if isinstance(head, str) else None
    if fn is None or len(code) != 3:
        raise VerifyError(f"malformed shape expression {code!r}")
    return fn(render(code[1]), render(code[2]))


def max_slot(code: ShapeCode) -> int:
    """The largest heap slot a tree reads (-1 if none), to check it against the heap size at load."""
    if code[0] == "h":
        return code[1]
    if code[0] == "c":
        return -1
    return max(max_slot(code[1]), max_slot(code[2]))


def compile_tuple(codes: list[ShapeCode]) -> Callable[[list], tuple]:
    """A closure H -> tuple of the expressions' values."""
    parts = [render(c) for c in codes]
    src = f"lambda H: ({', '.join(parts)}{',' if len(parts) == 1 else ''})"
    return eval(src, dict(ENV))  # noqa: S307  (source rendered from validated trees only)


def compile_one(code: ShapeCode) -> Callable[[list], int]:
    return eval(f"lambda H: {render(code)}", dict(ENV))  # noqa: S307


def describe(code: ShapeCode, names: list[str]) -> str:
    """A readable form (`(n * 2)`) for error messages, with heap slots shown by their Var names."""
    head = code[0]
    if head == "c":
        return str(code[1])
    if head == "h":
        return names[code[1]] if code[1] < len(names) else f"h{code[1]}"
    infix = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "floormod": "%"}.get(head)
    a, b = describe(code[1], names), describe(code[2], names)
    return f"({a} {infix} {b})" if infix else f"{head}({a}, {b})"
