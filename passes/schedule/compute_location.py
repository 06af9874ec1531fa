"""Compute-location primitives: compute_at, reverse_compute_at, compute_inline, reverse_compute_inline.

They move work between loop nests of one scope. The producer/consumer blocks they move must be
"point blocks": each writes one buffer at exactly the point named by its spatial iteration variables
(what te.create_prim_func builds). Moved nests are rebuilt from the blocks' domains, over the region the
other side needs or produces per iteration of the target loop, clamped to the block's domain.
"""

from __future__ import annotations

from shapeflow.ir.expr import BufferLoad, Cast, PrimExpr, Var, max_expr, min_expr
from shapeflow.ir.functor import Mutator, collect, substitute
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import Block, BlockRealize, BufferStore, For, ForKind, IterType, Stmt, seq
from shapeflow.passes.schedule.analysis import (
    access_region,
    bind_loops,
    block_accesses,
    buffers_read,
    buffers_written,
    infer_regions,
    local_relax,
    nest_start,
    realizes_in,
    runs_whole_domain,
    top_level_item,
)
from shapeflow.passes.schedule.state import REMOVED, BlockRV, LoopRV, Schedule, fail, primitive, walk


def point_write(realize: BlockRealize, prim: str) -> tuple[Buffer, list[Var]]:
    """The buffer a point block writes and, per dimension, the spatial variable indexing it."""
    block = realize.block
    stores = [s for part in (block.init, block.body) if part is not None for s in _stores(part)]
    spatial = [iv.var for iv in block.iter_vars if iv.iter_type == IterType.SPATIAL]
    rule = f"{prim}: block does not write exactly its spatial point"
    if not stores or len({id(s.buffer) for s in stores}) != 1:
        raise fail(rule, f"block {block.name} writes {len({id(s.buffer) for s in stores})} buffers")
    first = stores[0].indices
    ok = all(isinstance(i, Var) for i in first) and len({id(i) for i in first}) == len(first)
    ok = ok and {id(i) for i in first} == {id(v) for v in spatial}
    ok = ok and all(all(a is b for a, b in zip(s.indices, first)) for s in stores)
    if not ok:
        raise fail(rule, f"block {block.name}")
    return stores[0].buffer, list(first)


def _stores(stmt: Stmt) -> list[BufferStore]:
    return collect(stmt, BufferStore)


def _alone(realize: BlockRealize, item: Stmt, prim: str) -> None:
    if len(realizes_in(item)) != 1:
        raise fail(f"{prim}: block is not alone in its loop nest", realize.block.name)


def _runs_whole(sch: Schedule, realize: BlockRealize, parents: tuple, prim: str) -> None:
    """Refuse a block whose instances are not its whole domain (a constant binding, a condition): the
    primitive rebuilds the block's loops from its domain, which would run instances it never ran."""
    if not runs_whole_domain(sch.analyzer(), realize, parents, [iv.var for iv in realize.block.iter_vars]):
        raise fail(f"{prim}: block instances do not cover its domain", realize.block.name)


def _scope_writers(items: list[Stmt], buffer: Buffer) -> list[BlockRealize]:
    return [r for item in items for r in realizes_in(item) if id(buffer) in buffers_written(r.block)]


def _loop_in_scope(sch: Schedule, loop: LoopRV, scope: Block, prim: str) -> tuple[For, tuple, int]:
    for_, parents = sch.find_loop(loop)
    loop_scope, _, pos = top_level_item(parents, for_)
    if loop_scope is not scope:
        raise fail(f"{prim}: loop is not in the block's scope")
    return for_, parents, pos


def _clamped(ana, lo: PrimExpr, hi: PrimExpr, dom_lo: PrimExpr, dom_hi: PrimExpr):
    if not ana.can_prove(lo >= dom_lo):
        lo = max_expr(lo, dom_lo)
    if not ana.can_prove(hi <= dom_hi):
        hi = min_expr(hi, dom_hi)
    return ana.simplify(lo), ana.simplify(hi)


