"""GEMM kernels for every M from one build: `build_gemm`, `build_dense`, `build_batched_gemm`.

    kernel = build_gemm(N=768, K=768)          # or N=None / K=None for symbolic sizes
    W = kernel.pack_weights(B)                 # once, at model compile/load time
    kernel(A, W, C)                            # any M; C = A @ B
    print(kernel.explain(M=100))               # the decomposition the cost model picks, and why

A build compiles the kernel family once: one symbolic-M kernel per register block chosen from the measured
micro-kernel table (`measure.load_or_measure`, cached per machine), all sharing the packed layout of B
(panels of NR columns). At a call the cost model picks the kernel and the tile scalars for the actual shape
(memoized per shape) and the kernel runs with them: no per-shape compilation or profiling.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

import numpy as np

from shapeflow.errors import ShapeError, UnsupportedError
from shapeflow.passes.hierarchy.cost_model import CostModel, Decomposition, pick_family
from shapeflow.passes.hierarchy.gemm_ir import LEVELS, GemmSignature, build_gemm_func, build_pack_func
from shapeflow.passes.hierarchy.hardware import CPUModel, host_cpu_model
from shapeflow.passes.hierarchy.measure import MicroKernelResult, load_or_measure
from shapeflow.passes.hierarchy.microkernel import MicroKernelShape, tail_cover
from shapeflow.runtime.threadpool import get_num_threads

log = logging.getLogger("shapeflow.hierarchy")

_TABLES: dict[str, tuple[MicroKernelResult, ...]] = {}
_TABLE_LOCK = threading.Lock()


def microkernel_table(hw: CPUModel | None = None) -> tuple[MicroKernelResult, ...]:
    """The measured micro-kernel table of `hw` (the host by default): once per process, from the disk
    cache when valid (see measure.py)."""
    hw = hw or host_cpu_model()
    with _TABLE_LOCK:
        if hw.key() not in _TABLES:
            _TABLES[hw.key()] = tuple(load_or_measure(hw))
        return _TABLES[hw.key()]


def seed_microkernel_table(hw_key: str, table) -> bool:
    """Use `table` as the micro-kernel table of the hardware `hw_key` for this process, unless one is already
    loaded (an artifact carries the table its GEMM families were chosen from, so loading it measures nothing).
    True if it was taken."""
    table = tuple(table)
    if not table or any(not (r.gflops > 0) for r in table):
        return False
    with _TABLE_LOCK:
        if hw_key in _TABLES:
            return False
        _TABLES[hw_key] = table
        return True


@dataclass(frozen=True)
class PackedWeights:
    """B packed into NR-column panels, `data[p, k, j] = B[k, p * NR + j]` (zeros past N)."""

    data: np.ndarray  # (NB, K, NR), or (batch, NB, K, NR) for per-batch weights
    n: int
    k: int
    nr: int


def _check_array(name: str, x, ndim: int, fn: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype != np.float32:
        raise ShapeError("wrong dtype", function=fn, parameter=name, expected="float32", actual=str(x.dtype))
    if x.ndim != ndim:
        raise ShapeError(
            "wrong rank", function=fn, parameter=name, dimension=None, expected=ndim, actual=x.ndim
        )
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


class GemmKernel:
    """C = A @ B (or A @ W.T for `dense`) with symbolic M; see the module docstring."""

    def __init__(
        self,
        n: int | None = None,
        k: int | None = None,
        *,
        transposed: bool = False,
        batched: bool = False,
        hardware: CPUModel | None = None,
        table: tuple[MicroKernelResult, ...] | None = None,
        mrs: tuple[int, ...] | None = None,
        nr: int | None = None,
    ):
        from shapeflow.build import build_cached  # noqa: PLC0415

        self.hw = hardware or host_cpu_model()
        self.table = tuple(table) if table is not None else microkernel_table(self.hw)
        fam_nr, fam_mrs = pick_family(self.table, self.hw)
        self.nr = nr or fam_nr
        self.mrs = tuple(mrs) if mrs else fam_mrs
        self.n, self.k = n, k
        self.transposed, self.batched = transposed, batched
        self.model = CostModel(self.hw, self.table, self.mrs, self.nr, get_num_threads())
        self.name = ("batched_" if batched else "") + ("dense" if transposed else "gemm")
        lanes = self.hw.lanes(4)
        if self.nr % lanes:
            raise UnsupportedError(f"NR={self.nr} is not a multiple of the SIMD width ({lanes} lanes)")
        funcs = {}
        for mr in self.mrs:
            shape = MicroKernelShape(mr, self.nr, lanes)
            funcs[f"gemm_{mr}"] = build_gemm_func(GemmSignature(shape, n, k, batched, shared_b=True))
            if batched:
                funcs[f"gemm_{mr}_per_batch"] = build_gemm_func(GemmSignature(shape, n, k, True, False))
        funcs["pack"] = build_pack_func(self.nr, n, k, transposed, batched=False)
        if batched:
            funcs["pack_batched"] = build_pack_func(self.nr, n, k, transposed, batched=True)
        # What decides the family's code, besides the toolchain: its object code is cached on disk under it
        # (shapeflow.build.build_cached), so a family is compiled once per machine, not once per process.
        self.family_key = {
            "family": self.name,
            "n": n,
            "k": k,
            "nr": self.nr,
            "mrs": list(self.mrs),
            "lanes": lanes,
        }
        self.library = build_cached(funcs, "cpu", lower=False, key=self.family_key)
        self._kernels = {mr: self.library[f"gemm_{mr}"] for mr in self.mrs}
        self._choices: dict[tuple[int, ...], Decomposition] = {}
        # Native entries without the generic argument checks, for `_fast_call` (which checks everything
        # those checks would): (entry, takes_ids, names of the symbolic dims in the order it takes them).
        self._entries = {}
        for mr, kernel in self._kernels.items():
            entry, takes_ids = kernel.unchecked_entry
            self._entries[mr] = (entry, takes_ids, tuple(v.name for v in kernel.abi.symbolic), kernel)

    def cache_entry(self):
        """`(key, entry)`: this family's object code as the object cache holds it (an artifact carries it, so
        loading one compiles nothing; see shapeflow.codegen.llvm.object_cache)."""
        from shapeflow.build import family_cache_key, library_cache_entry  # noqa: PLC0415

        return family_cache_key(self.family_key), library_cache_entry(self.library)

    # -- weights ----------------------------------------------------------------------------------
    def pack_weights(self, b) -> PackedWeights:
        """Pack B (K, N) -- W (N, K) for `dense` -- into the kernels' layout. Do it once per weight."""
        fn = f"{self.name}.pack_weights"
        batched = self.batched and np.ndim(b) == 3  # one weight per batch entry
        b = _check_array("B", b, 3 if batched else 2, fn)
        n, k = (b.shape[-2], b.shape[-1]) if self.transposed else (b.shape[-1], b.shape[-2])
        self._check_nk(n, k, fn, "B")
        nb = -(-n // self.nr)
        out = np.empty((*b.shape[:-2], nb, k, self.nr), np.float32)
        self.library["pack_batched" if batched else "pack"](b, out)
        return PackedWeights(out, n, k, self.nr)

    def _check_nk(self, n: int, k: int, fn: str, param: str) -> None:
        for dim, want, got in (("N", self.n, n), ("K", self.k, k)):
            if want is not None and want != got:
                raise ShapeError(
                    f"{dim} differs from the compiled size",
                    function=fn,
                    parameter=param,
                    expected=want,
                    actual=got,
                )

    # -- selection --------------------------------------------------------------------------------
    def choose(self, m: int, n: int | None = None, k: int | None = None, batch: int = 1) -> Decomposition:
        """The decomposition the cost model picks for this shape (memoized)."""
        n = self.n if n is None else n
        k = self.k if k is None else k
        if n is None or k is None:
            raise UnsupportedError(f"{self.name}: N and K are symbolic; pass them to choose/explain")
        threads = get_num_threads()
        key = (m, n, k, batch, threads)
        found = self._choices.get(key)
        if found is None:
            model = (
                self.model
                if threads == self.model.threads
                else dataclasses.replace(self.model, threads=threads)
            )
            found = model.choose(m, n, k, batch)
            if len(self._choices) > 4096:
                self._choices.clear()
            self._choices[key] = found
            log.debug(
                "%s M=%d N=%d K=%d batch=%d threads=%d: %s",
                self.name,
                m,
                n,
                k,
                batch,
                threads,
                found.summary(),
            )
        return found

    def explain(self, M: int, N: int | None = None, K: int | None = None, batch: int = 1) -> str:  # noqa: N803
        """What runs for this shape: the hardware, each level's loops and the chosen tiles, the runners-up."""
        d = self.choose(M, N, K, batch)
        n = self.n if N is None else N
        k = self.k if K is None else K
        extents = {
            "t": f"{batch * d.pm * d.pn} work items over {min(self.hw.cores, get_num_threads())} threads",
            "jc": f"NC = {d.ncp * d.nr} columns",
            "pc": f"KC = {d.kc} of K = {k}",
            "ic": f"MC = {d.mc} rows",
            "jr": f"NR = {d.nr} columns (ceil({n}/{d.nr}) = {-(-n // d.nr)} panels)",
            "ir": f"MR = {d.mr} rows (M tail of {M % d.mr}: blocks {tail_cover(d.mr, M % d.mr)})",
            "k": f"{d.kc} vector FMA steps",
        }
        lines = [f"{self.name} M={M} N={n} K={k}" + (f" batch={batch}" if batch > 1 else "")]
        lines.append("chosen: " + d.summary())
        lines.append("terms: " + ", ".join(f"{key}={value:.3g}" for key, value in d.terms.items()))
        lines.append("levels (outermost first):")
        for lv in LEVELS:
            lines.append(f"  {lv.var:<3} {lv.level:<9} {lv.kind:<19} {extents[lv.var]}")
        lines.append("runners-up:")
        model = dataclasses.replace(self.model, threads=get_num_threads())
        for alt in model.candidates(M, n, k, batch)[1:4]:
            lines.append("  " + alt.summary())
        lines.append(self.hw.describe())
        return "\n".join(lines)

    # -- calls ------------------------------------------------------------------------------------
    def __call__(self, a, b, c=None):
        """C = A @ B; `b` is PackedWeights (from `pack_weights`) or a plain matrix (packed per call)."""
        if c is not None and self._fast_call(a, b, c):
            return c
        fn = self.name
        nd = 3 if self.batched else 2
        a = _check_array("A", a, nd, fn)
        if not isinstance(b, PackedWeights):
            b = self.pack_weights(b)
        elif b.nr != self.nr:
            raise ShapeError(
                "packed for another kernel",
                function=fn,
                parameter="B",
                expected=f"NR={self.nr}",
                actual=f"NR={b.nr}",
            )
        m, k = a.shape[-2], a.shape[-1]
        self._check_nk(b.n, b.k, fn, "B")
        if k != b.k:
            raise ShapeError(
                "K of A and B differ", function=fn, parameter="A", dimension=nd - 1, expected=b.k, actual=k
            )
        batch = a.shape[0] if self.batched else 1
        if b.data.ndim == 4 and b.data.shape[0] != batch:
            raise ShapeError(
                "batch sizes differ",
                function=fn,
                parameter="B",
                dimension=0,
                expected=batch,
                actual=b.data.shape[0],
            )
        out_shape = (*a.shape[:-2], m, b.n)
        if c is None:
            c = np.empty(out_shape, np.float32)
        elif c.shape != out_shape or c.dtype != np.float32 or not c.flags.c_contiguous:
            raise ShapeError(
                "wrong output",
                function=fn,
                parameter="C",
                expected=f"float32 C-contiguous {out_shape}",
                actual=f"{c.dtype} {c.shape}",
            )
        if k == 0:
            c.fill(0.0)
            return c
        d = self.choose(m, b.n, k, batch)
        name = f"gemm_{d.mr}" + ("_per_batch" if b.data.ndim == 4 else "")
        kernel = self._kernels[d.mr] if name == f"gemm_{d.mr}" else self.library[name]
        kernel(a, b.data, c, *d.kernel_args())
        return c

    def _fast_call(self, a, b, c) -> bool:
        """The common call (2-D A and C, packed weights, all float32 C-contiguous and consistent) straight
        into native code; False when anything differs, and the checked path then explains what."""
        if (
            self.batched
            or type(a) is not np.ndarray
            or type(b) is not PackedWeights
            or type(c) is not np.ndarray
        ):
            return False
        data = b.data
        if not (
            a.dtype == _F32 and c.dtype == _F32 and data.dtype == _F32 and a.ndim == 2 and data.ndim == 3
        ):
            return False
        if not (
            a.flags.c_contiguous and c.flags.c_contiguous and c.flags.writeable and data.flags.c_contiguous
        ):
            return False
        m, k = a.shape
        n, nr = b.n, self.nr
        nb = -(-n // nr)
        if k == 0 or k != b.k or c.shape != (m, n) or data.shape != (nb, k, nr) or b.nr != nr:
            return False
        if (self.n is not None and n != self.n) or (self.k is not None and k != self.k):
            return False
        d = self._choices.get((m, n, k, 1, get_num_threads())) or self.choose(m, n, k)
        entry, takes_ids, names, kernel = self._entries[d.mr]
        dims = {"M": m, "N": n, "K": k, "NB": nb}
        if takes_ids:
            arrays = (id(a), id(data), id(c))
        else:
            arrays = (a.ctypes.data, data.ctypes.data, c.ctypes.data)
        status = entry(*arrays, *d.kernel_args(), *(dims[x] for x in names))
        if status:
            kernel.raise_status(status)
        return True


_F32 = np.dtype(np.float32)
_FAMILIES: dict[tuple, GemmKernel] = {}


def _cached(key: tuple, make) -> GemmKernel:
    with _TABLE_LOCK:
        found = _FAMILIES.get(key)
    if found is None:
        found = make()
        with _TABLE_LOCK:
            _FAMILIES.setdefault(key, found)
    return found


def build_gemm(
    N: int | None = None,  # noqa: N803
    K: int | None = None,  # noqa: N803
    dtype: str = "float32",
    *,
    hardware: CPUModel | None = None,
    table: tuple[MicroKernelResult, ...] | None = None,
) -> GemmKernel:
    """C[M, N] = A[M, K] @ B[K, N] for any M; N and K constant or None (symbolic).

    `hardware` and `table` default to the host and its measured micro-kernel table."""
    return _build(N, K, dtype, hardware, table, transposed=False, batched=False)


def build_dense(
    N: int | None = None,  # noqa: N803
    K: int | None = None,  # noqa: N803
    dtype: str = "float32",
    *,
    hardware: CPUModel | None = None,
    table: tuple[MicroKernelResult, ...] | None = None,
) -> GemmKernel:
    """Linear/dense: C[M, N] = A[M, K] @ W[N, K].T for any M (W packed once by `pack_weights`)."""
    return _build(N, K, dtype, hardware, table, transposed=True, batched=False)


def build_batched_gemm(
    N: int | None = None,  # noqa: N803
    K: int | None = None,  # noqa: N803
    dtype: str = "float32",
    *,
    hardware: CPUModel | None = None,
    table: tuple[MicroKernelResult, ...] | None = None,
) -> GemmKernel:
    """C[b, M, N] = A[b, M, K] @ B[b, K, N] (or one shared packed B) for any batch and M."""
    return _build(N, K, dtype, hardware, table, transposed=False, batched=True)


def _build(n, k, dtype, hardware, table, *, transposed: bool, batched: bool) -> GemmKernel:
    if str(dtype) != "float32":
        raise UnsupportedError(f"the GEMM hierarchy supports float32 only, not {dtype}")
    hw = hardware or host_cpu_model()
    table = tuple(table) if table is not None else None
    key = (n, k, transposed, batched, hw, table)
    return _cached(
        key, lambda: GemmKernel(n, k, transposed=transposed, batched=batched, hardware=hw, table=table)
    )
