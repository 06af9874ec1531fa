"""Reduction primitives: decompose_reduction and rfactor.

decompose_reduction(block, loop) moves a reduction block's init into its own block ("<name>_init") in a
loop nest placed just before `loop`, over the spatial loops at or below it. rfactor(loop, factor_axis)
turns a reduction loop into a spatial dimension of a new buffer of partial results: block "<name>_rf"
computes the partial results in place of the block, and the original block name becomes the block that
combines them (a reduction over that dimension) right after the loop nest.
"""

from __future__ import annotations

from shapeflow.ir.expr import Add as AddExpr
from shapeflow.ir.expr import (
    And,
    BufferLoad,
    IntImm,
    Max,
    Min,
    Mul,
    Not,
    PrimExpr,
    Var,
    logical_and,
    make_const,
)
from shapeflow.ir.functor import collect, substitute
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.stmt import (
    Block,
    BlockRealize,
    BufferStore,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    LetStmt,
    Range,
    Stmt,
    seq,
)
from shapeflow.passes.schedule.analysis import (
    buffers_read,
    edit_scope,
    infer_regions,
    nest_start,
    realizes_in,
    runs_whole_domain,
    top_level_item,
    trip_count,
)
from shapeflow.passes.schedule.compute_location import point_write
from shapeflow.passes.schedule.state import BlockRV, LoopRV, Schedule, fail, primitive, replace_stmts

COMBINERS = (AddExpr, Mul, Max, Min)  # commutative, associative combiners rfactor may regroup
NEUTRAL = {AddExpr: lambda dtype: make_const(dtype, 0), Mul: lambda dtype: make_const(dtype, 1)}


def conjuncts(pred: PrimExpr) -> list[PrimExpr]:
    if isinstance(pred, IntImm) and pred.value == 1:
        return []
    if isinstance(pred, And):
        return conjuncts(pred.a) + conjuncts(pred.b)
    return [pred]


def _var_ids(expr) -> set[int]:
    return {id(v) for v in collect(expr, Var)}


def _block_loops(parents: tuple) -> list[For]:
    loops: list[For] = []
    for p in parents:
        if isinstance(p, Block):
            loops = []
        elif isinstance(p, For):
            loops.append(p)
    return loops


def _dom_names(ivs, ids: set[int]) -> list[str]:
    """Names of the variables among `ids` (loop variables) that the domains of iter_vars `ivs` name."""
    found = {id(v): v.name for iv in ivs for v in collect((iv.dom.min, iv.dom.extent), Var)}
    return sorted({found[k] for k in ids & set(found)})


def _split_vars(realize: BlockRealize) -> tuple[set[int], set[int]]:
    """Ids of the loop variables used by spatial bindings and by reduction bindings."""
    spatial: set[int] = set()
    reduce: set[int] = set()
    for iv, value in zip(realize.block.iter_vars, realize.iter_values):
        (reduce if iv.iter_type == IterType.REDUCE else spatial).update(_var_ids(value))
    return spatial, reduce


