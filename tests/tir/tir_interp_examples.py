"""Hand-built PrimFuncs shared by the interpreter and verifier tests (built with the node constructors, so
the tests do not depend on the text parser)."""

from __future__ import annotations

from shapeflow.ir import FloatImm, IntImm, Var
from shapeflow.ir.tir import (
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    For,
    ForKind,
    IterType,
    IterVar,
    PrimFunc,
    Range,
    decl_buffer,
    seq,
)


def f32(value: float) -> FloatImm:
    return FloatImm("float32", value)


def i64(value: int) -> IntImm:
    return IntImm("int64", value)


def serial(var: Var, extent, body, kind: ForKind = ForKind.SERIAL) -> For:
    return For(var, i64(0), extent, kind, body)


def root(body) -> BlockRealize:
    """The root block every TensorIR function body sits in."""
    return BlockRealize((), IntImm("bool", 1), Block("root", (), (), (), body))


def elementwise() -> PrimFunc:
    """B[i] = A[i] * 2 + 1 over a symbolic n."""
    n = Var("n")
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    i = Var("i")
    return PrimFunc((A, B), serial(i, n, BufferStore(B, A[i] * f32(2.0) + f32(1.0), (i,))))


def rowsum(dtype: str = "int32") -> PrimFunc:
    """B[i] = sum_k A[i, k] as a block with a reduction and an init, over symbolic n and m."""
    n, m = Var("n"), Var("m")
    A = decl_buffer((n, m), dtype, "A")
    B = decl_buffer((n,), dtype, "B")
    i, k, vi, vk = Var("i"), Var("k"), Var("vi"), Var("vk")
    zero = IntImm(dtype, 0) if "int" in dtype else FloatImm(dtype, 0.0)
    block = Block(
        "B",
        (IterVar(vi, Range.from_extent(n)), IterVar(vk, Range.from_extent(m), IterType.REDUCE)),
        (BufferRegion(A, (Range(vi, i64(1)), Range(vk, i64(1)))),),
        (BufferRegion(B, (Range(vi, i64(1)),)),),
        BufferStore(B, B[vi] + A[vi, vk], (vi,)),
        init=BufferStore(B, zero, (vi,)),
    )
    body = serial(i, n, serial(k, m, BlockRealize((i, k), IntImm("bool", 1), block)))
    return PrimFunc((A, B), root(body), {"global_symbol": "rowsum"})


def matmul(dtype: str = "float32") -> PrimFunc:
    """C[i, j] = sum_k A[i, k] * B[k, j], all three extents symbolic."""
    m, n, kk = Var("m"), Var("n"), Var("k")
    A = decl_buffer((m, kk), dtype, "A")
    B = decl_buffer((kk, n), dtype, "B")
    C = decl_buffer((m, n), dtype, "C")
    i, j, k = Var("i"), Var("j"), Var("k_loop")
    vi, vj, vk = Var("vi"), Var("vj"), Var("vk")
    zero = IntImm(dtype, 0) if "int" in dtype else FloatImm(dtype, 0.0)
    block = Block(
        "C",
        (
            IterVar(vi, Range.from_extent(m)),
            IterVar(vj, Range.from_extent(n)),
            IterVar(vk, Range.from_extent(kk), IterType.REDUCE),
        ),
        (BufferRegion.full(A), BufferRegion.full(B)),
        (BufferRegion(C, (Range(vi, i64(1)), Range(vj, i64(1)))),),
        BufferStore(C, C[vi, vj] + A[vi, vk] * B[vk, vj], (vi, vj)),
        init=BufferStore(C, zero, (vi, vj)),
    )
    nest = serial(i, m, serial(j, n, serial(k, kk, BlockRealize((i, j, k), IntImm("bool", 1), block))))
    return PrimFunc((A, B, C), root(nest), {"global_symbol": "matmul"})


def well_formed_examples() -> list[PrimFunc]:
    return [elementwise(), rowsum(), rowsum("float32"), matmul(), matmul("int64")]


__all__ = ["f32", "i64", "serial", "root", "elementwise", "rowsum", "matmul", "well_formed_examples", "seq"]
