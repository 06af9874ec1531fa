"""Regressions for bugs the fuzzer's schedule-primitive mutator found (campaign 2, seed 7).

Each test builds the minimized PrimFunc from text, applies the schedule primitives directly, and checks
what the fuzzer's oracle checked: the verifier accepts the result, print -> parse round-trips it, and the
reference interpreter gives the same values as on the original program, or the primitive refuses with a
ScheduleError naming the rule. Campaign 7's findings are in test_fuzz_schedule_bugs_campaign7.py; the
helpers both files use are in schedule_bug_checks.py.
"""

# ruff: noqa: E501  (the minimized programs are kept verbatim, one signature per line)

import pytest
from schedule_bug_checks import _check_well_formed_and_same, _func

from shapeflow.errors import ScheduleError
from shapeflow.passes.schedule import Schedule

DIMS = [{"n": 1, "m": 1}, {"n": 7, "m": 5}, {"n": 12, "m": 12}]

# 3ef91e1b2601: split(tail="partition") copied the loop body for the tail loop but kept the Var bound by a
# Let expression, so the function bound t4 twice (VerifyError "variable t4 is defined twice").
LET_IN_BODY = """def main(A0: T.Buffer((m,), "int16"), A1: T.Buffer((4, 4), "int16"), B0: T.Buffer((m, 3, n), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i1 in T.parallel(0, m):
            for i2 in T.unroll(0, 3):
                for i3 in T.serial(0, n):
                    with T.block('ew9'):
                        v5 = T.axis.spatial(m, i1)
                        v6 = T.axis.spatial(3, i2)
                        v7 = T.axis.spatial(n, i3)
                        T.reads(A0[0:m], A1[0:4, 0:4])
                        T.writes(B0[v5, v6, v7])
                        B0[v5, v6, v7] = T.Cast("float32", T.Let(t4, v6, T.int32(6)))
"""


def test_split_partition_tail_gets_fresh_let_expression_vars():
    func = _func(LET_IN_BODY)
    sch = Schedule(func)
    loops = sch.get_loops(sch.get_block("ew9"))
    sch.split(loops[2], [None, 3, 2], tail="partition")
    _check_well_formed_and_same(func, sch.func, DIMS)


# 20ad67b30861: the same copy, with the Let expression in a LetStmt's value: the tail shared the Let node,
# which the verifier accepts but which prints as two bindings, so print -> parse was not structurally equal.
LET_STMT_VALUE = """def main(A0: T.Buffer((m,), "int16"), A1: T.Buffer((4, 4), "int16"), B0: T.Buffer((m, 3, n), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i10 in T.parallel(0, m):
            for i11 in T.serial(0, 3):
                with T.let(T.Let(t2, -7, -5)) as lv1:
                    with T.block('reduce18'):
                        v14 = T.axis.spatial(m, i10)
                        v15 = T.axis.spatial(3, i11)
                        v16 = T.axis.spatial(n, 0)
                        v17 = T.axis.reduce(n, 0)
                        T.reads(A0[0:m], A1[0:4, 0:4], B0[v14, v15, v16])
                        T.writes(B0[v14, v15, v16])
                        B0[v14, v15, v16] = T.float32(0.0)
"""


def test_split_partition_tail_round_trips_with_let_in_let_stmt_value():
    func = _func(LET_STMT_VALUE)
    sch = Schedule(func)
    loops = sch.get_loops(sch.get_block("reduce18"))
    sch.split(loops[1], [None, 4, 2], tail="partition")
    _check_well_formed_and_same(func, sch.func, DIMS)


