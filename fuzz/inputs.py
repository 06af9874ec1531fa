"""Arguments for running a PrimFunc: values for its symbolic dimensions and deterministic numpy arrays."""

from __future__ import annotations

import random

import numpy as np

from shapeflow.ir.arith import evaluate
from shapeflow.ir.expr import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.interpreter_values import numpy_dtype


def dim_vars(func: PrimFunc) -> list[Var]:
    """The int-typed Vars in buffer-parameter shapes (the symbolic dimensions), in first-seen order."""
    seen: dict[int, Var] = {}
    for p in func.params:
        if isinstance(p, Buffer):
            for dim in p.shape:
                for v in collect(dim, Var):
                    seen.setdefault(id(v), v)
    return list(seen.values())


def choose_dims(func: PrimFunc, rng: random.Random) -> dict[Var, int]:
    """A value for each symbolic dimension within `var_bounds` (1..12 when unbounded)."""
    bounds = func.attrs.get("var_bounds") or {}
    out = {}
    for v in dim_vars(func):
        lo, hi = bounds.get(v.name, (1, 12)) if isinstance(bounds, dict) else (1, 12)
        out[v] = rng.randint(int(lo), int(min(hi, lo + 15)))
    return out


def make_arguments(func: PrimFunc, seed: int, dims: dict[Var, int] | None = None) -> list:
    """Arrays for every buffer parameter and ints for scalar parameters, all derived from `seed`.

    Raises ValueError when a shape cannot be evaluated or is negative (the test is then not runnable)."""
    rng = random.Random(seed)
    dims = dict(dims if dims is not None else choose_dims(func, rng))
    nprng = np.random.default_rng(seed)
    args: list = []
    for p in func.params:
        if isinstance(p, Var):
            value = dims.get(p)
            if value is None:
                value = dims[p] = rng.randint(1, 8)
            args.append(value)
            continue
        shape = tuple(int(evaluate(d, dims)) for d in p.shape)
        if any(s < 0 or s > 4096 for s in shape):
            raise ValueError(f"shape {shape} of {p.name} is not runnable")
        dt = numpy_dtype(p.dtype)
        if dt.kind == "f":
            arr = nprng.uniform(-4, 4, size=shape).astype(dt)
        elif dt.kind == "b":
            arr = nprng.integers(0, 2, size=shape).astype(bool)
        else:
            info = np.iinfo(dt)
            arr = nprng.integers(max(info.min, -50), min(info.max, 50), size=shape, endpoint=True).astype(dt)
        args.append(np.ascontiguousarray(arr))
    return args


def iteration_cost(func: PrimFunc, dims: dict) -> int:
    """An upper estimate of the statements the interpreter will run, from loop extents at `dims`
    (an extent that cannot be evaluated counts as 64). Used to skip running programs that would take
    minutes because a mutation made a loop huge: that is slowness, not a bug."""
    from shapeflow.ir.tir import stmt as S  # noqa: PLC0415

    def extent_of(e) -> int:
        try:
            return max(0, int(evaluate(e, dims)))
        except Exception:
            return 64

    def cost(node) -> int:
        if isinstance(node, S.For):
            return 1 + extent_of(node.extent) * cost(node.body)
        if isinstance(node, S.SeqStmt):
            return sum(cost(s) for s in node.seq)
        if isinstance(node, S.BlockRealize):
            return cost(node.block)
        if isinstance(node, S.Block):
            return cost(node.body) + (cost(node.init) if node.init is not None else 0)
        if isinstance(node, S.IfThenElse):
            return 1 + max(cost(node.then_case), cost(node.else_case) if node.else_case else 0)
        body = getattr(node, "body", None)
        return 1 + (cost(body) if isinstance(body, S.Stmt) else 0)

    return cost(func.body)


def copy_arguments(args: list) -> list:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


__all__ = ["dim_vars", "choose_dims", "make_arguments", "copy_arguments", "iteration_cost"]
