"""The operator registry: each graph op is declared once, with its attributes, type inference, numpy
reference and legalization to loops.

    register_op("exp", num_args=1, infer_type=same_as_input, reference=np.exp, pattern="elementwise")

`make_call` builds a Call with normalized attributes (defaults filled in, unknown names refused);
`infer_call_type` runs the op's inference on the argument types. Inference functions receive a CallInfo and
return a Type; they raise ShapeError for provable shape conflicts and, through `CallInfo.fail`, VerifyError
for ill-typed calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shapeflow.errors import ShapeError, UnsupportedError, VerifyError
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import PrimExpr, convert
from shapeflow.ir.graph.expr import Call, Expr, Op
from shapeflow.ir.graph.types import TensorType, Type

REQUIRED = object()
PATTERNS = ("elementwise", "broadcast", "injective", "reduction", "out_elementwise_fusable", "opaque")


# ---------------------------------------------------------------------------------------------
# Attribute kinds: converters that return the normalized value or raise ValueError / TypeError
# ---------------------------------------------------------------------------------------------


def attr_int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    return value


def attr_float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def attr_bool(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, got {value!r}")
    return value


def attr_str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a str, got {value!r}")
    return value


def attr_dtype(value) -> DataType:
    return DataType(value)


def attr_ints(value) -> tuple[int, ...]:
    """An int or a sequence of ints, normalized to a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"expected an int or a tuple of ints, got {value!r}")
    return tuple(attr_int(v) for v in value)


def attr_shape(value) -> tuple[PrimExpr, ...]:
    """A shape: ints and int64 expressions (reshape's -1 included), normalized to int64 PrimExprs."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"expected a shape tuple, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, PrimExpr)):
            raise TypeError(f"shape entries must be ints or int64 expressions, got {v!r}")
        out.append(convert(v, "int64"))
    return tuple(out)


def optional(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert_optional(value):
        return None if value is None else kind(value)

    convert_optional.__name__ = f"optional_{kind.__name__}"
    return convert_optional


@dataclasses.dataclass(frozen=True, slots=True)
class Attr:
    """One attribute of an op: its name, converter (`kind`) and default (REQUIRED if none)."""

    name: str
    kind: Callable[[Any], Any]
    default: Any = REQUIRED


# ---------------------------------------------------------------------------------------------
# Op declarations
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CallInfo:
    """What an inference function sees: the op name, the argument expressions and types, the attrs."""

    op: str
    args: tuple[Expr, ...]
    types: tuple[Type, ...]
    attrs: Mapping[str, Any]
    type_args: tuple[Type, ...] = ()

    def fail(self, message: str) -> VerifyError:
        return VerifyError(f"op '{self.op}': {message}")

    def tensor(self, index: int) -> TensorType:
        """Argument `index`'s type, which must be a tensor type."""
        t = self.types[index]
        if not isinstance(t, TensorType):
            raise self.fail(f"argument {index} must be a tensor, got {type(t).__name__}")
        return t

    def shape_error(self, message: str, dimension=None, expected=None, actual=None) -> ShapeError:
        return ShapeError(f"op '{self.op}': {message}", dimension=dimension, expected=expected, actual=actual)