def _detached(realize: BlockRealize, parents: tuple, prim: str, part=None):
    """`part` of the block of `realize` (default: the whole block) with every loop variable of the block's
    own nest that it names directly (legal where the block is, since those loops enclose it) replaced by
    the block variable bound to exactly that loop. The primitives move a block's work out of its nest,
    where those loops do not exist; a loop variable no block variable equals cannot be expressed there,
    so they refuse."""
    start = nest_start(parents)
    nest = {id(p.loop_var) for p in parents[start:] if isinstance(p, For)}
    block = realize.block
    part = block if part is None else part
    used = {id(v): v for v in collect(part, Var) if id(v) in nest}
    if not used:
        return part
    mapping: dict[Var, PrimExpr] = {}
    mapped: set[int] = set()
    for iv, value in zip(block.iter_vars, realize.iter_values):
        loop_var = value.value if isinstance(value, Cast) else value
        if isinstance(loop_var, Var) and id(loop_var) in used and id(loop_var) not in mapped:
            mapping[loop_var] = iv.var.astype(loop_var.dtype)
            mapped.add(id(loop_var))
    in_domains = part is block and any(id(v) in used for iv in block.iter_vars for v in collect(iv.dom, Var))
    unmapped = [v.name for key, v in used.items() if key not in mapped]
    if in_domains or unmapped:
        names = ", ".join(unmapped) or "in an iteration domain"
        raise fail(f"{prim}: block names a loop variable of its nest", f"block {block.name} uses {names}")
    return substitute(part, mapping)


def _rebuild_nest(block: Block, ranges: dict[int, tuple[PrimExpr, PrimExpr]], ana) -> Stmt:
    """A fresh loop nest running `block` with each spatial variable over ranges[id(var)] (inclusive; the
    whole domain when absent) and each reduction variable over its domain, in iteration-variable order."""
    loops: list[tuple[Var, PrimExpr, PrimExpr]] = []
    values: list[PrimExpr] = []
    for k, iv in enumerate(block.iter_vars):
        lo, hi = ranges.get(id(iv.var), (iv.dom.min, iv.dom.min + iv.dom.extent - 1))
        var = Var(f"ax{k}", iv.var.dtype)
        loops.append((var, lo, ana.simplify(hi - lo + 1)))
        values.append(var)
    stmt: Stmt = BlockRealize(tuple(values), True, block)
    for var, lo, extent in reversed(loops):
        stmt = For(var, lo, extent, ForKind.SERIAL, stmt)
    return stmt


@primitive
def compute_at(sch: Schedule, block: BlockRV, loop: LoopRV) -> None:
    """Move producer `block` under `loop` of its consumers, computing per iteration only the region the
    consumers under the loop read."""
    prim = "compute_at"
    realize, parents = sch.find_block(block)
    scope, items, pos_p = top_level_item(parents, realize)
    _alone(realize, items[pos_p], prim)
    _runs_whole(sch, realize, parents, prim)
    out, index_vars = point_write(realize, prim)
    for_, loop_parents, pos_l = _loop_in_scope(sch, loop, scope, prim)
    if any(p is realize for p in loop_parents):
        raise fail(f"{prim}: loop is inside the block")
    if pos_l <= pos_p:
        raise fail(f"{prim}: loop is not after the block")
    inside = {id(r) for r in realizes_in(for_)}
    for item in items[pos_p + 1 :]:
        for r in realizes_in(item):
            if id(out) in buffers_read(r.block) and id(r) not in inside:
                raise fail(
                    f"{prim}: a consumer is not under the loop", f"block {r.block.name} reads {out.name}"
                )
    if len(_scope_writers(items, out)) != 1:
        raise fail(f"{prim}: buffer has another writer", out.name)
    inputs = buffers_read(realize.block)
    for item in items[pos_p + 1 : pos_l + 1]:
        if inputs & buffers_written(item):
            raise fail(f"{prim}: a later block writes the producer's inputs")

    ana = bind_loops(sch.analyzer(), [p for p in loop_parents if isinstance(p, For)] + [for_])
    relax = local_relax(for_.body)
    needed = [idx for r in realizes_in(for_.body) for buf, idx in block_accesses(r)[0] if buf is out]
    if not needed:
        raise fail(f"{prim}: no consumer under the loop", f"nothing under the loop reads {out.name}")
    region = access_region(ana, out, needed, relax)
    doms = {id(iv.var): iv.dom for iv in realize.block.iter_vars}
    ranges = {}
    for var, (lo, hi) in zip(index_vars, region):
        dom = doms[id(var)]
        ranges[id(var)] = _clamped(ana, lo, hi, dom.min, dom.min + dom.extent - 1)
    nest = _rebuild_nest(_detached(realize, parents, prim), ranges, ana)
    sch.commit({id(items[pos_p]): REMOVED, id(for_): replace(for_, body=seq(nest, for_.body))})


