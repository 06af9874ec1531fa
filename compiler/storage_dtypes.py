"""Storage dtypes: element types a compiled function stores as bit patterns of a byte, one per element.

The ONNX low-precision types (float8 in its four variants and E8M0, float4 E2M1, int4, uint4, int2, uint2)
have no arithmetic in the IR: the ONNX frontend carries them as uint8 bit patterns and converts them with
explicit decode/encode code (shapeflow.frontend.onnx.lowp). What users pass and get back are the numpy
arrays of the `ml_dtypes` package (what onnx.numpy_helper returns), one byte per element, so the boundary
only reinterprets the bytes: an input of such a type is viewed as uint8 and a uint8 result is viewed as
the declared type, both without a copy.

A graph function declares them in its "storage_dtypes" attribute, {"params": [name or None per parameter],
"ret": [name or None per result]}, which `compile` copies into the Executable's signature as "storage".
"""

from __future__ import annotations

import numpy as np

from shapeflow.errors import ShapeError

# name (an attribute of ml_dtypes) -> the IR dtype of its bits
STORAGE_DTYPES: dict[str, str] = {
    "float8_e4m3fn": "uint8",
    "float8_e4m3fnuz": "uint8",
    "float8_e5m2": "uint8",
    "float8_e5m2fnuz": "uint8",
    "float8_e8m0fnu": "uint8",
    "float4_e2m1fn": "uint8",
    "int4": "uint8",
    "uint4": "uint8",
    "int2": "uint8",
    "uint2": "uint8",
}


def numpy_dtype(name: str) -> np.dtype:
    """The ml_dtypes numpy dtype called `name`."""
    import ml_dtypes  # noqa: PLC0415 - only models with such types need it

    if name not in STORAGE_DTYPES:
        raise KeyError(f"{name!r} is not a storage dtype (have: {', '.join(STORAGE_DTYPES)})")
    return np.dtype(getattr(ml_dtypes, name))


def view_inputs(storage: dict, inputs) -> list:
    """`inputs` with each array of a declared storage dtype viewed as its bits. An array of another dtype
    is refused here (naming the type), except the bit patterns themselves (uint8), which pass as they are."""
    names = storage.get("params") or []
    out = list(inputs)
    for i, name in enumerate(names[: len(out)]):
        if not name:
            continue
        value = out[i]
        wanted = numpy_dtype(name)
        if isinstance(value, np.ndarray | np.generic) and value.dtype == wanted:
            out[i] = np.asarray(value).view(STORAGE_DTYPES[name])
        elif isinstance(value, np.ndarray | np.generic) and value.dtype != np.dtype(STORAGE_DTYPES[name]):
            raise ShapeError(
                f"argument {i}: expected an array of {name} (or its {STORAGE_DTYPES[name]} bit patterns), "
                f"got {value.dtype}"
            )
    return out


def view_outputs(storage: dict, value):
    """The function's result with each output of a declared storage dtype viewed as that type."""
    names = storage.get("ret") or []
    if isinstance(value, tuple):
        return tuple(_view(v, names[i] if i < len(names) else None) for i, v in enumerate(value))
    return _view(value, names[0] if names else None)


def _view(value, name):
    if name and isinstance(value, np.ndarray) and value.dtype == np.dtype(STORAGE_DTYPES[name]):
        return value.view(numpy_dtype(name))
    return value
