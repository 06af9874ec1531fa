"""Regressions for bugs the fuzzer's schedule-primitive mutator found in campaign 7, and their siblings in
the other primitives (moved here from test_fuzz_schedule_bugs.py, whose docstring says what each test checks;
the shared helpers are in schedule_bug_checks.py).
"""

# ruff: noqa: E501  (the minimized programs are kept verbatim, one signature per line)

import pytest
from schedule_bug_checks import _check_well_formed_and_same, _func, _oracle_ok, _region_vars

from shapeflow.errors import ScheduleError
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule

# -- campaign 7 ------------------------------------------------------------------------------------------


# 4c4e89122cf2: the producer's T.reads named its loop variable ax1 directly (in a Cast; legal where the
# block was, inside that loop). compute_at moved the block into a fresh loop nest and kept the region, so
# ax1 was used outside the loop defining it. The moved block now names the block variable bound to ax1.
LOOP_VAR_IN_REGION = """def main(A0: T.Buffer((n, 8, m), "float32"), A1: T.Buffer((m, 1, n), "int32"), B0: T.Buffer((n, 1, n), "float64"), B1: T.Buffer((4, m), "uint32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (2, 17)}})
    with T.block('root'):
        T.reads()
        T.writes()
        A1_local = T.alloc_buffer((m, 1, n), "int32", scope='local')
        for ax0 in T.serial(0, m):
            for ax1 in T.serial(0, 1):
                for ax2 in T.serial(0, n):
                    with T.block('A1_local'):
                        v0 = T.axis.spatial(m, ax0)
                        v1 = T.axis.spatial(1, ax1)
                        v2 = T.axis.spatial(n, ax2)
                        T.reads(A1[v0, T.Cast("int64", ax1), v2])
                        T.writes(A1_local[v0, v1, v2])
                        A1_local[v0, v1, v2] = T.int32(0)
        for i5 in T.unroll(0, 4):
            for i6 in T.parallel(0, m):
                with T.block('ew13'):
                    v8 = T.axis.spatial(4, i5)
                    v9 = T.axis.spatial(m, i6)
                    T.reads(B1[v8, v9], A1_local[v9, v9, 0])
                    T.writes(B1[v8, v9])
                    B1[v8, v9] = T.Let(t12, A1_local[v9, 1, 0], T.uint32(0))
"""
DIMS_NM = [{"n": 1, "m": 2}, {"n": 7, "m": 5}, {"n": 12, "m": 17}]


def test_compute_at_of_a_block_naming_its_loop_variable():
    _oracle_ok(LOOP_VAR_IN_REGION, [{"p": "compute_at", "block": "A1_local", "target": "ew13", "loop": 1}])
    func = _func(LOOP_VAR_IN_REGION)
    sch = Schedule(func)
    sch.compute_at(sch.get_block("A1_local"), sch.get_loops(sch.get_block("ew13"))[1])
    assert _region_vars(sch.find_block("A1_local")[0].block) == {"v0", "v1", "v2"}
    _check_well_formed_and_same(func, sch.func, [])  # ew13 loads out of bounds: the oracle compared runs


# The same cause in the other primitives that take a block's work out of its nest: a body computing with
# its loop variables directly. The values must stay those of the loop the block variable is bound to.
LOOP_VAR_IN_BODY = """def main(A: T.Buffer((m, n), "int32"), C: T.Buffer((m, n), "int32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (2, 17)}})
    with T.block('root'):
        T.reads()
        T.writes()
        B = T.alloc_buffer((m, n), "int32")
        for i in T.serial(0, m):
            for j in T.serial(0, n):
                with T.block('B'):
                    vi = T.axis.spatial(m, i)
                    vj = T.axis.spatial(n, j)
                    T.reads(A[vi, vj])
                    T.writes(B[vi, vj])
                    B[vi, vj] = A[vi, vj] * T.Cast("int32", i) + T.Cast("int32", j)
        for i2 in T.serial(0, m):
            for j2 in T.serial(0, n):
                with T.block('C'):
                    vi2 = T.axis.spatial(m, i2)
                    vj2 = T.axis.spatial(n, j2)
                    T.reads(B[vi2, vj2])
                    T.writes(C[vi2, vj2])
                    C[vi2, vj2] = B[vi2, vj2] - T.Cast("int32", j2)
"""