def _after_loop(item: Stmt, loop: For) -> list[Stmt]:
    """Statements of `item` that run after `loop` has finished (inside the same top-level item): what the
    block, moved to the end of the loop's body, would now run before. Pre-order puts them after the
    loop's subtree."""
    order = [s for s, _ in walk(item)]
    start = next(i for i, s in enumerate(order) if s is loop)
    end = start + sum(1 for _ in walk(loop))
    return [s for s in order[end:] if isinstance(s, BlockRealize)]


@primitive
def reverse_compute_at(sch: Schedule, block: BlockRV, loop: LoopRV) -> None:
    """Move consumer `block` under `loop` of its producers, computing per iteration the points whose
    inputs that iteration produced."""
    prim = "reverse_compute_at"
    realize, parents = sch.find_block(block)
    scope, items, pos_c = top_level_item(parents, realize)
    _alone(realize, items[pos_c], prim)
    _runs_whole(sch, realize, parents, prim)
    out, _ = point_write(realize, prim)
    for_, loop_parents, pos_l = _loop_in_scope(sch, loop, scope, prim)
    if pos_l >= pos_c:
        raise fail(f"{prim}: loop is not before the block")
    produced = buffers_written(for_) & buffers_read(realize.block)
    if not produced:
        raise fail(f"{prim}: block reads nothing the loop produces")
    reads_c = buffers_read(realize.block)
    for item in [*_after_loop(items[pos_l], for_), *items[pos_l + 1 : pos_c]]:
        if reads_c & buffers_written(item) or {id(out)} & (buffers_read(item) | buffers_written(item)):
            raise fail(f"{prim}: a block between the loop and the block conflicts with it")
    if id(out) in buffers_read(for_) | buffers_written(for_):
        raise fail(f"{prim}: the loop uses the block's output", out.name)
    ana = bind_loops(sch.analyzer(), [p for p in loop_parents if isinstance(p, For)] + [for_])
    relax = local_relax(for_.body)
    regions: dict[int, list] = {}
    for buf_id in produced:
        writers = _scope_writers(items, next(b for b, _ in _loads_of(realize.block) if id(b) == buf_id))
        if len(writers) != 1 or id(writers[0]) not in {id(r) for r in realizes_in(for_)}:
            raise fail(f"{prim}: buffer has another writer")
        buf, _ = point_write(writers[0], prim)
        for iv, extent in zip(sorted_doms(writers[0].block, buf), buf.shape):
            if not ana.can_prove(iv == extent):
                raise fail(f"{prim}: producer does not cover its output", buf.name)
        idx = [i for r in realizes_in(for_.body) for b, i in block_accesses(r)[1] if b is buf]
        regions[buf_id] = access_region(ana, buf, idx, relax)
    ranges: dict[int, tuple] = {}
    for buf, indices in _loads_of(realize.block):
        if id(buf) not in regions:
            continue
        for d, index in enumerate(indices):
            if isinstance(index, Var):
                lo, hi = regions[id(buf)][d]
                if id(index) in ranges:
                    old = ranges[id(index)]
                    lo, hi = max_expr(lo, old[0]), min_expr(hi, old[1])
                ranges[id(index)] = (lo, hi)
    for iv in realize.block.iter_vars:
        if id(iv.var) in ranges:
            if iv.iter_type != IterType.SPATIAL:  # a reduction runs whole; the cover check below decides
                del ranges[id(iv.var)]
                continue
            lo, hi = ranges[id(iv.var)]
            ranges[id(iv.var)] = _clamped(ana, lo, hi, iv.dom.min, iv.dom.min + iv.dom.extent - 1)
    nest = _rebuild_nest(_detached(realize, parents, prim), ranges, ana)
    # Every read of a produced buffer must fall in what this iteration produced.
    nest_realize = realizes_in(nest)[0]
    nest_relax = local_relax(nest)
    for buf, idx in block_accesses(nest_realize)[0]:
        if id(buf) in regions:
            need = access_region(ana, buf, [idx], nest_relax)
            for (wlo, whi), (rlo, rhi) in zip(regions[id(buf)], need):
                if not (ana.can_prove(wlo <= rlo) and ana.can_prove(rhi <= whi)):
                    raise fail(f"{prim}: block reads values produced in other iterations", buf.name)
    sch.commit({id(items[pos_c]): REMOVED, id(for_): replace(for_, body=seq(for_.body, nest))})


