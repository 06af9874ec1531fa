"""The Schedule object: the current PrimFunc, handles to its blocks and loops, and the trace of primitives.

A schedule is edited only through primitives (registered with `@primitive`), each a function
`fn(sch, ...)` that computes a new function body and commits it with `sch._commit(...)`. The decorator
records `(name, arguments)` in `sch.trace` when the primitive succeeds and restores the previous function
when it raises, so a refused primitive leaves the schedule exactly as it was.

Handles stay valid across primitives because they name things that primitives keep: a `BlockRV` names a
block (block names are unique within a function, new blocks get fresh names), a `LoopRV` holds the loop
variable (primitives keep the variables of loops they do not replace). Both are re-resolved on every use; a
handle to something a primitive removed (the loop a split replaced) raises ScheduleError.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from shapeflow.errors import ScheduleError
from shapeflow.ir.arith import Analyzer
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import Mutator, collect
from shapeflow.ir.module import IRModule
from shapeflow.ir.node import fields_of
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Block, BlockRealize, For, SeqStmt, Stmt, no_op, seq


class BlockRV:
    """A handle to a block, by name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other) -> bool:
        return isinstance(other, BlockRV) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("BlockRV", self.name))

    def __repr__(self) -> str:
        return f"BlockRV({self.name!r})"


class LoopRV:
    """A handle to a loop, by the identity of its loop variable."""

    __slots__ = ("var",)

    def __init__(self, var: Var):
        self.var = var

    def __eq__(self, other) -> bool:
        return isinstance(other, LoopRV) and other.var is self.var

    def __hash__(self) -> int:
        return id(self.var)

    def __repr__(self) -> str:
        return f"LoopRV({self.var.name})"


PRIMITIVES: dict[str, Callable] = {}
REMOVED = no_op()  # marker: a statement a primitive deletes (dropped from its sequence)


def primitive(fn: Callable) -> Callable:
    """Register `fn(sch, ...)` as the Schedule method of the same name, traced and atomic."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def method(self: Schedule, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        saved = self.func
        try:
            result = fn(self, *args, **kwargs)
        except BaseException:
            self.func = saved
            raise
        arguments = {k: v for k, v in bound.arguments.items() if k != "sch"}
        self.trace.append((fn.__name__, arguments))
        self.trace_results.append(result)
        return result

    PRIMITIVES[fn.__name__] = fn
    setattr(Schedule, fn.__name__, method)
    return fn


def stmt_children(stmt: Stmt) -> list[Stmt]:
    """The statements directly inside `stmt`, in execution order (a block's init before its body)."""
    out: list[Stmt] = []
    for name in fields_of(type(stmt)):
        value = getattr(stmt, name)
        if isinstance(value, Stmt):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, Stmt))
    if isinstance(stmt, Block) and stmt.init is not None:
        out.remove(stmt.init)
        out.insert(0, stmt.init)
    return out


def walk(stmt: Stmt, parents: tuple = ()) -> Iterator[tuple[Stmt, tuple]]:
    """Every statement below and including `stmt`, pre-order, with its ancestors (outermost first)."""
    yield stmt, parents
    inner = (*parents, stmt)
    for child in stmt_children(stmt):
        yield from walk(child, inner)


class _Replace(Mutator):
    """Replace statements by identity; a statement mapped to REMOVED disappears from its sequence."""

    mutate_buffers = False

    def __init__(self, mapping: dict[int, Stmt]):
        super().__init__()
        self.mapping = mapping

    def visit(self, obj):
        if isinstance(obj, Stmt) and id(obj) in self.mapping:
            return self.mapping[id(obj)]
        return super().visit(obj)

    def visit_SeqStmt(self, op: SeqStmt):
        items = [self.visit(s) for s in op.seq]
        if all(a is b for a, b in zip(items, op.seq)):
            return op
        return seq([s for s in items if s is not REMOVED])


def replace_stmts(root: Stmt, mapping: dict[int, Stmt]) -> Stmt:
    """`root` with each statement whose id is a key of `mapping` replaced by its value."""
    return _Replace(mapping).visit(root)


