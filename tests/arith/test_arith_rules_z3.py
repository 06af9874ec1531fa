"""Every rewrite rule, proved: each rule in ALL_RULES has witnesses here, each witness is rewritten by the
rule's own function, and z3 proves the result equal to the input for all values allowed by its bounds.

Three encodings, independent of shapeflow's evaluator:
- "bv": exact bit-vectors of the dtype's width (wraparound, C truncation via bvsdiv/bvsrem, floor via bvsmod).
  The canonical linear form is proved here with no bounds at all: it is exact even when arithmetic wraps.
- "int": mathematical integers under the bounds (the division, min/max and comparison rules assume no
  int64 overflow, which small bounds guarantee).
- "fp": IEEE float32, compared with SMT equality (so -0.0 != +0.0 and results must match bit for bit).
"""

from __future__ import annotations

import math

import pytest
import z3

from shapeflow.ir import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    NE,
    Add,
    And,
    Call,
    Cast,
    Div,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Max,
    Min,
    Mod,
    Mul,
    Not,
    Or,
    PrimExpr,
    Select,
    Sub,
    Var,
)
from shapeflow.ir.arith import ALL_RULES, Analyzer
from shapeflow.ir.tir import Range

x, y, n, i, j = Var("x"), Var("y"), Var("n"), Var("i"), Var("j")
b = Var("b", "bool")
f = Var("f", "float32")
t, u, g = Var("t"), Var("u"), Var("g", "float32")


def c(v: int, dtype: str = "int64") -> IntImm:
    return IntImm(dtype, v)


def fc(v: float) -> FloatImm:
    return FloatImm("float32", v)


# ------------------------------------------------------------------------------------------------
# Encodings
# ------------------------------------------------------------------------------------------------


def _int_floordiv(a, d):
    return z3.If(d > 0, a / d, (-a) / (-d))  # z3's Int division is Euclidean: floor for d > 0


def _int_truncdiv(a, d):
    return z3.If(a >= 0, z3.If(d > 0, a / d, -(a / -d)), z3.If(d > 0, -((-a) / d), (-a) / (-d)))


def _bv_floordiv(a, d):
    q = a / d  # bvsdiv: truncated
    return z3.If(z3.And(z3.SRem(a, d) != 0, (a < 0) != (d < 0)), q - 1, q)