def sorted_doms(block: Block, buf: Buffer) -> list[PrimExpr]:
    """The domain extents of a point block's spatial variables, in the order they index `buf`."""
    store = _stores(block.body)[0]
    doms = {id(iv.var): iv.dom.extent for iv in block.iter_vars}
    return [doms[id(i)] for i in store.indices]


def _loads_of(block: Block) -> list[tuple[Buffer, tuple]]:
    loads = [x for part in (block.init, block.body) if part is not None for x in collect(part, BufferLoad)]
    return [(x.buffer, x.indices) for x in loads]


def _elementwise(realize: BlockRealize, prim: str, what: str) -> BufferStore:
    block = realize.block
    spatial = all(iv.iter_type == IterType.SPATIAL for iv in block.iter_vars)
    if (
        not spatial
        or block.init is not None
        or not isinstance(block.body, BufferStore)
        or block.alloc_buffers
    ):
        raise fail(f"{prim}: block is not a spatial elementwise {what}", block.name)
    return block.body


def _drop_alloc(sch: Schedule, scope_name: str, buffer: Buffer) -> None:
    scope_realize, _ = sch.find_block(scope_name)
    scope = scope_realize.block
    allocs = tuple(b for b in scope.alloc_buffers if b is not buffer)
    sch.commit({id(scope_realize): replace(scope_realize, block=replace(scope, alloc_buffers=allocs))})


def _check_intermediate(scope: Block, buffer: Buffer, prim: str) -> None:
    if not any(b is buffer for b in scope.alloc_buffers):
        raise fail(f"{prim}: buffer is not an intermediate of the scope", f"{buffer.name} is a parameter")


@primitive
def compute_inline(sch: Schedule, block: BlockRV) -> None:
    """Replace every read of the buffer `block` writes by the expression it computes, and remove it."""
    prim = "compute_inline"
    realize, parents = sch.find_block(block)
    scope, items, pos = top_level_item(parents, realize)
    _alone(realize, items[pos], prim)
    store = _elementwise(realize, prim, "producer")
    out, index_vars = point_write(realize, prim)
    _check_intermediate(scope, out, prim)
    if id(out) in buffers_read(realize.block):
        raise fail(f"{prim}: block reads its own output", out.name)
    if len(_scope_writers(items, out)) != 1:
        raise fail(f"{prim}: buffer has another writer", out.name)
    # only the reads after the block are replaced by its expression; an earlier one (a cache_write's
    # copy-in) would be left reading the buffer this primitive removes
    if any(id(out) in buffers_read(item) for item in items[:pos]):
        raise fail(f"{prim}: buffer is read before the block writes it", out.name)
    ana = sch.analyzer()
    for dom, extent in zip(sorted_doms(realize.block, out), out.shape):
        if not ana.can_prove(dom == extent):
            raise fail(f"{prim}: producer does not cover its output", out.name)
    inputs = buffers_read(realize.block)
    for item in items[pos + 1 :]:
        if inputs & buffers_written(item):
            raise fail(f"{prim}: a later block writes the producer's inputs")
    value = _detached(realize, parents, prim, store.value)  # it moves into the consumers' nests

    class _Inline(Mutator):
        mutate_buffers = False

        def visit_BufferLoad(self, op: BufferLoad):
            op = self.generic_visit(op)
            if op.buffer is not out:
                return op
            return substitute(value, dict(zip(index_vars, op.indices)))

        def visit_Block(self, op: Block):
            new = self.generic_visit(op)
            return new if new is op else infer_regions(new)

    mapping = {id(items[pos]): REMOVED}
    for item in items[pos + 1 :]:
        new = _Inline().visit(item)
        if new is not item:
            mapping[id(item)] = new
    sch.commit(mapping)
    _drop_alloc(sch, scope.name, out)


