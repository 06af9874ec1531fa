"""IR mutators: named, type-preserving rewrites of one site of a PrimFunc (Tzer's IR mutation, extended).

`MUTATORS` maps a name to a function `(func, rng) -> Mutation | None` (None: no site fits). General
mutators act on any expression or statement (insert a subtree, delete to a compatible child, replace or
flip an operator, perturb a constant, swap an intrinsic, permute arguments); compiler-specific ones wrap
statements in loops, ifs, allocations, lets and asserts, change loops, wrap expressions in selects, mutate
buffer indices and perturb symbolic dimensions. A mutant is not guaranteed valid: the caller verifies it and
counts the invalid ones. Mutations that may leave an access out of bounds, or a parallel loop whose
iterations race, say so in `flags`, so that oracles do not expect a defined result from compiled code.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from shapeflow.fuzz.generate import BOOL, INT64, ExprGen, Scope
from shapeflow.fuzz.sites import Site, replace_site, sites_of
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.functor import substitute
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.intrinsics import INTRINSICS


@dataclass
class Mutation:
    func: PrimFunc
    name: str
    flags: set = field(default_factory=set)  # "oob" (an index may leave bounds), "race" (parallel race)


MUTATORS: dict[str, Callable] = {}


def mutator(fn):
    MUTATORS[fn.__name__] = fn
    return fn


_ARITH = (E.Add, E.Sub, E.Mul, E.Min, E.Max)
_DIVISION = (E.FloorDiv, E.FloorMod, E.Div, E.Mod)
_COMPARE = (E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE)
_LOGIC = (E.And, E.Or)
FAMILIES = [_ARITH, _DIVISION, _COMPARE, _LOGIC]


def _pick(rng, sites, pred) -> Site | None:
    found = [s for s in sites if pred(s)]
    return rng.choice(found) if found else None


def _scope_at(site: Site, gen: ExprGen) -> Scope:
    """Variables and in-bounds loads usable at `site` for building new subtrees."""
    loads = []
    for buf in site.buffers:
        if buf.shape and gen.rng.randint(0, 1):
            idx = tuple(gen.in_bounds_index(e, list(site.loops)) for e in buf.shape)
            loads.append(E.BufferLoad(buf, idx))
    return Scope([v for v in site.vars if v.dtype.is_scalar], loads)


def _is_expr(site: Site) -> bool:
    return isinstance(site.node, E.PrimExpr) and site.node.dtype.is_scalar and not site.node.dtype.is_handle


def _one(func, rng, pred, build, name, flags=()) -> Mutation | None:
    site = _pick(rng, sites_of(func), pred)
    if site is None:
        return None
    out = Mutation(func, name, set(flags))
    out.func = replace_site(func, site.index, lambda s: build(s, out))
    return out


def _index_fix(site: Site, new: E.PrimExpr, rng: random.Random, out: Mutation) -> E.PrimExpr:
    """Keep a new buffer index in bounds (mostly), or leave it raw and flag the test."""
    if site.role != "index" or site.extent is None:
        return new
    if rng.randint(0, 4):
        return E.FloorMod(new, site.extent) if new.dtype == site.extent.dtype else new
    out.flags.add("oob")
    return new


# -- general mutators ------------------------------------------------------------------------------


@mutator
def insert_subtree(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        node = site.node
        new = gen.expr(node.dtype, _scope_at(site, gen), 2)
        if not node.dtype.is_bool and rng.randint(0, 1):
            new = rng.choice(_ARITH)(node, new)
        elif node.dtype.is_bool and rng.randint(0, 1):
            new = rng.choice(_LOGIC)(node, new)
        return _index_fix(site, new, rng, out)

    return _one(func, rng, _is_expr, build, "insert_subtree")


def _expr_children(node):
    return [
        getattr(node, f)
        for f in ("a", "b", "value", "true_value", "false_value", "body")
        if isinstance(getattr(node, f, None), E.PrimExpr)
    ] + list(getattr(node, "args", ()))


@mutator
def delete_subtree(func, rng):
    def fits_expr(s):
        return _is_expr(s) and any(c.dtype == s.node.dtype for c in _expr_children(s.node))

    def fits_stmt(s):
        return isinstance(s.node, (S.SeqStmt, S.IfThenElse, S.For, S.LetStmt))

    sites = sites_of(func)
    site = _pick(rng, sites, lambda s: fits_expr(s) or fits_stmt(s))
    if site is None:
        return None
    out = Mutation(func, "delete_subtree")

    def build(s, out=out):
        node = s.node
        if isinstance(node, E.PrimExpr):
            return rng.choice([c for c in _expr_children(node) if c.dtype == node.dtype])
        if isinstance(node, S.SeqStmt):
            items = list(node.seq)
            del items[rng.randrange(len(items))]
            return S.seq(*items)
        if isinstance(node, S.IfThenElse) and node.else_case is not None and rng.randint(0, 1):
            return node.else_case
        if isinstance(node, S.IfThenElse):
            return node.then_case
        if isinstance(node, S.For):  # the body at the first iteration
            return substitute(node.body, {node.loop_var: node.min})
        if isinstance(node, S.LetStmt):
            return substitute(node.body, {node.var: node.value})
        return node.body

    out.func = replace_site(func, site.index, build)
    return out


@mutator
def flip_operator(func, rng):
    def fits(s):
        return any(type(s.node) in fam for fam in FAMILIES)

    def build(site, out):
        node = site.node
        family = next(f for f in FAMILIES if type(node) in f)
        cls = rng.choice([c for c in family if c is not type(node)])
        if cls in (E.Div, E.Mod, E.FloorDiv, E.FloorMod) and type(node) not in _DIVISION:
            return node  # never introduce a division by an arbitrary operand
        if node.a.dtype.is_float and cls is E.Mod:
            cls = E.FloorMod
        return cls(node.a, node.b)

    return _one(func, rng, fits, build, "flip_operator")


@mutator
def perturb_constant(func, rng):
    def fits(s):
        return isinstance(s.node, (E.IntImm, E.FloatImm)) and not s.node.dtype.is_bool

    def build(site, out):
        node = site.node
        if isinstance(node, E.FloatImm):
            choices = [node.value + 1, node.value - 1, -node.value, 0.0, node.value * 1e30, float("nan")]
            return E.FloatImm(node.dtype, rng.choice(choices))
        dt = node.dtype
        value = rng.choice([node.value + 1, node.value - 1, -node.value, 0, dt.max_value(), dt.min_value()])
        value = min(max(value, dt.min_value()), dt.max_value())
        if site.role == "index" or site.role == "binding":
            out.flags.add("oob")
        return E.IntImm(dt, value)

    return _one(func, rng, fits, build, "perturb_constant")


@mutator
def swap_intrinsic(func, rng):
    def alternatives(node):
        intr = INTRINSICS.get(node.op)
        if intr is None:
            return []
        return [
            n
            for n, o in INTRINSICS.items()
            if n != node.op
            and o.arity == intr.arity
            and o.operand_kind == intr.operand_kind
            and o.returns_bool == intr.returns_bool
        ]

    def fits(s):
        return isinstance(s.node, E.Call) and alternatives(s.node)

    def build(site, out):
        node = site.node
        return E.Call(node.dtype, rng.choice(alternatives(node)), node.args)

    return _one(func, rng, fits, build, "swap_intrinsic")


@mutator
def permute_arguments(func, rng):
    def fits(s):
        n = s.node
        return isinstance(n, (E.BinaryOp, E.CmpOp, E.Select)) or (isinstance(n, E.Call) and len(n.args) > 1)

    def build(site, out):
        n = site.node
        if isinstance(n, E.Select):
            return E.Select(n.condition, n.false_value, n.true_value)
        if isinstance(n, E.Call):
            args = list(n.args)
            rng.shuffle(args)
            return E.Call(n.dtype, n.op, tuple(args))
        if type(n) in _DIVISION:
            out.flags.add("oob")  # the old numerator may be zero or negative
        return type(n)(n.b, n.a)

    return _one(func, rng, fits, build, "permute_arguments")


# -- compiler-specific mutators -------------------------------------------------------------------


def _stmt_site(s: Site) -> bool:
    return isinstance(s.node, S.Stmt) and not isinstance(s.node, S.Block)


@mutator
def wrap_in_loop(func, rng):
    def build(site, out):
        var = E.Var(f"w{rng.randint(0, 999)}", INT64)
        dims = [v for v in site.vars if v.dtype == INT64]
        extent = rng.choice([E.IntImm(INT64, rng.randint(1, 4))] * 3 + dims[:1])
        kind = rng.choice([S.ForKind.SERIAL, S.ForKind.PARALLEL, S.ForKind.UNROLLED, S.ForKind.VECTORIZED])
        if kind == S.ForKind.PARALLEL:
            out.flags.add("race")
        return S.For(var, E.IntImm(INT64, 0), extent, kind, site.node)

    return _one(func, rng, _stmt_site, build, "wrap_in_loop")


@mutator
def wrap_in_if(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        cond = gen.expr(BOOL, _scope_at(site, gen), 2)
        other = site.node if rng.randint(0, 2) == 0 else None
        return S.IfThenElse(cond, site.node, other)

    return _one(func, rng, _stmt_site, build, "wrap_in_if")


@mutator
def wrap_in_allocate(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        dtype = DataType(rng.choice(["float32", "int32", "int64", "float64"]))
        size = rng.randint(1, 4)
        tmp = Buffer(gen.fresh("fz"), (E.IntImm(INT64, size),), dtype, scope=rng.choice(["local", "global"]))
        fill = S.BufferStore(tmp, gen.expr(dtype, _scope_at(site, gen), 2), (E.IntImm(INT64, size - 1),))
        return S.Allocate(tmp, S.seq(fill, site.node))

    return _one(func, rng, _stmt_site, build, "wrap_in_allocate")


@mutator
def wrap_in_let(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        dtype = DataType(rng.choice(["int64", "int32", "float32"]))
        var = E.Var(gen.fresh("lv"), dtype)
        return S.LetStmt(var, gen.expr(dtype, _scope_at(site, gen), 2), site.node)

    return _one(func, rng, _stmt_site, build, "wrap_in_let")


@mutator
def wrap_in_assert(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        if site.loops and rng.randint(0, 2):
            v, extent = rng.choice(site.loops)
            cond = E.LT(v, extent)
        else:
            cond = gen.expr(BOOL, _scope_at(site, gen), 2)
        return S.seq(S.AssertStmt(cond, "fuzz assert"), site.node)

    return _one(func, rng, _stmt_site, build, "wrap_in_assert")


@mutator
def change_loop_kind(func, rng):
    def build(site, out):
        node = site.node
        kinds = [k for k in (S.ForKind.SERIAL, S.ForKind.PARALLEL, S.ForKind.UNROLLED, S.ForKind.VECTORIZED)]
        kind = rng.choice([k for k in kinds if k != node.kind])
        if kind == S.ForKind.PARALLEL:
            out.flags.add("race")
        return S.For(node.loop_var, node.min, node.extent, kind, node.body, "", node.annotations)

    return _one(
        func, rng, lambda s: isinstance(s.node, S.For) and not s.node.thread_tag, build, "change_loop_kind"
    )


@mutator
def change_loop_extent(func, rng):
    def build(site, out):
        node = site.node
        ext = node.extent
        choice = rng.randint(0, 3)
        if choice == 0:
            new = E.Add(ext, E.IntImm(ext.dtype, 1))
            out.flags.add("oob")
        elif choice == 1:
            new = E.Max(E.Sub(ext, E.IntImm(ext.dtype, 1)), E.IntImm(ext.dtype, 0))
        elif choice == 2:
            new = E.IntImm(ext.dtype, rng.choice([0, 1]))
        else:
            new = E.Min(ext, E.IntImm(ext.dtype, rng.randint(1, 5)))
        return S.For(node.loop_var, node.min, new, node.kind, node.body, node.thread_tag, node.annotations)

    return _one(func, rng, lambda s: isinstance(s.node, S.For), build, "change_loop_extent")


@mutator
def wrap_in_select(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        scope = _scope_at(site, gen)
        other = _index_fix(site, gen.expr(site.node.dtype, scope, 1), rng, out)
        cond = gen.expr(BOOL, scope, 2)
        return E.Select(cond, site.node, other) if rng.randint(0, 1) else E.Select(cond, other, site.node)

    return _one(func, rng, _is_expr, build, "wrap_in_select")


@mutator
def mutate_index(func, rng):
    gen = ExprGen(rng)

    def build(site, out):
        new = gen.index([v for v, _ in site.loops], 2)
        return _index_fix(site, new, rng, out)

    return _one(func, rng, lambda s: s.role == "index" and s.extent is not None, build, "mutate_index")


@mutator
def perturb_dimension(func, rng):
    """Change how one buffer parameter's shape uses a symbolic dimension (n -> n + 1, n * 2, ...)."""
    candidates = [
        (k, d)
        for k, p in enumerate(func.params)
        if isinstance(p, Buffer)
        for d, e in enumerate(p.shape)
        if isinstance(e, E.Var)
    ]
    if not candidates:
        return None
    k, d = rng.choice(candidates)
    buf = func.params[k]
    dim = buf.shape[d]
    new_dim = rng.choice([E.Add(dim, E.IntImm(INT64, 1)), E.Mul(dim, E.IntImm(INT64, 2)), E.IntImm(INT64, 4)])
    shape = tuple(new_dim if j == d else e for j, e in enumerate(buf.shape))
    new_buf = Buffer(buf.name, shape, buf.dtype, buf.strides, buf.elem_offset, buf.scope, buf.data, buf.align)
    out = _rebuffer(func, buf, new_buf)  # `dim` may no longer be defined by a parameter: verify decides
    return Mutation(out, "perturb_dimension", {"oob"})


