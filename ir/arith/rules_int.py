"""Rule sets for integer index arithmetic: the canonical linear form, floor/trunc division and modulo by
constants, min/max and comparisons decided by bounds.

Division rules reason over mathematical integers: they assume int64 index arithmetic does not overflow, as
every symbolic-shape simplifier does. The linear form itself is exact even with wraparound.
"""

from __future__ import annotations

import math

from shapeflow.ir.arith.bound import is_inf
from shapeflow.ir.arith.canonical import Sum, is_index_dtype
from shapeflow.ir.arith.rule import RuleSet
from shapeflow.ir.expr import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    NE,
    Add,
    Div,
    FloorDiv,
    FloorMod,
    IntImm,
    Max,
    Min,
    Mod,
    Mul,
    Sub,
)

CANONICAL = RuleSet("canonical")
DIVMOD = RuleSet("divmod")
MINMAX = RuleSet("minmax")
COMPARE_BY_BOUNDS = RuleSet("compare")

_INT64_MAX = (1 << 63) - 1


def _positive_const(node) -> int | None:
    return node.value if type(node) is IntImm and node.value > 0 else None


def _unchanged(ctx, new, old):
    return None if ctx.canon.same(new, old) else new


@CANONICAL.rule("canonical_sum", Add, Sub, Mul, law="a sum of products -> sum of coeff*monomial, sorted")
def canonical_sum(node, ctx):
    if not is_index_dtype(node.dtype):
        return None
    s = ctx.normalize_divs(ctx.canon.to_sum(node), force=False)
    return _unchanged(ctx, ctx.build(s), node)


