"""Schedules the random-schedule property test found to change meaning, kept as explicit cases."""

import numpy as np
import pytest
from schedule_kernels import KERNELS, interpret

from shapeflow.errors import ScheduleError
from shapeflow.passes.schedule import Schedule


def assert_same_meaning(kernel, sch, sizes=(1, 3, 7)):
    rng = np.random.default_rng(0)
    for size in sizes:
        inputs = kernel.inputs(rng, size)
        expected = interpret(kernel.func, kernel, inputs, size)
        got = interpret(sch.func, kernel, inputs, size)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_rfactor_of_a_split_tail_writes_back_only_the_tail_rows():
    # split(i, [None, 2], tail="partition") makes a tail block S_tail; factoring its reduction used to
    # write back (init 0 + partials) over every row, erasing what the main block had computed.
    kernel = KERNELS["row_reduction"]()
    sch = Schedule(kernel.func)
    block = sch.get_block("S")
    sch.split(sch.get_loops(block)[0], [None, 2], tail="partition")
    tail = sch.get_block("S_tail")
    sch.rfactor(sch.get_loops(tail)[-1], 0)
    assert_same_meaning(kernel, sch)


def test_reverse_compute_at_refuses_a_producer_that_runs_after_the_loop():
    # O reads E and S. With S moved under E's row loop (after the j loop), moving O under j would read
    # S before it is computed.
    kernel = KERNELS["softmax"]()
    sch = Schedule(kernel.func)
    sch.reverse_compute_at(sch.get_block("S"), sch.get_loops(sch.get_block("E"))[0])
    before = sch.func
    with pytest.raises(ScheduleError, match="conflicts"):
        sch.reverse_compute_at(sch.get_block("O"), sch.get_loops(sch.get_block("E"))[1])
    assert sch.func is before
    assert_same_meaning(kernel, sch)
