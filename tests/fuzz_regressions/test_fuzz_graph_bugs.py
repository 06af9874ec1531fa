"""Bugs the graph-level fuzzer (`shapeflow fuzz --graph`) found, as minimized reproducers. A bug not yet
fixed is marked xfail(strict): once the owner fixes it the test passes, strict xfail fails, and the marker
must be removed."""

import numpy as np

from shapeflow.fuzz.oracles import TestCase, check

# Found by the graph campaign (seed 3, 60 s): R.sign of a NaN (here log of a negative number).
SIGN_OF_NAN = """# shapeflow.ir v1
@I.ir_module
class Module:
    @R.function
    def main(b: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        R.func_attr({'global_symbol': 'main'})
        with R.dataflow():
            lv1 = R.log(b)
            gv2 = R.sign(lv1)
            R.output(gv2)
        return gv2
"""

# Fixed: ir/graph/ops/unary.py legalized sign as select(x > 0, 1, select(x < 0, -1, 0)), so sign(NaN) was 0
# in legalized and compiled code, while the op's numpy reference (np.sign) gives NaN. The float form now ends
# in `x` itself where x is NaN (tests/graph/test_ops_unary_special_values.py).


def test_sign_reproducer_still_parses_and_runs_in_the_interpreter():
    """The reproducer itself is sound: it verifies and the reference gives NaN where b is negative."""
    from shapeflow.ir.graph import run
    from shapeflow.ir.text import parse

    b = np.array([-1.0, 1.0, np.e, 0.5], "float32")
    with np.errstate(all="ignore"):
        out = run(parse(SIGN_OF_NAN), b)
    assert np.isnan(out[0]) and list(out[1:]) == [0.0, 1.0, -1.0]


def test_legalized_sign_of_nan_is_nan_like_the_reference():
    with np.errstate(all="ignore"):
        outcome = check(TestCase(SIGN_OF_NAN, [["graph.legalize_ops", {}]], 1, kind="graph"))
    assert not outcome.is_bug, f"{outcome.symptom} at {outcome.stage}: {outcome.message}"


# Found by the graph campaign (seed 7, 300 s) as `subtract(matmul(rsqrt(w), w), same)` at O2: the fused
# kernel computes (x*y + c) - (x*y + c), which the LLVM backend folds to 0 under its default fast-math
# flags (reassoc, contract, nsz), while the interpreter gives NaN for NaN inputs. Minimized by hand to
# the loop level.
SELF_SUBTRACT = """# shapeflow.ir v1
@T.prim_func
def main(w: T.Buffer((2,), "float32"), out: T.Buffer((2,), "float32")):
    for i in T.serial(0, 2):
        out[i] = (w[i] * w[i] + T.float32(1.0)) - (w[i] * w[i] + T.float32(1.0))
"""

# Fixed: codegen/llvm/context.py enabled fast-math flags (reassoc, contract, nsz) on all float arithmetic by
# default, so LLVM folded (a + c) - (a + c) to 0.0 where the interpreter gives NaN for NaN or infinite a.
# Reassociation is now given only to reductions' accumulator updates (codegen/llvm/reduction.py);
# Target(fast_math=True) is the explicit opt-in to the old behaviour (tests/codegen/test_llvm_float_modes.py).


def test_compiled_self_subtraction_keeps_nan_like_the_interpreter():
    import shapeflow
    from shapeflow.fuzz.oracles import as_func
    from shapeflow.ir.module import IRModule
    from shapeflow.ir.text import parse
    from shapeflow.ir.tir.interpreter import run

    func = as_func(parse(SELF_SUBTRACT))
    w = np.array([np.nan, np.inf], "float32")
    expected, actual = np.zeros(2, "float32"), np.zeros(2, "float32")
    with np.errstate(all="ignore"):
        run(func, w, expected)
    shapeflow.build(IRModule({"main": func}), "cpu")["main"](w, actual)
    assert np.isnan(expected).all()
    np.testing.assert_array_equal(actual, expected)
