"""Every legality rule: the primitive raises ScheduleError naming the rule; the schedule stays as it was."""

from __future__ import annotations

import pytest
from schedule_kernels import KERNELS

from shapeflow import te
from shapeflow.errors import Error, ScheduleError
from shapeflow.ir.expr import Var
from shapeflow.ir.tir import Block, BlockRealize, BufferStore, For, ForKind, IterVar, PrimFunc, Range, seq
from shapeflow.ir.tir.buffer import decl_buffer
from shapeflow.passes.schedule import BlockRV, Schedule
from shapeflow.passes.schedule.analysis import infer_regions


def loops(sch, name):
    return sch.get_loops(sch.get_block(name))


def _split_then_stale(sch):
    i = loops(sch, "M")[0]
    sch.split(i, [None, 2])
    sch.parallel(i)  # i was replaced by the split


def _partition_tail(sch):
    sch.split(loops(sch, "M")[0], [None, 2], tail="partition")
    sch.cache_write(sch.get_block("M"), 0)


def _decompose_below_reduction(sch):
    i, j, k = loops(sch, "M")
    sch.reorder(k, i)  # now k, j, i
    sch.decompose_reduction(sch.get_block("M"), j)


def _rfactor_two_blocks(sch):
    i = loops(sch, "C")[0]
    sch.compute_at(sch.get_block("B"), i)
    sch.rfactor(i)