# 777a38430a70: pad recomputed the block's regions from its body and listed a buffer allocated inside the
# body (tmp6) in T.reads, where it is out of scope (VerifyError "buffer tmp6 is used but is neither ...").
ALLOCATE_IN_BLOCK = """def main(A0: T.Buffer((4, m), "int32"), B0: T.Buffer((n, 1), "float32"), B1: T.Buffer((1,), "int16")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i1 in T.serial(0, n):
            for i2 in T.serial(0, 1):
                with T.block('ew7'):
                    v4 = T.axis.spatial(n, i1)
                    v5 = T.axis.spatial(1, i2)
                    T.reads(A0[0:4, 0:m])
                    T.writes(B0[v4, v5])
                    with T.allocate((1,), "float32", scope='local') as tmp6:
                        tmp6[0] = T.Cast("float32", A0[1, 0])
                        B0[v4, v5] = tmp6[0]
"""


def test_pad_keeps_buffers_allocated_in_the_body_out_of_the_block_regions():
    func = _func(ALLOCATE_IN_BLOCK)
    sch = Schedule(func)
    sch.pad(sch.get_block("ew7"), [4, 2])
    block = sch.find_block("ew7")[0].block
    assert all(r.buffer.name != "tmp6" for r in (*block.reads, *block.writes))
    _check_well_formed_and_same(func, sch.func, DIMS)


# 564858cbd7bf: cache_write copied the whole cache back into B0, but the block runs only its instance
# v5 = 0 (a constant binding over a domain of 4): B0[1:4] were overwritten with the uninitialized cache.
CONSTANT_BINDING = """def main(A0: T.Buffer((8, n), "float64"), A1: T.Buffer((3, n, n), "uint8"), A2: T.Buffer((4, 8), "int16"), B0: T.Buffer((4,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        with T.block('ew6'):
            v5 = T.axis.spatial(4, 0)
            T.reads(A0[0:8, 0:n], A1[0:3, 0:n, 0:n], A2[0:4, 0:8])
            T.writes(B0[v5])
            B0[v5] = T.float32(0.0)
"""


def test_cache_write_keeps_the_points_a_block_does_not_run():
    """The cache now starts as a copy of B0 when the block does not provably overwrite every point."""
    func = _func(CONSTANT_BINDING)
    sch = Schedule(func)
    sch.cache_write(sch.get_block("ew6"), 0, "global")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}])


# Same campaign, same bucket: a block that reads its own output and stores conditionally read the
# uninitialized cache instead of B0.
CONDITIONAL_UPDATE = """def main(A0: T.Buffer((4,), "float16"), B0: T.Buffer((1, 3, 1), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i5 in T.serial(0, 1):
            for i6 in T.serial(0, 3):
                for i7 in T.serial(0, 1):
                    with T.block('ew11'):
                        v8 = T.axis.spatial(1, i5)
                        v9 = T.axis.spatial(3, i6)
                        v10 = T.axis.spatial(1, i7)
                        T.reads(A0[0:4])
                        T.writes(B0[v8, v9, v10])
                        if B0[v8, v9, v10] > T.float32(0.0):
                            B0[v8, v9, v10] = T.cos(B0[v8, v9, v10] + T.float32(0.75))
"""


def test_cache_write_of_a_conditional_read_modify_write_block():
    func = _func(CONDITIONAL_UPDATE)
    sch = Schedule(func)
    sch.cache_write(sch.get_block("ew11"), 0, "shared")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 2}])


SPLIT_ELEMENTWISE = """def main(A: T.Buffer((N,), "float32"), B: T.Buffer((N,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, N):
            with T.block('B'):
                v = T.axis.spatial(N, i)
                T.reads(A[v])
                T.writes(B[v])
                B[v] = A[v] + T.float32(1.0)
"""


@pytest.mark.parametrize("extent", ["12", "n"])
@pytest.mark.parametrize("factors", [[None, 4], [3, None], [None, 2, 2]])
def test_cache_write_after_split_still_applies(extent, factors):
    """Split bindings `i0 * F + i1` run every point (an inexact split masks the overhang with the
    predicate `i0 * F + i1 < n`): cache_write keeps applying there, and stays correct."""
    func = _func(SPLIT_ELEMENTWISE.replace("N", extent))
    sch = Schedule(func)
    sch.split(sch.get_loops(sch.get_block("B"))[0], factors)
    sch.cache_write(sch.get_block("B"), 0, "local")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 7}, {"n": 12}])