class Encoder:
    def __init__(self, mode: str):
        self.mode = mode
        self.vars: dict[Var, z3.ExprRef] = {}

    def var(self, v: Var):
        if v not in self.vars:
            name = f"{v.name}_{id(v)}"
            if v.dtype.is_bool:
                self.vars[v] = z3.Bool(name)
            elif v.dtype.is_float:
                self.vars[v] = z3.FP(name, z3.Float32())
            elif self.mode in ("bv", "fp"):
                self.vars[v] = z3.BitVec(name, v.dtype.bits)
            else:
                self.vars[v] = z3.Int(name)
        return self.vars[v]

    def __call__(self, e: PrimExpr):
        t, dt = type(e), e.dtype
        bv = self.mode in ("bv", "fp")  # "fp": floats IEEE, integers exact bit-vectors
        signed = dt.is_int
        if t is Var:
            return self.var(e)
        if t is IntImm:
            if dt.is_bool:
                return z3.BoolVal(bool(e.value))
            return z3.BitVecVal(e.value, dt.bits) if bv else z3.IntVal(e.value)
        if t is FloatImm:
            return z3.FPVal(e.value, z3.Float32())
        if t in (EQ, NE, LT, LE, GT, GE):
            a, d = self(e.a), self(e.b)
            if z3.is_fp(a):
                fn = {EQ: z3.fpEQ, NE: z3.fpNEQ, LT: z3.fpLT, LE: z3.fpLEQ, GT: z3.fpGT, GE: z3.fpGEQ}[t]
                return fn(a, d)
            if bv and not e.a.dtype.is_int and not e.a.dtype.is_bool:
                fn = {
                    EQ: lambda p, q: p == q,
                    NE: lambda p, q: p != q,
                    LT: z3.ULT,
                    LE: z3.ULE,
                    GT: z3.UGT,
                    GE: z3.UGE,
                }[t]
                return fn(a, d)
            return {EQ: a == d, NE: a != d, LT: a < d, LE: a <= d, GT: a > d, GE: a >= d}[t]
        if t is And:
            return z3.And(self(e.a), self(e.b))
        if t is Or:
            return z3.Or(self(e.a), self(e.b))
        if t is Not:
            return z3.Not(self(e.a))
        if t is Select:
            return z3.If(self(e.condition), self(e.true_value), self(e.false_value))
        if t is Cast:
            return self.cast(e)
        if t is Call:
            return self.call(e)
        if t is Let:
            return self.let(e)
        a, d = self(e.a), self(e.b)
        if dt.is_float:
            rm = z3.RNE()
            return {Add: z3.fpAdd, Sub: z3.fpSub, Mul: z3.fpMul, Div: z3.fpDiv}[t](rm, a, d)
        if t is Add:
            return a + d
        if t is Sub:
            return a - d
        if t is Mul:
            return a * d
        if t is Min:
            return z3.If((a <= d) if (signed or not bv) else z3.ULE(a, d), a, d)
        if t is Max:
            return z3.If((a >= d) if (signed or not bv) else z3.UGE(a, d), a, d)
        if not bv:
            q = {FloorDiv: _int_floordiv, FloorMod: _int_floordiv, Div: _int_truncdiv, Mod: _int_truncdiv}[t](
                a, d
            )
            return q if t in (FloorDiv, Div) else a - d * q
        if not signed:
            return z3.UDiv(a, d) if t in (FloorDiv, Div) else z3.URem(a, d)
        return {FloorDiv: _bv_floordiv, FloorMod: lambda p, q: p % q, Div: lambda p, q: p / q, Mod: z3.SRem}[
            t
        ](a, d)

    def cast(self, e: Cast):
        src, dst = e.value.dtype, e.dtype
        v = self(e.value)
        if src == dst:
            return v
        if dst.is_bool:
            return v != 0
        if self.mode == "int" and not src.is_float and not dst.is_float:
            return v  # small bounds: integer casts that fit change nothing
        if src.is_float and dst.is_integer:
            return z3.fpToSBV(z3.RTZ(), v, z3.BitVecSort(dst.bits))
        if dst.is_float:
            return (
                z3.fpSignedToFP(z3.RNE(), v, z3.Float32())
                if src.is_int
                else z3.fpUnsignedToFP(z3.RNE(), v, z3.Float32())
            )
        if dst.bits < src.bits:
            return z3.Extract(dst.bits - 1, 0, v)
        grow = dst.bits - src.bits
        return z3.SignExt(grow, v) if src.is_int else z3.ZeroExt(grow, v)

    def let(self, e: Let):
        """By substitution: the body is encoded with the bound Var standing for the value's encoding
        (restored afterwards, so a shadowing inner Let cannot leak)."""
        value = self(e.value)
        saved = self.vars.get(e.var)
        self.vars[e.var] = value
        try:
            return self(e.body)
        finally:
            if saved is None:
                del self.vars[e.var]
            else:
                self.vars[e.var] = saved

    def call(self, e: Call):
        args = [self(a) for a in e.args]
        op = e.op
        if op == "bitwise_and":
            return args[0] & args[1]
        if op == "bitwise_or":
            return args[0] | args[1]
        if op == "bitwise_xor":
            return args[0] ^ args[1]
        if op == "bitwise_not":
            return ~args[0]
        if op == "shift_left":
            return args[0] << args[1]  # bvshl: 0 once the (unsigned) amount reaches the width, as the IR
        if op == "shift_right":
            return args[0] >> args[1] if e.dtype.is_int else z3.LShR(args[0], args[1])
        raise NotImplementedError(op)


def _constraints(enc: Encoder, bounds: dict) -> list:
    out = []
    for v, bd in bounds.items():
        zv = enc(v)
        if isinstance(bd, Range):
            lo = enc(bd.min)
            out += [lo <= zv, zv <= lo + enc(bd.extent) - 1]
        elif isinstance(bd, tuple):
            out += [enc(c(bd[0])) <= zv, zv <= enc(c(bd[1]))]
        else:
            out.append(zv == enc(bd))
    return out


def prove_equal(before: PrimExpr, after: PrimExpr, bounds: dict, mode: str) -> None:
    enc = Encoder(mode)
    lhs, rhs = enc(before), enc(after)
    solver = z3.Solver()
    solver.set("timeout", 20000)
    solver.add(*_constraints(enc, bounds))
    solver.add(lhs != rhs)
    result = solver.check()
    assert result == z3.unsat, f"{before} -> {after} is not equal under {bounds}: {solver.model()}"


