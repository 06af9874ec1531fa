"""Default schedule rule 1: matmul / linear / batched-matmul kernels run on the hierarchy GEMM.

`SplitGemm` runs on the fused graph module (after FuseTIR). A kernel whose first stage is a GEMM block

    C[..., i, j] = 0;  C[..., i, j] += A[..., i, k] * B[..., k, j]     (B[j, k]: a linear's weight)

becomes `call_dps_library("shapeflow.gemm.<kind>", (A, B))` producing C, followed, when FuseOps had fused an
elementwise epilogue into the kernel (bias, gelu, residual add, scaling), by a `call_tir` of the rest of the
kernel, which reads C as its first input. We split rather than keep the fused kernel because the fused one is
a naive loop nest (a scheduled epilogue costs one pass over C; the naive GEMM is 10-50x slower than the
hierarchy's). Kinds (`GEMM_KINDS`):

- "dense":   B is a 2-D (N, K) weight, A (..., M, K) is flattened to rows (build_dense);
- "gemm":    B is a 2-D (K, N) matrix shared by every row of A (build_gemm);
- "batched": B is (..., K, N) with the same leading dims as A (build_batched_gemm, B packed per call).

The VM (runtime/vm/gemm_steps.py) calls the kernel; a CONSTANT B is packed into the micro-kernels' layout
once when the program is loaded (compile() loads it, and so does loading an artifact, which stores the
unpacked weight), never per call. A B that arrives at run time (a parameter, an activation) is packed per
call, so the call also carries the GEMM stage alone as a loop-nest kernel ("<kernel>_small_m") that the VM
runs instead for a few rows (`SMALL_M_FALLBACK`, measured). A kernel that does not match exactly (other
dtypes, broadcasting batch dims, predicates, ...) is left alone. A kernel's scalar params (symbolic dims
its buffers do not bind, e.g. a strided conv's output H and W) go to its epilogue; with a run-time B such
a kernel is left alone (the small-M fallback is called without them). The same pass schedules the
conv-as-GEMM patch kernels and relabels convolutions left as loop nests (passes/graph/conv_gemm.py).
compile() applies the pass at opt_level >= 1 and re-plans storage after it (the GEMM outputs are new
intermediates).
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from shapeflow.errors import Error, UnsupportedError
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.functor import collect
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.ops.dps import get_library_function, register_library_function
from shapeflow.ir.graph.ops.registry import get_op
from shapeflow.ir.graph.types import TensorType
from shapeflow.ir.module import IRModule
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Block, BlockRealize, BufferStore, For, ForKind, IterType, SeqStmt
from shapeflow.passes.infra import Pass, PassContext, register_pass

F32 = DataType("float32")
LIBRARY_PREFIX = "shapeflow.gemm."
GEMM_KINDS = ("dense", "gemm", "batched")
# Rows (M) up to which a matmul with a run-time B runs its plain loop nest instead of packing B per call.
# Measured (one thread, znver5), loop nest vs pack + GEMM, ms: dense (N, K) = (3072, 768) at M = 1 / 8 / 16 /
# 32: 0.16 / 0.92 / 1.82 / 3.69 vs 1.74 / 1.89 / 2.01 / 2.46; (768, 768) crosses at 16 too. Packing a
# dense weight with K > N (rows of W longer than its columns) is ~3x slower: (768, 3072) at M = 32 / 48 /
# 64: 3.34 / 5.92 / 11.3 vs 5.25 / 5.85 / 7.47, so those layers switch at 48.
SMALL_M_FALLBACK = 16
SMALL_M_FALLBACK_LONG_K = 48


def _fallback_rows(kind: str, w_type: TensorType) -> int:
    n, k = (w_type.shape[0], w_type.shape[1]) if kind == "dense" else (None, None)
    if isinstance(n, E.IntImm) and isinstance(k, E.IntImm) and k.value > n.value:
        return SMALL_M_FALLBACK_LONG_K
    return SMALL_M_FALLBACK


@dataclasses.dataclass(frozen=True)
class GemmMatch:
    """A kernel's leading GEMM stage: which params are A and B, the C buffer, the rest of the kernel."""

    kind: str
    a: int  # index of A among the PrimFunc's params
    b: int
    c: Buffer
    rest: tuple  # the statements after the GEMM nest (the fused epilogue), possibly empty


# ---------------------------------------------------------------------------------------------
# Recognising the GEMM block
# ---------------------------------------------------------------------------------------------


def _same(a, b) -> bool:
    return structural_equal(a, b)


def _loop_nest(stmt) -> tuple[list[For], object]:
    loops = []
    while isinstance(stmt, For):
        loops.append(stmt)
        stmt = stmt.body
    return loops, stmt


