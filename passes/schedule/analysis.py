"""Analyses the primitives share: symbolic intervals of index expressions, the regions a loop nest touches,
where a block sits in its scope, and the dependence check that loop reordering and parallel loops need.

Regions are computed from the loads and stores in block bodies (with block variables replaced by their
bindings), never from the declared read/write regions, which may be coarse. Interval arithmetic over
symbolic bounds is sound but may over-approximate; where it cannot bound an index it answers None and the
callers fall back to the whole buffer or refuse.
"""

from __future__ import annotations

from shapeflow.ir.arith import Analyzer
from shapeflow.ir.arith.bound import POS_INF
from shapeflow.ir.expr import (
    LT,
    Add,
    And,
    BufferLoad,
    Call,
    Cast,
    FloorDiv,
    FloorMod,
    IntImm,
    Let,
    Max,
    Min,
    Mul,
    PrimExpr,
    Sub,
    Var,
    max_expr,
    min_expr,
)
from shapeflow.ir.functor import collect, post_order_visit, substitute
from shapeflow.ir.node import replace
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import (
    Allocate,
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    DeclBuffer,
    For,
    ForKind,
    IterVar,
    LetStmt,
    Range,
    SeqStmt,
    Stmt,
    seq,
)
from shapeflow.passes.schedule.state import fail, walk

Interval = tuple[PrimExpr, PrimExpr]  # inclusive (lo, hi)


def _const(e) -> int | None:
    return e.value if isinstance(e, IntImm) else None


def interval(expr: PrimExpr, relax: dict[int, tuple[PrimExpr, PrimExpr]]) -> Interval | None:
    """Inclusive symbolic bounds of `expr` when each Var whose id is in `relax` ranges over its (lo, hi);
    other Vars are fixed. None when the expression is not one interval arithmetic can bound."""
    if not any(id(v) in relax for v in collect(expr, Var)):
        return expr, expr
    if isinstance(expr, Var):
        if relax[id(expr)] is None:  # a local whose value is not an expression of the indices
            return None
        lo, hi = relax[id(expr)]
        lo_i, hi_i = interval(lo, relax), interval(hi, relax)  # bounds may use outer relaxed loops
        if lo_i is None or hi_i is None:
            return None
        return lo_i[0], hi_i[1]
    if isinstance(expr, Cast) and expr.dtype.is_integer:
        inner = interval(expr.value, relax)
        return None if inner is None else (inner[0].astype(expr.dtype), inner[1].astype(expr.dtype))
    if isinstance(expr, (Add, Sub, Min, Max)):
        a, b = interval(expr.a, relax), interval(expr.b, relax)
        if a is None or b is None:
            return None
        if isinstance(expr, Add):
            return a[0] + b[0], a[1] + b[1]
        if isinstance(expr, Sub):
            return a[0] - b[1], a[1] - b[0]
        if isinstance(expr, Min):
            return min_expr(a[0], b[0]), min_expr(a[1], b[1])
        return max_expr(a[0], b[0]), max_expr(a[1], b[1])
    if isinstance(expr, Mul):
        for x, c in ((expr.a, _const(expr.b)), (expr.b, _const(expr.a))):
            if c is not None:
                inner = interval(x, relax)
                if inner is None:
                    return None
                return (inner[0] * c, inner[1] * c) if c >= 0 else (inner[1] * c, inner[0] * c)
        return None
    if isinstance(expr, (FloorDiv, FloorMod)):
        c = _const(expr.b)
        if c is None or c <= 0:
            return None
        inner = interval(expr.a, relax)
        if inner is None:
            return None
        if isinstance(expr, FloorDiv):
            return inner[0] // c, inner[1] // c
        zero = IntImm(expr.dtype, 0)
        return zero, IntImm(expr.dtype, c - 1)
    return None