@primitive
def decompose_reduction(sch: Schedule, block: BlockRV, loop: LoopRV) -> BlockRV:
    """Separate the init of reduction `block` into a block before `loop`; returns the init block."""
    prim = "decompose_reduction"
    realize, parents = sch.find_block(block)
    b = realize.block
    if b.init is None:
        raise fail(f"{prim}: block has no init", b.name)
    if not any(iv.iter_type == IterType.REDUCE for iv in b.iter_vars):
        raise fail(f"{prim}: block is not a reduction", b.name)
    # The init runs where the reduction variables are at their minimum; the separated init runs for
    # every spatial point the block runs. Both agree only when the reduction variables run their whole
    # domain (the tail copy of a split reduction, bound to `n // 3 * 3 + t`, never runs its init).
    reduce_vars = [iv.var for iv in b.iter_vars if iv.iter_type == IterType.REDUCE]
    if not runs_whole_domain(sch.analyzer(), realize, parents, reduce_vars, others_free=True):
        raise fail(f"{prim}: reduction instances do not cover its domain", b.name)
    loops = _block_loops(parents)
    for_, _ = sch.find_loop(loop)
    if not any(f is for_ for f in loops):
        raise fail(f"{prim}: loop is not around the block", for_.loop_var.name)
    pos = next(k for k, f in enumerate(loops) if f is for_)
    spatial, reduce = _split_vars(realize)
    if any(id(f.loop_var) in reduce for f in loops[:pos]):
        raise fail(f"{prim}: loop is inside a reduction loop", for_.loop_var.name)
    inner = loops[pos:]
    if any(id(f.loop_var) in spatial and id(f.loop_var) in reduce for f in inner):
        raise fail(f"{prim}: a loop binds both spatial and reduction variables")
    kept = [f for f in inner if id(f.loop_var) in spatial]
    kept_ids = {id(f.loop_var) for f in kept}
    dropped = {id(f.loop_var) for f in inner} - kept_ids
    all_ids = {id(f.loop_var) for f in loops}
    preds = []
    for c in conjuncts(realize.predicate):
        used = _var_ids(c)
        if used & dropped and used & (all_ids - dropped):
            raise fail(f"{prim}: the block predicate mixes spatial and reduction loops")
        if not used & dropped:
            preds.append(c)
    for f in kept:
        if _var_ids((f.min, f.extent)) & dropped:
            raise fail(f"{prim}: a loop extent depends on a reduction loop", f.loop_var.name)
    # The init block's iter_vars copy the block's domains: a domain naming a loop left behind (a reduction
    # loop) would be undefined there, and one naming a copied loop names the copy's variable.
    names = _dom_names(b.iter_vars, dropped)
    if names:
        raise fail(
            f"{prim}: an iter_var domain names a reduction loop variable",
            f"block {b.name} uses {', '.join(names)}",
        )
    loop_map = {f.loop_var: Var(f.loop_var.name + "_init", f.loop_var.dtype) for f in kept}
    new_ivs, values, var_map = [], [], {}
    for iv, value in zip(b.iter_vars, realize.iter_values):
        if iv.iter_type == IterType.SPATIAL:
            nv = Var(iv.var.name, iv.var.dtype)
            var_map[iv.var] = nv
            dom = Range(substitute(iv.dom.min, loop_map), substitute(iv.dom.extent, loop_map))
            new_ivs.append(IterVar(nv, dom, IterType.SPATIAL))
            values.append(substitute(value, loop_map))
    # The init moves out of the reduction loops into copies of the spatial ones: a loop variable it names
    # directly (legal inside the loops) becomes the copy's, and one of a loop left behind is undefined.
    named = {id(v): v.name for v in collect(b.init, Var)}
    if dropped & set(named):
        names = ", ".join(named[k] for k in dropped & set(named))
        raise fail(f"{prim}: the init names a reduction loop variable", f"block {b.name} uses {names}")
    init = substitute(b.init, {**var_map, **loop_map})
    init_block = Block(sch.fresh_block_name(f"{b.name}_init"), tuple(new_ivs), (), (), init)
    pred = substitute(logical_and(*preds), loop_map) if preds else True
    nest: Stmt = BlockRealize(tuple(values), pred, infer_regions(init_block))
    for f in reversed(kept):
        lo, extent = substitute(f.min, loop_map), substitute(f.extent, loop_map)
        nest = For(loop_map[f.loop_var], lo, extent, ForKind.SERIAL, nest)
    new_update = replace(realize, block=replace(b, init=None))
    new_loop = replace_stmts(for_, {id(realize): new_update})
    sch.commit({id(for_): seq(nest, new_loop)})
    return BlockRV(init_block.name)


