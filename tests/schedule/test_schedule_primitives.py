"""Each primitive on a known kernel: the structure it promises (extents, predicates, new blocks and buffers,
trace) and the same results under the interpreter at sizes 1, primes and others."""

from __future__ import annotations

import numpy as np
import pytest
from schedule_kernels import KERNELS, interpret

from shapeflow import te
from shapeflow.errors import ScheduleError
from shapeflow.ir import IRModule
from shapeflow.ir.expr import IntImm, Var
from shapeflow.ir.functor import collect
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.stmt import Block, BlockRealize, For, ForKind
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import LoopRV, Schedule

SIZES = (1, 2, 5, 13)


def same_meaning(kernel, sch: Schedule) -> None:
    verify(sch.func)
    rng = np.random.default_rng(7)
    for size in SIZES:
        inputs = kernel.inputs(rng, size)
        got = interpret(sch.func, kernel, inputs, size)[0]
        np.testing.assert_allclose(got, kernel.reference(*inputs), rtol=1e-4, atol=1e-5)


def loops(sch, name):
    return sch.get_loops(sch.get_block(name))


def loop_of(sch, rv: LoopRV) -> For:
    return sch.find_loop(rv)[0]


def realize_of(sch, name) -> BlockRealize:
    return sch.find_block(name)[0]


def allocs(sch) -> dict[str, Buffer]:
    return {b.name: b for blk in collect(sch.func.body, Block) for b in blk.alloc_buffers}


def test_split_exact_has_no_predicate_inexact_has_one():
    kernel = KERNELS["elementwise"]()
    sch = Schedule(kernel.func)
    jo, ji = sch.split(loops(sch, "C")[1], [3, None])  # 6 = 3 * 2: exact
    assert loop_of(sch, ji).extent.value == 2
    assert isinstance(realize_of(sch, "C").predicate, IntImm)
    io, ii = sch.split(loops(sch, "C")[0], [None, 4])  # symbolic n: masked
    assert not isinstance(realize_of(sch, "C").predicate, IntImm)
    assert [lp.var for lp in loops(sch, "C")] == [io.var, ii.var, jo.var, ji.var]
    same_meaning(kernel, sch)


def test_split_three_ways_and_symbolic_factor():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    m = kernel.func.params[0].shape[0]
    parts = sch.split(loops(sch, "M")[0], [None, 2, 3])
    assert len(parts) == 3
    sch.split(loops(sch, "M")[-1], [None, (m % 3) + 1])  # a symbolic factor, at least 1
    same_meaning(kernel, sch)


def test_split_partition_cuts_a_tail_loop():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    io, ii = sch.split(loops(sch, "M")[0], [None, 4], tail="partition")
    names = sch.block_names()
    assert "M" in names and "M_tail" in names
    assert isinstance(realize_of(sch, "M").predicate, IntImm)  # the main nest needs no mask
    assert loop_of(sch, ii).extent.value == 4
    same_meaning(kernel, sch)


def test_fuse_then_split_back():
    kernel = KERNELS["broadcast_add"]()
    sch = Schedule(kernel.func)
    fused = sch.fuse(*loops(sch, "D"))
    assert len(loops(sch, "D")) == 1
    sch.split(fused, [None, 8])
    same_meaning(kernel, sch)


def test_reorder_puts_loops_in_the_given_order():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    i, j, k = loops(sch, "M")
    sch.reorder(k, j, i)
    assert loops(sch, "M") == [k, j, i]
    same_meaning(kernel, sch)


def test_loop_kinds_and_bind():
    kernel = KERNELS["elementwise"]()
    sch = Schedule(kernel.func)
    i, j = loops(sch, "C")
    sch.parallel(i)
    sch.vectorize(j)
    b_i, b_j = loops(sch, "B")
    sch.unroll(b_j)
    sch.bind(b_i, "threadIdx.x")
    assert loop_of(sch, i).kind == ForKind.PARALLEL and loop_of(sch, j).kind == ForKind.VECTORIZED
    assert loop_of(sch, b_j).kind == ForKind.UNROLLED
    assert loop_of(sch, b_i).thread_tag == "threadIdx.x"
    same_meaning(kernel, sch)


