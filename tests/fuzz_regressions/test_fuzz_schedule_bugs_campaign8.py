"""Regressions for bugs the fuzzer found in campaign 8 (the equal-CPU ablation runs) in the loop
primitives: predicated split tails running non-block statements on padded iterations, Let-expression loop
bounds copied so that one variable is bound twice, and bounds that load memory the body writes. The
reduction and layout primitives' campaign-8 bugs are in test_fuzz_schedule_bugs_campaign8_reduction.py; the
shared helpers in schedule_bug_checks.py.
"""

# ruff: noqa: E501  (the minimized programs are kept verbatim, one signature per line)

import pytest
from schedule_bug_checks import _check_well_formed_and_same, _func, _oracle_ok

from shapeflow.errors import ScheduleError
from shapeflow.passes.schedule import Schedule

# -- predicated split: the padded iterations -----------------------------------------------------------
# split(tail="predicate") put the predicate fused < extent on the blocks of the loop body only; the other
# statements of the body ran on the padded iterations too. The body is now guarded as a whole: blocks get
# the predicate, loops and lets whose bounds load nothing stay (the nest stays perfect), and any other
# statement is wrapped in `if fused < extent`.

# cf12ff979684: an assert beside the block failed on the padded iterations (i < m with i = m).
ASSERT_BESIDE_BLOCK = """def main(A0: T.Buffer((n, 8, n), "float64"), A1: T.Buffer((4, n, n), "int8"), B0: T.Buffer((m,), "int8")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        A0_global = T.alloc_buffer((n, 8, n), "float64")
        for i3_k4_fused in T.unroll(0, m):
            T.Assert(i3_k4_fused < m, 'fuzz assert')
            with T.block('reduce7'):
                v5_1 = T.axis.spatial(m, i3_k4_fused)
                v6 = T.axis.reduce(1, 0)
                T.reads(B0[v5_1], A1[v5_1:v5_1 + v5_1, v5_1:v5_1 + 0, T.min(T.max(v5_1 // 6, v5_1 * 6) % n, 0):T.min(T.max(v5_1 // 6, v5_1 * 6) % n, 0) + (T.max(T.max(v5_1 // 6, v5_1 * 6) % n, 0) - T.min(T.max(v5_1 // 6, v5_1 * 6) % n, 0) + 1)])
                T.writes(B0[v5_1])
                B0[v5_1] = B0[v5_1] * T.Select(T.float32(-2.5) >= T.float32(2.0), T.Select(True, A1[v5_1 * -1 % 2 % 4, (2 * -4 + T.max(v5_1, 2)) % n, 0], T.int8(-6)), A1[T.min(v5_1, 4 - 1), 0, T.max(6 * v5_1, v5_1 // 6) % n] - A1[T.min(v5_1, 4 - 1), 0, T.max(6 * v5_1, v5_1 // 6) % n])
"""


def test_split_predicate_guards_an_assert_beside_the_block():
    step = {"p": "split", "block": "reduce7", "loop": 0, "factors": [None, 2, 2], "tail": "predicate"}
    _oracle_ok(ASSERT_BESIDE_BLOCK, [step])


# 1f59_pred_if: a condition around the block loaded B[i] at the padded i = n (out of bounds).
IF_AROUND_BLOCK = """def main(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            if T.float32(0.0) != B[i]:
                with T.block('B_init'):
                    v_i = T.axis.spatial(n, i)
                    T.reads()
                    T.writes(B[v_i])
                    B[v_i] = T.float32(0.0)
"""


def test_split_predicate_guards_a_condition_around_the_block():
    step = {"p": "split", "block": "B_init", "loop": 0, "factors": [None, 1, 2], "tail": "predicate"}
    _oracle_ok(IF_AROUND_BLOCK, [step])
    func = _func(IF_AROUND_BLOCK)
    sch = Schedule(func)
    sch.split(sch.get_loops(sch.get_block("B_init"))[0], [None, 1, 2], tail="predicate")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 2}, {"n": 7}, {"n": 11}])


# The statement kinds of a loop body, each with a load (or assert) that fails on a padded iteration: an
# assert, a block predicate that loads, a let whose value loads, an inner loop whose extent loads, a store
# outside any block. Each split by 4 with n = 1, 5, 7 and 12 must give the values of the original.
BODY_KINDS = {
    "assert": "T.Assert(i < n, 'fuzz assert')\n            BLOCK",
    "where": "BLOCK_WHERE",
    "let": "with T.let(T.Cast('int64', A[i])) as t:\n                BLOCK_IN",
    "loop": "for j in T.serial(0, T.Cast('int64', A[i]) * 0 + 1):\n                BLOCK_IN",
    "store": "A[i] = A[i] + T.float32(1.0)\n            BLOCK",
}
BODY_KIND_FUNC = """def main(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            BODY
"""
BLOCK = """with T.block('S'):
INDENTv = T.axis.spatial(n, i)
INDENTWHERET.reads(A[v])
INDENTT.writes(B[v])
INDENTB[v] = A[v] * T.float32(2.0)"""


def _body_kind_func(kind: str) -> str:
    def block(indent: str, where: str = "") -> str:
        return BLOCK.replace("INDENTWHERE", indent + where).replace("INDENT", indent)

    body = BODY_KINDS[kind]
    body = body.replace("BLOCK_WHERE", block(" " * 16, "T.where(A[i] > T.float32(-100.0))\n" + " " * 16))
    body = body.replace("BLOCK_IN", block(" " * 20)).replace("BLOCK", block(" " * 16))
    return BODY_KIND_FUNC.replace("BODY", body)