def _reduction_parts(b: Block, out: Buffer, prim: str) -> tuple[type, PrimExpr, PrimExpr, tuple]:
    """(combiner class, identity, source expression, output indices) of a recognized reduction block."""
    rule = f"{prim}: block is not a recognized reduction"
    body, init = b.body, b.init
    if not isinstance(body, BufferStore) or not isinstance(init, BufferStore) or body.buffer is not out:
        raise fail(rule, b.name)
    value = body.value
    if not isinstance(value, COMBINERS):
        raise fail(rule, f"{b.name}: the update is not +, *, max or min")
    for acc, src in ((value.a, value.b), (value.b, value.a)):
        is_acc = isinstance(acc, BufferLoad) and acc.buffer is out
        if (
            is_acc
            and all(x is y for x, y in zip(acc.indices, body.indices))
            and id(out) not in buffers_read(src)
        ):
            if id(out) in buffers_read(init.value) or collect(init.value, Var):
                raise fail(rule, f"{b.name}: the init is not a constant")
            return type(value), init.value, src, body.indices
    raise fail(rule, f"{b.name}: the update does not combine the accumulator with a value")


def _carried_guards(realize: BlockRealize, parents: tuple, r_ids: set[int], prim: str):
    """(conditions, parents without them) of the `if`s between the block's scope and the block, which the
    write-back must repeat so that it visits only the spatial points where the block ran. A condition is
    carried only when it has one value per spatial point that the write-back, later, evaluates again:
    no reduction loop variable (then it skips part of a reduction, and whether the init ran changes) and
    no buffer load (the loop nest may have changed the value) and no variable of a Let statement in the
    nest (undefined where the write-back stands)."""
    start = nest_start(parents)
    conds, kept = [], list(parents[:start])
    # The write-back stands after the loop nest, outside its Let statements: their variables are undefined.
    let_ids = {id(p.var) for p in parents[start:] if isinstance(p, LetStmt)}
    for k in range(start, len(parents)):
        node = parents[k]
        if not isinstance(node, IfThenElse):
            kept.append(node)
            continue
        child = parents[k + 1] if k + 1 < len(parents) else realize
        cond = node.condition if child is node.then_case else Not(node.condition)
        name = realize.block.name
        if _var_ids(cond) & r_ids:
            raise fail(f"{prim}: the block is under a condition on a reduction loop", f"block {name}: {cond}")
        if collect(cond, BufferLoad) or _var_ids(cond) & let_ids:
            raise fail(
                f"{prim}: the block is under a condition on memory or a Let variable", f"block {name}: {cond}"
            )
        conds.append(cond)
    return conds, tuple(kept)


def _init_runs_first(ana, realize: BlockRealize, parents: tuple, r_loops: list[For]) -> bool:
    """Whether, at each spatial point where `realize` runs, its init runs exactly once and before every
    update, as the write-back of rfactor runs it. Sufficient: the reduction instances cover the domain
    (runs_whole_domain, as decompose_reduction requires), or each reduction variable is bound to a loop of
    its own that starts at the domain minimum, and every predicate conjunct on the reduction loops holds at
    their first iteration (a loop of n - 3 iterations over a domain of 8, or `T.where(k < 5)`: the first
    iteration inits; the partial-result block guards its update by that predicate, not its init)."""
    b = realize.block
    reduce_ivs = [
        (iv, v) for iv, v in zip(b.iter_vars, realize.iter_values) if iv.iter_type == IterType.REDUCE
    ]
    if runs_whole_domain(ana, realize, parents, [iv.var for iv, _ in reduce_ivs], others_free=True):
        return True
    r_ids = {id(f.loop_var) for f in r_loops}
    at_first = {f.loop_var: f.min for f in r_loops}
    for c in conjuncts(realize.predicate):
        if _var_ids(c) & r_ids and (collect(c, BufferLoad) or not ana.can_prove(substitute(c, at_first))):
            return False
    by_var = {id(f.loop_var): f for f in r_loops}
    bound = [by_var.get(id(v)) if isinstance(v, Var) else None for _, v in reduce_ivs]
    return (
        all(f is not None for f in bound)
        and len({id(f) for f in bound}) == len(bound)
        and all(ana.can_prove(f.min == iv.dom.min) for f, (iv, _) in zip(bound, reduce_ivs))
    )