def _root(func: PrimFunc) -> Block | None:
    body = func.body
    if isinstance(body, BlockRealize) and not body.iter_values:
        return body.block
    return None


def _gemm_operands(
    block: Block, c: Buffer, spatial: list, kv
) -> tuple[str, E.BufferLoad, E.BufferLoad] | None:
    body = block.body
    if not isinstance(body, BufferStore) or body.buffer is not c or not isinstance(body.value, E.Add):
        return None
    acc, prod = body.value.a, body.value.b
    if isinstance(prod, E.BufferLoad) and prod.buffer is c:
        acc, prod = prod, acc
    if not (isinstance(acc, E.BufferLoad) and acc.buffer is c and list(acc.indices) == spatial):
        return None
    if not isinstance(prod, E.Mul):
        return None
    batch, i, j = spatial[:-2], spatial[-2], spatial[-1]
    for a, b in ((prod.a, prod.b), (prod.b, prod.a)):
        if not (isinstance(a, E.BufferLoad) and isinstance(b, E.BufferLoad)):
            continue
        if list(a.indices) != [*batch, i, kv] or a.buffer.dtype != F32 or b.buffer.dtype != F32:
            continue
        idx = list(b.indices)
        if idx == [j, kv] and b.buffer.ndim == 2:
            return "dense", a, b
        if idx == [kv, j] and b.buffer.ndim == 2:
            return "gemm", a, b
        if batch and idx == [*batch, kv, j]:
            return "batched", a, b
    return None


def match_gemm(func: PrimFunc) -> GemmMatch | None:
    """The GEMM stage at the start of `func` (see the module docstring), or None."""
    root = _root(func)
    if root is None:
        return None
    stmts = list(root.body.seq) if isinstance(root.body, SeqStmt) else [root.body]
    loops, realize = _loop_nest(stmts[0])
    if not isinstance(realize, BlockRealize) or not loops:
        return None
    block = realize.block
    if block.alloc_buffers or not isinstance(realize.predicate, E.IntImm) or not realize.predicate.value:
        return None
    if any(f.kind != ForKind.SERIAL or not _is_zero(f.min) for f in loops):
        return None
    if list(realize.iter_values) != [f.loop_var for f in loops] or len(loops) != len(block.iter_vars):
        return None
    kinds = [iv.iter_type for iv in block.iter_vars]
    if kinds[-1] != IterType.REDUCE or any(t != IterType.SPATIAL for t in kinds[:-1]) or len(kinds) < 3:
        return None
    if any(
        not _is_zero(iv.dom.min) or not _same(iv.dom.extent, f.extent)
        for iv, f in zip(block.iter_vars, loops)
    ):
        return None
    spatial = [iv.var for iv in block.iter_vars[:-1]]
    kv = block.iter_vars[-1].var
    init = block.init
    if not isinstance(init, BufferStore) or list(init.indices) != spatial:
        return None
    c = init.buffer
    if c.dtype != F32 or not isinstance(init.value, E.FloatImm) or init.value.value != 0.0:
        return None
    found = _gemm_operands(block, c, spatial, kv)
    if found is None:
        return None
    kind, a, b = found
    params = list(func.params)
    ids = [id(p) for p in params]
    if id(a.buffer) not in ids or id(b.buffer) not in ids or a.buffer is b.buffer:
        return None
    doms = [iv.dom.extent for iv in block.iter_vars]
    n_dim = b.buffer.shape[0] if kind == "dense" else b.buffer.shape[-1]
    k_dim = b.buffer.shape[1] if kind == "dense" else b.buffer.shape[-2]
    exact = [
        *zip(c.shape, doms[:-1]),
        *zip(a.buffer.shape, [*doms[:-2], doms[-1]]),
        (n_dim, doms[-2]),
        (k_dim, doms[-1]),
    ]
    if kind == "batched":
        exact += list(zip(b.buffer.shape[:-2], doms[:-3]))
    if len(c.shape) != len(spatial) or not all(_same(x, y) for x, y in exact):
        return None
    if any(buf.strides or not _is_zero(buf.elem_offset) for buf in (a.buffer, b.buffer, c)):
        return None
    rest = tuple(stmts[1:])
    if id(c) in ids:
        if rest or ids.index(id(c)) != len(params) - 1:
            return None
    elif all(x is not c for x in root.alloc_buffers) or not rest:
        return None
    return GemmMatch(kind, ids.index(id(a.buffer)), ids.index(id(b.buffer)), c, rest)


def _is_zero(x) -> bool:
    return isinstance(x, E.IntImm) and x.value == 0


