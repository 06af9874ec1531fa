"""Unsigned and narrow signed arithmetic wraps (as the interpreter and C do), so the simplifier may only fold
it exactly: the division, min/max and comparison rules that reason about sums as mathematical integers are
for 32/64-bit signed index arithmetic. Found by the fuzzer: (0u - x) / 3u was rewritten as if signed."""

import random

import pytest

from shapeflow.ir import LE, LT, Add, Div, FloorDiv, FloorMod, IntImm, Max, Min, Mod, Mul, Select, Sub, Var
from shapeflow.ir.arith import evaluate, simplify
from shapeflow.ir.arith.evaluate import EvaluationError

RANGES = {"uint8": (0, 255), "uint32": (0, 2**32 - 1), "int8": (-128, 127), "int16": (-(2**15), 2**15 - 1)}


def wrapping_expressions(dtype):
    x, y = Var("x", dtype), Var("y", dtype)

    def c(v):
        return IntImm(dtype, v)

    return [
        Min(Sub(c(0), x), c(5)),
        Max(Sub(c(2), x), y),
        LT(Sub(c(0), x), c(5)),
        LE(Sub(x, y), x),
        Div(Sub(c(0), x), c(3)),
        Mod(Sub(c(2), x), c(3)),
        FloorDiv(Sub(c(0), x), c(4)),
        FloorMod(Add(x, c(100)), c(7)),
        Sub(Add(x, y), y),
        LT(x, Add(x, c(1))),
        Select(LT(Sub(c(0), x), c(3)), x, y),
        Div(Mul(x, c(4)), c(4)),
    ]


@pytest.mark.parametrize("dtype", sorted(RANGES))
def test_simplify_keeps_wrapping_results(dtype):
    rng = random.Random(0)
    lo, hi = RANGES[dtype]
    for expr in wrapping_expressions(dtype):
        simplified = simplify(expr)
        for _ in range(200):
            env = {"x": rng.choice([lo, hi, rng.randint(lo, hi)]), "y": rng.randint(lo, hi)}
            try:
                expected = evaluate(expr, env)
            except EvaluationError:
                continue
            assert evaluate(simplified, env) == expected, (expr, simplified, env)


def test_int64_index_arithmetic_still_simplifies():
    i = Var("i")
    assert simplify(Div(Mul(i, IntImm("int64", 4)), IntImm("int64", 4))) is not None
    assert simplify(LT(i, Add(i, IntImm("int64", 1)))).value == 1
