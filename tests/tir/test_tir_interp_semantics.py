"""Exact value semantics of the interpreter: C integer wrap-around and division, per-op float rounding,
casts, bool, vectors of ints, and intrinsics through their numpy references."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.ir import (
    Add,
    Broadcast,
    Cast,
    Div,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Max,
    Min,
    Mod,
    Mul,
    Ramp,
    Sub,
    Var,
)
from shapeflow.ir.tir import INTRINSICS, BufferStore, PrimFunc, call_intrinsic, decl_buffer
from shapeflow.ir.tir.interpreter import run


def evaluate(build, dtype: str, *values, out_dtype: str | None = None):
    """Interpret `out[0] = build(a, b, ...)` with scalar parameters of `dtype` bound to `values`."""
    params = [Var(f"x{k}", dtype) for k in range(len(values))]
    expr = build(*params)
    out_dtype = out_dtype or str(expr.dtype)
    out = decl_buffer((1,), out_dtype, "out")
    func = PrimFunc((out, *params), BufferStore(out, expr, (IntImm("int64", 0),)))
    result = np.zeros(1, out_dtype if "bfloat" not in out_dtype else ml_dtypes.bfloat16)
    run(func, result, *values)
    return result[0]


@pytest.mark.parametrize(
    "op,dtype,a,b,expected",
    [
        (Add, "int8", 127, 1, -128),
        (Sub, "int8", -128, 1, 127),
        (Mul, "int16", 300, 300, 24464),  # 90000 mod 2^16
        (Add, "uint8", 255, 1, 0),
        (Sub, "uint8", 0, 1, 255),
        (Mul, "int32", 2**31 - 1, 2, -2),
        (Add, "int64", 2**63 - 1, 1, -(2**63)),
        (Mul, "uint64", 2**63, 2, 0),
        (Div, "int32", -7, 2, -3),
        (Mod, "int32", -7, 2, -1),
        (Div, "int32", 7, -2, -3),
        (Mod, "int32", 7, -2, 1),
        (FloorDiv, "int32", -7, 2, -4),
        (FloorMod, "int32", -7, 2, 1),
        (FloorDiv, "int32", 7, -2, -4),
        (FloorMod, "int32", 7, -2, -1),
        (Div, "int8", -128, -1, -128),  # overflow in C; wraps here
        (Min, "int16", -3, 2, -3),
        (Max, "uint16", 3, 65535, 65535),
    ],
)
def test_integer_ops_wrap_and_round_as_c(op, dtype, a, b, expected):
    assert int(evaluate(lambda x, y: op(x, y), dtype, a, b)) == expected


@settings(deadline=None, max_examples=200)
@given(
    st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"]),
    st.sampled_from([Add, Sub, Mul, Div, Mod, FloorDiv, FloorMod]),
    st.data(),
)
def test_integer_ops_agree_with_numpy_wraparound(dtype, op, data):
    info = np.iinfo(dtype)
    a = data.draw(st.integers(int(info.min), int(info.max)))
    b = data.draw(st.integers(int(info.min), int(info.max)).filter(lambda v: v != 0))
    na, nb = np.array([a], dtype), np.array([b], dtype)
    with np.errstate(all="ignore"):
        if op in (Add, Sub, Mul):
            expected = {Add: np.add, Sub: np.subtract, Mul: np.multiply}[op](na, nb)[0]
        else:
            # Exact math on Python ints, then C wrap-around to the width.
            q_trunc = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            exact = {Div: q_trunc, Mod: a - b * q_trunc, FloorDiv: a // b, FloorMod: a % b}[op]
            expected = np.array([exact % (1 << (8 * na.itemsize))], "uint64").astype(dtype)[0]
    assert evaluate(lambda x, y: op(x, y), dtype, a, b) == expected


def test_division_by_zero_is_zero_for_every_integer_division():
    # Defined as 0, numpy's result (codegen/llvm/arith.py emits the same), for every width and signedness.
    for dtype in ("int8", "int32", "int64", "uint16", "uint64"):
        for op in (Div, Mod, FloorDiv, FloorMod):
            assert evaluate(op, dtype, 5, 0) == 0


def test_float32_rounds_after_every_op():
    # (a + b) - a is 0 in float32 (1e8 + 1 rounds back to 1e8) but 1 in float64.
    assert evaluate(lambda a, b: (a + b) - a, "float32", 1e8, 1.0) == 0.0
    assert evaluate(lambda a, b: (a + b) - a, "float64", 1e8, 1.0) == 1.0
    # float16: 2048 + 1 rounds to 2048.
    assert evaluate(lambda a, b: (a + b) - a, "float16", 2048.0, 1.0) == 0.0
    # bfloat16 has 8 significant bits: 256 + 1 is 256.
    assert float(evaluate(lambda a, b: (a + b) - a, "bfloat16", 256.0, 1.0)) == 0.0
    # Division result is the float32-rounded quotient.
    q = evaluate(lambda a, b: a / b, "float32", 1.0, 3.0)
    assert q == np.float32(1.0) / np.float32(3.0) and q.dtype == np.float32


def test_float_min_max_propagate_nan_and_floor_ops():
    assert np.isnan(evaluate(lambda a, b: Min(a, b), "float32", float("nan"), 1.0))
    assert np.isnan(evaluate(lambda a, b: Max(a, b), "float32", 1.0, float("nan")))
    assert evaluate(lambda a, b: FloorDiv(a, b), "float32", -7.0, 2.0) == -4.0
    assert evaluate(lambda a, b: FloorMod(a, b), "float32", -7.0, 2.0) == 1.0
    assert evaluate(lambda a, b: Mod(a, b), "float32", -7.0, 2.0) == -1.0


@pytest.mark.parametrize(
    "src,dst,value,expected",
    [
        ("int32", "int8", 300, 44),
        ("int32", "uint8", -1, 255),
        ("uint32", "int32", 2**32 - 1, -1),
        ("float32", "int32", -2.7, -2),
        ("float32", "int32", 2.7, 2),
        ("float32", "uint8", 200.9, 200),
        ("float32", "bool", 0.5, True),
        ("int32", "bool", 0, False),
        ("int32", "bool", -3, True),
        ("int64", "float32", 2**24 + 1, float(2**24)),
        ("float64", "float32", 0.1, float(np.float32(0.1))),
        ("int32", "float16", 2049, 2048.0),
    ],
)
def test_casts(src, dst, value, expected):
    got = evaluate(lambda x: Cast(dst, x), src, value)
    assert got == expected


def test_bool_logic_and_comparisons():
    assert evaluate(lambda a, b: (a < b) & (b > a), "int32", 1, 2, out_dtype="bool") == np.True_
    assert evaluate(lambda a, b: (a < b) | (a == b), "int32", 3, 2, out_dtype="bool") == np.False_
    assert evaluate(lambda a, b: ~(a != b), "float32", 1.5, 1.5, out_dtype="bool") == np.True_
    # uint comparisons are unsigned: 255 > 1.
    assert evaluate(lambda a, b: a > b, "uint8", 255, 1, out_dtype="bool") == np.True_


def test_intrinsics_follow_their_references():
    for name, x in [
        ("exp", 0.5),
        ("log", 3.0),
        ("sqrt", 2.0),
        ("tanh", -0.3),
        ("sigmoid", 1.0),
        ("erf", 0.2),
    ]:
        got = evaluate(lambda v, name=name: call_intrinsic(name, v), "float32", x)
        want = INTRINSICS[name].reference(np.asarray(np.float32(x)))
        assert got == want and got.dtype == np.float32, name
    assert evaluate(lambda v: call_intrinsic("abs", v), "int8", -128) == -128
    assert evaluate(lambda a, b: a << b, "int32", 1, 31) == -(2**31)
    assert evaluate(lambda a, b: a >> b, "int32", -8, 1) == -4
    assert evaluate(lambda a, b: a & b, "uint8", 0xF0, 0x3C) == 0x30
    assert evaluate(lambda v: call_intrinsic("isnan", v), "float32", float("nan"), out_dtype="bool")


def test_vector_integer_ops_wrap_and_divide_lanewise():
    out = decl_buffer((4,), "int8", "out")
    x = Var("x", "int8")
    lanes = Ramp(x, IntImm("int8", 50), 4)  # x, x+50, x+100, x+150 (wraps)
    value = Div(lanes, Broadcast(IntImm("int8", -3), 4)) + Broadcast(IntImm("int8", 1), 4)
    func = PrimFunc((out, x), BufferStore(out, value, (Ramp(IntImm("int64", 0), IntImm("int64", 1), 4),)))
    result = np.zeros(4, "int8")
    run(func, result, 20)
    lane_values = [20, 70, 120, (170 + 128) % 256 - 128]

    def trunc(a, b):
        q = abs(a) // abs(b)
        return -q if (a < 0) != (b < 0) else q

    np.testing.assert_array_equal(result, [trunc(v, -3) + 1 for v in lane_values])
    # Float vectors round lane by lane in float32.
    fout = decl_buffer((2,), "float32", "fout")
    y = Var("y", "float32")
    fvalue = (Broadcast(y, 2) + Ramp(FloatImm("float32", 0.0), FloatImm("float32", 1.0), 2)) - Broadcast(y, 2)
    ffunc = PrimFunc((fout, y), BufferStore(fout, fvalue, (Ramp(IntImm("int64", 0), IntImm("int64", 1), 2),)))
    fres = np.zeros(2, "float32")
    run(ffunc, fres, 1e8)
    np.testing.assert_array_equal(fres, [0.0, 0.0])
