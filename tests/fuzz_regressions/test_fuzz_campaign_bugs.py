"""Bugs found by the 1-hour, 2-worker campaign of this session (`shapeflow fuzz --time 1h --workers 2 --tvm`),
as minimized reproducers kept as regression tests."""

import numpy as np

from shapeflow.fuzz.oracles import TestCase, check

# A float16 constant outside float16's range (5e29) reached the LLVM printer unrounded: llvmlite raised
# OverflowError while printing the module ("float too large to pack with e format"), an unexpected exception
# at compile time. The constant is inf in float16, as the interpreter reads it.
FLOAT16_CONSTANT_OUT_OF_RANGE = """# shapeflow.ir v1
@T.prim_func
def main(A0: T.Buffer((n,), "float16"), B0: T.Buffer((n,), "float16")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'n': (1, 12)}})
    for i in T.serial(0, n):
        B0[i] = T.tanh(A0[i] / T.float16(-1.5) / T.float16(5e+29))
"""


def test_float16_constant_out_of_range_compiles_as_inf():
    for passes in ([], [["simplify", {}]]):
        outcome = check(
            TestCase(ir=FLOAT16_CONSTANT_OUT_OF_RANGE, passes=passes, seed=1), compile_oracle=True
        )
        assert outcome.status == "ok", (outcome.symptom, outcome.message)


def test_float_constants_are_rounded_to_their_dtype_in_compiled_code():
    import shapeflow as sf  # noqa: PLC0415
    from shapeflow.ir import parse  # noqa: PLC0415

    src = FLOAT16_CONSTANT_OUT_OF_RANGE.replace(
        "T.tanh(A0[i] / T.float16(-1.5) / T.float16(5e+29))", "A0[i] * T.float16(5e+29)"
    )
    lib = sf.build(parse(src))
    a = np.array([1.0, -2.0, 0.0], np.float16)
    out = np.zeros(3, np.float16)
    lib["main"](a, out)
    assert np.isposinf(out[0]) and np.isneginf(out[1]) and np.isnan(out[2])


# Found by a 5-minute check run of the fixed --tvm campaign (finding e8bd49d0049d): a block iteration value
# holding a Let was substituted into each use of the iteration variable, so ConvertBlocksToLoops defined the
# Let's variable twice (a VerifyError after the pass). The value is now bound once, by a LetStmt.
LET_IN_BLOCK_BINDING = """# shapeflow.ir v1
@T.prim_func
def main(B0: T.Buffer((m, 3), "float32")):
    T.func_attr({'global_symbol': 'main', 'var_bounds': {'m': (1, 12)}})
    with T.block('root'):
        T.reads()
        T.writes()
        with T.block('b'):
            v14 = T.axis.spatial(m, T.Let(t1, B0[0, 2], 0))
            T.reads(B0[v14, 0])
            T.writes(B0[v14, 0])
            B0[v14, 0] = B0[v14, 0] + T.float32(1.0)
"""


def test_block_binding_with_a_let_is_bound_once():
    passes = [["convert-blocks-to-loops", {}], ["flatten-buffer", {}]]
    for seed in (1, 2):
        outcome = check(TestCase(ir=LET_IN_BLOCK_BINDING, passes=passes, seed=seed), compile_oracle=True)
        assert outcome.status == "ok", (outcome.symptom, outcome.message)
