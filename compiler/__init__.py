"""shapeflow: a tensor compiler for models whose shapes are known only at run time.

    import shapeflow as sf
    lib = sf.build(mod, target="cpu")          # loop-level kernels
    exe = sf.compile("model.onnx", dims={"batch": (1, 64)})

See DESIGN.md for the map of the package.
"""

__version__ = "0.1.0"

from shapeflow.errors import (  # noqa: E402  (errors first: every subpackage imports them)
    CompileError,
    Error,
    ParseError,
    ScheduleError,
    ShapeError,
    UnsupportedError,
    VerifyError,
)
from shapeflow import ir  # noqa: E402
from shapeflow import te  # noqa: E402
from shapeflow.build import build  # noqa: E402
from shapeflow.compile import compile  # noqa: E402, A004
from shapeflow.executable import Executable  # noqa: E402
from shapeflow.runtime.artifact import load  # noqa: E402
from shapeflow.target import Target  # noqa: E402

__all__ = [
    "__version__", "Error", "ParseError", "VerifyError", "ShapeError", "UnsupportedError", "ScheduleError",
    "CompileError", "ir", "te", "build", "Target", "compile", "load", "Executable",
]