def _inline_packed(sch):
    sch.transform_layout(sch.get_block("B"), 0, lambda i, j: (i // 2, j, i % 2))
    sch.reverse_compute_inline(sch.get_block("C"))


def blk(sch, name):
    return sch.get_block(name)


# rule -> (kernel, action)
RULES = {
    # handles
    "handle: block not found": ("matmul", lambda s: blk(s, "nope")),
    "handle: loop not found": ("matmul", _split_then_stale),
    "handle": ("matmul", lambda s: s.get_loops(5)),
    # split
    "split: at most one factor may be None": ("matmul", lambda s: s.split(loops(s, "M")[0], [None, None])),
    "split: factors must be positive": ("matmul", lambda s: s.split(loops(s, "M")[0], [None, 0])),
    "split: factors must be positive integers or expressions": (
        "matmul", lambda s: s.split(loops(s, "M")[0], [None, 2.5])),
    "split: needs at least two factors": ("matmul", lambda s: s.split(loops(s, "M")[0], [4])),
    "split: a partitioned tail needs the outermost factor None": (
        "matmul", lambda s: s.split(loops(s, "M")[0], [2, None], tail="partition")),
    "split: tail must be 'predicate' or 'partition'": (
        "matmul", lambda s: s.split(loops(s, "M")[0], [None, 2], tail="mask")),
    "split: factors must be a list": ("matmul", lambda s: s.split(loops(s, "M")[0], 4)),
    "split: factor uses a variable not defined at the loop": (
        "matmul", lambda s: s.split(loops(s, "M")[0], [None, te.var("x")])),
    # fuse
    "fuse: loops are not directly nested": ("matmul", lambda s: s.fuse(loops(s, "M")[0], loops(s, "M")[2])),
    "fuse: needs at least two loops": ("matmul", lambda s: s.fuse(loops(s, "M")[0])),
    "fuse: loops must be serial": (
        "matmul", lambda s: (s.unroll(loops(s, "M")[1]), s.fuse(*loops(s, "M")[:2]))),
    # reorder
    "reorder: loops are not in one chain": (
        "softmax", lambda s: s.reorder(loops(s, "E")[0], loops(s, "O")[1])),
    # loop kinds
    "parallel: loop carries a reduction": ("matmul", lambda s: s.parallel(loops(s, "M")[2])),
    "vectorize: loop carries a reduction": ("row_reduction", lambda s: s.vectorize(loops(s, "S")[1])),
    "vectorize: extent not constant": ("matmul", lambda s: s.vectorize(loops(s, "M")[0])),
    "parallel: loop is not serial": (
        "matmul", lambda s: (s.unroll(loops(s, "M")[1]), s.parallel(loops(s, "M")[1]))),
    "bind: unknown thread axis": ("matmul", lambda s: s.bind(loops(s, "M")[0], "warp.x")),
    # compute location
    "compute_at: loop is not after the block": (
        "softmax", lambda s: s.compute_at(blk(s, "O"), loops(s, "E")[0])),
    "compute_at: a consumer is not under the loop": (
        "softmax", lambda s: s.compute_at(blk(s, "E"), loops(s, "S")[0])),
    "reverse_compute_at: loop is not before the block": (
        "softmax", lambda s: s.reverse_compute_at(blk(s, "E"), loops(s, "O")[0])),
    "compute_inline: block is not a spatial elementwise producer": (
        "softmax", lambda s: s.compute_inline(blk(s, "S"))),
    "compute_inline: buffer is not an intermediate of the scope": (
        "elementwise", lambda s: s.compute_inline(blk(s, "C"))),
    "reverse_compute_inline: block is not a spatial elementwise consumer": (
        "softmax", lambda s: s.reverse_compute_inline(blk(s, "S"))),
    "reverse_compute_inline: consumer does not read the producer at exactly its point": (
        "elementwise", _inline_packed),
    "reverse_compute_inline: buffer has other readers": (
        "softmax", lambda s: s.reverse_compute_inline(blk(s, "O"))),
    "reverse_compute_inline: block reads no intermediate buffer": (
        "row_reduction", lambda s: s.reverse_compute_inline(blk(s, "E"))),
    "reverse_compute_inline: producer is a reduction": (
        "conv_like", lambda s: s.reverse_compute_inline(blk(s, "Z"))),
    # caching
    "cache_read: read index out of range": ("matmul", lambda s: s.cache_read(blk(s, "M"), 5)),
    "cache_read: unknown storage scope": ("matmul", lambda s: s.cache_read(blk(s, "M"), 0, "texture")),
    "cache_write: write index out of range": ("matmul", lambda s: s.cache_write(blk(s, "M"), 1)),
    "cache_write: buffer has another writer": ("matmul", _partition_tail),
    # reduction
    "decompose_reduction: block has no init": (
        "elementwise", lambda s: s.decompose_reduction(blk(s, "C"), loops(s, "C")[0])),
    "decompose_reduction: loop is inside a reduction loop": ("matmul", _decompose_below_reduction),
    "rfactor: loop binds both spatial and reduction variables": (
        "matmul", lambda s: s.rfactor(loops(s, "M")[0])),
    "rfactor: block is not a recognized reduction": ("elementwise", lambda s: s.rfactor(loops(s, "C")[0])),
    "rfactor: loop must contain exactly one block": ("elementwise", _rfactor_two_blocks),
    "rfactor: factor_axis out of range": ("matmul", lambda s: s.rfactor(loops(s, "M")[2], 7)),
    # layout
    "storage_align: buffer is a function parameter": (
        "matmul", lambda s: s.storage_align(blk(s, "M"), 0, 0, 16, 1)),
    "storage_align: axis must be an outer axis": (
        "elementwise", lambda s: s.storage_align(blk(s, "B"), 0, 1, 16, 1)),
    "storage_align: needs factor >= 1 and 0 <= offset < factor": (
        "elementwise", lambda s: s.storage_align(blk(s, "B"), 0, 0, 4, 9)),
    "transform_layout: index map is not injective": (
        "elementwise", lambda s: s.transform_layout(blk(s, "B"), 0, lambda i, j: (i + j,))),
    "transform_layout: index map is not bounded below by 0 over the buffer": (
        "elementwise", lambda s: s.transform_layout(blk(s, "B"), 0, lambda i, j: (i - 1, j))),
    "transform_layout: index map cannot be applied": (
        "elementwise", lambda s: s.transform_layout(blk(s, "B"), 0, lambda i: (i,))),
    "transform_layout: buffer is a function parameter": (
        "matmul", lambda s: s.transform_layout(blk(s, "M"), 0, lambda i, j: (j, i))),
    "pad: block is not an einsum": ("softmax", lambda s: s.pad(blk(s, "mx"), [4, 4])),
    "pad: padding must list a positive integer per iteration variable": (
        "matmul", lambda s: s.pad(blk(s, "M"), [4, 4])),
    "pad: buffer access is not a plain iteration variable": (
        "conv_like", lambda s: s.pad(blk(s, "Y"), [2, 1, 1, 1])),
}  # fmt: skip


@pytest.mark.parametrize("rule", sorted(RULES))
def test_illegal_primitive_names_its_rule(rule):
    kernel_name, action = RULES[rule]
    sch = Schedule(KERNELS[kernel_name]().func)
    with pytest.raises(ScheduleError) as info:
        action(sch)
    assert info.value.rule == rule
    assert isinstance(info.value, Error)
    assert f"[{rule}]" in str(info.value)


def test_refused_primitive_leaves_function_and_trace_unchanged():
    sch = Schedule(KERNELS["matmul"]().func)
    i, j, k = loops(sch, "M")
    before, trace = sch.func, list(sch.trace)
    with pytest.raises(ScheduleError):
        sch.parallel(k)
    assert sch.func is before
    assert sch.trace == trace


def test_failed_multi_step_primitive_is_atomic():
    """cache_read commits in steps; a failure in a later step must roll all of them back."""
    sch = Schedule(KERNELS["softmax"]().func)
    before = sch.func
    with pytest.raises(ScheduleError):
        sch.compute_at(sch.get_block("E"), loops(sch, "S")[0])
    assert sch.func is before


def test_handles_survive_unrelated_primitives():
    sch = Schedule(KERNELS["elementwise"]().func)
    b = sch.get_block("B")
    i, j = loops(sch, "C")
    sch.split(loops(sch, "B")[1], [None, 2])
    sch.compute_at(b, i)  # the block handle and the loop handle still resolve
    assert sch.get_loops(b)[0] == i
    assert b == BlockRV("B")


def _carried_dependence_func():
    """for i in [1, n): C: Y[i] = X[i - 1];  P: X[i] = A[i]   (C reads what P wrote one iteration before)."""
    n = Var("n")
    A, Y, X = decl_buffer((n,), name="A"), decl_buffer((n,), name="Y"), decl_buffer((n,), name="X")
    i, vc, vp = Var("i"), Var("vc"), Var("vp")
    c = infer_regions(Block("C", (IterVar(vc, Range(0, n)),), (), (), BufferStore(Y, X[vc - 1], (vc,))))
    p = infer_regions(Block("P", (IterVar(vp, Range(0, n)),), (), (), BufferStore(X, A[vp], (vp,))))
    body = For(i, 1, n - 1, ForKind.SERIAL, seq(BlockRealize((i,), True, c), BlockRealize((i,), True, p)))
    root = Block("root", (), (), (), body, None, (X,))
    return PrimFunc((A, Y), BlockRealize((), True, root), {"global_symbol": "main"})


def test_loop_carried_dependence_blocks_parallel():
    sch = Schedule(_carried_dependence_func())
    i = sch.get_loops(sch.get_block("C"))[0]
    with pytest.raises(ScheduleError) as info:
        sch.parallel(i)
    assert info.value.rule == "parallel: iterations depend on each other"
    sch.unroll(i)  # unrolling keeps the order: allowed
