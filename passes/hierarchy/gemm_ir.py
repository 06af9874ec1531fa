"""Top-down: the loop IR of a GEMM family, built level by level of the CPU hierarchy.

C[M, N] = A[M, K] @ B[K, N] with B packed into NR-wide panels, Bp[NB, K, NR] (NB = ceil(N / NR), zero
padded). One PrimFunc serves every M (and every N, K): the decomposition is not baked in but passed at the
call as int64 scalars that the cost model chooses for the actual shape (`pm, pn, mc, ncp, kc`).

The levels, outermost first (`LEVELS` names each loop and its class):

    threads    t   in pm * pn (* batch)     parallel            rectangle (M range, panel range) per item
    L3 / NC    jc  over panel blocks (ncp)  temporal-spatial    the KC x NC block of B stays in L2/L3
    L1 / KC    pc  over K blocks (kc)       temporal-reduction  a KC x NR micro-panel of B fits L1
    L2 / MC    ic  over row blocks (mc)     temporal-spatial    the MC x KC block of A stays in L2
    L1 / NR    jr  over panels              temporal-spatial    reuses the A block from L2
    registers  ir  over MR rows             temporal-spatial    reuses the B micro-panel from L1
    registers  k   over the K block         temporal-reduction  vector FMAs into MR x NR accumulators

Nothing assumes divisibility: every block bound is a `min` with the matrix edge, the last MR rows run a
micro-kernel specialized for the rows left, and the partial last panel is stored through a scalar loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import EQ, NE, IntImm, PrimExpr, Var, const, logical_and, min_expr, select
from shapeflow.ir.tir.buffer import Buffer, decl_buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import (
    Allocate,
    AssertStmt,
    BufferStore,
    DeclBuffer,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    Stmt,
    seq,
)
from shapeflow.passes.hierarchy.microkernel import (
    MicroKernelOperands,
    MicroKernelShape,
    local_buffers,
    row_dispatch,
)

I64 = DataType("int64")


@dataclass(frozen=True)
class LoopLevel:
    """One loop of the hierarchy: which hardware level it maps to and how its iterations relate."""

    var: str
    level: str
    kind: str  # "parallel" | "temporal-spatial" | "temporal-reduction"
    why: str


LEVELS: tuple[LoopLevel, ...] = (
    LoopLevel("t", "threads", "parallel", "work items (M range x panel range) spread over the cores"),
    LoopLevel(
        "jc", "L3", "temporal-spatial", "NC panels: the KC x NC block of B is reused by every MC block"
    ),
    LoopLevel("pc", "L1", "temporal-reduction", "KC steps: a KC x NR micro-panel of B stays in L1"),
    LoopLevel("ic", "L2", "temporal-spatial", "MC rows: the MC x KC block of A stays in L2 across panels"),
    LoopLevel("jr", "L1", "temporal-spatial", "NR panels of the block"),
    LoopLevel("ir", "registers", "temporal-spatial", "MR rows: reuse the B micro-panel from L1"),
    LoopLevel("k", "registers", "temporal-reduction", "vector FMAs into the register block"),
)
_KIND = {lv.var: lv for lv in LEVELS}

# The decomposition parameters every kernel of the family takes after its buffers, in this order.
TILE_PARAMS = ("pm", "pn", "mc", "ncp", "kc", "pack_a")


def ceil_div(a: PrimExpr, b: PrimExpr | int) -> PrimExpr:
    return (a + b - 1) // b


def _loop(name: str, var: Var, extent: PrimExpr, body: Stmt) -> For:
    level = _KIND[name]
    kind = ForKind.PARALLEL if level.kind == "parallel" else ForKind.SERIAL
    notes = {"hierarchy.level": level.level, "hierarchy.loop": level.kind}
    return For(var, const(0, "int64"), extent, kind, body, annotations=notes)


def _lets(bindings: list[tuple[Var, PrimExpr]], body: Stmt) -> Stmt:
    for var, value in reversed(bindings):
        body = LetStmt(var, value, body)
    return body


def _dim(value: int | None, name: str) -> PrimExpr:
    return Var(name, I64) if value is None else IntImm(I64, int(value))


@dataclass(frozen=True)
class GemmSignature:
    """What a kernel of the family takes: sizes (constant or symbolic), batch, and whether A is packed."""

    shape: MicroKernelShape
    n: int | None = None
    k: int | None = None
    batched: bool = False
    shared_b: bool = True  # batched only: one packed B for every batch item (a weight)


def build_gemm_func(sig: GemmSignature) -> PrimFunc:
    """The PrimFunc `gemm(A, Bp, C, pm, pn, mc, ncp, kc, pack_a)` of the signature (module docstring)."""
    mk = sig.shape
    m, n, k = Var("M", I64), _dim(sig.n, "N"), _dim(sig.k, "K")
    nb = Var("NB", I64)
    batch = Var("batch", I64) if sig.batched else None
    lead = (batch,) if batch is not None else ()
    a = decl_buffer((*lead, m, k), "float32", "A")
    c = decl_buffer((*lead, m, n), "float32", "C")
    bp_lead = () if (batch is None or sig.shared_b) else (batch,)
    bp = decl_buffer((*bp_lead, nb, k, mk.nr), "float32", "Bp")
    pm, pn, mc, ncp, kc, pack_a = (Var(p, I64) for p in TILE_PARAMS)

    # Per work item: which batch entry, which M range, which panel range.
    t = Var("t", I64)
    bi, tm, tn = Var("bi", I64), Var("tm", I64), Var("tn", I64)
    m_chunk, p_chunk = Var("m_chunk", I64), Var("p_chunk", I64)
    m_lo, m_hi, p_lo, p_hi = (Var(x, I64) for x in ("m_lo", "m_hi", "p_lo", "p_hi"))
    acc, scratch = local_buffers(mk)

    # 2-D views of this work item's batch entry: the micro-kernel indexes A[i, k], Bp[p, k, j], C[i, j].
    zero = const(0, "int64")
    a2 = Buffer("A2", (m, k), a.dtype, (), bi * m * k if batch is not None else zero, "global", a.data)
    c2 = Buffer("C2", (m, n), c.dtype, (), bi * m * n if batch is not None else zero, "global", c.data)
    bp_off = bi * nb * k * mk.nr if bp_lead else zero
    bp2 = Buffer("Bp2", (nb, k, mk.nr), bp.dtype, (), bp_off, "global", bp.data)

    jc, pc, ic, jr, ir = (Var(x, I64) for x in ("jc", "pc", "ic", "jr", "ir"))
    q_lo, q_hi, k_lo, k_len, i_lo, i_hi, i0, rows = (
        Var(x, I64) for x in ("q_lo", "q_hi", "k_lo", "k_len", "i_lo", "i_hi", "i0", "rows")
    )
    # Packing A (when `pack_a`): the MC x KC block is copied into a buffer with row stride KC, so its rows
    # no longer sit a (possibly power-of-two) K apart, which maps them onto a few cache sets. The
    # micro-kernel reads A through a view that points either at the copy or at A itself.
    packed = NE(pack_a, zero)
    ap = decl_buffer((select(packed, mc * kc, const(1, "int64")),), "float32", "Ablock")
    av_data, lda, a_off = Var("Av", DataType("handle")), Var("lda", I64), Var("a_off", I64)
    av = Buffer("Av", (m, k), a.dtype, (lda, const(1, "int64")), a_off, "global", av_data)
    r_var, kk = Var("pr", I64), Var("pk", I64)
    copy = For(
        r_var,
        zero,
        i_hi - i_lo,
        ForKind.SERIAL,
        For(
            kk, zero, k_len, ForKind.SERIAL, BufferStore(ap, a2[i_lo + r_var, k_lo + kk], (r_var * kc + kk,))
        ),
    )
    ops = MicroKernelOperands(av, bp2, c2, acc, scratch, i0, q_lo + jr, k_lo, k_len, n, EQ(pc, zero))
    micro = _lets(
        [(i0, i_lo + ir * mk.mr), (rows, min_expr(const(mk.mr, "int64"), i_hi - i0))],
        row_dispatch(mk, rows, ops),
    )
    body: Stmt = _loop("ir", ir, ceil_div(i_hi - i_lo, mk.mr), micro)
    body = _loop("jr", jr, q_hi - q_lo, body)
    view = _lets(
        [
            (av_data, select(packed, ap.data, a.data)),
            (lda, select(packed, kc, k)),
            (a_off, select(packed, zero - i_lo * kc - k_lo, a2.elem_offset)),
        ],
        DeclBuffer(av, body),
    )
    body = _loop(
        "ic",
        ic,
        ceil_div(m_hi - m_lo, mc),
        _lets(
            [(i_lo, m_lo + ic * mc), (i_hi, min_expr(m_hi, i_lo + mc))], seq(IfThenElse(packed, copy), view)
        ),
    )
    body = _loop("pc", pc, ceil_div(k, kc), _lets([(k_lo, pc * kc), (k_len, min_expr(kc, k - k_lo))], body))
    body = _loop(
        "jc",
        jc,
        ceil_div(p_hi - p_lo, ncp),
        _lets([(q_lo, p_lo + jc * ncp), (q_hi, min_expr(p_hi, q_lo + ncp))], body),
    )
    body = DeclBuffer(a2, DeclBuffer(bp2, DeclBuffer(c2, body)))
    body = Allocate(acc, Allocate(scratch, Allocate(ap, body)))
    items = pm * pn
    body = _lets(
        [
            (bi, t // items),
            (tm, (t % items) // pn),
            (tn, t % pn),
            (m_lo, tm * m_chunk),
            (m_hi, min_expr(m, m_lo + m_chunk)),
            (p_lo, tn * p_chunk),
            (p_hi, min_expr(nb, p_lo + p_chunk)),
        ],
        body,
    )
    total = items * batch if batch is not None else items
    body = _loop("t", t, total, body)
    # Each item's M range is a multiple of MR, so only the last item has an M tail.
    body = _lets([(m_chunk, ceil_div(ceil_div(m, pm), mk.mr) * mk.mr), (p_chunk, ceil_div(nb, pn))], body)
    checks = [
        AssertStmt(EQ(nb, ceil_div(n, mk.nr)), f"packed B must have ceil(N / {mk.nr}) panels"),
        AssertStmt(
            logical_and(pm >= 1, pn >= 1, mc >= 1, ncp >= 1, kc >= 1), "tile parameters must be positive"
        ),
    ]
    params = (a, bp, c, pm, pn, mc, ncp, kc, pack_a)
    name = f"gemm_{mk.name}" + ("_batched" if sig.batched else "")
    return PrimFunc(params, seq(checks, body), {"global_symbol": name, "hierarchy.micro_kernel": mk.name})


def build_pack_func(nr: int, n: int | None, k: int | None, transposed: bool, batched: bool) -> PrimFunc:
    """`pack(B, Bp)`: B (K, N) -- or W (N, K) when `transposed` -- into Bp[NB, K, NR], zero padded."""
    n_, k_ = _dim(n, "N"), _dim(k, "K")
    nb = Var("NB", I64)
    batch = Var("batch", I64) if batched else None
    lead = (batch,) if batch is not None else ()
    src = decl_buffer((*lead, n_, k_) if transposed else (*lead, k_, n_), "float32", "B")
    bp = decl_buffer((*lead, nb, k_, nr), "float32", "Bp")
    t, kk, j = Var("t", I64), Var("kk", I64), Var("j", I64)
    bi, p = Var("bi", I64), Var("p", I64)
    col = p * nr + j
    idx_lead = (bi,) if batch is not None else ()
    # Clamp the read so the padding lanes never touch memory past the matrix.
    safe = min_expr(col, n_ - 1)
    value = src.load((*idx_lead, safe, kk) if transposed else (*idx_lead, kk, safe))
    store = seq(
        [
            For(
                kk,
                0,
                k_,
                ForKind.SERIAL,
                For(
                    j,
                    0,
                    nr,
                    ForKind.SERIAL,
                    _store(bp, (*idx_lead, p, kk, j), select(col < n_, value, const(0.0, "float32"))),
                ),
            )
        ]
    )
    total = nb * batch if batch is not None else nb
    body = _lets([(bi, t // nb), (p, t % nb)], store)
    body = For(t, 0, total, ForKind.PARALLEL, body)
    check = AssertStmt(EQ(nb, ceil_div(n_, nr)), f"packed B must have ceil(N / {nr}) panels")
    name = f"pack_b{nr}" + ("_t" if transposed else "") + ("_batched" if batched else "")
    return PrimFunc((src, bp), seq(check, body), {"global_symbol": name})


def _store(buf: Buffer, idx, value) -> Stmt:
    return BufferStore(buf, value, tuple(idx))