def epilogue_func(func: PrimFunc, m: GemmMatch) -> PrimFunc | None:
    """`func` without its GEMM stage: C becomes the first parameter; inputs the rest does not read go."""
    from shapeflow.ir.tir.verify import verify  # noqa: PLC0415

    root = _root(func)
    rest = m.rest[0] if len(m.rest) == 1 else SeqStmt(m.rest)
    used = {id(x.buffer) for x in collect(rest, (E.BufferLoad, BufferStore))}
    params = [m.c]
    for p in func.params:
        if isinstance(p, E.Var) or id(p) in used:
            params.append(p)
    allocs = tuple(b for b in root.alloc_buffers if b is not m.c)
    new_root = dataclasses.replace(root, body=rest, alloc_buffers=allocs)
    out = PrimFunc(tuple(params), dataclasses.replace(func.body, block=new_root), dict(func.attrs))
    try:
        verify(out)
    except Error:
        return None
    return out


def gemm_only_func(func: PrimFunc, m: GemmMatch) -> PrimFunc:
    """The GEMM stage of `func` alone, as a kernel (A, B, C) -> C: the small-M fallback of a dense layer."""
    root = _root(func)
    stmts = list(root.body.seq) if isinstance(root.body, SeqStmt) else [root.body]
    params = (func.params[m.a], func.params[m.b], m.c)
    new_root = dataclasses.replace(root, body=stmts[0], alloc_buffers=())
    attrs = {k: v for k, v in func.attrs.items() if k != "global_symbol"}
    return PrimFunc(params, dataclasses.replace(func.body, block=new_root), attrs)


# ---------------------------------------------------------------------------------------------
# The graph rewrite
# ---------------------------------------------------------------------------------------------


def _rewrite_binding(
    b: G.Binding, mod: IRModule, new_funcs: dict, epilogues: dict, names: set
) -> list[G.Binding] | None:
    """`b` as GEMM call (+ epilogue call) when its kernel matches; new kernels go into `new_funcs`,
    `epilogues` maps a split kernel's name (and ("gemm_only", name)) to its epilogue's and its small-M
    fallback's (one of each per kernel)."""
    value = b.value
    if not (isinstance(b, G.VarBinding) and isinstance(value, G.Call) and isinstance(value.op, G.Op)):
        return None
    if value.op.name != "call_tir":
        return None
    # The kernel's scalar params (symbolic dims its buffers' shapes do not bind, e.g. the H and W of a
    # strided conv's output) go to the epilogue; the GEMM needs none, but the small-M fallback kernel
    # (called with A, B, C only) could, so a run-time B with them is left alone.
    scalars = value.args[2:]
    func = mod.functions.get(value.args[0].name)
    if not isinstance(func, PrimFunc):
        return None
    m = match_gemm(func)
    if m is None:
        return None
    inputs = list(value.args[1].fields)
    a, w = inputs[m.a], inputs[m.b]
    a_type, w_type = a.type, w.type
    if not (isinstance(a_type, TensorType) and isinstance(w_type, TensorType)):
        return None
    if a_type.shape is None or w_type.shape is None or a_type.dtype != F32 or w_type.dtype != F32:
        return None
    n = w_type.shape[0] if m.kind == "dense" else w_type.shape[-1]
    c_type = TensorType((*a_type.shape[:-1], n), "float32")
    lib = G.ExternFunc(LIBRARY_PREFIX + m.kind)
    attrs = {}
    if not isinstance(w, G.Constant):
        if scalars:
            return None
        # A B that arrives at run time is packed per call: for a few rows (per batch entry) the plain loop
        # nest is faster than packing, so the VM keeps it at hand.
        fallback = epilogues.get(("gemm_only", value.args[0].name))
        if fallback is None:
            fallback = _fresh(f"{value.args[0].name}_small_m", names)
            new_funcs[fallback] = gemm_only_func(func, m)
            epilogues[("gemm_only", value.args[0].name)] = fallback
        attrs = {"fallback": fallback, "fallback_max_rows": _fallback_rows(m.kind, w_type)}
    if not m.rest:
        call = G.Call(get_op("call_dps_library"), (lib, G.Tuple((a, w))), attrs, (value.type_args[0],))
        return [G.VarBinding(b.var, call)]
    name = epilogues.get(value.args[0].name)
    if name is None:
        epi = epilogue_func(func, m)
        if epi is None:
            return None
        name = _fresh(f"{value.args[0].name}_epilogue", names)
        new_funcs[name] = epi
        epilogues[value.args[0].name] = name
    epi = new_funcs[name]
    tmp_cls = type(b.var) if isinstance(b.var, G.DataflowVar) else G.GraphVar
    tmp = tmp_cls(_fresh(f"{b.var.name}_gemm", names), c_type)
    call = G.Call(get_op("call_dps_library"), (lib, G.Tuple((a, w))), attrs, (c_type,))
    kept_ids = {id(p) for p in epi.params}
    kept = [x for p, x in zip(func.params, inputs) if isinstance(p, Buffer) and id(p) in kept_ids]
    args = (G.GlobalName(name), G.Tuple((tmp, *kept)), *scalars)
    epi_call = G.Call(value.op, args, value.attrs, value.type_args)
    return [G.VarBinding(tmp, call), G.VarBinding(b.var, epi_call)]


