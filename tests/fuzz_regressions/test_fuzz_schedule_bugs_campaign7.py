"""Regressions for bugs the fuzzer's schedule-primitive mutator found in campaign 7, and their siblings in
the other primitives (moved here from test_fuzz_schedule_bugs.py, whose docstring says what each test checks;
the shared helpers are in schedule_bug_checks.py).
"""

# ruff: noqa: E501  (the minimized programs are kept verbatim, one signature per line)

import pytest
from schedule_bug_checks import HEADER, _check_well_formed_and_same, _func

from shapeflow.errors import ScheduleError
from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule

# -- campaign 7 ------------------------------------------------------------------------------------------


def _oracle_ok(body: str, steps: list) -> None:
    """The fuzzer's own verdict on the minimized test: it runs (status ok), no bug and not refused."""
    outcome = check(TestCase(ir=HEADER + body, passes=[], seed=0, schedule=steps), compile_oracle=True)
    assert outcome.status == "ok", (outcome.symptom, outcome.stage, outcome.message)


def _region_vars(block) -> set[str]:
    """The variables the region bounds of `block` name."""
    ranges = [(x.min, x.extent) for r in (*block.reads, *block.writes) for x in r.region]
    return {v.name for v in collect(ranges, Var)}


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


# -- rfactor of a block that does not run everywhere ----------------------------------------------------
# 564858cbd7bf: rfactor of block C, which sits under `if False:` in its loop nest. The partial-result block
# stayed under the `if`, but the write-back ran at every spatial point: it ran C's init and stored 0 into C,
# which the original never writes. rfactor now carries an `if` on spatial loops into the write-back's
# predicate, and refuses a block whose instances do not cover its reduction domain at each spatial point
# (an `if` or predicate on a reduction loop, a binding missing the minimum: the original's init then runs
# elsewhere or not at all), or whose condition loads memory or names a Let variable.
RFACTOR_UNDER_IF_FALSE = """def main(A: T.Buffer((n, 8), "float32"), B: T.Buffer((8, 6), "float32"), C: T.Buffer((n, 6), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for j in T.vectorized(0, 6):
                for k in T.serial(0, 8):
                    if False:
                        with T.block('C'):
                            v_i = T.axis.spatial(n, i)
                            v_j = T.axis.spatial(6, j)
                            v_k = T.axis.reduce(8, k)
                            T.reads(A[v_i, v_k], B[v_k, v_j])
                            T.writes(C[v_i, v_j])
                            with T.init():
                                C[v_i, v_j] = T.float32(0.0)
                            C[v_i, v_j] = C[v_i, v_j] + T.float32(0.0)
"""

# The same matmul-like reduction with GUARD around the block (BRANCH: the then or the else branch), the
# reduction binding BIND (over a domain of 8 when it is k, else 9) and the predicate WHERE.
RFACTOR_GUARDED = """def main(A: T.Buffer((n, 8), "float32"), B: T.Buffer((8, 6), "float32"), C: T.Buffer((n, 6), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for j in T.serial(0, 6):
                for k in T.serial(0, 8):
                    if GUARD:
BRANCH                        with T.block('C'):
                            v_i = T.axis.spatial(n, i)
                            v_j = T.axis.spatial(6, j)
                            v_k = T.axis.reduce(DOM, BIND)
                            T.where(WHERE)
                            T.reads(A[v_i, v_k % 8], B[v_k % 8, v_j])
                            T.writes(C[v_i, v_j])
                            with T.init():
                                C[v_i, v_j] = T.float32(0.0)
                            C[v_i, v_j] = C[v_i, v_j] + A[v_i, v_k % 8] * B[v_k % 8, v_j]
"""
ELSE_BRANCH = "                        T.evaluate(0)\n                    else:\n"
RFACTOR_DIMS = [{"n": 1}, {"n": 5}, {"n": 7}, {"n": 12}]


def _guarded(guard="True", bind="k + 1", where="True", in_else=False):
    branch = ELSE_BRANCH if in_else else ""
    src = RFACTOR_GUARDED.replace("GUARD", guard).replace("BRANCH", branch).replace("WHERE", where)
    return _func(src.replace("DOM", "8" if bind == "k" else "9").replace("BIND", bind))