@pytest.mark.parametrize(
    "prim", ["compute_at", "reverse_compute_at", "compute_inline", "reverse_compute_inline"]
)
def test_moved_work_names_block_variables_not_the_old_loops(prim):
    func = _func(LOOP_VAR_IN_BODY)
    sch = Schedule(func)
    b, c = sch.get_block("B"), sch.get_block("C")
    if prim == "compute_at":
        sch.compute_at(b, sch.get_loops(c)[0])
    elif prim == "reverse_compute_at":
        sch.reverse_compute_at(c, sch.get_loops(b)[0])
    else:
        getattr(sch, prim)(b if prim == "compute_inline" else c)
    _check_well_formed_and_same(func, sch.func, DIMS_NM)


def test_compute_at_refuses_a_loop_variable_no_block_variable_equals():
    src = LOOP_VAR_IN_BODY.replace(
        "            for j in T.serial(0, n):\n",
        "            for j in T.serial(0, n):\n                for r in T.serial(0, 1):\n",
    )
    lines = src.splitlines()
    start = next(k for k, line in enumerate(lines) if "for r in" in line) + 1
    end = next(k for k, line in enumerate(lines) if "for i2 in" in line)
    lines[start:end] = ["    " + line for line in lines[start:end]]
    src = "\n".join(lines).replace('T.Cast("int32", j)', 'T.Cast("int32", r)') + "\n"
    sch = Schedule(_func(src))
    with pytest.raises(ScheduleError, match="compute_at: block names a loop variable of its nest"):
        sch.compute_at(sch.get_block("B"), sch.get_loops(sch.get_block("C"))[0])


# 84a109354b61: cache_read recomputed block B's regions from its body, where the store index names the
# Let variable lv1; the region B[T.max(lv1, 1)] used lv1 outside the Let. Regions now relax body-local
# variables: a Let over its value, a loop over its range, a nested block's variable over its binding, and a
# Let whose value reads memory over the whole dimension.
LET_IN_BLOCK_BODY = """def main(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        with T.block('B'):
            v_i = T.axis.spatial(n, 0)
            v_k = T.axis.reduce(16, 0)
            T.reads(A[v_i, v_k])
            T.writes(B[v_i])
            with T.let(0) as lv1:
                B[T.max(lv1, 1)] = T.float32(0.0)
"""


def test_cache_read_regions_do_not_name_a_let_variable():
    _oracle_ok(LET_IN_BLOCK_BODY, [{"p": "cache_read", "block": "B", "index": 0, "scope": "global"}])
    func = _func(LET_IN_BLOCK_BODY)
    sch = Schedule(func)
    sch.cache_read(sch.get_block("B"), 0, "global")
    block = sch.find_block("B")[0].block
    assert _region_vars(block) == set()
    assert [str(r.region[0].min) for r in block.writes] == ["1"]  # max(0, 1), the Let's value substituted
    verify(sch.func)


LOCALS_IN_BLOCK_BODY = """def main(A: T.Buffer((n, 16), "float32"), I: T.Buffer((n,), "int64"), B: T.Buffer((n,), "float32"), C: T.Buffer((n, 4), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            with T.block('B'):
                v_i = T.axis.spatial(n, i)
                T.reads(A[v_i, 0:16], I[v_i])
                T.writes(B[0:n], C[v_i, 0:4])
                with T.let(T.min(T.max(I[v_i], 0), n - 1)) as lv1:
                    B[lv1] = A[v_i, 0]
                for j in T.serial(0, 4):
                    with T.let(j * 3) as lv2:
                        C[v_i, j] = A[v_i, lv2]
"""


def test_cache_read_regions_relax_loops_and_opaque_lets_of_the_body():
    func = _func(LOCALS_IN_BLOCK_BODY)
    sch = Schedule(func)
    sch.cache_read(sch.get_block("B"), 0, "global")
    block = sch.find_block("B")[0].block
    assert _region_vars(block) <= {"v_i", "n"}
    spans = {
        r.buffer.name: [(str(x.min), str(x.extent)) for x in r.region] for r in (*block.reads, *block.writes)
    }
    assert spans["B"] == [("0", "n")]  # the Let's value loads I: the whole dimension
    assert spans["C"] == [("v_i", "1"), ("0", "4")]  # the loop over j
    assert spans["A_global"] == [("v_i", "1"), ("0", "10")]  # A[v_i, 0] and A[v_i, j * 3], j < 4
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 12}])


