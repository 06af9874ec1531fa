"""Bugs the loop-level fuzzer found during the fuzzer evaluation campaigns (benchmarks/fuzz_eval.py), as
minimized reproducers. A bug not yet fixed is marked xfail(strict): once the owner fixes it the test
passes, strict xfail fails, and the marker must be removed."""

import numpy as np
import pytest

from shapeflow.fuzz.oracles import TestCase, check
from shapeflow.ir import parse
from shapeflow.ir.tir.interpreter import InterpreterError, run

# Found by the generate-only and no-coverage campaigns (seed 0, 180 s each), same bug key bb78ab3e29bd.
UNSIGNED_DIV_OF_NEGATED = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((3,), "int64"), B0: T.Buffer((1, 4), "uint32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {}})
    B0[0, 0] = T.truncdiv(T.uint32(0) - B0[0, 0], T.uint32(3))
"""

UNSIGNED_MOD_OF_DIFFERENCE = """# shapeflow.ir v1
@T.prim_func
def main(B0: T.Buffer((n,), "uint32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    for i1 in T.serial(0, n):
        B0[i1] = T.truncmod(T.uint32(2) - B0[i1], T.uint32(3))
"""


@pytest.mark.parametrize("text", [UNSIGNED_DIV_OF_NEGATED, UNSIGNED_MOD_OF_DIFFERENCE], ids=["div", "mod"])
def test_simplify_keeps_unsigned_division_of_a_difference(text):
    """Fixed: the division rules apply to signed index arithmetic only (see rules_int._signed_index)."""
    for seed in (1, 2, 3):
        outcome = check(TestCase(text, [["simplify", {}]], seed), compile_oracle=False)
        assert not outcome.is_bug, f"{outcome.symptom} at {outcome.stage}: {outcome.message}"


# Found by the ir-only campaign: a mutated index made a parallel loop racy (B0[0, 0] written by every
# iteration). Not a compiler bug: the oracle now recognizes order-dependent loops and files no finding.
RACY_PARALLEL = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((4,), "int16"), B0: T.Buffer((1, 8), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i2 in T.parallel(0, 8):
            B0[0, 0] = B0[0, i2]
"""


def test_racy_parallel_loop_is_not_reported_as_a_miscompilation():
    outcome = check(TestCase(RACY_PARALLEL, [], 7), compile_oracle=True)
    assert not outcome.is_bug, f"{outcome.symptom}: {outcome.message}"


# Found by `shapeflow fuzz` (bug 6bdc1cf4e409): `pad` of block C by [2, 2] makes a pad block
# `if v0 < 7: b_pad[v0] = b[v0] else: b_pad[v0] = 0` over 8 iterations; vectorizing its loop merged the
# if into a Select, which evaluates both arms, so b (length 7) was loaded at all 8 lanes: the interpreter
# raised out-of-bounds on the transformed program (and native code read past b).
PADDED_BROADCAST_ROW = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n, 7), "int32"), b: T.Buffer((7,), "int32"), C: T.Buffer((n, 7), "int32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        for i in T.serial(0, n):
            for j in T.serial(0, 7):
                with T.block('C'):
                    v_i = T.axis.spatial(n, i)
                    v_j = T.axis.spatial(7, j)
                    T.reads(A[v_i, v_j], b[v_j])
                    T.writes(C[v_i, v_j])
                    C[v_i, v_j] = b[v_j]
"""


def test_vectorized_pad_loop_keeps_its_guarded_load_in_bounds():
    """Fixed: vectorize-loop merges an if on a vector condition only when the loads it guards are proven
    in bounds in every lane (passes/tir/vectorize_loop.py, _Vectorizer._if); the pad loop stays serial."""
    test = TestCase(
        PADDED_BROADCAST_ROW,
        [["convert-blocks-to-loops", {}], ["vectorize-loop", {}]],
        591999467,
        schedule=[
            {"p": "pad", "block": "C", "padding": [2, 2]},
            {"p": "vectorize", "block": "b_pad", "loop": 0},
        ],
    )
    outcome = check(test, compile_oracle=True)
    assert not outcome.is_bug, f"{outcome.symptom} at {outcome.stage}: {outcome.message}"
    assert outcome.status == "ok" and outcome.ran, f"the test did not run through: {outcome.status}"


# Found by the fuzzer evaluation (bug b93c65a8f041): an unrolled int64 loop from INT64_MAX of extent 4; the
# interpreter ran Python ints past the dtype (INT64_MAX + 1, ...), and T.shift_right's numpy reference
# raised OverflowError converting one to int64. Compiled code wraps the end and runs no iteration.
OVERFLOWING_LOOP_END = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((4,), "int16"), B0: T.Buffer((1, 8), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {}})
    for w615 in T.unroll(9223372036854775807, 4):
        with T.block('root'):
            T.reads()
            T.writes()
            with T.let(T.Select(False, w615, T.shift_right(w615, 25))) as lv1:
                B0[0, 0] = T.float32(0.0)
"""


def test_loop_whose_end_overflows_its_dtype_is_refused_by_the_interpreter():
    """Fixed: a For whose min + extent does not fit the loop variable's dtype is undefined, and the
    interpreter raises InterpreterError (a shapeflow.Error) naming the loop (interpreter_stmts._for)."""
    test = TestCase(OVERFLOWING_LOOP_END, [], 535189856, flags=["oob"])
    outcome = check(test, compile_oracle=True)
    assert not outcome.is_bug, f"{outcome.symptom} at {outcome.stage}: {outcome.message}"
    assert outcome.status == "ok", outcome.status
    with pytest.raises(InterpreterError, match="loop w615: its end min \\+ extent = 9223372036854775811"):
        run(parse(OVERFLOWING_LOOP_END), np.zeros(4, "int16"), np.zeros((1, 8), "float32"))


# Found by the fuzzer (finding flatten_neg): a strided allocation (n, 8) with strides (12, 1) flattened to
# (n - 1) * 12 + 8 elements, -4 at n = 0, and the interpreter refused the transformed IR. The mutated bound
# (0.5, 12) is not an int pair and is now refused by the verifier; with (0, 12) the chooser still picks n = 0.
FLATTEN_NEGATIVE = """# shapeflow.ir v1
@T.prim_func
def main(A: T.Buffer((n, 8), "float32"), out: T.Buffer((n + 1, 8), "float32")):
    T.func_attr({'global_symbol': 'main', 'tir.noalias': True, 'var_bounds': {'n': (0.5, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        mx = T.alloc_buffer((n,), "float32")
        ex = T.alloc_buffer((n, 8), "float32", strides=(12, 1))
        sm = T.alloc_buffer((n,), "float32")
        for i_3 in T.serial(0, n):
            with T.block('out'):
                v_i_3 = T.axis.spatial(n, i_3)
                v_j_1 = T.axis.spatial(8, 0)
                T.reads(sm[v_i_3], ex[v_i_3, v_j_1])
                T.writes(out[v_i_3, v_j_1])
                out[v_i_3, v_j_1] = T.float32(0.0)
"""


@pytest.mark.parametrize("bounds", ["(0.5, 12)", "(0, 12)"])
def test_flattened_strided_allocation_at_n_zero_is_not_negative(bounds):
    """Fixed: flat_extent is 0 when an extent is 0 (flatten_buffer.py); a float bound is invalid input."""
    ir = FLATTEN_NEGATIVE.replace("(0.5, 12)", bounds)
    test = TestCase(ir, [["convert-blocks-to-loops", {}], ["flatten-buffer", {}]], 869639835, flags=["oob"])
    outcome = check(test, compile_oracle=True)
    assert not outcome.is_bug, f"{outcome.symptom} at {outcome.stage}: {outcome.message}"
    assert outcome.status == ("invalid" if "0.5" in bounds else "ok"), outcome.status
    if "0.5" not in bounds:
        assert outcome.ran
