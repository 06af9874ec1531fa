"""Helpers of the VM's boundary checks: turning user values into arrays, scalar checks, error objects."""

from __future__ import annotations

import numpy as np

from shapeflow.errors import ShapeError
from shapeflow.ir.dtype import DataType, to_numpy_dtype


def to_dtype(dtype: str | None):
    return None if dtype is None else to_numpy_dtype(DataType(dtype))


def as_array(value, function: str, where: str) -> np.ndarray:
    """A C-contiguous numpy array from an ndarray, a DLPack tensor (np.from_dlpack) or a Python scalar."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    if hasattr(value, "__dlpack__"):
        try:
            return np.ascontiguousarray(np.from_dlpack(value))
        except (TypeError, ValueError, RuntimeError, BufferError) as exc:
            raise ShapeError(
                f"cannot read the DLPack tensor ({exc})",
                function=function,
                parameter=where,
                expected="a CPU tensor",
                actual=type(value).__name__,
            ) from None
    if isinstance(value, (bool, int, float, np.generic)):
        return np.asarray(value)
    raise ShapeError(
        "expected a tensor",
        function=function,
        parameter=where,
        expected="numpy array or DLPack tensor",
        actual=type(value).__name__,
    )


def check_prim(value, dtype: DataType, function: str, where: str):
    """A scalar of `dtype` as a Python number, or a ShapeError."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if dtype.is_bool:
        ok = isinstance(value, bool)
    elif dtype.is_float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise ShapeError(
            "expected a scalar",
            function=function,
            parameter=where,
            expected=str(dtype),
            actual=type(value).__name__,
        )
    return value


def dim_error(function: str, where: str, dim: int, expected: str, actual: int) -> ShapeError:
    return ShapeError(
        "dimension mismatch",
        function=function,
        parameter=where,
        dimension=dim,
        expected=expected,
        actual=actual,
    )