def _split(s: Sum, c: int) -> tuple[Sum, Sum]:
    """s == c * q + r with every coefficient of r not a multiple of c and r's constant in [0, c)."""
    q_terms, r_terms = {}, {}
    for mono, k in s.terms.items():
        if k % c == 0:
            q_terms[mono] = k // c
        else:
            r_terms[mono] = k
    return Sum(q_terms, s.const // c, s.dtype), Sum(r_terms, s.const % c, s.dtype)


def _common_factor(r: Sum, c: int) -> int:
    return math.gcd(c, r.const, *r.terms.values())


def _divide(r: Sum, g: int) -> Sum:
    return Sum({m: k // g for m, k in r.terms.items()}, r.const // g, r.dtype)


def _single_atom(ctx, r: Sum):
    """The atom when r is exactly one atom with coefficient 1 and no constant."""
    if r.const == 0 and len(r.terms) == 1:
        ((mono, k),) = r.terms.items()
        if k == 1 and len(mono) == 1:
            return ctx.canon.atoms[mono[0]]
    return None


def _signed_index(dtype) -> bool:
    """Signed scalar integers. The division rules reason about a canonical sum as a mathematical integer,
    which holds for 32- and 64-bit signed index arithmetic (assumed not to overflow, as in C and TVM) but not
    for unsigned values, whose sums wrap by design ((0u - x) is 2^bits - x, not -x), nor for int8/int16,
    whose wraparound quantized code relies on. Those are only folded exactly (canonical_sum, constants)."""
    return dtype.is_int and dtype.bits >= 32 and dtype.lanes == 1


def _same_period(ctx, r: Sum, c: int) -> int | None:
    """k if every value of r lies in [k*c, k*c + c)."""
    lo, hi = ctx.sum_bound(r)
    if is_inf(lo) or is_inf(hi) or lo // c != hi // c:
        return None
    return lo // c


@DIVMOD.rule(
    "floordiv_const", FloorDiv, law="(c*q + r) // c -> q + r // c, r // c folded by bounds, gcd, nesting"
)
def floordiv_const(node, ctx):
    c = _positive_const(node.b)
    if c is None or not _signed_index(node.dtype):
        return None
    q, r = _split(ctx.canon.to_sum(node.a), c)
    k = _same_period(ctx, r, c) if r.terms else 0
    if k is not None:
        rest = Sum.constant(k, r.dtype)
    else:
        g = _common_factor(r, c)
        r, c = (_divide(r, g), c // g) if g > 1 else (r, c)
        inner = _single_atom(ctx, r)
        if type(inner) is FloorDiv and _positive_const(inner.b) and inner.b.value * c <= _INT64_MAX:
            div = FloorDiv(inner.a, IntImm(node.dtype, inner.b.value * c))  # (x // c1) // c2 -> x // (c1*c2)
        else:
            div = FloorDiv(ctx.build(r), IntImm(node.dtype, c))
        rest = ctx.canon.to_sum(div)
    return _unchanged(ctx, ctx.build(q.add(rest)), node)


@DIVMOD.rule("floormod_const", FloorMod, law="(c*q + r) % c -> r % c, folded by bounds, gcd, nesting")
def floormod_const(node, ctx):
    c = _positive_const(node.b)
    if c is None or not _signed_index(node.dtype):
        return None
    _, r = _split(ctx.canon.to_sum(node.a), c)
    # A coefficient of c or more reduces modulo c; smaller ones (and negative ones) are kept as written.
    r = Sum({m: (k % c if abs(k) >= c else k) for m, k in r.terms.items()}, r.const, r.dtype)
    if not r.terms:
        return IntImm(node.dtype, r.const)
    k = _same_period(ctx, r, c)
    if k is not None:
        out = r.add(Sum.constant(-k * c, r.dtype))
    else:
        g = _common_factor(r, c)
        r, c2 = (_divide(r, g), c // g) if g > 1 else (r, c)
        inner = _single_atom(ctx, r)
        if type(inner) is FloorMod and _positive_const(inner.b) and inner.b.value % c2 == 0:
            mod = FloorMod(inner.a, IntImm(node.dtype, c2))  # (x % (k*c)) % c -> x % c
        else:
            mod = FloorMod(ctx.build(r), IntImm(node.dtype, c2))
        out = ctx.canon.to_sum(mod).scale(g)
    return _unchanged(ctx, ctx.build(out), node)


def _nonneg_below(ctx, a, b) -> bool:
    """0 <= a < b for every value, with b >= 1."""
    if ctx.bound(b)[0] < 1 or ctx.bound(a)[0] < 0:
        return False
    diff = ctx.canon.to_sum(a).add(ctx.canon.to_sum(b), -1).add(Sum.constant(1, a.dtype))
    return ctx.prove_nonpos(diff)


@DIVMOD.rule(
    "div_mod_small_dividend", FloorDiv, FloorMod, Div, Mod, law="a // b -> 0, a % b -> a if 0 <= a < b"
)
def div_mod_small_dividend(node, ctx):
    if not _signed_index(node.dtype) or type(node.b) is IntImm:
        return None  # constant divisors are handled, more generally, by floordiv_const / floormod_const
    if not _nonneg_below(ctx, node.a, node.b):
        return None
    return IntImm(node.dtype, 0) if type(node) in (FloorDiv, Div) else node.a


@DIVMOD.rule(
    "trunc_to_floor", Div, Mod, law="truncdiv/truncmod(a, b) -> floordiv/floormod(a, b) if a >= 0, b > 0"
)
def trunc_to_floor(node, ctx):
    if not _signed_index(node.dtype) or ctx.bound(node.b)[0] <= 0 or ctx.bound(node.a)[0] < 0:
        return None
    return (FloorDiv if type(node) is Div else FloorMod)(node.a, node.b)


@DIVMOD.rule("trunc_by_one", Div, Mod, law="truncdiv(a, 1) -> a; truncmod(a, 1) -> 0")
def trunc_by_one(node, ctx):
    if not node.dtype.is_integer or type(node.b) is not IntImm or node.b.value != 1:
        return None
    return node.a if type(node) is Div else IntImm(node.dtype, 0)


# -- min and max -------------------------------------------------------------------------------------


@MINMAX.rule("minmax_same", Min, Max, law="min(x, x) -> x; max(x, x) -> x")
def minmax_same(node, ctx):
    return node.a if ctx.canon.same(node.a, node.b) else None


def _difference(ctx, a, b) -> Sum:
    return ctx.canon.to_sum(a).add(ctx.canon.to_sum(b), -1)


@MINMAX.rule("minmax_by_proof", Min, Max, law="min(a, b) -> a if a <= b provable (and the like)")
def minmax_by_proof(node, ctx):
    if not _signed_index(node.dtype):
        return None
    d = _difference(ctx, node.a, node.b)
    if ctx.prove_nonpos(d):  # a <= b
        return node.a if type(node) is Min else node.b
    if ctx.prove_nonpos(d.scale(-1)):  # b <= a
        return node.b if type(node) is Min else node.a
    return None


@MINMAX.rule("minmax_absorb", Min, Max, law="min(min(x,y),y) -> min(x,y); min(x, max(x,y)) -> x (integers)")
def minmax_absorb(node, ctx):
    if not _signed_index(node.dtype):
        return None
    same = ctx.canon.same
    for this, other in ((node.a, node.b), (node.b, node.a)):
        if type(other) in (Min, Max) and (same(this, other.a) or same(this, other.b)):
            # min(x, min(x, y)) = min(x, y); min(x, max(x, y)) = x
            return other if type(other) is type(node) else this
    return None


@MINMAX.rule("minmax_order", Min, Max, law="min(b, a) -> min(a, b) in key order (integers)")
def minmax_order(node, ctx):
    if not is_index_dtype(node.dtype) or ctx.canon.key(node.b) >= ctx.canon.key(node.a):
        return None
    return type(node)(node.b, node.a)


# -- comparisons -------------------------------------------------------------------------------------


def _decide(ctx, cls, d: Sum) -> bool | None:
    """The truth of `d cls 0` if provable either way."""
    one = Sum.constant(1, d.dtype)
    le0 = lambda s: ctx.prove_nonpos(s)  # noqa: E731
    if cls is LT:
        return True if le0(d.add(one)) else False if le0(d.scale(-1)) else None
    if cls is LE:
        return True if le0(d) else False if le0(d.scale(-1).add(one)) else None
    if cls is GT:
        return True if le0(d.scale(-1).add(one)) else False if le0(d) else None
    if cls is GE:
        return True if le0(d.scale(-1)) else False if le0(d.add(one)) else None
    if d.is_const():
        return (d.const == 0) == (cls is EQ)
    if le0(d.add(one)) or le0(d.scale(-1).add(one)):
        return cls is NE
    return None


@COMPARE_BY_BOUNDS.rule(
    "compare_by_proof", EQ, NE, LT, LE, GT, GE, law="a < b -> 1 if provable, 0 if a >= b is"
)
def compare_by_proof(node, ctx):
    if not _signed_index(node.a.dtype):
        return None
    truth = _decide(ctx, type(node), _difference(ctx, node.a, node.b))
    return None if truth is None else IntImm("bool", 1 if truth else 0)