def test_cache_write_of_a_block_under_a_condition():
    lines = SPLIT_ELEMENTWISE.replace("N", "n").splitlines()
    k = next(j for j, line in enumerate(lines) if "T.block('B')" in line)
    lines = [*lines[:k], "            if i % 2 == 0:", *("    " + line for line in lines[k:])]
    func = _func("\n".join(lines) + "\n")
    sch = Schedule(func)
    sch.cache_write(sch.get_block("B"), 0, "local")
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 7}, {"n": 12}])


# Found while fixing 564858cbd7bf (same assumption, that a block runs its whole domain): reverse_compute_at
# and reverse_compute_inline rebuilt a consumer bound to the constant 0 over every point of its domain, so
# O[1:n] were overwritten (wrong result); compute_at would rebuild a producer the same way.
PRODUCER_CONSUMER = """def main(A: T.Buffer((n,), "float32"), O: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        X = T.alloc_buffer((n,), "float32")
        for i in T.serial(0, n):
            with T.block('P'):
                v = T.axis.spatial(n, PB)
                T.reads(A[v])
                T.writes(X[v])
                X[v] = A[v] * T.float32(2.0)
        for j in T.serial(0, n):
            with T.block('C'):
                w = T.axis.spatial(n, CB)
                T.reads(X[w])
                T.writes(O[w])
                O[w] = X[w] + T.float32(1.0)
"""

MOVES = {
    "reverse_compute_inline": lambda s: s.reverse_compute_inline(s.get_block("C")),
    "reverse_compute_at": lambda s: s.reverse_compute_at(s.get_block("C"), s.get_loops(s.get_block("P"))[0]),
    "compute_at": lambda s: s.compute_at(s.get_block("P"), s.get_loops(s.get_block("C"))[0]),
}


@pytest.mark.parametrize("prim", sorted(MOVES))
def test_moving_primitives_refuse_a_block_that_does_not_run_its_whole_domain(prim):
    moved = "PB" if prim == "compute_at" else "CB"
    src = PRODUCER_CONSUMER.replace(moved, "0").replace("PB", "i").replace("CB", "j")
    sch = Schedule(_func(src))
    with pytest.raises(ScheduleError, match="block instances do not cover its domain"):
        MOVES[prim](sch)


@pytest.mark.parametrize("prim", sorted(MOVES))
def test_moving_primitives_still_apply_to_plain_bindings(prim):
    func = _func(PRODUCER_CONSUMER.replace("PB", "i").replace("CB", "j"))
    sch = Schedule(func)
    MOVES[prim](sch)
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 7}, {"n": 12}])


def _under_condition(src: str, block: str) -> str:
    lines = src.splitlines()
    k = next(j for j, line in enumerate(lines) if f"T.block('{block}')" in line)
    indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
    return "\n".join([*lines[:k], f"{indent}if i % 2 == 0:", *("    " + line for line in lines[k:])]) + "\n"


def test_pad_refuses_a_block_under_a_condition():
    """Found beside 777a38430a70: pad grew the loops and copied every padded point back, also the points
    the condition skipped (they came back as 0 instead of B's old values)."""
    sch = Schedule(_func(_under_condition(SPLIT_ELEMENTWISE.replace("N", "n"), "B")))
    with pytest.raises(ScheduleError, match="pad: block instances do not cover its domain"):
        sch.pad(sch.get_block("B"), [4])


def test_split_partition_refuses_a_body_that_allocates():
    """Found beside 3ef91e1b2601: the tail copy allocated the same Buffer again, and the printed text did
    not parse (undefined buffer 'tmp6')."""
    sch = Schedule(_func(ALLOCATE_IN_BLOCK))
    with pytest.raises(ScheduleError, match="split: cannot partition a loop whose body allocates buffers"):
        sch.split(sch.get_loops(sch.get_block("ew7"))[0], [None, 4], tail="partition")