def _rebuffer(func: PrimFunc, old: Buffer, new: Buffer) -> PrimFunc:
    from shapeflow.ir.functor import Mutator  # noqa: PLC0415

    class _Swap(Mutator):
        def visit_Buffer(self, b):
            return new if b is old else b

    swapped = _Swap().visit(func.body)
    params = tuple(new if p is old else p for p in func.params)
    return PrimFunc(params, swapped, func.attrs)


@mutator
def narrow_bounds(func, rng):
    """Change a symbolic dimension's declared bounds (what simplification and partitioning may assume)."""
    bounds = dict(func.attrs.get("var_bounds") or {})
    if not bounds:
        return None
    name = rng.choice(sorted(bounds))
    lo = rng.randint(1, 4)
    bounds[name] = (lo, lo + rng.choice([0, 1, 3, 15]))
    return Mutation(func.with_attr("var_bounds", bounds), "narrow_bounds")


def mutate(func: PrimFunc, rng: random.Random, names=None, tries: int = 8) -> Mutation | None:
    """Apply one mutator drawn from `names` (all by default); None when no drawn mutator found a site."""
    names = list(names or MUTATORS)
    for _ in range(tries):
        name = rng.choice(names)
        found = MUTATORS[name](func, rng)
        if found is not None and found.func is not func:
            return found
    return None


__all__ = ["MUTATORS", "Mutation", "mutate", "mutator", "FAMILIES"]
