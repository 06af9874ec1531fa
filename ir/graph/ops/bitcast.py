"""bitcast: a tensor's bytes reinterpreted as another dtype of the same width (ONNX BitCast).

The loop IR has no reinterpreting load, so the op is a library function in destination-passing style
(`call_dps_library`) rather than a PrimFunc: it copies the input's bytes into the output buffer through a
numpy view. Build it as `op.call_dps_library(LIBRARY_NAME, [x], TensorType(x_shape, dtype))`.
"""

from __future__ import annotations

import numpy as np

from shapeflow.errors import UnsupportedError
from shapeflow.ir.graph.ops.dps import register_library_function

LIBRARY_NAME = "shapeflow.bitcast"


def _bitcast_into(x: np.ndarray, out: np.ndarray) -> None:
    if x.dtype.itemsize != out.dtype.itemsize or x.shape != out.shape:
        raise UnsupportedError(f"bitcast: cannot reinterpret {x.dtype}{list(x.shape)} as {out.dtype}")
    out[...] = np.ascontiguousarray(x).view(out.dtype)


register_library_function(LIBRARY_NAME, _bitcast_into)