@primitive
def rfactor(sch: Schedule, loop: LoopRV, factor_axis: int = 0) -> BlockRV:
    """Factor reduction loop `loop` out into partial results; returns the block computing them."""
    prim = "rfactor"
    for_, _ = sch.find_loop(loop)
    realizes = realizes_in(for_.body)
    if len(realizes) != 1:
        raise fail(f"{prim}: loop must contain exactly one block")
    realize = realizes[0]
    _, parents = sch.find_block(BlockRV(realize.block.name))
    b = realize.block
    out, _ = point_write(realize, prim)
    combiner, identity, src, out_index = _reduction_parts(b, out, prim)
    spatial, reduce = _split_vars(realize)
    var = for_.loop_var
    if id(var) in spatial:
        raise fail(f"{prim}: loop binds both spatial and reduction variables", var.name)
    if id(var) not in reduce:
        raise fail(f"{prim}: loop is not a reduction loop", var.name)
    loops = _block_loops(parents)
    r_loops = [f for f in loops if id(f.loop_var) in reduce]
    if any(id(f.loop_var) in spatial for f in r_loops):
        raise fail(f"{prim}: a loop binds both spatial and reduction variables")
    r_ids = {id(f.loop_var) for f in r_loops}
    loop_ids = {id(f.loop_var) for f in loops}
    for f in r_loops:
        if _var_ids((f.min, f.extent)) & loop_ids:
            raise fail(f"{prim}: reduction loop extent depends on other loops", f.loop_var.name)
    # An `if` above the block is carried into the write-back when it depends on spatial loops only.
    guards, unguarded = _carried_guards(realize, parents, r_ids, prim)
    if not _init_runs_first(sch.analyzer(), realize, unguarded, r_loops):
        raise fail(
            f"{prim}: reduction instances do not cover its domain",
            f"block {b.name}: a binding or predicate makes its init run other than once, first, at each "
            "spatial point it runs (the write-back would run it there)",
        )
    # The write-back copies the spatial iter_vars' domains into a nest after the reduction loops: a domain
    # naming a reduction loop would be undefined there (one naming a spatial loop names its copy).
    names = _dom_names([iv for iv in b.iter_vars if iv.iter_type == IterType.SPATIAL], r_ids)
    if names:
        raise fail(
            f"{prim}: an iter_var domain names a reduction loop variable",
            f"block {b.name} uses {', '.join(names)}",
        )
    ndim = len(out.shape)
    if not isinstance(factor_axis, int) or not -(ndim + 1) <= factor_axis <= ndim:
        raise fail(f"{prim}: factor_axis out of range", f"{factor_axis} for {ndim} dimensions")
    axis = factor_axis if factor_axis >= 0 else factor_axis + ndim + 1
    scope, items, pos = top_level_item(parents, realize)
    if any(r is not realize and id(out) in buffers_read(r.block) for r in realizes_in(items[pos])):
        raise fail(f"{prim}: the block's loop nest reads its output", out.name)
    ana = sch.analyzer()
    # The partial results are sized by the loop's trip count (a negative extent would allocate a negative
    # size); a loop that provably runs nothing leaves nothing to factor (and no buffer to allocate).
    extent = trip_count(ana, for_.extent)
    if isinstance(extent, IntImm) and extent.value <= 0:
        raise fail(f"{prim}: reduction loop runs no iterations", f"{var.name} has extent {for_.extent}")
    rf_shape = (*out.shape[:axis], extent, *out.shape[axis:])
    rf_name = sch.fresh_block_name(f"{b.name}_rf")
    rf = Buffer(rf_name, rf_shape, out.dtype)

    # The partial-result block: spatial variables of the block, the factored loop as a spatial variable,
    # the other reduction loops as reduction variables (one per loop).
    u = {id(f.loop_var): Var(f"v_{f.loop_var.name}", f.loop_var.dtype) for f in r_loops}
    to_u = {f.loop_var: u[id(f.loop_var)] for f in r_loops}
    reduce_map = {iv.var: substitute(val, to_u) for iv, val in zip(b.iter_vars, realize.iter_values)
                  if iv.iter_type == IterType.REDUCE}  # fmt: skip
    rf_ivs = [iv for iv in b.iter_vars if iv.iter_type == IterType.SPATIAL]
    rf_values = [val for iv, val in zip(b.iter_vars, realize.iter_values) if iv.iter_type == IterType.SPATIAL]
    for f in r_loops:
        kind = IterType.SPATIAL if f is for_ else IterType.REDUCE
        rf_ivs.append(IterVar(u[id(f.loop_var)], Range(f.min, f.extent), kind))
        rf_values.append(f.loop_var)
    rf_index = (*out_index[:axis], ana.simplify(u[id(var)] - for_.min), *out_index[axis:])
    acc = BufferLoad(rf, rf_index)
    update: Stmt = BufferStore(rf, combiner(acc, substitute(src, reduce_map)), rf_index)
    keep, guard = [], []
    for c in conjuncts(realize.predicate):
        used = _var_ids(c)
        if used & r_ids and used & (loop_ids - r_ids):
            raise fail(f"{prim}: the block predicate mixes spatial and reduction loops")
        (guard if used & r_ids else keep).append(c)
    if guard:
        update = IfThenElse(substitute(logical_and(*guard), to_u), update)
    # The partial results start at the combiner's neutral element; the block's own init (any constant)
    # is applied once, by the write-back. (max/min are idempotent, so their init may start both.)
    rf_init = NEUTRAL[combiner](identity.dtype) if combiner in NEUTRAL else identity
    rf_block = infer_regions(
        Block(rf_name, tuple(rf_ivs), (), (), update, BufferStore(rf, rf_init, rf_index), (), b.annotations)
    )
    rf_realize = BlockRealize(tuple(rf_values), logical_and(*keep) if keep else True, rf_block)

    # The write-back block, under the original name: reduce the partial results into the output.
    s_loops = [f for f in loops if id(f.loop_var) not in r_ids]
    fresh = {f.loop_var: Var(f"ax_{f.loop_var.name}", f.loop_var.dtype) for f in s_loops}
    w_ivs, w_map = [], {}
    for iv in b.iter_vars:
        if iv.iter_type == IterType.SPATIAL:
            nv = Var(iv.var.name, iv.var.dtype)
            w_map[iv.var] = nv
            dom = Range(substitute(iv.dom.min, fresh), substitute(iv.dom.extent, fresh))
            w_ivs.append(IterVar(nv, dom, IterType.SPATIAL))
    w_r = Var(f"v_{var.name}", var.dtype)
    w_ivs.append(IterVar(w_r, Range.from_extent(extent), IterType.REDUCE))
    w_out = tuple(substitute(i, w_map) for i in out_index)
    w_rf = (*w_out[:axis], w_r, *w_out[axis:])
    w_body = BufferStore(out, combiner(BufferLoad(out, w_out), BufferLoad(rf, w_rf)), w_out)
    w_block = infer_regions(Block(b.name, tuple(w_ivs), (), (), w_body, BufferStore(out, identity, w_out)))
    # The write-back visits exactly the spatial points the original block did: its spatial loops (copied,
    # with fresh variables), its spatial bindings and the spatial part of its predicate. Iterating over the
    # whole domain instead would reset outputs another block computes (e.g. the main part of a split
    # whose tail block is being factored).
    w_spatial = [substitute(val, fresh) for iv, val in zip(b.iter_vars, realize.iter_values)
                 if iv.iter_type == IterType.SPATIAL]  # fmt: skip
    w_red_loop = Var(f"ax_{var.name}", var.dtype)
    w_pred = substitute(logical_and(*keep, *guards), fresh) if keep or guards else True
    nest: Stmt = BlockRealize((*w_spatial, w_red_loop), w_pred, w_block)
    nest = For(w_red_loop, 0, extent, ForKind.SERIAL, nest)
    for f in reversed(s_loops):
        nest = For(
            fresh[f.loop_var], substitute(f.min, fresh), substitute(f.extent, fresh), ForKind.SERIAL, nest
        )
    sch.commit({id(realize): rf_realize})
    edit_scope(sch, scope.name, {pos + 1: [nest]}, allocs=(rf,))
    return BlockRV(rf_name)
