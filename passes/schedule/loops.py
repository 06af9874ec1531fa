"""Loop primitives: look-ups (get_block, get_loops, get_child_blocks), restructuring (split, fuse, reorder)
and loop kinds (parallel, vectorize, unroll, bind).

split and fuse keep the order in which block instances run, so they only check structure. reorder and
the parallel kinds change the order (or run iterations at once), so they also check that iterations do not
communicate (`check_iterations_self_contained`) and that no reduction is carried by a parallel loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from shapeflow.ir.expr import BufferLoad, Call, IntImm, Let, PrimExpr, Var, convert
from shapeflow.ir.functor import Mutator, collect, substitute
from shapeflow.ir.node import replace
from shapeflow.ir.tir.stmt import (
    Allocate,
    Block,
    BlockRealize,
    DeclBuffer,
    For,
    ForKind,
    IfThenElse,
    IterType,
    LetStmt,
    SeqStmt,
    Stmt,
    seq,
)
from shapeflow.passes.schedule.analysis import (
    access_region,
    and_predicate,
    bind_loops,
    block_accesses,
    buffers_written,
    check_iterations_self_contained,
    const_upper,
    local_relax,
    product_overflows,
    realizes_in,
    trip_count,
)
from shapeflow.passes.schedule.state import BlockRV, LoopRV, Schedule, fail, primitive, stmt_children, walk

THREAD_TAGS = (
    "blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y", "threadIdx.z", "vthread",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Look-ups
# ---------------------------------------------------------------------------------------------


@primitive
def get_block(sch: Schedule, name: str) -> BlockRV:
    """The block called `name`."""
    sch.find_block(name)
    return BlockRV(name)


@primitive
def get_loops(sch: Schedule, block: BlockRV) -> list[LoopRV]:
    """The loops around `block` inside its scope block, outermost first."""
    _, parents = sch.find_block(block)
    loops: list[LoopRV] = []
    for p in parents:
        if isinstance(p, Block):
            loops = []
        elif isinstance(p, For):
            loops.append(LoopRV(p.loop_var))
    return loops


@primitive
def get_child_blocks(sch: Schedule, parent: BlockRV | LoopRV) -> list[BlockRV]:
    """The blocks directly inside `parent` (not inside another block below it), in program order."""
    stmt = sch.find_loop(parent)[0] if isinstance(parent, LoopRV) else sch.find_block(parent)[0].block
    found: list[BlockRV] = []

    def visit(s: Stmt, top: bool) -> None:
        if isinstance(s, BlockRealize) and not top:
            found.append(BlockRV(s.block.name))
            return
        for child in stmt_children(s.block if isinstance(s, BlockRealize) else s):
            visit(child, False)

    visit(stmt, True)
    return found


# ---------------------------------------------------------------------------------------------
# split / fuse / reorder
# ---------------------------------------------------------------------------------------------


def _fresh_copy(sch: Schedule, stmt: Stmt, suffix: str) -> Stmt:
    """A copy of `stmt` defining fresh variables and blocks with fresh names (every variable and block
    name is defined once per function). The variables bound by Let expressions are renamed too: the copy
    would otherwise bind the same Var a second time (or share the Let node, which does not round-trip)."""
    bound: list[Var] = list(dict.fromkeys(let.var for let in collect(stmt, Let)))
    for s, _ in walk(stmt):
        if isinstance(s, For):
            bound.append(s.loop_var)
        elif isinstance(s, LetStmt):
            bound.append(s.var)
        elif isinstance(s, BlockRealize):
            bound.extend(iv.var for iv in s.block.iter_vars)
            if s.block.alloc_buffers:
                raise fail("split: cannot partition a loop whose blocks allocate buffers")
        elif isinstance(s, (Allocate, DeclBuffer)):  # the copy would allocate the same Buffer again
            raise fail("split: cannot partition a loop whose body allocates buffers", s.buffer.name)
    mapping = {v: Var(v.name, v.dtype) for v in bound}
    taken = set(sch.block_names())

    class _Rename(Mutator):
        mutate_buffers = False

        def visit_Block(self, op: Block):
            op = self.generic_visit(op)
            name = f"{op.name}{suffix}"
            k = 1
            while name in taken:
                name, k = f"{op.name}{suffix}_{k}", k + 1
            taken.add(name)
            return replace(op, name=name)

    return _Rename().visit(substitute(stmt, mapping))


@primitive
def split(
    sch: Schedule, loop: LoopRV, factors: Sequence[int | PrimExpr | None], tail: str = "predicate"
) -> list[LoopRV]:
    """Split `loop` into len(factors) nested loops (outermost first); at most one factor may be None, and
    is then inferred (ceil-divided). When the factors do not divide the extent, the extra iterations are
    masked by a block predicate (`tail="predicate"`), or cut off into a separate tail loop
    (`tail="partition"`, which needs the outermost factor None)."""
    for_, parents = sch.find_loop(loop)
    if not isinstance(factors, (list, tuple)):
        raise fail("split: factors must be a list", f"got {type(factors).__name__}")
    if tail not in ("predicate", "partition"):
        raise fail("split: tail must be 'predicate' or 'partition'", f"got {tail!r}")
    factors = list(factors)
    if len(factors) < 2:
        raise fail("split: needs at least two factors")
    if sum(f is None for f in factors) > 1:
        raise fail("split: at most one factor may be None")
    ana = sch.analyzer()
    dtype = for_.loop_var.dtype
    known: PrimExpr = IntImm(dtype, 1)
    for k, f in enumerate(factors):
        if f is None:
            continue
        if isinstance(f, bool) or not isinstance(f, (int, PrimExpr)):
            raise fail("split: factors must be positive integers or expressions", f"got {f!r}")
        f = convert(f, dtype).astype(dtype)
        defined = _defined_at(sch, parents)
        if any(id(v) not in defined for v in collect(f, Var)):
            raise fail("split: factor uses a variable not defined at the loop", str(f))
        if not ana.can_prove(f >= 1):
            raise fail("split: factors must be positive", f"factor {f} may be < 1")
        factors[k] = f
        known = ana.simplify(known * f)
    if tail == "partition" and factors[0] is not None:
        raise fail("split: a partitioned tail needs the outermost factor None")
    _check_bounds_not_written(for_, (for_.min, for_.extent), for_.body, "split")
    # What follows computes with the loop's trip count: the raw extent, when negative, would make the
    # ceil-division (and the partitioned tail) run iterations the loop never ran. The bounds are copied
    # into several places (bindings, predicates, the tail), so they must not carry Let expressions.
    extent = _let_free(ana, trip_count(ana, for_.extent))
    lo = _let_free(ana, for_.min)
    given = [f for f in factors if f is not None]
    known_hi = const_upper(ana, known)  # the ceil-division adds known - 1 to the extent
    if product_overflows(ana, dtype, given) or (
        None in factors and known_hi is not None and product_overflows(ana, dtype, [extent], known_hi - 1)
    ):
        raise fail(
            "split: loop extent arithmetic overflows",
            f"splitting {for_.loop_var.name} (extent {for_.extent}) by {factors} exceeds {dtype}",
        )
    if None in factors:
        pos = factors.index(None)
        factors[pos] = ana.simplify((extent + known - 1) // known)
    new_vars = [Var(f"{for_.loop_var.name}_{k}", dtype) for k in range(len(factors))]
    fused: PrimExpr = new_vars[0]
    for v, f in zip(new_vars[1:], factors[1:]):
        fused = fused * f + v
    original = lo + fused if not (isinstance(lo, IntImm) and lo.value == 0) else fused
    body = substitute(for_.body, {for_.loop_var: original})
    total = known if len(factors) == 1 else ana.simplify(_product(factors))
    exact = ana.can_prove(total == extent)
    tail_stmt = None
    if not exact and tail == "predicate":
        body = _guard_padded(body, fused < extent)
    elif not exact:
        inner = ana.simplify(_product(factors[1:]))
        factors[0] = ana.simplify(extent // inner)
        t = Var(f"{for_.loop_var.name}_tail", dtype)
        start = lo + factors[0] * inner
        tail_body = _fresh_copy(sch, substitute(for_.body, {for_.loop_var: start + t}), "_tail")
        tail_stmt = For(t, 0, ana.simplify(extent - factors[0] * inner), ForKind.SERIAL, tail_body)
    for v, f in reversed(list(zip(new_vars, factors))):
        body = For(v, 0, f, ForKind.SERIAL, body)
    sch.commit({id(for_): seq(body, tail_stmt)})
    return [LoopRV(v) for v in new_vars]


def _check_bounds_not_written(for_: For, bounds: tuple, body: Stmt, prim: str) -> None:
    """Refuse when `bounds` (the min or extent of `for_`) load memory that `body` writes. The loop
    evaluates them once, on entry; split and fuse evaluate them again inside the new loops (in bindings,
    predicates, the tail's start), after the body has run, and would see the changed values."""
    written = buffers_written(body)
    for load in collect(bounds, BufferLoad):
        if id(load.buffer) in written:
            raise fail(
                f"{prim}: loop bounds read memory the loop writes",
                f"the bounds of {for_.loop_var.name} load {load.buffer.name}, which the loop body writes",
            )


def _defined_at(sch: Schedule, parents: tuple) -> set[int]:
    """Ids of the integer variables usable in an expression at a loop: parameters, their dimensions,
    and the variables of enclosing loops."""
    out = {id(p.loop_var) for p in parents if isinstance(p, For)}
    for p in sch.func.params:
        out.update(id(v) for v in ([p] if isinstance(p, Var) else collect(p.shape, Var)))
    return out


def _product(values) -> PrimExpr:
    out = values[0]
    for v in values[1:]:
        out = out * v
    return out


def _let_free(ana, value: PrimExpr) -> PrimExpr:
    """`value` without Let expressions (the simplifier inlines them), so that copies of it do not bind one
    variable twice, which neither verifies nor round-trips. Unchanged when it has none."""
    return ana.simplify(value) if collect(value, Let) else value


def _safe_on_padding(expr: PrimExpr) -> bool:
    """Whether evaluating `expr` on a padded iteration is harmless: it loads no memory (the padded index
    may be out of bounds) and calls no intrinsic. Integer division by zero is defined (as 0)."""
    return not collect(expr, (BufferLoad, Call))


def _guard_realize(op: BlockRealize, cond: PrimExpr) -> Stmt:
    # The predicate is tested before the bindings are evaluated; an existing predicate is and-ed in
    # front of `cond`, so it must itself be safe on padded iterations.
    if _safe_on_padding(op.predicate):
        return and_predicate(op, cond)
    return IfThenElse(cond, op)


def _guard_for(op: For, cond: PrimExpr) -> Stmt:
    if _safe_on_padding(op.min) and _safe_on_padding(op.extent):
        return replace(op, body=_guard_padded(op.body, cond))
    return IfThenElse(cond, op)


def _guard_let(op: LetStmt, cond: PrimExpr) -> Stmt:
    if _safe_on_padding(op.value):
        return replace(op, body=_guard_padded(op.body, cond))
    return IfThenElse(cond, op)


# How each statement kind is kept from acting on the padded iterations of a predicated split. Loops,
# sequences and lets whose expressions are harmless are kept (the nest stays perfect for reorder) and
# their blocks get the predicate, as in TVM; anything else (an assert, a condition, a store, an
# allocation) is wrapped in `if cond`.
_GUARDS = {
    BlockRealize: _guard_realize,
    For: _guard_for,
    LetStmt: _guard_let,
    SeqStmt: lambda op, cond: seq([_guard_padded(s, cond) for s in op.seq]),
}


def _guard_padded(stmt: Stmt, cond: PrimExpr) -> Stmt:
    """`stmt` (a loop body) doing nothing where `cond` (the split's `fused < extent`) is false: the padded
    iterations an inexact predicated split adds must not run any statement of the body, not only its
    blocks (an assert or an `if` loading memory at the padded index would fail)."""
    guard = _GUARDS.get(type(stmt))
    return guard(stmt, cond) if guard is not None else IfThenElse(cond, stmt)


def _chain(sch: Schedule, loops: Sequence[LoopRV], rule: str) -> list[For]:
    fors = [sch.find_loop(rv)[0] for rv in loops]
    if len({id(f) for f in fors}) != len(fors):
        raise fail(rule, "a loop is given twice")
    return fors


@primitive
def fuse(sch: Schedule, *loops: LoopRV) -> LoopRV:
    """Fuse directly nested loops (outermost first) into one loop over the product of their extents."""
    if len(loops) < 2:
        raise fail("fuse: needs at least two loops")
    fors = _chain(sch, loops, "fuse: loops are not directly nested")
    for outer, inner in zip(fors, fors[1:]):
        if outer.body is not inner:
            raise fail("fuse: loops are not directly nested", f"{inner.loop_var.name} is not the body of "
                       f"{outer.loop_var.name}")  # fmt: skip
    outer_vars = {id(f.loop_var) for f in fors}
    for f in fors:
        if any(id(v) in outer_vars for v in collect((f.min, f.extent), Var)):
            raise fail("fuse: loop extent depends on a fused loop", f.loop_var.name)
        if f.kind != ForKind.SERIAL:
            raise fail("fuse: loops must be serial", f"{f.loop_var.name} is {f.kind}")
    for k, f in enumerate(fors):  # the outermost extent only sizes the fused loop, evaluated once
        _check_bounds_not_written(f, (f.min, f.extent) if k else (f.min,), fors[-1].body, "fuse")
    ana = sch.analyzer()
    dtype = fors[0].loop_var.dtype
    # The fused loop runs the product of the trip counts: of raw extents, two negative ones (each loop
    # running zero times) would multiply to a positive count.
    extents = [trip_count(ana, f.extent) for f in fors]
    if product_overflows(ana, dtype, extents):
        raise fail(
            "fuse: fused extent overflows",
            f"the product of the extents of {', '.join(f.loop_var.name for f in fors)} exceeds {dtype}",
        )
    fused = Var("_".join(f.loop_var.name for f in fors) + "_fused", dtype)
    mapping = {}
    stride: PrimExpr = IntImm(dtype, 1)
    for k in range(len(fors) - 1, -1, -1):
        f = fors[k]
        value = fused if k == len(fors) - 1 else fused // stride
        if k > 0:
            value = value % extents[k]
        mapping[f.loop_var] = ana.simplify(f.min + value)
        stride = ana.simplify(stride * extents[k])
    body = substitute(fors[-1].body, mapping)
    sch.commit({id(fors[0]): For(fused, 0, stride, ForKind.SERIAL, body)})
    return LoopRV(fused)


@primitive
def reorder(sch: Schedule, *loops: LoopRV) -> None:
    """Reorder loops of one perfect nest: the given loops take each other's places in the given order."""
    if len(loops) < 2:
        return
    fors = _chain(sch, loops, "reorder: loops are not in one chain")
    depth = {}
    for f in fors:
        _, parents = sch.find_loop(LoopRV(f.loop_var))
        depth[id(f)] = len(parents)
    by_depth = sorted(fors, key=lambda f: depth[id(f)])
    top, bottom = by_depth[0], by_depth[-1]
    chain: list[For] = [top]
    while chain[-1] is not bottom:
        body = chain[-1].body
        if not isinstance(body, For):
            ids = {id(f) for f in fors}
            inside = any(id(s) in ids for s, _ in walk(body))
            raise fail(
                "reorder: loops between are not a perfect nest"
                if inside
                else "reorder: loops are not in one chain"
            )
        chain.append(body)
    chain_vars = {id(f.loop_var) for f in chain}
    for f in chain:
        if any(id(v) in chain_vars for v in collect((f.min, f.extent), Var)):
            raise fail("reorder: loop extent depends on another loop of the nest", f.loop_var.name)
    _, parents = sch.find_loop(LoopRV(top.loop_var))
    ana = bind_loops(sch.analyzer(), [p for p in parents if isinstance(p, For)] + chain)
    check_iterations_self_contained(ana, bottom.body, "reorder: iterations depend on each other")
    order = iter(fors)
    given = {id(f) for f in fors}
    new_chain = [next(order) if id(f) in given else f for f in chain]
    body = bottom.body
    for f in reversed(new_chain):
        body = replace(f, body=body)
    sch.commit({id(top): body})


# ---------------------------------------------------------------------------------------------
# Loop kinds
# ---------------------------------------------------------------------------------------------


def _check_parallel(sch: Schedule, for_: For, prim: str) -> None:
    """The iterations of `for_` must not share a reduction, write one location, or communicate."""
    var = for_.loop_var
    _, parents = sch.find_loop(LoopRV(var))
    ana = bind_loops(sch.analyzer(), [p for p in parents if isinstance(p, For)] + [for_])
    relax = local_relax(for_.body)
    for realize in realizes_in(for_.body):
        for iv, value in zip(realize.block.iter_vars, realize.iter_values):
            if iv.iter_type == IterType.REDUCE and any(v is var for v in collect(value, Var)):
                raise fail(f"{prim}: loop carries a reduction", f"block {realize.block.name}")
        for buf, idx in block_accesses(realize)[1]:
            region = access_region(ana, buf, [idx], relax)
            step = {var: var + 1}
            if not any(ana.can_prove(hi < substitute(lo, step)) for lo, hi in region):
                raise fail(
                    f"{prim}: iterations write the same location",
                    f"block {realize.block.name} writes {buf.name} at places other iterations write",
                )
    check_iterations_self_contained(ana, for_.body, f"{prim}: iterations depend on each other")


def _set_kind(sch: Schedule, loop: LoopRV, kind: ForKind, prim: str, thread_tag: str = "") -> None:
    for_, _ = sch.find_loop(loop)
    if for_.kind != ForKind.SERIAL:
        raise fail(f"{prim}: loop is not serial", f"{for_.loop_var.name} is already {for_.kind}")
    if kind != ForKind.UNROLLED:
        _check_parallel(sch, for_, prim)
    sch.commit({id(for_): replace(for_, kind=kind, thread_tag=thread_tag)})


@primitive
def parallel(sch: Schedule, loop: LoopRV) -> None:
    """Run the iterations of `loop` on several threads."""
    _set_kind(sch, loop, ForKind.PARALLEL, "parallel")


@primitive
def vectorize(sch: Schedule, loop: LoopRV) -> None:
    """Run the iterations of `loop` as vector lanes; the extent must be a constant."""
    for_, _ = sch.find_loop(loop)
    if not isinstance(for_.extent, IntImm):
        raise fail("vectorize: extent not constant", f"{for_.loop_var.name} has extent {for_.extent}")
    _set_kind(sch, loop, ForKind.VECTORIZED, "vectorize")


@primitive
def unroll(sch: Schedule, loop: LoopRV) -> None:
    """Unroll `loop` (lowering unrolls constant extents; others stay loops)."""
    _set_kind(sch, loop, ForKind.UNROLLED, "unroll")


@primitive
def bind(sch: Schedule, loop: LoopRV, thread: str) -> None:
    """Bind `loop` to a GPU thread axis (`blockIdx.x`, `threadIdx.x`, ...)."""
    if thread not in THREAD_TAGS:
        raise fail("bind: unknown thread axis", f"{thread!r} is not one of {THREAD_TAGS}")
    _set_kind(sch, loop, ForKind.THREAD_BINDING, "bind", thread)
