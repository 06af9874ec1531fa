"""Where a numpy array object keeps its data pointer, measured once per process.

The Python entry points of compiled kernels take `id(array)` and load the data pointer from inside the
object (shapeflow.codegen.llvm.function), because asking numpy for it from Python (`arr.ctypes.data`,
`arr.__array_interface__`) costs more than the kernel call itself for small arrays. numpy's
`PyArrayObject_fields` puts `data` right after the object header; rather than assume the header size (it
differs in debug and free-threaded builds), we find the offset on a probe array and check it on others.
If no offset checks out, kernels are called with pointers taken the slow way.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np


def _pointer_at(obj, offset: int) -> int:
    return ctypes.c_void_p.from_address(id(obj) + offset).value or 0


@cache
def ndarray_data_offset() -> int | None:
    """The byte offset of the data pointer inside an ndarray object, or None if it cannot be trusted."""
    probes = [np.empty(3, np.float32), np.zeros((2, 5), np.int8), np.arange(7)[2:], np.empty(0)]
    for offset in range(8, 64, 8):
        if all(_pointer_at(p, offset) == p.__array_interface__["data"][0] for p in probes if p.size):
            return offset
    return None


def data_pointer(array: np.ndarray) -> int:
    """The address of the first element (slow path, any ndarray)."""
    return array.__array_interface__["data"][0]
