"""Builders of small PrimFuncs for the pass tests, and the semantic check every pass test uses.

The functions are built with the IR constructors in the shape te.create_prim_func gives (a root block, one
block per computation, symbolic sizes), so these tests do not depend on the TE front end.
"""

from __future__ import annotations

import numpy as np

from shapeflow.ir import IRModule, Var
from shapeflow.ir.arith.evaluate import evaluate
from shapeflow.ir.expr import FloatImm, IntImm, floordiv
from shapeflow.ir.tir import (
    Block,
    BlockRealize,
    Buffer,
    BufferRegion,
    BufferStore,
    For,
    ForKind,
    IterType,
    IterVar,
    PrimFunc,
    Range,
    seq,
)
from shapeflow.ir.tir.interpreter import run
from shapeflow.ir.tir.verify import verify

F32 = "float32"


def f32(v: float) -> FloatImm:
    return FloatImm(F32, v)


def _realize(name, iter_vars, values, reads, writes, body, init=None, predicate=True, alloc=()):
    block = Block(name, tuple(iter_vars), tuple(reads), tuple(writes), body, init, tuple(alloc))
    return BlockRealize(tuple(values), predicate, block)


def _root(body, alloc=()):
    return _realize("root", (), (), (), (), body, alloc=alloc)


def rowsum(width: int = 16) -> PrimFunc:
    """B[i] = sum_k A[i, k], with an init block (a reduction)."""
    n = Var("n")
    A = Buffer("A", (n, width), F32)
    B = Buffer("B", (n,), F32)
    i, k = Var("i"), Var("k")
    vi, vk = Var("vi"), Var("vk")
    block = _realize(
        "B",
        (IterVar(vi, Range.from_extent(n)), IterVar(vk, Range.from_extent(width), IterType.REDUCE)),
        (i, k),
        (BufferRegion(A, (Range(vi, 1), Range(vk, 1))),),
        (BufferRegion(B, (Range(vi, 1),)),),
        BufferStore(B, B[vi] + A[vi, vk], (vi,)),
        init=BufferStore(B, f32(0.0), (vi,)),
    )
    loops = For(i, 0, n, ForKind.SERIAL, For(k, 0, width, ForKind.SERIAL, block))
    return PrimFunc((A, B), _root(loops), {"global_symbol": "rowsum"})


def tail_scale(inner_kind: ForKind = ForKind.SERIAL, factor: int = 8) -> PrimFunc:
    """B[v] = A[v] * 2 + 1 over a loop split by `factor`, with the tail guarded by a block predicate."""
    n = Var("n")
    A = Buffer("A", (n,), F32)
    B = Buffer("B", (n,), F32)
    io, ii, v = Var("io"), Var("ii"), Var("v")
    block = _realize(
        "B",
        (IterVar(v, Range.from_extent(n)),),
        (io * factor + ii,),
        (BufferRegion(A, (Range(v, 1),)),),
        (BufferRegion(B, (Range(v, 1),)),),
        BufferStore(B, A[v] * f32(2.0) + f32(1.0), (v,)),
        predicate=io * factor + ii < n,
    )
    outer = floordiv(n + (factor - 1), factor)
    loops = For(io, 0, outer, ForKind.SERIAL, For(ii, 0, factor, inner_kind, block))
    return PrimFunc((A, B), _root(loops), {"global_symbol": "tail_scale"})


def two_stage(width: int = 4, kind: ForKind = ForKind.SERIAL) -> PrimFunc:
    """T = A + 1 (an intermediate the root block allocates), then B = T * 2 - a producer/consumer pair."""
    n = Var("n")
    A = Buffer("A", (n, width), F32)
    B = Buffer("B", (n, width), F32)
    T = Buffer("T", (n, width), F32)
    stages = []
    for name, src, dst, op in (("T", A, T, lambda x: x + f32(1.0)), ("B", T, B, lambda x: x * f32(2.0))):
        i, j, vi, vj = Var("i"), Var("j"), Var("vi"), Var("vj")
        block = _realize(
            name,
            (IterVar(vi, Range.from_extent(n)), IterVar(vj, Range.from_extent(width))),
            (i, j),
            (BufferRegion(src, (Range(vi, 1), Range(vj, 1))),),
            (BufferRegion(dst, (Range(vi, 1), Range(vj, 1))),),
            BufferStore(dst, op(src[vi, vj]), (vi, vj)),
        )
        stages.append(For(i, 0, n, ForKind.SERIAL, For(j, 0, width, kind, block)))
    return PrimFunc((A, B), _root(seq(*stages), alloc=(T,)), {"global_symbol": "two_stage"})


