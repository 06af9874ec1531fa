"""Regressions for bugs the fuzzer found in campaign 8 (the equal-CPU ablation runs) in the reduction and
layout primitives: rfactor and decompose_reduction of a block under a condition or with an iter_var domain
naming a loop, and transform_layout/storage_align of a buffer other blocks name. The loop primitives'
campaign-8 bugs are in test_fuzz_schedule_bugs_campaign8.py; the shared helpers in schedule_bug_checks.py.
"""

# ruff: noqa: E501  (the minimized programs are kept verbatim, one signature per line)

import pytest
from schedule_bug_checks import HEADER, _check_well_formed_and_same, _func, _oracle_ok

from shapeflow.errors import ScheduleError
from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.ir.tir.verify import verify
from shapeflow.passes.schedule import Schedule

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