def test_rfactor_of_a_block_under_if_false_keeps_the_output():
    _oracle_ok(RFACTOR_UNDER_IF_FALSE, [{"p": "rfactor", "block": "C", "loop": 2, "factor_axis": 1}])
    outcome = check(
        TestCase(
            ir=HEADER + RFACTOR_UNDER_IF_FALSE,
            passes=[],
            seed=169076459,
            schedule=[{"p": "rfactor", "block": "C", "loop": 2, "factor_axis": 1}],
        ),
        compile_oracle=True,
    )
    assert outcome.status == "ok" and outcome.ran, (outcome.status, outcome.symptom, outcome.message)
    func = _func(RFACTOR_UNDER_IF_FALSE)
    sch = Schedule(func)
    sch.rfactor(sch.get_loops(sch.get_block("C"))[2], 1)
    assert "T.where(False)" in sch.func.script()  # the write-back carries the `if False`
    _check_well_formed_and_same(func, sch.func, RFACTOR_DIMS)


@pytest.mark.parametrize(
    "guard,in_else",
    [("False", False), ("i % 2 == 0", False), ("j * 2 < n", False), ("i % 3 == 0", True), ("True", False)],
)
def test_rfactor_carries_a_condition_on_spatial_loops_into_the_write_back(guard, in_else):
    func = _guarded(guard, bind="k", where="True", in_else=in_else)
    for factor_axis in (0, 1):
        sch = Schedule(func)
        sch.rfactor(sch.get_loops(sch.get_block("C"))[2], factor_axis)
        _check_well_formed_and_same(func, sch.func, RFACTOR_DIMS)


@pytest.mark.parametrize("where", ["k < 5", "k * 2 < n", "k % 2 == 0"])
def test_rfactor_still_applies_to_a_predicate_true_at_the_first_reduction_iteration(where):
    """The original inits at k = 0; the partial results are all initialized and the predicate guards their
    update only."""
    func = _guarded("True", bind="k", where=where)
    sch = Schedule(func)
    sch.rfactor(sch.get_loops(sch.get_block("C"))[2], 1)
    _check_well_formed_and_same(func, sch.func, RFACTOR_DIMS)


@pytest.mark.parametrize(
    "guard,bind,where,rule",
    [
        ("k > 2", "k", "True", "rfactor: the block is under a condition on a reduction loop"),
        (
            "A[i, 0] > T.float32(0.0)",
            "k",
            "True",
            "rfactor: the block is under a condition on memory or a Let variable",
        ),
        ("True", "k + 1", "True", "rfactor: reduction instances do not cover its domain"),
        ("True", "k", "k % 2 == 1", "rfactor: reduction instances do not cover its domain"),
        ("True", "k", "k > 2", "rfactor: reduction instances do not cover its domain"),
    ],
    ids=["if-on-k", "if-loads", "binding-misses-min", "odd-k", "where-k-over-2"],
)
def test_rfactor_refuses_a_block_skipping_part_of_its_reduction(guard, bind, where, rule):
    """Each of these gave wrong values before: the write-back ran the init where the original block never
    ran its init (or where the block did not run), and reset C."""
    sch = Schedule(_guarded(guard, bind, where))
    with pytest.raises(ScheduleError, match=rule) as info:
        sch.rfactor(sch.get_loops(sch.get_block("C"))[2], 1)
    assert "block C" in str(info.value)


@pytest.mark.parametrize("guard", ["False", "i % 2 == 0"])
def test_decompose_reduction_refuses_a_block_under_a_condition(guard):
    """decompose_reduction would run the separated init where the block never runs; it refuses through the
    same whole-domain check (runs_whole_domain), for the fuzz finding's `if False` too."""
    for func in (_func(RFACTOR_UNDER_IF_FALSE), _guarded(guard, bind="k", where="True")):
        sch = Schedule(func)
        block = sch.get_block("C")
        for loop in sch.get_loops(block)[:2]:
            with pytest.raises(ScheduleError, match="decompose_reduction: reduction instances do not cover"):
                sch.decompose_reduction(block, loop)