def trip_count(ana: Analyzer, extent: PrimExpr) -> PrimExpr:
    """How many times a loop of `extent` runs: the extent when provably non-negative, else max(extent, 0).
    A loop with a non-positive extent runs zero times, but arithmetic on the raw extent does not: the
    ceil-division of a split or the product of a fuse turns a negative extent into a positive count."""
    if ana.can_prove(extent >= 0):
        return extent
    return ana.simplify(max_expr(extent, IntImm(extent.dtype, 0)))


def const_upper(ana: Analyzer, value: PrimExpr) -> int | None:
    """A constant upper bound of `value` (its value when constant); None when unbounded."""
    if isinstance(value, IntImm):
        return value.value
    hi = ana.const_int_bound(value).max_value
    return None if hi >= POS_INF else hi  # POS_INF also stands for "unbounded"


def product_overflows(ana: Analyzer, dtype, values, extra: int = 0) -> bool:
    """Whether the product of the non-negative `values` (plus `extra`) may exceed `dtype`'s maximum,
    judged on their constant upper bounds in exact integers (the simplifier folds constants with
    wrap-around, so it cannot be asked). False when a value is unbounded: nothing is known either way."""
    total = 1
    for value in values:
        hi = const_upper(ana, value)
        if hi is None:
            return False
        total *= max(hi, 0)
    return total + extra > dtype.max_value()


def nest_start(parents: tuple) -> int:
    """The index in `parents` (a statement's ancestors, outermost first) where its own loop nest starts:
    just after the innermost enclosing block."""
    return max((k for k, p in enumerate(parents) if isinstance(p, Block)), default=-1) + 1


def loop_relax(loops) -> dict[int, tuple[PrimExpr, PrimExpr]]:
    """The relax table of `loops` (For nodes): each variable over [min, min + extent - 1]."""
    return {id(f.loop_var): (f.min, f.min + f.extent - 1) for f in loops}


def local_relax(stmt) -> dict[int, tuple[PrimExpr, PrimExpr] | None]:
    """The relax table of every variable bound inside `stmt` (a statement or a tuple of them): a loop
    variable over its range, a Let/LetStmt variable over its value, a nested block's variable over its
    binding, and None (unbounded) for a Let variable whose value loads memory or calls an intrinsic (it
    is not an expression of the indices). With it a region spans what the body touches without naming a
    variable that is undefined where the region is used (at a block's signature, around a loop nest)."""
    relax: dict[int, tuple[PrimExpr, PrimExpr] | None] = {}
    for n in collect(stmt, (For, LetStmt, Let, BlockRealize)):
        if isinstance(n, For):
            relax[id(n.loop_var)] = (n.min, n.min + n.extent - 1)
        elif isinstance(n, (LetStmt, Let)):
            opaque = collect(n.value, (BufferLoad, Call))
            relax[id(n.var)] = None if opaque else (n.value, n.value)
        else:
            for iv, value in zip(n.block.iter_vars, n.iter_values):
                value = value.astype(iv.var.dtype)
                relax[id(iv.var)] = (value, value)
    return relax


def bind_loops(ana: Analyzer, loops) -> Analyzer:
    for f in loops:
        ana.bind(f.loop_var, Range(f.min, f.extent))
    return ana


def block_bindings(realize: BlockRealize) -> dict:
    return {
        iv.var: value.astype(iv.var.dtype) for iv, value in zip(realize.block.iter_vars, realize.iter_values)
    }


def block_accesses(realize: BlockRealize) -> tuple[list, list]:
    """(reads, writes) of a realized block: lists of (buffer, indices) with block variables replaced by
    their bindings, so indices are in terms of the enclosing loops."""
    block = realize.block
    reads: list = []
    writes: list = []

    def visit(n):
        if isinstance(n, BufferLoad):
            reads.append((n.buffer, n.indices))
        elif isinstance(n, BufferStore):
            writes.append((n.buffer, n.indices))

    for part in (block.init, block.body):
        if part is not None:
            post_order_visit(part, visit)
    bindings = block_bindings(realize)
    reads = [(b, substitute(idx, bindings)) for b, idx in reads]
    writes = [(b, substitute(idx, bindings)) for b, idx in writes]
    return reads, writes