# ------------------------------------------------------------------------------------------------
# Witnesses: rule name -> [(expression, bounds, encoding)], expressions written as simplified children
# ------------------------------------------------------------------------------------------------

I64_MAX = 2**63 - 1
small = {x: (-50, 50), y: (-50, 50)}
loop = {n: (1, 64), i: Range(0, n), j: (0, 3)}
nan = fc(math.nan)

WITNESSES: dict[str, list[tuple]] = {
    "fold_int_binary": [
        (Add(c(I64_MAX), c(1)), {}, "bv"),
        (Sub(c(-(2**63)), c(1)), {}, "bv"),
        (Mul(c(2**40), c(2**40)), {}, "bv"),
        (Div(c(-7), c(2)), {}, "bv"),
        (Mod(c(-7), c(2)), {}, "bv"),
        (FloorDiv(c(-7), c(2)), {}, "bv"),
        (FloorMod(c(-7), c(2)), {}, "bv"),
        (FloorMod(c(7), c(-2)), {}, "bv"),
        (FloorDiv(c(7), c(-2)), {}, "bv"),
        (Min(c(-3), c(2)), {}, "bv"),
        (Max(c(-3), c(2)), {}, "bv"),
        (Add(c(2**31 - 1, "int32"), c(1, "int32")), {}, "bv"),
        (Sub(c(0, "uint8"), c(1, "uint8")), {}, "bv"),
        (Div(c(200, "uint8"), c(7, "uint8")), {}, "bv"),
        (Min(c(200, "uint8"), c(7, "uint8")), {}, "bv"),
    ],
    "fold_float_binary": [
        (Add(fc(0.1), fc(0.2)), {}, "fp"),
        (Mul(fc(3.0), fc(1e30)), {}, "fp"),
        (Sub(fc(1.0), fc(1e-8)), {}, "fp"),
        (Div(fc(1.0), fc(3.0)), {}, "fp"),
        (Add(fc(-0.0), fc(0.0)), {}, "fp"),
    ],
    "fold_compare": [
        (LT(c(-1), c(3)), {}, "bv"),
        (GE(c(-1, "int8"), c(3, "int8")), {}, "bv"),
        (LT(c(255, "uint8"), c(3, "uint8")), {}, "bv"),
        (LT(nan, fc(1.0)), {}, "fp"),
        (NE(nan, nan), {}, "fp"),
        (EQ(fc(-0.0), fc(0.0)), {}, "fp"),
    ],
    "fold_and_or": [
        (And(IntImm("bool", 1), b), {}, "int"),
        (And(b, IntImm("bool", 0)), {}, "int"),
        (Or(IntImm("bool", 1), b), {}, "int"),
        (Or(b, IntImm("bool", 0)), {}, "int"),
    ],
    "fold_not": [(Not(IntImm("bool", 1)), {}, "int"), (Not(IntImm("bool", 0)), {}, "int")],
    "fold_select": [
        (Select(IntImm("bool", 1), x, y), {}, "int"),
        (Select(IntImm("bool", 0), x, y), {}, "int"),
    ],
    "fold_cast": [
        (Cast("int8", c(300)), {}, "bv"),
        (Cast("uint8", c(-1)), {}, "bv"),
        (Cast("int64", c(-5, "int32")), {}, "bv"),
        (Cast("uint64", c(-5, "int32")), {}, "bv"),
        (Cast("bool", c(5)), {}, "bv"),
        (Cast("float32", c(16777217)), {}, "fp"),
        (Cast("int32", fc(-2.7)), {}, "fp"),
    ],
    "fold_intrinsic": [
        (Call("int64", "bitwise_and", (c(-6), c(13))), {}, "bv"),
        (Call("int64", "bitwise_or", (c(-6), c(13))), {}, "bv"),
        (Call("int64", "bitwise_xor", (c(-6), c(13))), {}, "bv"),
        (Call("int64", "bitwise_not", (c(-6),)), {}, "bv"),
        (Call("int64", "shift_left", (c(1), c(63))), {}, "bv"),
        (Call("int64", "shift_left", (c(1), c(64))), {}, "bv"),
        (Call("int64", "shift_left", (c(1), c(-1))), {}, "bv"),
        (Call("int64", "shift_right", (c(-8), c(1))), {}, "bv"),
        (Call("int64", "shift_right", (c(-8), c(70))), {}, "bv"),
        (Call("uint8", "shift_right", (c(200, "uint8"), c(3, "uint8"))), {}, "bv"),
    ],
    "cast_noop": [(Cast("int64", x), {}, "bv"), (Cast("float32", f), {}, "fp")],
    "float_mul_one": [(Mul(f, fc(1.0)), {}, "fp"), (Mul(fc(1.0), f), {}, "fp")],
    "float_add_neg_zero": [(Add(f, fc(-0.0)), {}, "fp"), (Add(fc(-0.0), f), {}, "fp")],
    "float_sub_zero": [(Sub(f, fc(0.0)), {}, "fp")],
    "float_div_one": [(Div(f, fc(1.0)), {}, "fp")],
    "not_not": [(Not(Not(b)), {}, "int")],
    "not_compare": [(Not(LT(x, y)), {}, "bv"), (Not(EQ(x, y)), {}, "bv"), (Not(GE(x, y)), {}, "bv")],
    "and_or_same": [(And(b, b), {}, "int"), (Or(LT(x, y), LT(x, y)), {}, "int")],
    "and_or_complement": [(And(b, Not(b)), {}, "int"), (Or(Not(b), b), {}, "int")],
    "select_same_branches": [(Select(b, x, x), {}, "int")],
    "select_not_condition": [(Select(Not(b), x, y), {}, "int")],
    "var_binding": [(y, {y: Mul(x, c(2))}, "int")],
    "let_inline": [
        (Let(t, c(2), c(-2)), {}, "bv"),  # the fuzzer's case: unused binding
        (Let(t, c(2), Mul(c(-2), Add(x, y))), {}, "bv"),
        (Let(t, Add(x, c(1)), Mul(t, Sub(t, y))), {}, "bv"),
        (Let(t, x, Let(u, Mul(t, c(3)), Add(u, t))), {}, "bv"),
        (Let(t, x, Add(t, Let(t, y, Mul(t, c(2))))), {}, "bv"),  # inner Let shadows t
        (Let(g, Mul(f, fc(3.0)), Add(g, Div(g, fc(7.0)))), {}, "fp"),
        (Let(t, x, Select(LT(t, c(0)), Sub(c(0), t), t)), {x: (-50, 50)}, "int"),
    ],
    "canonical_sum": [
        (Sub(Add(x, y), x), {}, "bv"),
        (Mul(Add(x, c(1)), Sub(y, c(2))), {}, "bv"),
        (Sub(Mul(x, c(3)), Mul(c(5), x)), {}, "bv"),
        (Add(Mul(x, c(I64_MAX)), Mul(x, c(I64_MAX))), {}, "bv"),
        (Sub(c(0), Sub(x, y)), {}, "bv"),
        (Add(Mul(x, y), Mul(y, x)), {}, "bv"),
        (Sub(Mul(FloorDiv(Add(n, c(3)), c(4)), c(4)), n), {}, "int"),
        (Add(Mul(FloorDiv(x, c(4)), c(4)), FloorMod(x, c(4))), {}, "int"),
        (Add(c(200, "uint8"), Add(Var("u", "uint8"), c(100, "uint8"))), {}, "bv"),
    ],
    "floordiv_const": [
        (FloorDiv(Add(Mul(x, c(8)), y), c(4)), {y: (0, 7)}, "int"),
        (FloorDiv(Add(Mul(i, c(4)), j), c(4)), loop, "int"),
        (FloorDiv(Add(Mul(x, c(6)), c(4)), c(4)), {}, "int"),
        (FloorDiv(FloorDiv(x, c(4)), c(8)), {}, "int"),
        (FloorDiv(x, c(1)), {}, "int"),
        (FloorDiv(Sub(x, c(1)), c(4)), {}, "int"),
        (FloorDiv(Add(Mul(x, c(-8)), c(-3)), c(4)), {}, "int"),
        (FloorDiv(Sub(x, y), c(16)), {x: (0, 15), y: (0, 15)}, "int"),
    ],
    "floormod_const": [
        (FloorMod(Add(Mul(x, c(4)), c(3)), c(4)), {}, "int"),
        (FloorMod(Add(Mul(i, c(4)), j), c(4)), loop, "int"),
        (FloorMod(Add(Mul(x, c(6)), c(4)), c(4)), {}, "int"),
        (FloorMod(FloorMod(x, c(16)), c(4)), {}, "int"),
        (FloorMod(x, c(1)), {}, "int"),
        (FloorMod(Add(Mul(x, c(5)), y), c(4)), {}, "int"),
        (FloorMod(Add(x, c(20)), c(8)), {x: (0, 3)}, "int"),
        (FloorMod(Sub(x, c(9)), c(4)), {}, "int"),
    ],
    "div_mod_small_dividend": [
        (FloorDiv(i, n), loop, "int"),
        (FloorMod(i, n), loop, "int"),
        (Div(i, n), loop, "int"),
        (Mod(i, n), loop, "int"),
    ],
    "trunc_to_floor": [
        (Div(x, c(4)), {x: (0, 100)}, "int"),
        (Mod(x, y), {x: (0, 100), y: (1, 9)}, "int"),
    ],
    "trunc_by_one": [(Div(x, c(1)), {}, "bv"), (Mod(x, c(1)), {}, "bv")],
    "minmax_same": [(Min(x, x), {}, "bv"), (Max(x, x), {}, "bv")],
    "minmax_by_proof": [
        (Min(i, n), loop, "int"),
        (Max(i, c(0)), loop, "int"),
        (Max(Add(x, c(1)), Add(x, c(3))), small, "int"),
        (Min(Mul(FloorDiv(Add(n, c(3)), c(4)), c(4)), n), {n: (1, 1000)}, "int"),
        (Min(i, Sub(n, c(1))), loop, "int"),
        (Max(x, Add(y, c(1))), small, "int"),
    ],
    "minmax_absorb": [
        (Min(Min(x, y), y), {}, "int"),
        (Min(x, Max(x, y)), {}, "int"),
        (Max(x, Min(y, x)), {}, "int"),
        (Max(Max(x, y), x), {}, "int"),
    ],
    "minmax_order": [(Min(y, x), {}, "bv"), (Max(y, x), {}, "bv")],
    "compare_by_proof": [
        (LT(i, n), loop, "int"),
        (GE(i, n), loop, "int"),
        (EQ(x, Add(x, c(1))), small, "int"),
        (NE(x, Add(x, c(1))), small, "int"),
        (LE(Sub(x, y), c(100)), small, "int"),
        (GT(x, c(-51)), small, "int"),
        (LT(Sub(Mul(FloorDiv(Add(n, c(3)), c(4)), c(4)), n), c(4)), {n: (1, 1000)}, "int"),
        # Undecidable ones: the rule must leave them (z3 would refute any answer).
        (LT(i, Sub(n, c(1))), loop, "int"),
        (LE(x, y), small, "int"),
        (EQ(FloorMod(x, c(4)), c(3)), small, "int"),
    ],
}