# aa5ffb984590 and d5e2c6f477c5: the reduction block's iter_var domain named a loop variable (`v14 =
# T.axis.spatial(k12, i11)`, `min=T.Select(True, ax_i15, ax_k17)`). decompose_reduction copied the domains into
# the init block before the reduction loops, so k12 / ax_k17 were used outside their loops (verify-after-schedule);
# a domain naming a copied spatial loop (ax_i15, decomposing at the outermost loop) named the original variable
# too. It now refuses a domain naming a reduction loop and renames a copied loop's variable; rfactor's write-back
# (its spatial iter_vars copied after the reduction loops) does the same.
DOM_NAMES_REDUCTION_LOOP = """def main(A0: T.Buffer((1, 1, 3), "float32"), A1: T.Buffer((n * 2,), "uint32"), B0: T.Buffer((n, 1), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i10 in T.serial(0, n):
            for i11 in T.serial(0, 1):
                for k12 in T.serial(0, 1):
                    with T.block('reduce16'):
                        v13 = T.axis.spatial(n, i10)
                        v14 = T.axis.spatial(k12, i11)
                        v15 = T.axis.reduce(1, k12)
                        T.reads(A0[0, 0, 0:3], A1[0:n], B0[v13, v14])
                        T.writes(B0[v13, v14])
                        with T.init():
                            B0[v13, v14] = T.float32(-1.5)
                        B0[v13, v14] = T.float32(0.0)
"""

DOM_MIN_NAMES_REDUCTION_LOOP = """def main(A0: T.Buffer((m, 3), "float64"), A1: T.Buffer((4,), "float32"), B0: T.Buffer((m, m, n), "float32"), B1: T.Buffer((m, m, 1), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12), 'm': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        reduce23_rf = T.alloc_buffer(((m + 1) // 2, 1, m, 1, 2), "float32")
        for ax_i14 in T.serial(0, m):
            for ax_i15 in T.serial(0, m):
                for ax_i16 in T.serial(0, 1):
                    for ax_k17 in T.serial(0, 1):
                        with T.block('reduce23'):
                            v18_1 = T.axis.spatial(m, ax_i14)
                            v19_1 = T.axis.spatial(m, ax_i15)
                            v20_1 = T.axis.spatial(1, ax_i16, min=T.Select(True, ax_i15, ax_k17))
                            v_k17_1 = T.axis.reduce(1, ax_k17)
                            T.reads(B1[v18_1, v19_1, v20_1], reduce23_rf[v18_1, v_k17_1, v19_1, v20_1, v18_1])
                            T.writes(B1[v18_1, v19_1, v20_1])
                            with T.init():
                                B1[v18_1, v19_1, v20_1] = T.float32(0.5)
                            B1[v18_1, v19_1, v20_1] = T.float32(0.0)
"""


@pytest.mark.parametrize(
    "body,block,loop,var",
    [
        (DOM_NAMES_REDUCTION_LOOP, "reduce16", 2, "k12"),
        (DOM_MIN_NAMES_REDUCTION_LOOP, "reduce23", 3, "ax_k17"),
    ],
    ids=["d5e2c6f477c5", "aa5ffb984590"],
)
def test_decompose_reduction_refuses_a_domain_naming_a_reduction_loop(body, block, loop, var):
    step = {"p": "decompose_reduction", "block": block, "loop": loop}
    outcome = check(TestCase(ir=HEADER + body, passes=[], seed=0, schedule=[step]), compile_oracle=True)
    assert not outcome.is_bug and outcome.status == "invalid", (outcome.symptom, outcome.message)
    func = _func(body)
    for k in range(loop + 1):
        sch = Schedule(func)
        b = sch.get_block(block)
        with pytest.raises(
            ScheduleError, match="decompose_reduction: an iter_var domain names a reduction"
        ) as e:
            sch.decompose_reduction(b, sch.get_loops(b)[k])
        assert f"block {block} uses {var}" in str(e.value)


