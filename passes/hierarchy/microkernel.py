"""The register level: an MR x NR micro-kernel as loop IR.

C[i0:i0+mr, j0:j0+NR] (+)= A[i0:i0+mr, k0:k0+kc] @ Bp[panel, k0:k0+kc, 0:NR], where Bp is B packed into
NR-wide column panels (zero padded past N) so one K step of the panel is NR contiguous floats.

The accumulators are a `local` buffer of mr * NR floats touched only at constant vector offsets, written
out statement by statement (no loops over rows or vectors). That is the shape LLVM's SROA promotes into
vector registers carried by phis around the K loop; each update is `acc + broadcast(A) * Bvec`, contracted
into an FMA with the broadcast folded into the instruction's memory operand (`{1to16}` on AVX-512).

The store has two forms: a full panel stores (or adds) whole vectors into C; the last, partial panel of a
row goes through a second local scratch buffer and a scalar loop over the valid columns, so the accumulator
buffer itself never sees a variable index (which would keep it in memory).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Broadcast, PrimExpr, Ramp, Var, const, min_expr
from shapeflow.ir.tir.buffer import Buffer, decl_buffer
from shapeflow.ir.tir.stmt import BufferStore, For, ForKind, IfThenElse, LetStmt, Stmt, seq

F32 = DataType("float32")
I64 = DataType("int64")


@dataclass(frozen=True)
class MicroKernelShape:
    """A register block: `mr` rows of C by `nr` columns (`nr // lanes` vectors of `lanes` floats)."""

    mr: int
    nr: int
    lanes: int

    @property
    def vectors(self) -> int:
        return self.nr // self.lanes

    def registers(self) -> int:
        """Vector registers the inner loop needs: accumulators, one B row, one broadcast of A."""
        return self.mr * self.vectors + self.vectors + 1

    @property
    def name(self) -> str:
        return f"{self.mr}x{self.nr}"


@dataclass(frozen=True)
class MicroKernelOperands:
    """Where one micro-kernel call reads and writes (all int64 expressions)."""

    a: Buffer  # (M, K) row-major, or a packed A panel with the same indexing
    bp: Buffer  # (NB, K, NR)
    c: Buffer  # (M, N)
    acc: Buffer  # local (MR * NR,)
    scratch: Buffer  # local (MR * NR,)
    i0: PrimExpr  # first row
    panel: PrimExpr  # B panel index; columns j0 = panel * NR
    k0: PrimExpr  # first K index
    kc: PrimExpr  # K steps
    n: PrimExpr  # columns of C (for the partial last panel)
    first: PrimExpr  # bool: this K block starts the sum (store) rather than continuing it (add)


# Independent FMA chains the register block should keep in flight: two FMA units times a latency of about
# four cycles. A block with fewer accumulators (the tails: one row of one vector has one chain) splits K
# into `ways` interleaved partial sums instead, summed at the end.
CHAINS_WANTED = 8
MAX_K_WAYS = 4


def k_ways(rows: int, vectors: int) -> int:
    """How many interleaved partial sums over K a block of `rows` x `vectors` accumulators keeps."""
    chains = rows * vectors
    return 1 if chains >= CHAINS_WANTED else min(MAX_K_WAYS, -(-CHAINS_WANTED // chains))


def local_buffers(shape: MicroKernelShape, suffix: str = "") -> tuple[Buffer, Buffer]:
    """The accumulator and scratch buffers a micro-kernel needs (allocate them once per thread)."""
    size = shape.mr * shape.nr
    acc_size = max(size, max(k_ways(r, shape.vectors) * r * shape.nr for r in range(1, shape.mr + 1)))
    acc = decl_buffer((acc_size,), "float32", f"acc{suffix}", scope="local")
    scratch = decl_buffer((size,), "float32", f"edge{suffix}", scope="local")
    return acc, scratch


def _vec(base: int | PrimExpr, lanes: int) -> Ramp:
    return Ramp(const(base, "int64") if isinstance(base, int) else base, const(1, "int64"), lanes)


def micro_kernel(shape: MicroKernelShape, rows: int, ops: MicroKernelOperands) -> Stmt:
    """Loop IR of one micro-kernel call computing `rows` (<= shape.mr) rows."""
    lanes, nv, nr = shape.lanes, shape.vectors, shape.nr
    zero = Broadcast(const(0.0, "float32"), lanes)
    ways = k_ways(rows, nv)

    def slot(r: int, v: int, w: int = 0) -> Ramp:
        return _vec(w * rows * nr + r * nr + v * lanes, lanes)

    def step(kk: PrimExpr, w: int) -> Stmt:
        b_vars = [Var(f"b{v}", F32.with_lanes(lanes)) for v in range(nv)]
        updates: list[Stmt] = []
        for r in range(rows):
            a_r = Broadcast(ops.a[ops.i0 + r, kk], lanes)
            for v in range(nv):
                acc_rv = ops.acc.load((slot(r, v, w),))
                updates.append(BufferStore(ops.acc, acc_rv + a_r * b_vars[v], (slot(r, v, w),)))
        body: Stmt = seq(updates)
        for v in reversed(range(nv)):
            body = LetStmt(b_vars[v], ops.bp[ops.panel, kk, _vec(v * lanes, lanes)], body)
        return body

    pairs = [(r, v) for r in range(rows) for v in range(nv)]
    init = [BufferStore(ops.acc, zero, (slot(r, v, w),)) for w in range(ways) for r, v in pairs]
    notes = {"hierarchy.loop": "temporal-reduction"}
    k = Var("k", I64)
    if ways == 1:
        return seq(
            init,
            For(k, 0, ops.kc, ForKind.SERIAL, step(ops.k0 + k, 0), annotations=notes),
            store_tile(shape, rows, ops),
        )
    main = For(
        k,
        0,
        ops.kc // ways,
        ForKind.SERIAL,
        seq([step(ops.k0 + k * ways + w, w) for w in range(ways)]),
        annotations=notes,
    )
    k_rest = Var("k_rest", I64)
    done = ops.kc // ways * ways
    rest = For(k_rest, 0, ops.kc - done, ForKind.SERIAL, step(ops.k0 + done + k_rest, 0))
    total = []
    for r, v in pairs:
        value = ops.acc.load((slot(r, v, 0),))
        for w in range(1, ways):
            value = value + ops.acc.load((slot(r, v, w),))
        total.append(BufferStore(ops.acc, value, (slot(r, v, 0),)))
    return seq(init, main, rest, total, store_tile(shape, rows, ops))


def store_tile(shape: MicroKernelShape, rows: int, ops: MicroKernelOperands) -> Stmt:
    """Write the accumulators to C: whole vectors for a full panel, a scalar loop for the partial one."""
    lanes, nv, nr = shape.lanes, shape.vectors, shape.nr
    j0 = ops.panel * nr

    def c_vec(r: int, v: int) -> tuple[PrimExpr, PrimExpr]:
        return (ops.i0 + r, _vec(j0 + v * lanes, lanes))

    def acc_vec(r: int, v: int) -> PrimExpr:
        return ops.acc.load((_vec(r * nr + v * lanes, lanes),))

    pairs = [(r, v) for r in range(rows) for v in range(nv)]
    put = seq([BufferStore(ops.c, acc_vec(r, v), c_vec(r, v)) for r, v in pairs])
    add = seq([BufferStore(ops.c, ops.c.load(c_vec(r, v)) + acc_vec(r, v), c_vec(r, v)) for r, v in pairs])
    full = IfThenElse(ops.first, put, add)

    spill = seq(
        [BufferStore(ops.scratch, acc_vec(r, v), (_vec(r * nr + v * lanes, lanes),)) for r, v in pairs]
    )
    r_var = Var("er", I64)
    valid = min_expr(ops.n - j0, nr)

    def edge_loop(accumulate: bool) -> For:
        j_var = Var("ej", I64)  # one variable per loop: each binding site owns its variable
        src = ops.scratch[r_var * nr + j_var]
        dst = (ops.i0 + r_var, j0 + j_var)
        value = ops.c.load(dst) + src if accumulate else src
        return For(j_var, 0, valid, ForKind.SERIAL, BufferStore(ops.c, value, dst))

    edge = seq(
        spill, For(r_var, 0, rows, ForKind.SERIAL, IfThenElse(ops.first, edge_loop(False), edge_loop(True)))
    )
    return IfThenElse(j0 + nr <= ops.n, full, edge)


EXACT_TAILS_UP_TO = 8


def tail_blocks(mr: int) -> list[int]:
    """Register-block heights compiled to cover an M tail of 1..mr-1 rows."""
    if mr <= EXACT_TAILS_UP_TO:
        return list(range(mr - 1, 0, -1))
    return [p for p in (32, 16, 8, 4, 2, 1) if p < mr]


def tail_cover(mr: int, rows: int) -> list[int]:
    """The blocks `row_dispatch` runs for a tail of `rows` (< mr) rows, largest first."""
    if rows <= 0:
        return []
    if mr <= EXACT_TAILS_UP_TO:
        return [rows]
    return [p for p in (32, 16, 8, 4, 2, 1) if rows & p]


def row_dispatch(shape: MicroKernelShape, rows: PrimExpr, ops: MicroKernelOperands) -> Stmt:
    """Run the full MR-row micro-kernel, or cover a tail of `rows` < MR rows with smaller blocks.

    Up to MR = 8 every tail height has its own block, so a tail reads the B micro-panel once. Above,
    power-of-two blocks (11 rows = 8 + 2 + 1) keep the code, and the compile time, at log2(MR) blocks."""
    if shape.mr <= EXACT_TAILS_UP_TO:
        stmt: Stmt = micro_kernel(shape, shape.mr, ops)
        for r in range(1, shape.mr):
            stmt = IfThenElse(rows == r, micro_kernel(shape, r, ops), stmt)
        return stmt
    tail: list[Stmt] = []
    for p in tail_blocks(shape.mr):
        start = rows // (2 * p) * (2 * p)  # the rows covered by the larger blocks before this one
        sub = dataclasses.replace(ops, i0=ops.i0 + start)
        tail.append(IfThenElse((rows // p) % 2 == 1, micro_kernel(shape, p, sub)))
    return IfThenElse(rows >= shape.mr, micro_kernel(shape, shape.mr, ops), seq(tail))


__all__ = [
    "MicroKernelOperands",
    "MicroKernelShape",
    "local_buffers",
    "micro_kernel",
    "row_dispatch",
    "store_tile",
    "tail_blocks",
    "tail_cover",
]