# 1f59ea9ba779: split(tail="partition") of a loop whose extent is the int64 minimum (it runs zero times)
# computed the tail from the raw extent: start = n // 6 * 6 wrapped around to 9223372036854775804 and the
# tail ran 4 iterations out of the block's domain. split and fuse now work with the trip count max(e, 0)
# and refuse arithmetic that overflows int64.
NEGATIVE_EXTENT = """def main(X: T.Buffer((n + 2,), "float32"), W: T.Buffer((3,), "float32"), Y: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (2, 5)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for k in T.serial(0, -9223372036854775808):
                with T.block('Y'):
                    v_i_1 = T.axis.spatial(n, i)
                    v_k = T.axis.reduce(3, k, min=1)
                    T.reads(X[0:n], W[v_k])
                    T.writes(Y[v_i_1])
                    Y[v_i_1] = T.float32(0.0)
"""
DIMS_N = [{"n": 2}, {"n": 3}, {"n": 5}]


@pytest.mark.parametrize("tail", ["partition", "predicate"])
def test_split_of_a_loop_with_negative_extent_runs_nothing(tail):
    step = {"p": "split", "block": "Y", "loop": 1, "factors": [None, 3, 2], "tail": tail}
    _oracle_ok(NEGATIVE_EXTENT, [step])
    func = _func(NEGATIVE_EXTENT.replace("(n + 2,)", "(n,)"))  # _arguments reads plain dimensions
    sch = Schedule(func)
    outer, _, _ = sch.split(sch.get_loops(sch.get_block("Y"))[1], [None, 3, 2], tail=tail)
    assert str(sch.find_loop(outer)[0].extent) == "0"
    assert len(sch.get_child_blocks(sch.get_block("root"))) == 1  # no tail block
    _check_well_formed_and_same(func, sch.func, DIMS_N)


TWO_LOOPS = """def main(Y: T.Buffer((n, 4), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, EI):
            for k in T.serial(0, EK):
                with T.block('Y'):
                    v_i = T.axis.spatial(n, i)
                    v_k = T.axis.spatial(4, k)
                    T.reads(Y[v_i, v_k])
                    T.writes(Y[v_i, v_k])
                    Y[v_i, v_k] = Y[v_i, v_k] + T.float32(1.0)
"""


def _two_loops(ei, ek) -> Schedule:
    return Schedule(_func(TWO_LOOPS.replace("EI", str(ei)).replace("EK", str(ek))))


def test_fuse_of_two_negative_extents_runs_nothing():
    sch = _two_loops(-2, -3)  # (-2) * (-3) = 6 iterations where the nest ran none
    fused = sch.fuse(*sch.get_loops(sch.get_block("Y")))
    assert str(sch.find_loop(fused)[0].extent) == "0"
    _check_well_formed_and_same(_two_loops(-2, -3).func, sch.func, [{"n": 1}, {"n": 7}])


@pytest.mark.parametrize("tail", ["partition", "predicate"])
@pytest.mark.parametrize("factors", [[None, 4], [None, 3, 2], [2, None]])
def test_split_and_fuse_of_extents_not_provably_positive(tail, factors):
    """n - 3 is negative for n < 3: the split/fused loops must run max(n - 3, 0) times, like the loop."""
    if tail == "partition" and factors[0] is not None:
        return
    src = TWO_LOOPS.replace("EI", "n - 3").replace("EK", "4")
    func = _func(src)
    sch = Schedule(func)
    sch.split(sch.get_loops(sch.get_block("Y"))[0], factors, tail=tail)
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 3}, {"n": 4}, {"n": 11}])
    fused = Schedule(func)
    fused.fuse(*fused.get_loops(fused.get_block("Y")))
    _check_well_formed_and_same(func, fused.func, [{"n": 1}, {"n": 3}, {"n": 4}, {"n": 11}])