def _dom_naming(dom: str, update: str = "T.float32(0.0)") -> str:
    """The aa5ffb984590 program with v20_1's domain and the update replaced."""
    return DOM_MIN_NAMES_REDUCTION_LOOP.replace("1, ax_i16, min=T.Select(True, ax_i15, ax_k17)", dom).replace(
        "= T.float32(0.0)", f"= {update}"
    )


DOM_DIMS = [{"m": 1, "n": 1}, {"m": 3, "n": 2}, {"m": 7, "n": 5}]


def test_decompose_reduction_renames_a_copied_loop_in_a_domain():
    """A domain naming a spatial loop the init nest copies names the copy's variable (it named ax_i15 before,
    undefined there)."""
    func = _func(_dom_naming("ax_i15 + 1, ax_i16"))
    for k in range(4):
        sch = Schedule(func)
        b = sch.get_block("reduce23")
        sch.decompose_reduction(b, sch.get_loops(b)[k])
        _check_well_formed_and_same(func, sch.func, DOM_DIMS)


ACC = "B1[v18_1, v19_1, v20_1] + A1[0]"


def test_rfactor_refuses_a_domain_naming_a_reduction_loop():
    sch = Schedule(_func(_dom_naming("1, ax_i16, min=T.Select(True, ax_i15, ax_k17)", ACC)))
    with pytest.raises(ScheduleError, match="rfactor: an iter_var domain names a reduction loop") as e:
        sch.rfactor(sch.get_loops(sch.get_block("reduce23"))[3], 0)
    assert "block reduce23 uses ax_k17" in str(e.value)


def test_rfactor_renames_a_copied_loop_in_a_domain():
    func = _func(_dom_naming("ax_i15 + 1, ax_i16", ACC))
    for axis in (0, 3):
        sch = Schedule(func)
        sch.rfactor(sch.get_loops(sch.get_block("reduce23"))[3], axis)
        _check_well_formed_and_same(func, sch.func, DOM_DIMS)


# -- transform_layout / storage_align: every block naming the buffer ----------------------------------------

# rf_scope: B_rf is allocated at the root, block B_rf writes it and block B declares a read of it without
# loading it in its body. transform_layout replaced the allocation and rewrote the accesses (and, through
# infer_regions, the regions of the blocks whose bodies changed) but block B's T.reads still named the old
# B_rf, which was no longer allocated. Every block's regions of the buffer are now mapped too.
RF_SCOPE = """def main(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        B_local = T.alloc_buffer((n,), "float32", scope='local')
        B_rf = T.alloc_buffer((n, 16), "float32")
        with T.block('B_rf'):
            v_i = T.axis.spatial(n, 0)
            v_k = T.axis.spatial(16, 0)
            T.reads(B_rf[v_i, v_k], A[v_i, v_k])
            T.writes(B_rf[v_i, v_k])
            B_rf[v_i, v_k] = T.float32(0.0)
        with T.block('B'):
            v_i_1 = T.axis.spatial(n, 0)
            v_k_1 = T.axis.reduce(16, 0)
            T.reads(B_local[v_i_1], B_rf[v_i_1, v_k_1])
            T.writes(B_local[v_i_1])
            B_local[v_i_1] = T.float32(0.0)
"""