def _fresh(base: str, names: set) -> str:
    name, i = base, 0
    while name in names:
        i += 1
        name = f"{base}_{i}"
    names.add(name)
    return name


def _binding_names(func: G.GraphFunction) -> set:
    names = {p.name for p in func.params}
    if isinstance(func.body, G.SeqExpr):
        names |= {b.var.name for blk in func.body.blocks for b in blk.bindings}
    return names


@register_pass
@dataclasses.dataclass(frozen=True)
class SplitGemm(Pass):
    """Matmul/linear kernels to hierarchy GEMM library calls (+ their fused epilogue); module docstring."""

    name = "graph.split_gemm"

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        from shapeflow.passes.graph.conv_gemm import schedule_direct_conv, schedule_patches  # noqa: PLC0415
        from shapeflow.passes.graph.op_pattern import analyze_op_pattern  # noqa: PLC0415

        new_funcs: dict = {}
        epilogues: dict = {}
        names = set(mod.functions)
        functions = dict(mod.functions)
        for fname, func in mod.items():
            if not isinstance(func, G.GraphFunction) or not isinstance(func.body, G.SeqExpr):
                continue
            local = names | _binding_names(func)
            blocks = []
            for blk in func.body.blocks:
                out = []
                for b in blk.bindings:
                    out.extend(_rewrite_binding(b, mod, new_funcs, epilogues, local) or [b])
                blocks.append(dataclasses.replace(blk, bindings=tuple(out)))
            names |= set(new_funcs)
            body = dataclasses.replace(func.body, blocks=tuple(blocks))
            functions[fname] = dataclasses.replace(func, body=body)
        for name, f in new_funcs.items():
            attrs = {**f.attrs, "global_symbol": name}
            attrs["op_pattern"] = analyze_op_pattern(dataclasses.replace(f, attrs={}))
            functions[name] = dataclasses.replace(f, attrs=attrs)
        # The conv-as-GEMM patch kernels that feed these GEMMs get their own schedule, and convolutions
        # left as loop nests (grouped, depthwise) the row-parallel rule (conv_gemm.py).
        for name, f in list(functions.items()):
            scheduled = schedule_patches(f) or schedule_direct_conv(f)
            if scheduled is not None:
                functions[name] = scheduled
        return IRModule(functions, mod.attrs)


# ---------------------------------------------------------------------------------------------
# Kernels and the library functions (the graph interpreter and call_lib use these too)
# ---------------------------------------------------------------------------------------------

_BUILDERS = {"dense": "build_dense", "gemm": "build_gemm", "batched": "build_batched_gemm"}
_KERNEL_LOCK = threading.Lock()
_KERNELS: dict[str, object] = {}


def gemm_kernel(kind: str):
    """The hierarchy GemmKernel of `kind`, one symbolic (M, N, K) family per kind and process: one build
    serves every linear of a model (a family costs seconds of LLVM time; constant N/K gain little)."""
    from shapeflow.passes import hierarchy  # noqa: PLC0415

    with _KERNEL_LOCK:
        found = _KERNELS.get(kind)
    if found is None:
        found = getattr(hierarchy, _BUILDERS[kind])(None, None)
        with _KERNEL_LOCK:
            _KERNELS.setdefault(kind, found)
    return found


def run_gemm(kind: str, kernel, a: np.ndarray, b, c: np.ndarray) -> None:
    """C = A @ B for the kind's layouts; `b` an array (packed per call) or PackedWeights (packed once)."""
    if not c.flags.c_contiguous:  # reshaping would copy, and the result would not reach C
        raise Error(f"GEMM output must be C-contiguous, got strides {c.strides}")
    if c.size == 0:
        return
    k = a.shape[-1]
    if k == 0:
        c.fill(0.0)
        return
    n = c.shape[-1]
    if kind == "batched":
        m = a.shape[-2]
        kernel(a.reshape(-1, m, k), b.reshape(-1, k, n), c.reshape(-1, m, n))
    else:
        kernel(a.reshape(-1, k), b, c.reshape(-1, n))


def _library_function(kind: str):
    def fn(a, b, c):
        run_gemm(kind, gemm_kernel(kind), np.ascontiguousarray(a), np.ascontiguousarray(b), c)

    return fn


def _register() -> None:
    for kind in GEMM_KINDS:
        try:
            get_library_function(LIBRARY_PREFIX + kind)
        except UnsupportedError:
            register_library_function(LIBRARY_PREFIX + kind, _library_function(kind))


_register()