@pytest.mark.parametrize("kind", sorted(BODY_KINDS))
def test_split_predicate_guards_every_statement_kind(kind):
    func = _func(_body_kind_func(kind))
    sch = Schedule(func)
    outer, inner = sch.split(sch.get_loops(sch.get_block("S"))[0], [None, 4], tail="predicate")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 7}, {"n": 12}])
    assert len(sch.get_loops(sch.get_block("S"))) == (3 if kind == "loop" else 2)


def test_split_predicate_keeps_a_perfect_nest_perfect():
    """Guarding must not cost the nest its shape: the block of an inner loop gets the predicate, no `if`
    comes between the loops, and the split loop can still be reordered with the inner one."""
    func = _func(_body_kind_func("loop").replace("T.Cast('int64', A[i]) * 0 + 1", "3"))
    sch = Schedule(func)
    _, inner = sch.split(sch.get_loops(sch.get_block("S"))[0], [None, 4], tail="predicate")
    assert "if " not in sch.func.script()
    sch.reorder(sch.get_loops(sch.get_block("S"))[2], inner)
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 12}])


# 20ad_pred_let: the loop's min was the Let expression T.Let(t1, n, n). split copied it into the binding of
# v_i and into the init (which names i directly), binding t1 twice: print -> parse was not structurally
# equal. The partitioned tail copied it the same way (VerifyError: t1 defined twice). split now copies the
# loop's min and extent without Let expressions (the simplifier inlines them).
LET_IN_LOOP_MIN = """def main(A: T.Buffer((4, 16), "float32"), B: T.Buffer((n + 1,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(T.Let(t1, n, n), n):
            with T.block('B'):
                v_i = T.axis.spatial(n, i)
                v_k = T.axis.reduce(16, 0)
                T.reads(A[v_i, v_k])
                T.writes(B[v_i])
                with T.init():
                    T.Assert(i < n, 'fuzz assert')
                B[3] = T.float32(0.0)
"""


def test_split_predicate_copies_a_let_loop_min_once_per_use():
    step = {"p": "split", "block": "B", "loop": 0, "factors": [None, 3, 2], "tail": "predicate"}
    _oracle_ok(LET_IN_LOOP_MIN, [step])


LET_IN_BOUNDS = """def main(B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(T.Let(t1, n, t1 - n), T.Let(t2, n, t2 + 0)):
            for j in T.serial(T.Let(t3, n, t3 - n), T.Let(t4, n, t4 % 3 + 1)):
                with T.block('B'):
                    v_i = T.axis.spatial(n, i)
                    v_j = T.axis.spatial(3, j)
                    T.reads()
                    T.writes(B[v_i])
                    B[v_i] = T.Cast("float32", i + j)
"""


@pytest.mark.parametrize(
    "prim",
    ["split_predicate", "split_partition", "split_inner", "fuse", "reorder"],
)
def test_loop_primitives_copy_let_bounds_without_binding_twice(prim):
    """Checked beside 20ad_pred_let: every loop primitive that copies a loop's bounds (split with either
    tail, of either loop; fuse) and reorder, on a nest whose mins and extents are Let expressions."""
    func = _func(LET_IN_BOUNDS)
    sch = Schedule(func)
    i, j = sch.get_loops(sch.get_block("B"))
    if prim == "fuse":
        sch.fuse(i, j)
    elif prim == "reorder":
        sch.reorder(j, i)
    else:
        loop = j if prim == "split_inner" else i
        sch.split(loop, [None, 3, 2], tail="partition" if prim == "split_partition" else "predicate")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 7}, {"n": 12}])


# Checked beside the predicated-split findings: a loop evaluates its bounds once, on entry, but split (either
# tail) and fuse evaluate them again inside the new loops. A bound loading memory the body writes then saw
# the new values (here the extent shrank after the first write, and the split loop skipped iterations; the
# fused loop divided by a changed inner extent). split and fuse now refuse such loops; bounds loading memory
# the body does not write are still split and fused, and so is an outermost extent that fuse evaluates once.
BOUND_LOADS = """def main(A: T.Buffer((n,), "int64"), C: T.Buffer((n,), "int64")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, OUTER):
            for j in T.serial(0, INNER):
                with T.block('S'):
                    v = T.axis.spatial(n, i)
                    vj = T.axis.spatial(n, j)
                    T.reads(A[v])
                    T.writes(A[v])
                    A[v] = A[v] - T.int64(20) + vj
"""
LOADED = "T.min(SRC[0] * 0 + SRC[0] + n, n)"


def _bound_loads(src: str, inner: bool):
    loaded = LOADED.replace("SRC", src)
    return _func(
        BOUND_LOADS.replace("OUTER", "n" if inner else loaded).replace("INNER", loaded if inner else "n")
    )


@pytest.mark.parametrize("prim", ["predicate", "partition", "fuse"])
def test_split_and_fuse_refuse_bounds_loading_what_the_body_writes(prim):
    inner = prim == "fuse"  # split re-evaluates the bounds of the split loop, fuse those of inner loops

    def apply(sch):
        i, j = sch.get_loops(sch.get_block("S"))
        if prim == "fuse":
            sch.fuse(i, j)
        else:
            sch.split(i, [None, 4], tail=prim)

    sch = Schedule(_bound_loads("A", inner))
    with pytest.raises(ScheduleError, match=f"{'fuse' if inner else 'split'}: loop bounds read memory"):
        apply(sch)
    dims = [{"n": 1}, {"n": 5}, {"n": 7}, {"n": 12}]
    for func in (_bound_loads("C", inner), *((_bound_loads("A", False),) if inner else ())):
        sch = Schedule(func)
        apply(sch)
        _check_well_formed_and_same(func, sch.func, dims)