def union(ana: Analyzer, a: Interval | None, b: Interval | None) -> Interval | None:
    if a is None or b is None:
        return None
    lo = (
        a[0] if ana.can_prove(a[0] <= b[0]) else b[0] if ana.can_prove(b[0] <= a[0]) else min_expr(a[0], b[0])
    )
    hi = (
        a[1] if ana.can_prove(a[1] >= b[1]) else b[1] if ana.can_prove(b[1] >= a[1]) else max_expr(a[1], b[1])
    )
    return lo, hi


def access_region(ana: Analyzer, buffer: Buffer, index_lists: list, relax: dict) -> list[Interval]:
    """Per dimension, the inclusive interval `buffer` is accessed at by `index_lists` under `relax`;
    the whole dimension where an index cannot be bounded."""
    out: list[Interval] = []
    for d, extent in enumerate(buffer.shape):
        acc: Interval | None = None
        for k, indices in enumerate(index_lists):
            iv = interval(indices[d], relax)
            if iv is None:
                acc = None
                break
            acc = iv if k == 0 else union(ana, acc, iv)
        if acc is None:
            acc = (IntImm(extent.dtype, 0), extent - 1)
        out.append((ana.simplify(acc[0]), ana.simplify(acc[1])))
    return out


def scope_of(parents: tuple) -> tuple[Block, list[Stmt], int]:
    """For a statement with ancestors `parents`: the nearest enclosing block, the statements of that
    block's body, and the index of the one containing the statement."""
    for k in range(len(parents) - 1, -1, -1):
        if isinstance(parents[k], Block):
            block = parents[k]
            items = list(block.body.seq) if isinstance(block.body, SeqStmt) else [block.body]
            below = parents[k + 1 :]
            for pos, item in enumerate(items):
                if any(item is p for p in below):
                    return block, items, pos
            return block, items, -1
    raise fail("scope: statement is not inside a block")


def top_level_item(parents: tuple, stmt: Stmt) -> tuple[Block, list[Stmt], int]:
    """Like scope_of, but also matches `stmt` itself being a direct item of the scope's body."""
    block, items, pos = scope_of(parents)
    if pos < 0:
        pos = next((k for k, item in enumerate(items) if item is stmt), -1)
    return block, items, pos


def realizes_in(stmt: Stmt) -> list[BlockRealize]:
    return [s for s, _ in walk(stmt) if isinstance(s, BlockRealize)]


def buffers_written(stmt: Stmt) -> set[int]:
    return {id(s.buffer) for s in collect(stmt, BufferStore)}


def buffers_read(stmt: Stmt) -> set[int]:
    return {id(load.buffer) for load in collect(stmt, BufferLoad)}


def loops_in(stmt: Stmt) -> list[For]:
    return [s for s, _ in walk(stmt) if isinstance(s, For)]


def check_iterations_self_contained(ana: Analyzer, body: Stmt, rule: str) -> None:
    """Refuse (`rule`) unless every value read inside `body` that a block inside `body` writes was written
    earlier in the same execution of `body`, at the point read: then executions of `body` for different
    values of the enclosing loops do not communicate, and may run in any order or at once."""
    relax = local_relax(body)
    written_anywhere = buffers_written(body)
    written: dict[int, list] = {}  # buffer id -> [buffer, write index lists]
    for realize in realizes_in(body):
        reads, writes = block_accesses(realize)
        own = {id(b) for b, _ in writes}
        for buf, idx in reads:
            if id(buf) in own:
                same = all(structural_equal(tuple(idx), tuple(w)) for b, w in writes if b is buf)
                if not same:
                    raise fail(rule, f"block {realize.block.name} reads {buf.name} where it writes elsewhere")
                continue
            if id(buf) not in written:
                if id(buf) in written_anywhere:  # read here, written later: the value of another iteration
                    raise fail(rule, f"block {realize.block.name} reads {buf.name} before it is written")
                continue
            _, write_lists = written[id(buf)]
            have = access_region(ana, buf, write_lists, relax)
            need = access_region(ana, buf, [idx], relax)
            for (wlo, whi), (rlo, rhi) in zip(have, need):
                if not (ana.can_prove(wlo <= rlo) and ana.can_prove(rhi <= whi)):
                    raise fail(
                        rule,
                        f"block {realize.block.name} reads {buf.name} values that other iterations write",
                    )
        for buf, idx in writes:
            written.setdefault(id(buf), [buf, []])[1].append(idx)


