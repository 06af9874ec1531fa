"""Layout primitives: storage_align, transform_layout and pad.

storage_align and transform_layout change how an intermediate buffer is laid out (padded strides; a new
shape and index map, e.g. packing (i, j) -> (i // 16, j, i % 16)); every access is rewritten, so values
are unchanged. Function parameters keep the layout the caller passes. pad grows a block's iteration
domain to multiples (pad_einsum): inputs are copied into zero-padded buffers, the output is computed into
a padded buffer and the valid part copied back; padded reduction steps must add zero, so a padded
reduction must be a sum of products.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from shapeflow.ir.arith import EvaluationError, evaluate
from shapeflow.ir.expr import Add as AddExpr
from shapeflow.ir.expr import (
    BufferLoad,
    Div,
    FloorDiv,
    FloorMod,
    IntImm,
    Mod,
    Mul,
    PrimExpr,
    Var,
    convert,
    logical_and,
    make_const,
)
from shapeflow.ir.functor import Mutator, collect, substitute
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import (
    Allocate,
    AssertStmt,
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    DeclBuffer,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    Range,
    Stmt,
)
from shapeflow.passes.schedule.analysis import (
    edit_scope,
    infer_regions,
    interval,
    overwrites_first,
    product_overflows,
    realizes_in,
    runs_whole_domain,
    top_level_item,
)
from shapeflow.passes.schedule.state import BlockRV, Schedule, fail, primitive, walk


def _scope_alloc(sch: Schedule, buffer: Buffer, prim: str) -> Block:
    """The block allocating `buffer`; function parameters are refused."""
    for b in collect(sch.func.body, Block):
        if any(a is buffer for a in b.alloc_buffers):
            return b
    raise fail(f"{prim}: buffer is a function parameter", buffer.name)


def _pick_buffer(sch: Schedule, block: BlockRV, buffer, prim: str) -> Buffer:
    realize, _ = sch.find_block(block)
    b = realize.block
    if isinstance(buffer, str):
        for region in (*b.writes, *b.reads):
            if region.buffer.name == buffer:
                return region.buffer
        raise fail(f"{prim}: block does not access the buffer", f"{b.name} has no buffer {buffer!r}")
    kind, index = buffer if isinstance(buffer, tuple) else ("write", buffer)
    regions = b.writes if kind == "write" else b.reads if kind == "read" else None
    if regions is None or not isinstance(index, int) or not 0 <= index < len(regions):
        raise fail(f"{prim}: buffer index out of range", f"{buffer!r} for block {b.name}")
    return regions[index].buffer


def _replace_buffer(
    sch: Schedule, old: Buffer, new: Buffer, prim: str, index_fn=None, region_fn=None
) -> None:
    """Every use of `old` in the function becomes a use of `new`: accesses (indices mapped by `index_fn`),
    allocations, and the read/write regions of every block naming it (`region_fn` maps a region; a block
    that only declares the buffer keeps its other regions). Any use left over (a DeclBuffer, the data
    pointer in a call) would name a buffer that is no longer allocated, so it is refused."""

    class _Swap(Mutator):
        mutate_buffers = False

        def visit_BufferLoad(self, op: BufferLoad):
            op = self.generic_visit(op)
            if op.buffer is not old:
                return op
            return BufferLoad(new, index_fn(op.indices) if index_fn else op.indices)

        def visit_BufferStore(self, op: BufferStore):
            op = self.generic_visit(op)
            if op.buffer is not old:
                return op
            return BufferStore(new, op.value, index_fn(op.indices) if index_fn else op.indices)

        def visit_Block(self, op: Block):
            out = self.generic_visit(op)
            allocs = tuple(new if a is old else a for a in out.alloc_buffers)
            if any(a is old for a in out.alloc_buffers):
                out = replace(out, alloc_buffers=allocs)
            if out is not op:
                out = infer_regions(out)
            # a block may declare a region of the buffer without accessing it in its body (its body is
            # unchanged, so infer_regions did not run): it gets the mapped region
            if any(r.buffer is old for r in (*out.reads, *out.writes)):
                out = replace(out, reads=_map_regions(out.reads), writes=_map_regions(out.writes))
            return out

    def _map_regions(regions):
        return tuple(
            (region_fn(r) if region_fn else BufferRegion(new, r.region)) if r.buffer is old else r
            for r in regions
        )

    body = _Swap().visit(sch.func.body)
    stale = [n for n in collect(body, (Buffer, Var)) if n is old or (old.data is not None and n is old.data)]
    if stale:
        raise fail(f"{prim}: buffer has a use that cannot be rewritten", old.name)
    sch.commit_func(sch.func.with_body(body))


@primitive
def storage_align(
    sch: Schedule, block: BlockRV, buffer_index: int, axis: int, factor: int, offset: int
) -> None:
    """Pad the strides of the `buffer_index`-th buffer `block` writes so that the stride of `axis` is
    `offset` modulo `factor` (avoids cache-set conflicts between rows)."""
    prim = "storage_align"
    buf = _pick_buffer(sch, block, ("write", buffer_index), prim)
    _scope_alloc(sch, buf, prim)
    ndim = len(buf.shape)
    if not isinstance(axis, int) or not 0 <= axis < ndim - 1:
        raise fail(f"{prim}: axis must be an outer axis", f"axis {axis} of a {ndim}-d buffer")
    if not isinstance(factor, int) or factor < 1 or not isinstance(offset, int) or not 0 <= offset < factor:
        raise fail(f"{prim}: needs factor >= 1 and 0 <= offset < factor", f"factor {factor}, offset {offset}")
    ana = sch.analyzer()
    strides: list[PrimExpr] = [IntImm(buf.shape[-1].dtype, 1)]
    for d in range(ndim - 2, -1, -1):
        stride = strides[0] * buf.shape[d + 1]
        if d == axis:
            stride = stride + (offset - stride) % factor
        strides.insert(0, ana.simplify(stride))
    new = Buffer(buf.name, buf.shape, buf.dtype, tuple(strides), buf.elem_offset, buf.scope, None, buf.align)
    _replace_buffer(sch, buf, new, prim)


def _sample_values(free: list[Var]) -> list[dict]:
    """Concrete values of the symbolic dimensions to check an index map on (including 1 and primes)."""
    if not free:
        return [{}]
    return [dict.fromkeys(free, v) for v in (1, 5, 17)] + [{v: 3 + k for k, v in enumerate(free)}]


@primitive
def transform_layout(sch: Schedule, block: BlockRV, buffer, index_map: Callable) -> None:
    """Store an intermediate buffer in a new layout: element `idx` moves to `index_map(*idx)`. `buffer` is
    a buffer name, a write index, or ("read" | "write", index) of `block`."""
    prim = "transform_layout"
    buf = _pick_buffer(sch, block, buffer, prim)
    _scope_alloc(sch, buf, prim)
    xs = [Var(f"i{d}") for d in range(len(buf.shape))]
    try:
        out = index_map(*xs)
    except Exception as err:  # a user lambda of the wrong arity or type
        raise fail(f"{prim}: index map cannot be applied", f"{type(err).__name__}: {err}") from None
    out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    try:
        out = tuple(convert(e, "int64").astype("int64") for e in out)
    except Exception as err:
        raise fail(f"{prim}: index map must return integer expressions", str(err)) from None
    if not out or any(not e.dtype.is_integer for e in out):
        raise fail(f"{prim}: index map must return integer expressions")
    ana = sch.analyzer()
    relax = {id(x): (IntImm(x.dtype, 0), ana.simplify(s - 1)) for x, s in zip(xs, buf.shape)}
    shape = []
    for e in out:
        iv = interval(e, relax)
        if iv is None or not ana.can_prove(iv[0] >= 0):
            raise fail(f"{prim}: index map is not bounded below by 0 over the buffer", str(e))
        shape.append(ana.simplify(iv[1] + 1))
    new = Buffer(buf.name, tuple(shape), buf.dtype, (), buf.elem_offset, buf.scope, None, buf.align)
    free = [v for v in collect(buf.shape, Var) if v.dtype.is_integer]
    free = list({id(v): v for v in free}.values())
    for env in _sample_values(free):
        _check_injective(buf, new, xs, out, env, prim)

    def index_fn(indices):
        return tuple(ana.simplify(substitute(e, dict(zip(xs, indices)))) for e in out)

    def region_fn(region: BufferRegion) -> BufferRegion:
        # the bounding box of the region's image; the whole new buffer where it cannot be bounded
        relax = {id(x): (r.min, ana.simplify(r.min + r.extent - 1)) for x, r in zip(xs, region.region)}
        boxes = [interval(e, relax) for e in out]
        if len(region.region) != len(xs) or any(iv is None for iv in boxes):
            return BufferRegion.full(new)
        return BufferRegion(new, tuple(Range(lo, ana.simplify(hi - lo + 1)) for lo, hi in boxes))

    _replace_buffer(sch, buf, new, prim, index_fn, region_fn)


def _check_injective(buf: Buffer, new: Buffer, xs, out, env: dict, prim: str) -> None:
    try:
        dims = [int(evaluate(s, env)) for s in buf.shape]
        new_dims = [int(evaluate(s, env)) for s in new.shape]
    except EvaluationError:
        return
    total = 1
    for d in dims:
        total *= max(d, 0)
    if total > 1 << 14:
        return
    seen: dict[tuple, tuple] = {}
    for point in itertools.product(*(range(d) for d in dims)):
        local = dict(env)
        local.update(zip(xs, point))
        image = tuple(int(evaluate(e, local)) for e in out)
        if any(not 0 <= v < n for v, n in zip(image, new_dims)):
            raise fail(f"{prim}: index map leaves the new shape", f"{point} -> {image}")
        if image in seen:
            raise fail(f"{prim}: index map is not injective", f"{seen[image]} and {point} -> {image}")
        seen[image] = point


def _plain_accesses(b: Block, prim: str) -> list[tuple[Buffer, tuple]]:
    accesses = []
    iv_ids = {id(iv.var) for iv in b.iter_vars}
    for part in (b.init, b.body):
        if part is None:
            continue
        for n in collect(part, BufferLoad) + collect(part, BufferStore):
            for i in n.indices:
                plain = (isinstance(i, Var) and id(i) in iv_ids) or not (
                    {id(v) for v in collect(i, Var)} & iv_ids
                )
                if not plain:
                    raise fail(f"{prim}: buffer access is not a plain iteration variable", n.buffer.name)
            accesses.append((n.buffer, n.indices))
    return accesses


def _einsum_factors(expr: PrimExpr) -> list[PrimExpr]:
    if isinstance(expr, Mul):
        return _einsum_factors(expr.a) + _einsum_factors(expr.b)
    return [expr]


@primitive
def pad(sch: Schedule, block: BlockRV, padding: Sequence[int]) -> None:
    """Pad the iteration domain of `block` to multiples of `padding` (one per iteration variable)."""
    prim = "pad"
    realize, parents = sch.find_block(block)
    b = realize.block
    padding = list(padding)
    if len(padding) != len(b.iter_vars) or any(not isinstance(p, int) or p < 1 for p in padding):
        raise fail(f"{prim}: padding must list a positive integer per iteration variable")
    scope, items, pos = top_level_item(parents, realize)
    if len(realizes_in(items[pos])) != 1:
        raise fail(f"{prim}: block is not alone in its loop nest", b.name)
    loops = {id(p.loop_var): p for p in parents if isinstance(p, For)}
    ana = sch.analyzer()
    for iv, value in zip(b.iter_vars, realize.iter_values):
        f = loops.get(id(value)) if isinstance(value, Var) else None
        trivial = f is not None and isinstance(f.min, IntImm) and f.min.value == 0 and ana.can_prove(
            f.extent == iv.dom.extent
        ) and isinstance(iv.dom.min, IntImm) and iv.dom.min.value == 0  # fmt: skip
        if not trivial:
            raise fail(f"{prim}: block bindings are not trivial loops", b.name)
    # the grown loops run every padded point and the unpad copy reads them all back: a block that skips
    # points of its domain (a predicate, a condition around it) would copy back points it never wrote
    if not runs_whole_domain(ana, realize, parents, [iv.var for iv in b.iter_vars]):
        raise fail(f"{prim}: block instances do not cover its domain", b.name)
    new_ext = {}
    for iv, p in zip(b.iter_vars, padding):
        # the padded extent sizes new buffers: from a negative extent it would be a negative allocation,
        # and rounding an extent near the int64 maximum up wraps around
        if p > 1 and not ana.can_prove(iv.dom.extent >= 0):
            raise fail(
                f"{prim}: iteration extent may be negative", f"{iv.var.name} has extent {iv.dom.extent}"
            )
        if product_overflows(ana, iv.dom.extent.dtype, [iv.dom.extent], p - 1):
            raise fail(f"{prim}: padded extent overflows", f"{iv.var.name} has extent {iv.dom.extent}")
        ext = ana.simplify((iv.dom.extent + p - 1) // p * p)
        if not ana.can_prove(ext == iv.dom.extent):
            new_ext[id(iv.var)] = ext
    if not new_ext:
        return
    accesses = _plain_accesses(b, prim)
    if any(isinstance(n, (Div, Mod, FloorDiv, FloorMod)) and collect(n.b, BufferLoad) for n in _all_exprs(b)):
        raise fail(f"{prim}: block divides by a padded value", b.name)
    out_store = b.body if isinstance(b.body, BufferStore) else None
    padded_reduce = [iv for iv in b.iter_vars if iv.iter_type == IterType.REDUCE and id(iv.var) in new_ext]
    if padded_reduce:
        value = out_store.value if out_store is not None else None
        ok = (
            isinstance(value, AddExpr)
            and isinstance(value.a, BufferLoad)
            and value.a.buffer is out_store.buffer
        )
        if ok:
            factors = _einsum_factors(value.b)
            for iv in padded_reduce:
                ok = ok and any(
                    isinstance(x, BufferLoad) and any(i is iv.var for i in x.indices) for x in factors
                )
        if not ok:
            raise fail(f"{prim}: block is not an einsum", f"{b.name}: a padded reduction must sum products")
    first_access: dict[int, tuple] = {}
    for buf, indices in accesses:
        seen = first_access.setdefault(id(buf), indices)
        if not all(a is b for a, b in zip(seen, indices)):
            raise fail(f"{prim}: buffer is accessed at different indices", buf.name)
    padded: dict[int, Buffer] = {}
    for buf, indices in accesses:
        if id(buf) in padded:
            continue
        shape = list(buf.shape)
        changed = False
        for d, i in enumerate(indices):
            if isinstance(i, Var) and id(i) in new_ext:
                iv = next(iv for iv in b.iter_vars if iv.var is i)
                if not ana.can_prove(buf.shape[d] == iv.dom.extent):
                    raise fail(f"{prim}: buffer dimension differs from the iteration extent", buf.name)
                shape[d], changed = new_ext[id(i)], True
        if changed:
            padded[id(buf)] = Buffer(sch.fresh_block_name(f"{buf.name}_pad"), tuple(shape), buf.dtype)
    written = {id(n.buffer) for n in collect(b.body, BufferStore)}
    # the padded instances run the whole body: a store outside the padded buffers or an assertion would
    # run for points that did not exist
    local = {id(s.buffer) for s, _ in walk(b.body) if isinstance(s, (Allocate, DeclBuffer))}
    if written - set(padded) - local or any(isinstance(s, AssertStmt) for s, _ in walk(b.body)):
        raise fail(f"{prim}: block has effects outside its padded outputs", b.name)
    before, after = [], []
    originals = {id(buf): buf for buf, _ in accesses}
    for key, new in padded.items():
        old = originals[key]
        if key in written:
            after.append(_copy(new.name + "_unpad", old, new, old.shape, None))
        # an output the block reads, or may leave unwritten, starts as the old values (zero-padded)
        if key not in written or not overwrites_first(b, old):
            before.append(_copy(new.name, new, old, new.shape, old.shape))

    class _Swap(Mutator):
        mutate_buffers = False

        def visit_BufferLoad(self, op: BufferLoad):
            op = self.generic_visit(op)
            return replace(op, buffer=padded[id(op.buffer)]) if id(op.buffer) in padded else op

        def visit_BufferStore(self, op: BufferStore):
            op = self.generic_visit(op)
            return replace(op, buffer=padded[id(op.buffer)]) if id(op.buffer) in padded else op

    swap = _Swap()
    ivs = tuple(
        replace(iv, dom=Range(iv.dom.min, new_ext.get(id(iv.var), iv.dom.extent))) for iv in b.iter_vars
    )
    init = swap.visit(b.init) if b.init is not None else None
    new_block = infer_regions(replace(b, iter_vars=ivs, body=swap.visit(b.body), init=init))
    new_realize = replace(realize, block=new_block)
    nest = _rebuild_loops(items[pos], new_realize, new_ext, realize, loops)
    sch.commit({id(items[pos]): nest})
    edit_scope(sch, scope.name, {pos: before, pos + 1: after}, allocs=tuple(padded.values()))


def _all_exprs(b: Block) -> list[PrimExpr]:
    parts = [p for p in (b.init, b.body) if p is not None]
    return [n for p in parts for n in collect(p, PrimExpr)]


def _rebuild_loops(
    item: Stmt, new_realize: BlockRealize, new_ext: dict, realize: BlockRealize, loops
) -> Stmt:
    """`item` with the padded block and the extents of the loops bound to padded variables grown."""
    grow = {}
    for iv, value in zip(realize.block.iter_vars, realize.iter_values):
        if id(iv.var) in new_ext:
            grow[id(loops[id(value)])] = new_ext[id(iv.var)]

    class _Grow(Mutator):
        mutate_buffers = False

        def visit_For(self, op: For):
            out = self.generic_visit(op)
            return replace(out, extent=grow[id(op)]) if id(op) in grow else out

        def visit_BlockRealize(self, op: BlockRealize):
            return new_realize if op is realize else op

    return _Grow().visit(item)


def _copy(name: str, dst: Buffer, src: Buffer, extents, valid) -> Stmt:
    """A nest over `extents` copying src into dst; where `valid` (src's shape) is given, points outside it
    get zero (the padding)."""
    loop_vars = [Var(f"ax{d}") for d in range(len(extents))]
    vs = [Var(f"v{d}") for d in range(len(extents))]
    body: Stmt = BufferStore(dst, src.load(vs), tuple(vs))
    if valid is not None:
        inside = logical_and(*(v < s for v, s in zip(vs, valid)))
        body = IfThenElse(inside, body, BufferStore(dst, make_const(dst.dtype, 0), tuple(vs)))
    ivs = tuple(IterVar(v, Range.from_extent(e)) for v, e in zip(vs, extents))
    block = infer_regions(Block(name, ivs, (), (), body))
    stmt: Stmt = BlockRealize(tuple(loop_vars), True, block)
    for v, e in reversed(list(zip(loop_vars, extents))):
        stmt = For(v, 0, e, ForKind.SERIAL, stmt)
    return stmt