def test_trace_records_arguments_and_module_input_works():
    kernel = KERNELS["elementwise"]()
    mod = IRModule({"f": kernel.func})
    sch = Schedule(mod)
    b = sch.get_block("B")
    sch.compute_inline(b)
    assert sch.func_name == "f" and "f" in sch.mod
    assert [name for name, _ in sch.trace] == ["get_block", "compute_inline"]
    assert sch.trace[1][1] == {"block": b}
    assert "B" not in sch.block_names() and "B" not in allocs(sch)
    same_meaning(kernel, sch)


def test_get_child_blocks():
    sch = Schedule(KERNELS["softmax"]().func)
    root = sch.get_block("root")
    assert [b.name for b in sch.get_child_blocks(root)] == ["mx", "E", "S", "O"]
    i = loops(sch, "O")[0]
    sch.compute_at(sch.get_block("S"), i)
    assert [b.name for b in sch.get_child_blocks(i)] == ["S", "O"]


def test_compute_at_computes_only_the_needed_region():
    kernel = KERNELS["conv_like"]()
    sch = Schedule(kernel.func)
    cache = sch.cache_read(sch.get_block("Y"), 0, "local")  # a copy of X, read with a 3-tap halo
    i = loops(sch, "Y")[0]
    sch.compute_at(cache, i)
    extents = [loop_of(sch, lp).extent for lp in loops(sch, cache.name)[1:]]  # under i: rows i..i+2
    assert all(isinstance(e, IntImm) for e in extents) and [e.value for e in extents] == [3, 2]
    sch.reverse_compute_at(sch.get_block("Z"), i)
    same_meaning(kernel, sch)


def test_reverse_compute_at_then_inline_chain():
    kernel = KERNELS["softmax"]()
    sch = Schedule(kernel.func)
    i = loops(sch, "E")[0]
    sch.reverse_compute_at(sch.get_block("S"), i)
    sch.reverse_compute_at(sch.get_block("O"), i)
    sch.compute_at(sch.get_block("mx"), i)
    assert [b.name for b in sch.get_child_blocks(i)] == ["mx", "E", "S", "O"]
    same_meaning(kernel, sch)


def test_reverse_compute_inline_writes_the_consumer_output():
    kernel = KERNELS["broadcast_add"]()
    sch = Schedule(kernel.func)
    sch.reverse_compute_inline(sch.get_block("D"))
    c = realize_of(sch, "C").block
    assert [r.buffer.name for r in c.writes] == ["D"]
    assert "C" not in allocs(sch)
    same_meaning(kernel, sch)


def test_cache_read_and_write_use_the_scope():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    r = sch.cache_read(sch.get_block("M"), 1, "shared")
    w = sch.cache_write(sch.get_block("M"), 0, "local")
    buffers = allocs(sch)
    assert buffers[r.name].scope == "shared" and buffers[w.name].scope == "local"
    assert {reg.buffer.name for reg in realize_of(sch, "M").block.writes} == {w.name}
    sch.reverse_compute_at(w, loops(sch, "M")[0])
    same_meaning(kernel, sch)


def test_decompose_reduction_moves_init_out():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    i, j, k = loops(sch, "M")
    init = sch.decompose_reduction(sch.get_block("M"), k)
    assert realize_of(sch, "M").block.init is None
    assert realize_of(sch, init.name).block.init is None
    assert [lp.var for lp in loops(sch, init.name)][:2] == [i.var, j.var]
    same_meaning(kernel, sch)


@pytest.mark.parametrize("factor_axis", [0, 1, -1])
def test_rfactor_partial_results_buffer(factor_axis):
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    ko, ki = sch.split(loops(sch, "M")[2], [None, 4])
    rf = sch.rfactor(ki, factor_axis)
    buf = allocs(sch)[rf.name]
    axis = factor_axis % 3
    assert buf.shape[axis].value == 4
    same_meaning(kernel, sch)


