"""Random sequences of schedule primitives keep the meaning of te-built kernels.

Each example draws a kernel and up to 8 primitives with random arguments taken from the current schedule
(its blocks, their loops, random factors and options). A primitive either applies, or raises
ScheduleError and leaves the function exactly as it was. After the sequence the function verifies,
round-trips through the text format, and computes under the interpreter what the unscheduled kernel
computes, on shapes 1 and primes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from schedule_kernels import KERNELS, interpret

import shapeflow.ir as sf_ir
from shapeflow.errors import ScheduleError
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule

SIZES = (1, 3, 7)
SCOPES = ("global", "local", "shared")


def _blocks(sch: Schedule) -> list[str]:
    return [b for b in sch.block_names() if b != "root"]


def _pick(draw, seq):
    return draw(st.sampled_from(list(seq))) if seq else None


def _apply(sch: Schedule, draw) -> str:
    """Apply one random primitive; returns its name (with ' refused' when it raised ScheduleError)."""
    name = draw(st.sampled_from(PRIMITIVE_NAMES))
    blocks = _blocks(sch)
    block_name = draw(st.sampled_from(blocks))
    block = sch.get_block(block_name)
    loops = sch.get_loops(block)
    before = sch.func
    trace_len = len(sch.trace)
    try:
        if name == "split":
            loop = _pick(draw, loops)
            if loop is None:
                return "skip"
            f = draw(st.integers(1, 5))
            factors = draw(st.sampled_from([[None, f], [f, None], [None, f, 2]]))
            sch.split(loop, factors, tail=draw(st.sampled_from(["predicate", "partition"])))
        elif name == "fuse":
            if len(loops) < 2:
                return "skip"
            k = draw(st.integers(0, len(loops) - 2))
            sch.fuse(loops[k], loops[k + 1])
        elif name == "reorder":
            if len(loops) < 2:
                return "skip"
            chosen = draw(st.permutations(loops))[: draw(st.integers(2, len(loops)))]
            sch.reorder(*chosen)
        elif name in ("parallel", "vectorize", "unroll"):
            loop = _pick(draw, loops)
            if loop is None:
                return "skip"
            getattr(sch, name)(loop)
        elif name in ("compute_at", "reverse_compute_at"):
            related = sch.related_blocks(block_name, consumers=name == "compute_at")
            other = draw(st.sampled_from(related or blocks))
            target = _pick(draw, sch.get_loops(sch.get_block(other)))
            if target is None:
                return "skip"
            getattr(sch, name)(block, target)
        elif name in ("compute_inline", "reverse_compute_inline"):
            getattr(sch, name)(block)
        elif name == "cache_read":
            sch.cache_read(block, draw(st.integers(0, 2)), draw(st.sampled_from(SCOPES)))
        elif name == "cache_write":
            sch.cache_write(block, 0, draw(st.sampled_from(SCOPES)))
        elif name == "decompose_reduction":
            loop = _pick(draw, loops)
            if loop is None:
                return "skip"
            sch.decompose_reduction(block, loop)
        elif name == "rfactor":
            loop = _pick(draw, loops[1:] or loops)
            if loop is None:
                return "skip"
            sch.rfactor(loop, draw(st.integers(0, 1)))
        elif name == "storage_align":
            sch.storage_align(block, 0, 0, draw(st.integers(1, 8)), 0)
        elif name == "transform_layout":
            f = draw(st.integers(1, 4))
            sch.transform_layout(block, 0, lambda i, *rest: (i // f, *rest, i % f))
        elif name == "pad":
            realize, _ = sch.find_block(block)
            sch.pad(block, [draw(st.integers(1, 4)) for _ in realize.block.iter_vars])
    except ScheduleError as err:
        assert err.rule, "every refusal names its rule"
        assert sch.func is before, f"{name} raised but changed the function"
        assert all(entry[0] != name for entry in sch.trace[trace_len:]), "a refusal is not traced"
        return f"{name} refused"
    assert sch.trace[-1][0] == name
    return name


PRIMITIVE_NAMES = [
    "split", "fuse", "reorder", "parallel", "vectorize", "unroll", "compute_at", "reverse_compute_at",
    "compute_inline", "reverse_compute_inline", "cache_read", "cache_write", "decompose_reduction", "rfactor",
    "storage_align", "transform_layout", "pad",
]  # fmt: skip


@pytest.mark.parametrize("kernel_name", sorted(KERNELS))
@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_random_schedules_keep_meaning(kernel_name, data):
    kernel = KERNELS[kernel_name]()
    sch = Schedule(kernel.func)
    steps = data.draw(st.integers(1, 8))
    applied = [_apply(sch, data.draw) for _ in range(steps)]
    for step in applied:
        event(step)
    verify(sch.func)
    assert sf_ir.structural_equal(sf_ir.parse(sch.mod.script()), sch.mod), applied
    rng = np.random.default_rng(0)
    for size in SIZES:
        inputs = kernel.inputs(rng, size)
        expected = interpret(kernel.func, kernel, inputs, size)
        got = interpret(sch.func, kernel, inputs, size)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5, err_msg=f"{applied}\n{sch.func.script()}")
        np.testing.assert_allclose(expected[0], kernel.reference(*inputs), rtol=1e-4, atol=1e-5)