# Same campaign, pad: the padded output of a block that reads it or stores conditionally was never filled
# with the old values (the unpad copy brought back zeros), and an assertion ran for the padded points.
PAD_CONDITIONAL = """def main(A0: T.Buffer((3, 1), "int8"), B1: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i3 in T.parallel(0, n):
            with T.block('ew5'):
                v4 = T.axis.spatial(n, i3)
                T.reads(A0[0:3, 0])
                T.writes(B1[v4])
                if B1[v4] > T.float32(0.0):
                    B1[v4] = B1[v4] * T.float32(2.0)
"""


def test_pad_of_a_conditional_read_modify_write_block():
    func = _func(PAD_CONDITIONAL)
    sch = Schedule(func)
    sch.pad(sch.get_block("ew5"), [3])
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 7}, {"n": 12}])


def test_pad_refuses_a_block_that_asserts():
    src = PAD_CONDITIONAL.replace(
        "                if B1[v4]",
        "                T.Assert(v4 < n, 'loop variable in range')\n                if B1[v4]",
    )
    sch = Schedule(_func(src))
    with pytest.raises(ScheduleError, match="pad: block has effects outside its padded outputs"):
        sch.pad(sch.get_block("ew5"), [3])


# Same campaign, rfactor: the partial results started at the block's init (7) instead of 0, so the init
# was added once per partial result and once more by the write-back.
REDUCE_WITH_INIT = """def main(A: T.Buffer((n, k), "COMBINED"), B: T.Buffer((n,), "COMBINED")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'k': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for r in T.serial(0, k):
                with T.block('R'):
                    vi = T.axis.spatial(n, i)
                    vr = T.axis.reduce(k, r)
                    T.reads(A[vi, vr])
                    T.writes(B[vi])
                    with T.init():
                        B[vi] = INIT
                    B[vi] = COMBINE
"""


@pytest.mark.parametrize(
    "dtype,init,combine",
    [
        ("uint32", "T.uint32(7)", "B[vi] + A[vi, vr]"),
        ("int32", "T.int32(3)", "B[vi] * A[vi, vr]"),
        ("int32", "T.int32(0)", "T.max(B[vi], A[vi, vr])"),
    ],
)
def test_rfactor_applies_a_non_neutral_init_once(dtype, init, combine):
    src = REDUCE_WITH_INIT.replace("COMBINED", dtype).replace("INIT", init).replace("COMBINE", combine)
    func = _func(src)
    sch = Schedule(func)
    _, r = sch.get_loops(sch.get_block("R"))
    sch.rfactor(r, 0)
    _check_well_formed_and_same(func, sch.func, [{"n": 1, "k": 1}, {"n": 5, "k": 7}, {"n": 3, "k": 12}])


def test_decompose_reduction_refuses_the_tail_of_a_split_reduction():
    """Same campaign: the tail copy of a partitioned reduction loop never runs its init (its reduction
    variable starts at n // 3 * 3); decompose_reduction made that init unconditional and reset the sum."""
    src = REDUCE_WITH_INIT.replace("COMBINED", "int32").replace("INIT", "T.int32(6)")
    func = _func(src.replace("COMBINE", "B[vi] + A[vi, vr]"))
    sch = Schedule(func)
    _, r = sch.get_loops(sch.get_block("R"))
    sch.split(r, [None, 3], tail="partition")
    with pytest.raises(ScheduleError, match="decompose_reduction: reduction instances do not cover"):
        sch.decompose_reduction(sch.get_block("R_tail"), sch.get_loops(sch.get_block("R_tail"))[1])
    plain = Schedule(func)  # an exact (predicated) split keeps decompose_reduction applicable
    _, r = plain.get_loops(plain.get_block("R"))
    r0, _ = plain.split(r, [None, 3])
    plain.decompose_reduction(plain.get_block("R"), r0)
    _check_well_formed_and_same(func, plain.func, [{"n": 1, "k": 1}, {"n": 5, "k": 7}, {"n": 3, "k": 12}])