def test_rfactor_of_max_with_masked_tail():
    kernel = KERNELS["softmax"]()
    sch = Schedule(kernel.func)
    ko, ki = sch.split(loops(sch, "mx")[1], [None, 4])  # 6 = 2 * 4 - 2: masked
    sch.rfactor(ko, 0)
    same_meaning(kernel, sch)


def test_transform_layout_packs_a_buffer():
    n = te.var("n")
    A = te.placeholder((n, 3), "float32", name="A")
    B = te.compute((n, 3), lambda i, j: A[i, j] + 1.0, name="B")
    C = te.compute((n, 3), lambda i, j: B[i, j] * 3.0, name="C")
    func = te.create_prim_func([A, C])
    sch = Schedule(func)
    sch.transform_layout(sch.get_block("B"), 0, lambda i, j: (i // 16, j, i % 16))
    packed = allocs(sch)["B"]
    assert structural_equal(packed.shape[0], (n + 15) // 16)
    assert [s.value for s in packed.shape[1:]] == [3, 16]
    verify(sch.func)
    for size in SIZES + (17, 33):
        a = np.random.default_rng(size).random((size, 3), dtype="float32")
        out = np.zeros((size, 3), "float32")
        run(sch.func, a, out)
        np.testing.assert_allclose(out, (a + 1) * 3, rtol=1e-6)


def test_storage_align_sets_strides():
    kernel = KERNELS["elementwise"]()
    sch = Schedule(kernel.func)
    sch.storage_align(sch.get_block("B"), 0, 0, 8, 1)
    strides = allocs(sch)["B"].strides
    assert strides[0].value % 8 == 1 and strides[1].value == 1
    same_meaning(kernel, sch)


def test_pad_einsum_to_multiples():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    sch.pad(sch.get_block("M"), [4, 4, 4])
    m_block = realize_of(sch, "M").block
    assert [iv.dom.extent.value for iv in m_block.iter_vars[1:]] == [8, 8]
    assert {"A_pad", "W_pad", "M_pad_unpad"} <= set(sch.block_names())
    assert allocs(sch)["M_pad"].shape[1].value == 8
    same_meaning(kernel, sch)


def test_split_factor_expression_uses_function_dims():
    kernel = KERNELS["row_reduction"]()
    sch = Schedule(kernel.func)
    n = next(v for v in collect(kernel.func.params[0].shape, Var))
    with pytest.raises(ScheduleError, match="may be < 1"):
        sch.split(loops(sch, "S")[0], [None, n])  # n may be 0
    sch.split(loops(sch, "S")[0], [None, n + 1])
    same_meaning(kernel, sch)


def test_reverse_compute_inline_through_a_permuted_layout():
    """The consumer reads the producer's buffer with permuted indices (after transform_layout)."""
    kernel = KERNELS["broadcast_add"]()
    sch = Schedule(kernel.func)
    sch.transform_layout(sch.get_block("C"), 0, lambda i, j: (j, i))
    sch.reverse_compute_inline(sch.get_block("D"))
    assert "D" not in sch.block_names()
    same_meaning(kernel, sch)


def test_replaying_a_trace_rebuilds_the_same_function():
    kernel = KERNELS["matmul"]()
    sch = Schedule(kernel.func)
    b = sch.get_block("M")
    i, j, k = sch.get_loops(b)
    io, ii = sch.split(i, [None, 4])
    ko, ki = sch.split(k, [None, 2])
    sch.reorder(io, ko, ii, j, ki)
    sch.fuse(ii, j)
    sch.parallel(io)
    sch.decompose_reduction(b, ko)
    again = Schedule(kernel.func)
    again.replay(sch.trace, sch.trace_results)
    assert structural_equal(again.func, sch.func)
    assert [name for name, _ in again.trace] == [name for name, _ in sch.trace]
