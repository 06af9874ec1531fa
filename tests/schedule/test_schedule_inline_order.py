"""compute_inline after cache_write: a schedule the random-schedule property test found to leave a read of
a removed buffer (VerifyError "buffer B is used but is neither a parameter nor allocated")."""

import numpy as np
import pytest
from schedule_kernels import KERNELS, interpret

from shapeflow.errors import ScheduleError
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule


def _cached_elementwise():
    """elementwise with B's loops fused and its write cached: cache_write cannot prove the fused binding
    writes every point, so it copies B into B_global first (block B_global_in, reading B before B_global
    writes it back)."""
    kernel = KERNELS["elementwise"]()
    sch = Schedule(kernel.func)
    sch.fuse(*sch.get_loops(sch.get_block("B")))
    sch.cache_write(sch.get_block("B"), 0, "global")
    return kernel, sch


def test_compute_inline_refuses_a_buffer_read_before_its_producer():
    kernel, sch = _cached_elementwise()
    assert [b.name for b in sch.get_child_blocks(sch.get_block("root"))][:3] == [
        "B_global_in",
        "B",
        "B_global",
    ]
    before = sch.func
    with pytest.raises(ScheduleError, match="compute_inline: buffer is read before the block writes it"):
        sch.compute_inline(sch.get_block("B_global"))
    assert sch.func is before  # refused without a partial edit
    verify(sch.func)
    rng = np.random.default_rng(0)
    for size in (1, 3, 7):
        inputs = kernel.inputs(rng, size)
        np.testing.assert_allclose(interpret(sch.func, kernel, inputs, size)[0], kernel.reference(*inputs))