def _analyzer(bounds: dict) -> Analyzer:
    ana = Analyzer()
    for v, bd in bounds.items():
        ana.bind(v, bd)
    return ana


def test_every_rule_has_witnesses():
    names = [rule.name for rule in ALL_RULES]
    assert len(names) == len(set(names)), "rule names must be unique"
    assert set(names) == set(WITNESSES), set(names) ^ set(WITNESSES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.name)
def test_rule_is_proved(rule):
    fired = 0
    for expr, bounds, mode in WITNESSES[rule.name]:
        assert isinstance(expr, rule.ops), f"witness {expr} is not a {rule.ops}"
        out = rule.fn(expr, _analyzer(bounds))
        if out is None:
            continue
        fired += 1
        prove_equal(expr, out, bounds, mode)
    assert fired, f"rule {rule.name} fired on none of its witnesses"


@pytest.mark.parametrize("op", [Div, Mod, FloorDiv, FloorMod])
def test_division_by_zero_and_overflow_are_not_folded(op):
    fold = next(r for r in ALL_RULES if r.name == "fold_int_binary")
    assert fold.fn(op(c(5), c(0)), Analyzer()) is None
    assert fold.fn(op(c(-(2**63)), c(-1)), Analyzer()) is None


def test_inexact_float_identities_are_not_applied():
    ana = Analyzer()
    for expr in (Add(f, fc(0.0)), Mul(f, fc(0.0)), Sub(f, fc(-0.0)), Mul(f, fc(-1.0))):
        for rule in ALL_RULES:
            if isinstance(expr, rule.ops):
                assert rule.fn(expr, ana) is None, (rule.name, expr)
    with pytest.raises(AssertionError):  # the encoding itself can tell: x + 0.0 is not x
        prove_equal(Add(f, fc(0.0)), f, {}, "fp")