def infer_regions(block: Block) -> Block:
    """`block` with its read/write regions recomputed from its body: per buffer and dimension, the span
    of the indices used (in block variables), or the whole dimension when they cannot be bounded."""
    reads: dict[int, list] = {}
    writes: dict[int, list] = {}
    alloc = {id(b) for b in block.alloc_buffers}
    # buffers allocated inside the body are out of scope at the block signature (and not accesses of it)
    for part in (block.init, block.body):
        for n in collect(part, (Allocate, DeclBuffer, Block)) if part is not None else ():
            alloc.update(id(b) for b in (n.alloc_buffers if isinstance(n, Block) else (n.buffer,)))

    def visit(n):
        if isinstance(n, BufferLoad) and id(n.buffer) not in alloc:
            reads.setdefault(id(n.buffer), [n.buffer]).append(n.indices)
        elif isinstance(n, BufferStore) and id(n.buffer) not in alloc:
            writes.setdefault(id(n.buffer), [n.buffer]).append(n.indices)

    for part in (block.init, block.body):
        if part is not None:
            post_order_visit(part, visit)
    if not block.iter_vars and not block.reads and not block.writes:
        return block  # an opaque root block stays opaque

    ana = Analyzer()
    relax = local_relax(tuple(part for part in (block.init, block.body) if part is not None))

    def regions(table):
        out = []
        for buf, *index_lists in table.values():
            if any(len(idx) != len(buf.shape) or any(i.dtype.lanes > 1 for i in idx) for idx in index_lists):
                out.append(BufferRegion.full(buf))
                continue
            dims = access_region(ana, buf, index_lists, relax)
            out.append(BufferRegion(buf, tuple(Range(lo, ana.simplify(hi - lo + 1)) for lo, hi in dims)))
        return tuple(out)

    return replace(block, reads=regions(reads), writes=regions(writes))


def and_predicate(realize: BlockRealize, cond: PrimExpr) -> BlockRealize:
    pred = realize.predicate
    if isinstance(pred, IntImm) and pred.value == 1:
        return replace(realize, predicate=cond)
    return replace(realize, predicate=pred & cond)


def edit_scope(sch, scope_name: str, insert: dict[int, list[Stmt]], allocs=(), drop=()) -> None:
    """Rebuild the body of scope block `scope_name`: statements `insert[k]` go before its k-th item (k may
    be the number of items: at the end); buffers `allocs` are added to, `drop` removed from, its
    allocations. Done on the scope as a whole so it composes with earlier edits inside it."""
    realize, _ = sch.find_block(scope_name)
    block = realize.block
    items = list(block.body.seq) if isinstance(block.body, SeqStmt) else [block.body]
    out: list[Stmt] = []
    for k in range(len(items) + 1):
        out.extend(insert.get(k, []))
        if k < len(items):
            out.append(items[k])
    buffers = tuple(b for b in block.alloc_buffers if not any(b is d for d in drop)) + tuple(allocs)
    new_block = replace(block, body=seq(out), alloc_buffers=buffers)
    sch.commit({id(realize): replace(realize, block=new_block)})


def copy_nest(sch, name: str, dst: Buffer, src: Buffer) -> Stmt:
    """A loop nest with one block `name` copying all of `src` into `dst` (same shape)."""
    loop_vars = [Var(f"ax{d}") for d in range(len(src.shape))]
    block_vars = [Var(f"v{d}") for d in range(len(src.shape))]
    iter_vars = tuple(IterVar(v, Range.from_extent(e)) for v, e in zip(block_vars, src.shape))
    store = BufferStore(dst, src.load(block_vars), tuple(block_vars))
    block = infer_regions(Block(name, iter_vars, (), (), store))
    stmt: Stmt = BlockRealize(tuple(loop_vars), True, block)
    for v, e in reversed(list(zip(loop_vars, src.shape))):
        stmt = For(v, 0, e, ForKind.SERIAL, stmt)
    return stmt