class Schedule:
    """A TensorIR-style schedule of one PrimFunc (or the only / named PrimFunc of an IRModule).

    sch = Schedule(func)
    b = sch.get_block("C")
    i, j = sch.get_loops(b)
    io, ii = sch.split(i, [None, 8])
    sch.parallel(io); sch.vectorize(j)
    sch.func, sch.mod, sch.trace
    """

    def __init__(self, func_or_mod: PrimFunc | IRModule, func_name: str | None = None):
        if isinstance(func_or_mod, IRModule):
            prims = [n for n, f in func_or_mod.items() if isinstance(f, PrimFunc)]
            if func_name is None:
                if len(prims) != 1:
                    raise ScheduleError(
                        f"the module has {len(prims)} PrimFuncs ({prims}); pass func_name", rule="schedule"
                    )
                func_name = prims[0]
            if func_name not in prims:
                raise ScheduleError(f"no PrimFunc named {func_name!r} in the module", rule="schedule")
            self._module = func_or_mod
            func = func_or_mod[func_name]
        elif isinstance(func_or_mod, PrimFunc):
            self._module = None
            func = func_or_mod
            if func_name is None:
                symbol = func.attrs.get("global_symbol", "main")
                func_name = symbol if isinstance(symbol, str) and symbol.isidentifier() else "main"
        else:
            raise ScheduleError(
                f"Schedule takes a PrimFunc or an IRModule, got {type(func_or_mod).__name__}", rule="schedule"
            )
        self.func_name = func_name
        self.func: PrimFunc = func
        self.trace: list[tuple[str, dict[str, Any]]] = []
        self.trace_results: list[Any] = []  # what each traced primitive returned (handles), for replay

    # -- the current IR ------------------------------------------------------------------------
    @property
    def mod(self) -> IRModule:
        if self._module is None:
            return IRModule({self.func_name: self.func})
        return self._module.with_function(self.func_name, self.func)

    def copy(self) -> Schedule:
        other = Schedule(self.func, self.func_name)
        other._module = self._module
        other.trace = list(self.trace)
        other.trace_results = list(self.trace_results)
        return other

    def replay(self, trace: list, results: list | None = None) -> None:
        """Apply `trace` (another schedule's, on the same original function) to this schedule. Loop
        handles in the arguments are mapped through `results` (that schedule's `trace_results`) to the
        loops this replay creates; entries that now raise ScheduleError propagate it."""
        mapping: dict[int, Any] = {}

        def remap(value):
            if isinstance(value, LoopRV):
                return mapping.get(id(value.var), value)
            if isinstance(value, (list, tuple)):
                return type(value)(remap(v) for v in value)
            return value

        def record(old, new):
            if isinstance(old, LoopRV) and isinstance(new, LoopRV):
                mapping[id(old.var)] = new
            elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
                for a, b in zip(old, new):
                    record(a, b)

        for k, (name, arguments) in enumerate(trace):
            method = getattr(self, name)
            params = inspect.signature(PRIMITIVES[name]).parameters
            args, kwargs = [], {}
            for pname, value in arguments.items():
                if params[pname].kind == inspect.Parameter.VAR_POSITIONAL:
                    args.extend(remap(v) for v in value)
                elif params[pname].kind == inspect.Parameter.KEYWORD_ONLY:
                    kwargs[pname] = remap(value)
                else:
                    args.append(remap(value))
            new = method(*args, **kwargs)
            if results is not None and k < len(results):
                record(results[k], new)

    def show(self) -> str:
        return self.func.script()

    # -- resolving handles -----------------------------------------------------------------------
    def find_block(self, rv: BlockRV | str) -> tuple[BlockRealize, tuple]:
        """The BlockRealize of block `rv` and its ancestors."""
        name = rv.name if isinstance(rv, BlockRV) else rv
        if not isinstance(name, str):
            raise ScheduleError(f"expected a BlockRV, got {type(rv).__name__}", rule="handle")
        for stmt, parents in walk(self.func.body):
            if isinstance(stmt, BlockRealize) and stmt.block.name == name:
                return stmt, parents
        raise ScheduleError(f"block {name!r} does not exist (any more)", rule="handle: block not found")

    def find_loop(self, rv: LoopRV) -> tuple[For, tuple]:
        """The For of loop `rv` and its ancestors."""
        if not isinstance(rv, LoopRV):
            raise ScheduleError(f"expected a LoopRV, got {type(rv).__name__}", rule="handle")
        for stmt, parents in walk(self.func.body):
            if isinstance(stmt, For) and stmt.loop_var is rv.var:
                return stmt, parents
        raise ScheduleError(
            f"loop {rv.var.name} does not exist (any more; a split or fuse replaces its loops)",
            rule="handle: loop not found",
        )

    def block_names(self) -> list[str]:
        return [b.name for b in collect(self.func.body, Block)]

    def related_blocks(self, block_name: str, consumers: bool) -> list[str]:
        """Blocks (root excluded) reading a buffer `block_name` writes (consumers), or writing a buffer it
        reads (consumers=False): the candidates for compute_at / reverse_compute_at targets."""
        mine = self.find_block(block_name)[0].block
        ids = {id(r.buffer) for r in (mine.writes if consumers else mine.reads)}
        out = []
        for name in self.block_names():
            if name in (block_name, "root"):
                continue
            other = self.find_block(name)[0].block
            if any(id(r.buffer) in ids for r in (other.reads if consumers else other.writes)):
                out.append(name)
        return out

    def fresh_block_name(self, base: str) -> str:
        taken = set(self.block_names())
        if base not in taken:
            return base
        k = 1
        while f"{base}_{k}" in taken:
            k += 1
        return f"{base}_{k}"

    def analyzer(self) -> Analyzer:
        """An Analyzer knowing the function's symbolic dimensions: var_bounds, else non-negative."""
        ana = Analyzer()
        bounds = self.func.attrs.get("var_bounds") or {}
        seen: set[int] = set()
        for param in self.func.params:
            shape_vars = [param] if isinstance(param, Var) else collect(param.shape, Var)
            for var in shape_vars:
                if id(var) in seen or not var.dtype.is_integer:
                    continue
                seen.add(id(var))
                lo, hi = bounds.get(var.name, (0, 2**40))
                ana.bind(var, (lo, hi))
        return ana

    # -- editing -------------------------------------------------------------------------------
    def commit(self, mapping: dict[int, Stmt]) -> None:
        """Replace statements of the body (by id); primitives call this once they checked legality."""
        self.func = self.func.with_body(replace_stmts(self.func.body, mapping))

    def commit_func(self, func: PrimFunc) -> None:
        self.func = func

    def __repr__(self) -> str:
        return f"Schedule({self.func_name}, {len(self.trace)} primitives)"


def fail(rule: str, detail: str = "") -> ScheduleError:
    """A ScheduleError for `rule` (e.g. "fuse: loops are not directly nested"), with optional detail."""
    return ScheduleError(detail or rule, rule=rule)


__all__ = [
    "BlockRV",
    "LoopRV",
    "PRIMITIVES",
    "REMOVED",
    "Schedule",
    "fail",
    "primitive",
    "replace_stmts",
    "stmt_children",
    "walk",
]
