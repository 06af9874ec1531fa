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
