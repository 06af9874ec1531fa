"""Caching primitives: cache_read and cache_write stage a buffer through a copy in another memory scope.

cache_read(block, i, scope) copies the block's i-th read buffer into a new buffer before the block's loop
nest and makes the block read the copy; cache_write(block, i, scope) makes the block write a new buffer and
copies it back after the block's loop nest. The copy blocks are ordinary point blocks, so compute_at /
reverse_compute_at can then move them next to their users (the usual tiling pattern).
"""

from __future__ import annotations

from shapeflow.ir.expr import BufferLoad
from shapeflow.ir.functor import Mutator
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import SCOPES, Buffer
from shapeflow.ir.tir.stmt import Block, BufferStore
from shapeflow.passes.schedule.analysis import (
    buffers_read,
    buffers_written,
    copy_nest,
    edit_scope,
    infer_regions,
    overwrites_first,
    realizes_in,
    runs_whole_domain,
    top_level_item,
)
from shapeflow.passes.schedule.compute_location import point_write, sorted_doms
from shapeflow.passes.schedule.state import BlockRV, Schedule, fail, primitive


class _Redirect(Mutator):
    """Accesses of one buffer (loads, stores, or both) redirected to another."""

    mutate_buffers = False

    def __init__(self, old: Buffer, new: Buffer, loads: bool = True, stores: bool = True):
        super().__init__()
        self.old, self.new, self.loads, self.stores = old, new, loads, stores

    def visit_BufferLoad(self, op: BufferLoad):
        op = self.generic_visit(op)
        return replace(op, buffer=self.new) if self.loads and op.buffer is self.old else op

    def visit_BufferStore(self, op: BufferStore):
        op = self.generic_visit(op)
        return replace(op, buffer=self.new) if self.stores and op.buffer is self.old else op


def _redirect_block(block: Block, old: Buffer, new: Buffer, loads: bool, stores: bool) -> Block:
    r = _Redirect(old, new, loads, stores)
    init = r.visit(block.init) if block.init is not None else None
    return infer_regions(replace(block, body=r.visit(block.body), init=init))


def _check_scope(scope: str, prim: str) -> None:
    if scope not in SCOPES:
        raise fail(f"{prim}: unknown storage scope", f"{scope!r} is not one of {SCOPES}")


@primitive
def cache_read(sch: Schedule, block: BlockRV, read_index: int, scope: str = "global") -> BlockRV:
    """Make `block` read its `read_index`-th read buffer through a copy in `scope`; returns the copy block."""
    prim = "cache_read"
    _check_scope(scope, prim)
    realize, parents = sch.find_block(block)
    reads = realize.block.reads
    if not isinstance(read_index, int) or not 0 <= read_index < len(reads):
        raise fail(f"{prim}: read index out of range", f"block {realize.block.name} has {len(reads)} reads")
    src = reads[read_index].buffer
    scope_block, items, pos = top_level_item(parents, realize)
    if any(id(src) in buffers_written(r.block) for r in realizes_in(items[pos])):
        raise fail(f"{prim}: buffer is written in the block's loop nest", src.name)
    where = 0
    for k in range(pos):
        if id(src) in buffers_written(items[k]):
            where = k + 1
    name = sch.fresh_block_name(f"{src.name}_{scope.replace('.', '_')}")
    cache = Buffer(name, src.shape, src.dtype, scope=scope)
    sch.commit({id(realize): replace(realize, block=_redirect_block(realize.block, src, cache, True, False))})
    edit_scope(sch, scope_block.name, {where: [copy_nest(sch, name, cache, src)]}, allocs=(cache,))
    return BlockRV(name)


@primitive
def cache_write(sch: Schedule, block: BlockRV, write_index: int, scope: str = "global") -> BlockRV:
    """Make `block` write its `write_index`-th write buffer into a new buffer in `scope`, copied back
    right after the block's loop nest; returns the copy block."""
    prim = "cache_write"
    _check_scope(scope, prim)
    realize, parents = sch.find_block(block)
    writes = realize.block.writes
    if not isinstance(write_index, int) or not 0 <= write_index < len(writes):
        raise fail(
            f"{prim}: write index out of range", f"block {realize.block.name} has {len(writes)} writes"
        )
    dst = writes[write_index].buffer
    scope_block, items, pos = top_level_item(parents, realize)
    writers = [r for item in items for r in realizes_in(item) if id(dst) in buffers_written(r.block)]
    if len(writers) != 1:
        raise fail(f"{prim}: buffer has another writer", dst.name)
    out, index_vars = point_write(realize, prim)
    ana = sch.analyzer()
    for dom, extent in zip(sorted_doms(realize.block, out), out.shape):
        if not ana.can_prove(dom == extent):
            raise fail(f"{prim}: block does not cover the buffer", dst.name)
    if any(r is not realize and id(dst) in buffers_read(r.block) for r in realizes_in(items[pos])):
        raise fail(f"{prim}: the block's loop nest reads the buffer", dst.name)
    name = sch.fresh_block_name(f"{dst.name}_{scope.replace('.', '_')}")
    cache = Buffer(name, dst.shape, dst.dtype, scope=scope)
    insert = {pos + 1: [copy_nest(sch, name, dst, cache)]}
    # The copy-back writes every point of the cache back: unless the block provably writes every point
    # before anything reads it, the cache starts as a copy of the buffer (points the block skips, a read
    # of the old value or a conditional store then see the buffer's values, as before).
    all_vars = [iv.var for iv in realize.block.iter_vars]
    if not (runs_whole_domain(ana, realize, parents, all_vars) and overwrites_first(realize.block, dst)):
        insert[pos] = [copy_nest(sch, sch.fresh_block_name(f"{name}_in"), cache, dst)]
    sch.commit({id(realize): replace(realize, block=_redirect_block(realize.block, dst, cache, True, True))})
    edit_scope(sch, scope_block.name, insert, allocs=(cache,))
    return BlockRV(name)