def test_split_and_fuse_refuse_extents_that_overflow_int64():
    big = 2**63 - 1
    sch = _two_loops(3, big)
    k = sch.get_loops(sch.get_block("Y"))[1]
    with pytest.raises(ScheduleError, match=r"split: loop extent arithmetic overflows.*\bk\b"):
        sch.split(k, [None, 3], tail="partition")  # the ceil-division adds 2 to the extent
    with pytest.raises(ScheduleError, match="split: loop extent arithmetic overflows"):
        sch.split(k, [2**62, 4])
    with pytest.raises(ScheduleError, match="fuse: fused extent overflows"):
        sch.fuse(*sch.get_loops(sch.get_block("Y")))
    sch = _two_loops(2**32, 2**32)
    with pytest.raises(ScheduleError, match="fuse: fused extent overflows"):
        sch.fuse(*sch.get_loops(sch.get_block("Y")))
    sch.split(sch.get_loops(sch.get_block("Y"))[1], [None, 7], tail="partition")  # no overflow: applies
    verify(sch.func)


PAD_EXTENT = """def main(A: T.Buffer((EXT,), "float32"), B: T.Buffer((EXT,), "float32")):
    T.func_attr({'global_symbol': 'main'})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, EXT):
            with T.block('B'):
                v = T.axis.spatial(EXT, i)
                T.reads(A[v])
                T.writes(B[v])
                B[v] = A[v] + T.float32(1.0)
"""


@pytest.mark.parametrize(
    "extent,rule",
    [(-5, "pad: iteration extent may be negative"), (2**63 - 2, "pad: padded extent overflows")],
)
def test_pad_refuses_extents_it_cannot_round_up(extent, rule):
    """Checked beside 1f59ea9ba779: pad allocated A_pad with extent -4 (from -5), or -2**63 (wrapped)."""
    sch = Schedule(_func(PAD_EXTENT.replace("EXT", str(extent))))
    with pytest.raises(ScheduleError, match=rule):
        sch.pad(sch.get_block("B"), [4])


# Checked beside 4c4e89122cf2 and 1f59ea9ba779 in the reduction primitives: decompose_reduction moved an
# init naming its spatial loop i out of that loop (i undefined), and rfactor allocated its partial results
# with the raw extent of the factored loop (-3, or n - 3 < 0 at run time).
REDUCE_EXTENT = """def main(A: T.Buffer((n, 8), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for r in T.serial(0, EXT):
                with T.block('R'):
                    vi = T.axis.spatial(n, i)
                    vr = T.axis.reduce(8, r)
                    T.reads(A[vi, vr])
                    T.writes(B[vi])
                    with T.init():
                        B[vi] = T.Cast("float32", i)
                    B[vi] = B[vi] + A[vi, vr]
"""


def test_decompose_reduction_of_an_init_naming_its_loop():
    func = _func(REDUCE_EXTENT.replace("EXT", "8"))
    sch = Schedule(func)
    i, _ = sch.get_loops(sch.get_block("R"))
    sch.decompose_reduction(sch.get_block("R"), i)
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 12}])
    named_r = REDUCE_EXTENT.replace("EXT", "8").replace('T.Cast("float32", i)', 'T.Cast("float32", r)')
    sch = Schedule(_func(named_r))
    i, _ = sch.get_loops(sch.get_block("R"))
    with pytest.raises(ScheduleError, match="decompose_reduction: the init names a reduction loop variable"):
        sch.decompose_reduction(sch.get_block("R"), i)


def test_rfactor_sizes_partial_results_by_the_trip_count():
    src = REDUCE_EXTENT.replace('T.Cast("float32", i)', "T.float32(2.0)")  # rfactor needs a constant init
    func = _func(src.replace("EXT", "n - 3"))
    sch = Schedule(func)
    sch.rfactor(sch.get_loops(sch.get_block("R"))[1], 0)
    assert "T.alloc_buffer((T.max(0, n - 3), n)" in sch.func.script()
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 3}, {"n": 5}, {"n": 11}])  # n - 3 <= 8
    sch = Schedule(_func(src.replace("EXT", "-3")))
    with pytest.raises(ScheduleError, match="rfactor: reduction loop runs no iterations"):
        sch.rfactor(sch.get_loops(sch.get_block("R"))[1], 0)