def matmul(depth: int = 8) -> PrimFunc:
    """C[i, j] = sum_k A[i, k] * W[k, j] with symbolic n and m."""
    n, m = Var("n"), Var("m")
    A = Buffer("A", (n, depth), F32)
    W = Buffer("W", (depth, m), F32)
    C = Buffer("C", (n, m), F32)
    i, j, k = Var("i"), Var("j"), Var("k")
    vi, vj, vk = Var("vi"), Var("vj"), Var("vk")
    block = _realize(
        "C",
        (
            IterVar(vi, Range.from_extent(n)),
            IterVar(vj, Range.from_extent(m)),
            IterVar(vk, Range.from_extent(depth), IterType.REDUCE),
        ),
        (i, j, k),
        (BufferRegion(A, (Range(vi, 1), Range(vk, 1))), BufferRegion(W, (Range(vk, 1), Range(vj, 1)))),
        (BufferRegion(C, (Range(vi, 1), Range(vj, 1))),),
        BufferStore(C, C[vi, vj] + A[vi, vk] * W[vk, vj], (vi, vj)),
        init=BufferStore(C, f32(0.0), (vi, vj)),
    )
    loops = For(
        i, 0, n, ForKind.SERIAL, For(j, 0, m, ForKind.SERIAL, For(k, 0, depth, ForKind.SERIAL, block))
    )
    return PrimFunc((A, W, C), _root(loops), {"global_symbol": "matmul"})


ALL_BUILDERS = {
    "rowsum": rowsum,
    "tail_scale": tail_scale,
    "tail_scale_vec": lambda: tail_scale(ForKind.VECTORIZED),
    "tail_scale_unroll": lambda: tail_scale(ForKind.UNROLLED, 4),
    "two_stage": two_stage,
    "two_stage_vec": lambda: two_stage(4, ForKind.VECTORIZED),
    "matmul": matmul,
}

# Symbolic sizes the semantic checks run at: 1, a prime, and a larger non-multiple of the split factors.
SIZES = (1, 7, 37)


def _shape_vars(func: PrimFunc) -> list[Var]:
    seen: dict[int, Var] = {}
    for p in func.buffer_params:
        for e in (*p.shape, *p.strides, p.elem_offset):
            if isinstance(e, Var):
                seen.setdefault(id(e), e)
    return list(seen.values())


def random_arguments(func: PrimFunc, size: int, rng: np.random.Generator) -> list:
    """Arrays for every buffer parameter with each symbolic dimension set to `size` (plus its position)."""
    env = {v: size + 2 * idx for idx, v in enumerate(_shape_vars(func))}
    args = []
    for p in func.params:
        if isinstance(p, Var):
            args.append(env.get(p, size))
            continue
        shape = tuple(int(evaluate(s, env)) for s in p.shape)
        dtype = p.dtype.to_numpy()
        if dtype.kind == "f":
            args.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            args.append(rng.random(shape) < 0.5)
        else:
            args.append(rng.integers(-50, 50, shape).astype(dtype))
    return args


def assert_same_meaning(before: PrimFunc, after: PrimFunc, sizes=SIZES, seed: int = 0) -> None:
    """Run both functions on the same random inputs at each size; every output must be identical."""
    verify(after)
    rng = np.random.default_rng(seed)
    for size in sizes:
        args = random_arguments(before, size, rng)
        expect = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        got = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        run(before, *expect)
        run(after, *got)
        for idx, (e, g) in enumerate(zip(expect, got)):
            if isinstance(e, np.ndarray):
                np.testing.assert_array_equal(g, e, err_msg=f"parameter {idx} differs at size {size}")


def module(func: PrimFunc) -> IRModule:
    return IRModule({str(func.attrs.get("global_symbol", "main")): func})


__all__ = [
    "rowsum",
    "tail_scale",
    "two_stage",
    "matmul",
    "ALL_BUILDERS",
    "SIZES",
    "random_arguments",
    "assert_same_meaning",
    "module",
    "f32",
    "IntImm",
]