@dataclasses.dataclass(frozen=True, slots=True)
class OpDef:
    """The one declaration of an op. `num_args` is an exact count or an inclusive (min, max) range (max None:
    unbounded). `reference(*arrays, **attrs)` is the numpy meaning; None for ops the interpreter implements
    itself (call_tir, call_dps_library)."""

    name: str
    num_args: int | tuple[int, int | None]
    attrs: tuple[Attr, ...]
    infer_type: Callable[[CallInfo], Type]
    reference: Callable[..., Any] | None
    pattern: str = "opaque"
    doc: str = ""
    # legalize(inputs: list[te.Tensor], out: Type, **attrs) -> te.Tensor | tuple[te.Tensor, ...]
    # (see shapeflow.ir.graph.legalize); None for ops that have no loop-level form.
    legalize: Callable[..., Any] | None = None
    # index_checks(inputs, **attrs) -> [te_util.IndexCheck]: conditions on the *values* of index inputs
    # (data-dependent, so no shape guard can check them) that the kernel asserts before reading with them.
    index_checks: Callable[..., Any] | None = None

    def arity_ok(self, count: int) -> bool:
        if isinstance(self.num_args, int):
            return count == self.num_args
        lo, hi = self.num_args
        return count >= lo and (hi is None or count <= hi)

    def normalize_attrs(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Attributes with defaults filled in. Unknown names: UnsupportedError; bad values: VerifyError."""
        given = dict(attrs or {})
        known = {a.name for a in self.attrs}
        unknown = sorted(set(given) - known)
        if unknown:
            raise UnsupportedError(f"op '{self.name}' has no attribute {unknown[0]!r} (has: {sorted(known)})")
        out = {}
        for attr in self.attrs:
            if attr.name in given:
                try:
                    out[attr.name] = attr.kind(given[attr.name])
                except (TypeError, ValueError, UnsupportedError) as exc:
                    raise VerifyError(f"op '{self.name}': attribute {attr.name!r}: {exc}") from None
            elif attr.default is REQUIRED:
                raise VerifyError(f"op '{self.name}': missing attribute {attr.name!r}")
            else:
                out[attr.name] = attr.default
        return out


_REGISTRY: dict[str, OpDef] = {}
_OPS: dict[str, Op] = {}


def register_op(
    name: str,
    *,
    num_args: int | tuple[int, int | None],
    infer_type: Callable[[CallInfo], Type],
    reference: Callable[..., Any] | None,
    attrs: Sequence[Attr] = (),
    pattern: str = "opaque",
    doc: str = "",
    legalize: Callable[..., Any] | None = None,
    index_checks: Callable[..., Any] | None = None,
) -> OpDef:
    """Declare an op. Declaring a name twice is an error: an op is declared in exactly one place."""
    if name in _REGISTRY:
        raise VerifyError(f"op '{name}' is already registered")
    if pattern not in PATTERNS:
        raise VerifyError(f"op '{name}': unknown pattern {pattern!r} (one of {PATTERNS})")
    op_def = OpDef(name, num_args, tuple(attrs), infer_type, reference, pattern, doc, legalize, index_checks)
    _REGISTRY[name] = op_def
    _OPS[name] = Op(name)
    return op_def


def get_op(name: str) -> Op:
    """The Op node of a registered op (one object per name); UnsupportedError for an unknown name."""
    try:
        return _OPS[name]
    except KeyError:
        raise UnsupportedError(f"unknown graph op '{name}'") from None


def get_op_def(op: str | Op) -> OpDef:
    name = op.name if isinstance(op, Op) else op
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnsupportedError(f"unknown graph op '{name}'") from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def list_ops() -> list[str]:
    return sorted(_REGISTRY)


def make_call(name: str, args: Sequence[Expr], attrs: Mapping[str, Any] | None = None, type_args=()) -> Call:
    """A Call of registered op `name`, with its arity checked and attributes normalized."""
    op_def = get_op_def(name)
    args = tuple(args)
    if not op_def.arity_ok(len(args)):
        raise VerifyError(f"op '{name}' takes {op_def.num_args} arguments, got {len(args)}")
    return Call(get_op(name), args, op_def.normalize_attrs(attrs), tuple(type_args))


def infer_call_type(call: Call, arg_types: Sequence[Type]) -> Type:
    """The result type of a call of an op, checking arity and attributes first (VerifyError)."""
    op_def = get_op_def(call.op)
    if not op_def.arity_ok(len(call.args)):
        raise VerifyError(f"op '{op_def.name}' takes {op_def.num_args} arguments, got {len(call.args)}")
    attrs = op_def.normalize_attrs(call.attrs)
    info = CallInfo(op_def.name, call.args, tuple(arg_types), attrs, call.type_args)
    return op_def.infer_type(info)