def _radix_extent(ana: Analyzer, e: PrimExpr, loops: dict, used: set) -> PrimExpr | None:
    """The extent n when `e` maps the loops it uses one-to-one onto [0, n): a loop variable with min 0, or
    a mixed-radix `x * F + y` with `y` covering exactly [0, F) (what split binds). None otherwise."""
    if isinstance(e, Var):
        f = loops.get(id(e))
        if f is None or id(f) in used or not ana.can_prove(f.min == 0):
            return None
        used.add(id(f))
        return f.extent
    if isinstance(e, Add) and isinstance(e.a, Mul):
        inner = _radix_extent(ana, e.b, loops, used)
        outer = _radix_extent(ana, e.a.a, loops, used)
        if inner is None or outer is None or not ana.can_prove(e.a.b == inner):
            return None
        return outer * inner
    return None


def _conjuncts(e: PrimExpr) -> list[PrimExpr]:
    return _conjuncts(e.a) + _conjuncts(e.b) if isinstance(e, And) else [e]


def runs_whole_domain(
    ana: Analyzer, realize: BlockRealize, parents: tuple, ivars: list[Var], others_free: bool = False
) -> bool:
    """Whether the instances of `realize` in its scope provably take every value of the domains of the
    block variables `ivars` (a block's domain only bounds its instances; a constant binding or a predicate
    runs fewer). Sufficient, not necessary: no condition between the scope block and the block, per
    variable a binding that maps its own loops one-to-one onto [0, N) with N the domain extent, or N
    larger and the predicate conjunct `binding < extent` (what an inexact split adds), and no other
    predicate conjunct (with `others_free`: none on the loops those bindings use, whatever the other
    variables run)."""
    start = nest_start(parents)
    inner = parents[start:]
    if any(not isinstance(p, (For, SeqStmt, BlockRealize)) for p in inner):
        return False
    loops = {id(p.loop_var): p for p in inner if isinstance(p, For)}
    values = {id(iv.var): (iv, v) for iv, v in zip(realize.block.iter_vars, realize.iter_values)}
    pred = realize.predicate
    bounds = [] if isinstance(pred, IntImm) and pred.value == 1 else _conjuncts(pred)
    used: set[int] = set()
    for var in ivars:
        iv, value = values[id(var)]
        extent = _radix_extent(ana, value, loops, used)
        if extent is None or not ana.can_prove(iv.dom.min == 0):
            return False
        if ana.can_prove(extent == iv.dom.extent):
            continue
        cut = [
            c
            for c in bounds
            if isinstance(c, LT) and structural_equal(c.a, value) and ana.can_prove(c.b == iv.dom.extent)
        ]
        if not cut or not ana.can_prove(extent >= iv.dom.extent):
            return False
        bounds = [c for c in bounds if c is not cut[0]]
    if others_free:
        mine = {id(f.loop_var) for f in loops.values() if id(f) in used}
        return not any(id(v) in mine for c in bounds for v in collect(c, Var))
    return not bounds


def overwrites_first(block: Block, dst: Buffer) -> bool:
    """Whether each instance of `block` stores to `dst` unconditionally before any read of it: an init
    that is a store (of a reduction), or a body that is one store whose value does not load `dst`."""
    if block.init is not None:
        return isinstance(block.init, BufferStore) and block.init.buffer is dst
    body = block.body
    return (
        isinstance(body, BufferStore)
        and body.buffer is dst
        and not any(x.buffer is dst for x in collect(body.value, BufferLoad))
        and not any(x.buffer is dst for i in body.indices for x in collect(i, BufferLoad))
    )
