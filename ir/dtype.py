"""Data types of the IR: a scalar kind, a bit width and a number of vector lanes.

`DataType("float32x8")` is eight float32 lanes; `"bool"` is a 1-bit unsigned kind; `"handle"` is an opaque
pointer (the data of a buffer). Instances are interned, so `is` and `==` agree and hashing is cheap.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from shapeflow.errors import UnsupportedError

_KINDS = ("int", "uint", "float", "bfloat", "bool", "handle")
_VALID_BITS = {
    "int": (8, 16, 32, 64),
    "uint": (8, 16, 32, 64),
    "float": (16, 32, 64),
    "bfloat": (16,),
    "bool": (1,),
    "handle": (64,),
}
_PATTERN = re.compile(r"^(int|uint|float|bfloat|bool|handle)(\d*)(?:x(\d+))?$")


class DataType:
    __slots__ = ("kind", "bits", "lanes", "_str")

    kind: str
    bits: int
    lanes: int

    def __new__(cls, spec: str | DataType) -> DataType:
        if isinstance(spec, DataType):
            return spec
        return _parse(str(spec))

    @classmethod
    def _make(cls, kind: str, bits: int, lanes: int) -> DataType:
        self = object.__new__(cls)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "lanes", lanes)
        base = "bool" if kind == "bool" else ("handle" if kind == "handle" else f"{kind}{bits}")
        object.__setattr__(self, "_str", base if lanes == 1 else f"{base}x{lanes}")
        return self

    def __setattr__(self, name, value):
        raise AttributeError("DataType is immutable")

    def __reduce__(self):
        return (DataType, (self._str,))

    # -- queries -------------------------------------------------------------------------------
    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def is_uint(self) -> bool:
        return self.kind == "uint"

    @property
    def is_integer(self) -> bool:
        """Signed or unsigned integer (bool excluded)."""
        return self.kind in ("int", "uint")

    @property
    def is_float(self) -> bool:
        """IEEE float or bfloat16."""
        return self.kind in ("float", "bfloat")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_handle(self) -> bool:
        return self.kind == "handle"

    @property
    def is_scalar(self) -> bool:
        return self.lanes == 1

    @property
    def is_vector(self) -> bool:
        return self.lanes > 1

    @property
    def bytes(self) -> int:
        """Storage size of one lane in bytes (bool is stored as one byte)."""
        return max(1, self.bits // 8)

    def element_of(self) -> DataType:
        return _make(self.kind, self.bits, 1)

    def with_lanes(self, lanes: int) -> DataType:
        return _make(self.kind, self.bits, lanes)

    def with_kind(self, kind: str, bits: int | None = None) -> DataType:
        return _make(kind, self.bits if bits is None else bits, self.lanes)

    def min_value(self):
        if self.kind == "int":
            return -(1 << (self.bits - 1))
        if self.kind in ("uint", "bool"):
            return 0
        return -float("inf")

    def max_value(self):
        if self.kind == "int":
            return (1 << (self.bits - 1)) - 1
        if self.kind == "uint":
            return (1 << self.bits) - 1
        if self.kind == "bool":
            return 1
        return float("inf")

    def to_numpy(self) -> np.dtype:
        """The numpy dtype that stores one lane of this type."""
        return to_numpy_dtype(self)

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"DataType({self._str!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = DataType(other)
            except UnsupportedError:
                return False
        return self is other

    def __hash__(self) -> int:
        return hash(self._str)


@cache
def _make(kind: str, bits: int, lanes: int) -> DataType:
    if kind not in _KINDS or bits not in _VALID_BITS[kind]:
        raise UnsupportedError(f"unsupported dtype: kind {kind!r} with {bits} bits")
    if lanes < 1:
        raise UnsupportedError(f"dtype lanes must be positive, got {lanes}")
    return DataType._make(kind, bits, lanes)


@cache
def _parse(spec: str) -> DataType:
    m = _PATTERN.match(spec.strip())
    if not m:
        raise UnsupportedError(f"unknown dtype {spec!r}")
    kind, bits, lanes = m.group(1), m.group(2), m.group(3)
    if kind == "bool":
        nbits = 1 if not bits else int(bits)
        if nbits not in (1, 8):
            raise UnsupportedError(f"unknown dtype {spec!r}")
        nbits = 1
    elif kind == "handle":
        nbits = 64
    else:
        if not bits:
            raise UnsupportedError(f"dtype {spec!r} needs a bit width")
        nbits = int(bits)
    return _make(kind, nbits, int(lanes) if lanes else 1)


def to_numpy_dtype(dtype: DataType | str) -> np.dtype:
    dtype = DataType(dtype)
    if dtype.kind == "bool":
        return np.dtype("bool")
    if dtype.kind == "bfloat":
        try:
            import ml_dtypes  # noqa: PLC0415

            return np.dtype(ml_dtypes.bfloat16)
        except ImportError as exc:  # pragma: no cover - ml_dtypes ships with onnx
            raise UnsupportedError("bfloat16 arrays need the ml_dtypes package") from exc
    if dtype.kind == "handle":
        raise UnsupportedError("handle has no numpy dtype")
    return np.dtype(f"{dtype.kind}{dtype.bits}")


def from_numpy_dtype(dtype) -> DataType:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return DataType("bool")
    if dt.name == "bfloat16":
        return DataType("bfloat16")
    if dt.kind in "iuf":
        return DataType(dt.name)
    raise UnsupportedError(f"numpy dtype {dt} has no shapeflow equivalent")


# Frequently used types.
int32 = DataType("int32")
int64 = DataType("int64")
float32 = DataType("float32")
float64 = DataType("float64")
bool_ = DataType("bool")
handle = DataType("handle")