@primitive
def reverse_compute_inline(sch: Schedule, block: BlockRV) -> None:
    """Fold consumer `block` into the producer of the buffer it reads: the producer then computes the
    consumer's expression and writes the consumer's output."""
    prim = "reverse_compute_inline"
    realize, parents = sch.find_block(block)
    scope, items, pos_c = top_level_item(parents, realize)
    _alone(realize, items[pos_c], prim)
    _elementwise(realize, prim, "consumer")
    _runs_whole(sch, realize, parents, prim)
    c_block = realize.block
    store = _detached(realize, parents, prim, c_block.body)  # it moves into the producer's nest
    intermediates = [b for b, _ in _loads_of(c_block) if any(b is a for a in scope.alloc_buffers)]
    if not intermediates:
        raise fail(f"{prim}: block reads no intermediate buffer")
    x = intermediates[0]
    loads = [idx for b, idx in _loads_of(c_block) if b is x]
    first = loads[0]
    c_vars = [iv.var for iv in c_block.iter_vars]
    ok = all(isinstance(i, Var) for i in first) and {id(i) for i in first} == {id(v) for v in c_vars}
    ok = ok and len(first) == len(c_vars) and all(all(a is b for a, b in zip(idx, first)) for idx in loads)
    if not ok:
        raise fail(f"{prim}: consumer does not read the producer at exactly its point", x.name)
    writers = _scope_writers(items, x)
    if len(writers) != 1:
        raise fail(f"{prim}: buffer has another writer", x.name)
    readers = [r for item in items for r in realizes_in(item) if id(x) in buffers_read(r.block)]
    if any(r is not realize and r is not writers[0] for r in readers):
        raise fail(f"{prim}: buffer has other readers", x.name)
    producer = writers[0]
    if any(iv.iter_type == IterType.REDUCE for iv in producer.block.iter_vars) or producer.block.init:
        raise fail(f"{prim}: producer is a reduction", producer.block.name)
    p_store = _elementwise(producer, prim, "producer")
    point_write(producer, prim)
    ana = sch.analyzer()
    c_doms = {id(iv.var): iv.dom.extent for iv in c_block.iter_vars}
    for dom, extent in zip([c_doms[id(i)] for i in first], x.shape):
        if not ana.can_prove(dom == extent):
            raise fail(f"{prim}: consumer does not cover the producer's output", x.name)
    _, p_parents = sch.find_block(BlockRV(producer.block.name))
    _, _, pos_p = top_level_item(p_parents, producer)
    reads_c = buffers_read(c_block) - {id(x)}
    out = store.buffer
    for item in items[pos_p + 1 : pos_c]:
        if reads_c & buffers_written(item) or {id(out)} & (buffers_read(item) | buffers_written(item)):
            raise fail(f"{prim}: a block between the producer and the block conflicts with it")
    mapping = dict(zip(first, p_store.indices))

    class _Fold(Mutator):
        mutate_buffers = False

        def visit_BufferLoad(self, op: BufferLoad):
            return p_store.value if op.buffer is x else self.generic_visit(op)

    new_store = BufferStore(
        out, substitute(_Fold().visit(store.value), mapping), substitute(store.indices, mapping)
    )
    new_block = infer_regions(replace(producer.block, body=new_store))
    sch.commit({id(items[pos_c]): REMOVED, id(producer): replace(producer, block=new_block)})
    _drop_alloc(sch, scope.name, x)
