"""shapeflow.passes: the pass infrastructure and the passes, registered by name.

`PASSES` maps each pass name to its class; `get_pass(name, **options)` builds one, which is how the command
line and the fuzzer assemble pipelines. Importing this package registers the loop-IR passes
(`shapeflow.passes.tir`); other pass families register themselves when their subpackage is imported.
"""

from shapeflow.passes import tir  # noqa: E402  (registers the loop-IR passes)
from shapeflow.passes.infra import (
    PASSES,
    DumpIR,
    Pass,
    PassContext,
    PassInstrument,
    PrimFuncPass,
    PrintAfter,
    Sequential,
    TimePasses,
    VerifyAfter,
    get_pass,
    pass_options,
    register_pass,
)

# The graph passes register themselves on import; importing them here makes PASSES (the registry the
# fuzzer and the command line read) complete whichever level a caller touches first.
from shapeflow.passes import graph  # noqa: E402

__all__ = [
    "PASSES",
    "graph",
    "DumpIR",
    "Pass",
    "PassContext",
    "PassInstrument",
    "PrimFuncPass",
    "PrintAfter",
    "Sequential",
    "TimePasses",
    "VerifyAfter",
    "get_pass",
    "pass_options",
    "register_pass",
    "tir",
]