# the same shape with values flowing through B_rf: B_rf is written and read in bodies, and a third block
# declares a region of it it does not access
RF_SCOPE_VALUES = """def main(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 17)}})
    with T.block('root'):
        T.reads()
        T.writes()
        B_rf = T.alloc_buffer((n, 16), "float32")
        for i in T.serial(n):
            for k in T.serial(16):
                with T.block('B_rf'):
                    v_i = T.axis.spatial(n, i)
                    v_k = T.axis.spatial(16, k)
                    T.reads(A[v_i, v_k])
                    T.writes(B_rf[v_i, v_k])
                    B_rf[v_i, v_k] = A[v_i, v_k] * T.float32(2.0)
        for i in T.serial(n):
            for k in T.serial(16):
                with T.block('B'):
                    v_i = T.axis.spatial(n, i)
                    v_k = T.axis.reduce(16, k)
                    T.reads(B_rf[v_i, v_k])
                    T.writes(B[v_i])
                    with T.init():
                        B[v_i] = T.float32(0.0)
                    B[v_i] = B[v_i] + B_rf[v_i, v_k]
        for i in T.serial(n):
            with T.block('C'):
                v_i = T.axis.spatial(n, i)
                T.reads(B_rf[v_i, 0:16], B[v_i])
                T.writes(B[v_i])
                B[v_i] = B[v_i] + T.float32(1.0)
"""


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_transform_layout_rewrites_the_regions_of_every_block_naming_the_buffer(factor):
    _oracle_ok(RF_SCOPE, [{"p": "transform_layout", "block": "B_rf", "factor": factor}])
    func = _func(RF_SCOPE)
    sch = Schedule(func)
    sch.transform_layout(sch.get_block("B_rf"), "B_rf", lambda i, k: (i // factor, k, i % factor))
    verify(sch.func)
    reads = {r.buffer.name: r.buffer for r in sch.find_block(sch.get_block("B"))[0].block.reads}
    assert len(reads["B_rf"].shape) == 3
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 7}, {"n": 12}])


@pytest.mark.parametrize("block", ["B_rf", "B", "C"])
def test_transform_layout_from_any_block_keeps_the_values(block):
    func = _func(RF_SCOPE_VALUES)
    sch = Schedule(func)
    sch.transform_layout(sch.get_block(block), "B_rf", lambda i, k: (k // 4, i, k % 4))
    c = sch.find_block(sch.get_block("C"))[0].block
    (region,) = [r for r in c.reads if r.buffer.name == "B_rf"]
    assert len(region.region) == 3  # the declared (unaccessed) region of C is mapped too
    _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 2}, {"n": 13}, {"n": 17}])


def test_storage_align_rewrites_the_regions_of_every_block_naming_the_buffer():
    """storage_align replaces the buffer the same way (new strides, same indices) and had the same bug."""
    _oracle_ok(RF_SCOPE, [{"p": "storage_align", "block": "B_rf", "factor": 4, "offset": 1}])
    for body in (RF_SCOPE, RF_SCOPE_VALUES):
        func = _func(body)
        sch = Schedule(func)
        sch.storage_align(sch.get_block("B_rf"), 0, 0, 4, 1)
        _check_well_formed_and_same(func, sch.func, [{"n": 1}, {"n": 5}, {"n": 12}])


# block B aliases B_rf's storage through a DeclBuffer of its data pointer: the alias cannot be given the new
# layout, so the layout change is refused rather than leaving it pointing at storage no longer allocated
RF_ALIASED = """def main(A: T.Buffer((n, 16), "float32"), B: T.Buffer((n,), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        B_rf = T.alloc_buffer((n, 16), "float32")
        with T.block('B_rf'):
            v_i = T.axis.spatial(n, 0)
            v_k = T.axis.spatial(16, 0)
            T.reads()
            T.writes(B_rf[v_i, v_k])
            B_rf[v_i, v_k] = T.float32(0.0)
        with T.block('B'):
            v_i = T.axis.spatial(n, 0)
            T.reads()
            T.writes(B[v_i])
            with T.decl_buffer((n * 16,), "float32", data=B_rf.data) as B_rf_1:
                B[v_i] = B_rf_1[v_i]
"""


@pytest.mark.parametrize("prim", ["transform_layout", "storage_align"])
def test_layout_change_refuses_a_buffer_whose_storage_is_aliased(prim):
    func = _func(RF_ALIASED)
    verify(func)
    sch = Schedule(func)
    block = sch.get_block("B_rf")
    with pytest.raises(ScheduleError, match=f"{prim}: buffer has a use that cannot be rewritten"):
        if prim == "transform_layout":
            sch.transform_layout(block, "B_rf", lambda i, k: (k, i))
        else:
            sch.storage_align(block, 0, 0, 4, 1)
    verify(sch.func)
