"""`create_prim_func`: a tensor-expression graph as a TensorIR PrimFunc (TVM's te.create_prim_func).

Each compute becomes one block nest: a serial loop per output dimension, then one per reduce axis, around
a block named after the compute whose iteration variables are bound to the loops. The whole body sits in
a block "root" with no iteration variables, which allocates the intermediate tensors (computes that are
not parameters). Parameters come in the order given; symbolic shapes stay symbolic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shapeflow.errors import VerifyError
from shapeflow.ir.expr import BufferLoad, PrimExpr, Select, Var
from shapeflow.ir.functor import Mutator, collect, post_order_visit
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import (
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    Range,
    Stmt,
    seq,
)
from shapeflow.te.tensor import ComputeOp, PlaceholderOp, Reduce, Tensor, TensorLoad


def create_prim_func(
    tensors: Sequence[Tensor | Var],
    name: str | None = None,
    *,
    var_bounds: Mapping[str | Var, tuple[int, int]] | None = None,
) -> PrimFunc:
    """A PrimFunc computing the compute tensors among `tensors` from the placeholders among them.

    `tensors` lists the parameters in order: tensors (inputs and outputs, as buffers) and scalar `te.var`s.
    Every placeholder the outputs depend on must be listed. `var_bounds` ({name: (lo, hi)}, inclusive)
    bounds symbolic dimensions; it is stored in `attrs["var_bounds"]`.
    """
    args = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    func_name = "main" if name is None else name
    if not isinstance(func_name, str) or not func_name.isidentifier():
        raise VerifyError(f"create_prim_func: function name must be an identifier, got {name!r}")
    params: list[Buffer | Var] = []
    buffers: dict[Tensor, Buffer] = {}
    for arg in args:
        if isinstance(arg, Tensor):
            if arg in buffers:
                raise VerifyError(f"create_prim_func: tensor {arg.name!r} is listed twice")
            buffers[arg] = Buffer(arg.name, arg.shape, arg.dtype)
            params.append(buffers[arg])
        elif isinstance(arg, Var):
            if any(p is arg for p in params):
                raise VerifyError(f"create_prim_func: variable {arg.name!r} is listed twice")
            params.append(arg)
        else:
            raise VerifyError(
                f"create_prim_func: parameters must be te tensors or te.var scalars, got {arg!r}"
            )

    ops = _ops_in_dependency_order([a for a in args if isinstance(a, Tensor)])
    allocated: list[Buffer] = []
    for op in ops:
        if isinstance(op, PlaceholderOp):
            if op.output(0) not in buffers:
                users = [o.name for o in ops if op.output(0) in o.input_tensors]
                raise VerifyError(
                    f"create_prim_func: placeholder {op.name!r} is read by {', '.join(map(repr, users))} "
                    "but is not in the parameter list"
                )
            continue
        for out in op.outputs:
            if out not in buffers:
                buffers[out] = Buffer(out.name, out.shape, out.dtype)
                allocated.append(buffers[out])

    defined = _defined_vars(params)
    for buf in allocated:
        _check_defined(buf.shape, defined, f"the shape of intermediate tensor {buf.name!r}")
    nests = []
    for op in ops:
        if isinstance(op, ComputeOp):
            nest = _lower_compute(op, buffers)
            _check_defined(nest, defined | {id(b.data) for b in buffers.values()}, f"compute {op.name!r}")
            nests.append(nest)
    root = Block("root", (), (), (), seq(nests), None, tuple(allocated))
    attrs = {"global_symbol": func_name, "tir.noalias": True}
    if var_bounds:
        attrs["var_bounds"] = _normalize_bounds(var_bounds, params)
    return PrimFunc(tuple(params), BlockRealize((), True, root), attrs)


# ---------------------------------------------------------------------------------------------
# Graph order
# ---------------------------------------------------------------------------------------------


def _ops_in_dependency_order(outputs: list[Tensor]) -> list:
    """Every operation the outputs depend on, producers before consumers (depth-first post-order)."""
    order: list = []
    state: dict[int, str] = {}
    for root in outputs:
        stack: list[tuple[object, int]] = [(root.op, 0)]
        while stack:
            op, next_input = stack.pop()
            if next_input == 0:
                if state.get(id(op)) == "done":
                    continue
                state[id(op)] = "open"
            inputs = op.input_tensors
            if next_input < len(inputs):
                stack.append((op, next_input + 1))
                child = inputs[next_input].op
                if state.get(id(child)) is None:
                    stack.append((child, 0))
                continue
            state[id(op)] = "done"
            order.append(op)
    return order


# ---------------------------------------------------------------------------------------------
# One compute as a block nest
# ---------------------------------------------------------------------------------------------


class _ToBuffers(Mutator):
    """Tensor loads become buffer loads; compute and reduce axes become block variables."""

    def __init__(self, buffers: dict[Tensor, Buffer], var_map: dict[int, Var]):
        super().__init__()
        self.buffers = buffers
        self.var_map = var_map

    def visit_Var(self, var: Var):
        return self.var_map.get(id(var), var)

    def visit_TensorLoad(self, load: TensorLoad):
        return BufferLoad(self.buffers[load.tensor], tuple(self.visit(i) for i in load.indices))


def _lower_compute(op: ComputeOp, buffers: dict[Tensor, Buffer]) -> Stmt:
    shape = op.outputs[0].shape
    loops = [(Var(v.name), Range.from_extent(extent), IterType.SPATIAL) for v, extent in zip(op.axis, shape)]
    loops += [(Var(ax.name), ax.dom, IterType.REDUCE) for ax in op.reduce_axis]
    block_vars = [Var(f"v_{loop_var.name}") for loop_var, _, _ in loops]
    originals = list(op.axis) + list(op.reduce_axis)
    lower = _ToBuffers(buffers, {id(o): bv for o, bv in zip(originals, block_vars)})
    out_index = tuple(block_vars[: len(op.axis)])
    outs = [buffers[t] for t in op.outputs]

    init = None
    body = op.bodies[0]
    if isinstance(body, Reduce):
        source = lower.visit(body.source)
        acc = BufferLoad(outs[0], out_index)
        update: Stmt = BufferStore(outs[0], body.combiner.combine_of(acc, source), out_index)
        read_exprs = [source]
        if body.condition is not None:
            condition = lower.visit(body.condition)
            update = IfThenElse(condition, update)
            read_exprs.append(condition)
        start = lower.visit(body.init) if body.init is not None else body.combiner.identity_of(body.dtype)
        init = BufferStore(outs[0], start, out_index)
        read_exprs.append(start)
        block_body = update
    else:
        values = [lower.visit(b) for b in op.bodies]
        block_body = seq([_store(out, value, out_index) for out, value in zip(outs, values)])
        read_exprs = values

    iter_vars = tuple(IterVar(bv, rng, kind) for bv, (_, rng, kind) in zip(block_vars, loops))
    block = Block(
        op.name,
        iter_vars,
        _read_regions(read_exprs, block_vars),
        tuple(BufferRegion(out, tuple(Range(v, 1) for v in out_index)) for out in outs),
        block_body,
        init,
        (),
        dict(op.attrs),
    )
    stmt: Stmt = BlockRealize(tuple(loop_var for loop_var, _, _ in loops), True, block)
    for loop_var, rng, _ in reversed(loops):
        stmt = For(loop_var, rng.min, rng.extent, ForKind.SERIAL, stmt)
    return stmt


def _store(out: Buffer, value: PrimExpr, index: tuple[PrimExpr, ...]) -> Stmt:
    """A store of `value`; a top-level select whose branches load memory becomes an `if`, so that a
    padding pattern (`if_then_else(i >= 1, A[i - 1], 0)`) never loads out of bounds."""
    if isinstance(value, Select) and (_loads(value.true_value) or _loads(value.false_value)):
        return IfThenElse(
            value.condition,
            _store(out, value.true_value, index),
            _store(out, value.false_value, index),
        )
    return BufferStore(out, value, index)


def _loads(expr: PrimExpr) -> bool:
    return bool(collect(expr, BufferLoad))


# ---------------------------------------------------------------------------------------------
# Read regions
# ---------------------------------------------------------------------------------------------


def _read_regions(exprs: list[PrimExpr], block_vars: list[Var]) -> tuple[BufferRegion, ...]:
    """For each buffer read, one region: per dimension the accessed point when every access uses the same
    index and that index is a block variable or free of block variables, else the whole extent (sound,
    if coarse)."""
    block_var_ids = {id(v) for v in block_vars}
    accesses: dict[Buffer, list[tuple[PrimExpr, ...]]] = {}

    def visit(n):
        if isinstance(n, BufferLoad):
            accesses.setdefault(n.buffer, []).append(n.indices)

    for e in exprs:
        post_order_visit(e, visit)
    regions = []
    for buf, index_lists in accesses.items():
        dims = []
        for d, extent in enumerate(buf.shape):
            points = [indices[d] for indices in index_lists]
            first = points[0]
            same = all(_same_expr(first, p) for p in points[1:])
            exact = (isinstance(first, Var) and id(first) in block_var_ids) or not _uses(first, block_var_ids)
            dims.append(Range(first, 1) if same and exact else Range.from_extent(extent))
        regions.append(BufferRegion(buf, tuple(dims)))
    return tuple(regions)


def _uses(expr: PrimExpr, var_ids: set[int]) -> bool:
    return any(id(v) in var_ids for v in collect(expr, Var))


def _same_expr(a, b) -> bool:
    """Syntactic equality where variables and buffers compare by identity (not up to renaming)."""
    return _key(a) == _key(b)


def _key(obj):
    if isinstance(obj, (Var, Buffer)):
        return ("ref", id(obj))
    if isinstance(obj, PrimExpr):
        from shapeflow.ir.node import fields_of  # noqa: PLC0415

        return (type(obj).__name__, tuple(_key(getattr(obj, f)) for f in fields_of(type(obj))))
    if isinstance(obj, tuple):
        return tuple(_key(x) for x in obj)
    return (type(obj).__name__, str(obj))


# ---------------------------------------------------------------------------------------------
# Free variables and bounds
# ---------------------------------------------------------------------------------------------


def _defined_vars(params: list[Buffer | Var]) -> set[int]:
    defined: set[int] = set()
    for p in params:
        if isinstance(p, Var):
            defined.add(id(p))
        else:
            defined.add(id(p.data))
            for v in collect((p.shape, p.strides, p.elem_offset), Var):
                defined.add(id(v))
    return defined


def _check_defined(obj, defined: set[int], where: str) -> None:
    bound: set[int] = set()

    def visit(n):
        if isinstance(n, For):
            bound.add(id(n.loop_var))
        elif isinstance(n, IterVar):
            bound.add(id(n.var))

    post_order_visit(obj, visit)
    for v in collect(obj, Var):
        if id(v) not in defined and id(v) not in bound:
            raise VerifyError(
                f"create_prim_func: {where} uses variable {v.name!r}, which is neither a parameter nor "
                "part of a parameter's shape; add it to the tensor list",
                node=v,
            )


def _normalize_bounds(var_bounds, params: list[Buffer | Var]) -> dict[str, tuple[int, int]]:
    known = {}
    for p in params:
        for v in [p] if isinstance(p, Var) else collect(p.shape, Var):
            if v.dtype.is_integer:
                known.setdefault(v.name, v)
    out = {}
    for key, bounds in var_bounds.items():
        name = key.name if isinstance(key, Var) else key
        if name not in known:
            raise VerifyError(
                f"create_prim_func: var_bounds names {name!r}, which is not a symbolic dimension of the "
                f"function (known: {sorted(known)})"
            )
        try:
            lo, hi = bounds
            lo, hi = int(lo), int(hi)
        except (TypeError, ValueError):
            raise VerifyError(
                f"create_prim_func: bounds of {name!r} must be (lo, hi) ints, got {bounds!r}"
            ) from None
        if lo > hi:
            raise VerifyError(f"create_prim_func: bounds of {name!r} are empty: ({lo}, {hi})")
        out[name] = (lo, hi)
    return out
