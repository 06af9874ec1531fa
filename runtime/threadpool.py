"""The native thread pool behind parallel loops: libgomp, driven directly from generated code.

Generated code calls `GOMP_parallel(fn, data, num_threads, 0)` and `omp_get_thread_num` /
`omp_get_num_threads` (see shapeflow.codegen.llvm.parallel); this module makes those symbols resolvable for
the JIT by loading libgomp into the process, and owns the thread count that kernels read from the global
`__shapeflow_num_threads` at every parallel loop.

Thread count: `os.cpu_count()` by default (the CPUs this process may run on, where the OS says), overridden
by the environment variable SHAPEFLOW_NUM_THREADS at import and by `set_num_threads(n)` at any time (it
affects kernels already compiled).

Work threshold: a parallel loop whose estimated work (codegen/llvm/parallel.py) is below
`get_parallel_min_work()` units runs on the calling thread. Default `DEFAULT_PARALLEL_MIN_WORK` = 2^22,
overridden by SHAPEFLOW_PARALLEL_MIN_WORK at import and by `set_parallel_min_work` at any time. Measured
(2-core znver5 VM shared with other jobs, load average 5-6, passive wait policy, medians): waking the
team costs about 8-9 us (a 4-row sum: 1.7 us serial, 9-11 us with the team), and one unit of work takes
about 0.01 us (a 2^18-element add, 2.6M units: 35 us; a 1M-element row sum, 4M units: 45 us; a
64K-element tanh-GELU, 3.3M units: 36 us). Two threads can save at most half the serial time, so a team
pays only where half the serial time clearly exceeds the wake-up: about 40 us of work, 2^22 units.

Wait policy: unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, `DEFAULT_WAIT_POLICY` (passive: team
threads sleep in the kernel between parallel regions instead of spinning) is put into the environment just
before libgomp is loaded and taken out again right after (libgomp reads it once, at load; an OpenMP
runtime loaded later, such as torch's, keeps the user's environment). `WAIT_POLICY_APPLIED` says what was
set. Measured on the same machine (median us, 2 threads; libgomp's default spins
300k times before sleeping): with libgomp's default, a 2^22-element add took 9357 us at load 5.8 and
15746 us with one more busy process (serial: 1247 and 1389 us), a 4-row sum 11390 us with the busy
process (serial 1.9 us); a spinning thread uses up its share of a loaded CPU, is preempted, and the other
thread then waits at the join for a scheduler timeslice. Passive: 1280 and 1193 us for the add, 9.3 us for
the 4-row sum, no collapse; the price is the ~8 us wake-up above, which the threshold keeps off small
loops. OMP_WAIT_POLICY=active was worse under load (a 64K-element add: 31996 us) and crashed the process
at exit twice; spin counts of 3000 and 30000 gave 150 us-15 ms medians.

Tried and not taken (idle machine, load ~1-2): a bounded spin (GOMP_SPINCOUNT=100000) made shapeflow alone
faster (`benchmarks/onnx_models.py --quick`: BERT-like seq 1 / 17 / ResNet-50 batch 1 in 1.68 / 3.19 / 26.1 ms
against 2.32 / 4.44 / 38.1 ms passive; a GEMM right after an OpenBLAS call 2.6-2.9 ms against 5.5 ms), but
beside other runtimes in the same process it was far worse: in `benchmarks/gemm_dynamic.py`, which times
numpy/torch/TVM calls between ours, small-M GEMMs fell to 0.06x numpy (passive: 0.79x at worst).

What this does not fix: `GOMP_parallel` returns only when every team thread has run, so at heavy
oversubscription (load average 12-15 on 2 cores) a team call still waits for a descheduled thread; the
threads claim chunks dynamically (codegen/llvm/parallel.py) so the waiting thread's share is done by the
others, but the join remains (a 2^22-element add: median 1.3 ms on one thread, 2-6 ms with the team; best
times equal). Skipping threads that have not started, as onnxruntime's pool does, needs a pool of our own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import llvmlite.binding as llvm

NUM_THREADS_SYMBOL = "__shapeflow_num_threads"
PARALLEL_MIN_WORK_SYMBOL = "__shapeflow_parallel_min_work"
# Work units (about one per arithmetic operation, load or store; see codegen/llvm/parallel.py) below which
# a parallel loop runs on the calling thread. Chosen from measurements: see the module docstring.
DEFAULT_PARALLEL_MIN_WORK = 1 << 22
# libgomp's wait policy when the user set neither variable (see the module docstring for why).
DEFAULT_WAIT_POLICY = {"OMP_WAIT_POLICY": "passive"}

_LOCK = threading.Lock()
_LOADED: str | None = None
_TRIED = False


def _default_threads() -> int:
    env = os.environ.get("SHAPEFLOW_NUM_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value >= 1:
            return value
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# The storage generated code reads; registered with LLVM as the symbol NUM_THREADS_SYMBOL.
_NUM_THREADS = ctypes.c_int32(_default_threads())
llvm.add_symbol(NUM_THREADS_SYMBOL, ctypes.addressof(_NUM_THREADS))


def _default_min_work() -> float:
    env = os.environ.get("SHAPEFLOW_PARALLEL_MIN_WORK", "").strip()
    if env:
        try:
            value = float(env)
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    return float(DEFAULT_PARALLEL_MIN_WORK)


# Read by generated code at every parallel loop; registered as the symbol PARALLEL_MIN_WORK_SYMBOL.
_PARALLEL_MIN_WORK = ctypes.c_double(_default_min_work())
llvm.add_symbol(PARALLEL_MIN_WORK_SYMBOL, ctypes.addressof(_PARALLEL_MIN_WORK))


def set_parallel_min_work(work: float) -> None:
    """Run a parallel loop on the calling thread when its estimated work is below `work` units (0: every
    parallel loop uses the thread team; `math.inf`: none does). Affects kernels already compiled."""
    work = float(work)
    if not work >= 0:  # also rejects NaN
        raise ValueError(f"the parallel work threshold must be >= 0, got {work}")
    _PARALLEL_MIN_WORK.value = work


def get_parallel_min_work() -> float:
    return _PARALLEL_MIN_WORK.value


def set_num_threads(n: int) -> None:
    """Use `n` threads (n >= 1) for parallel loops of every kernel from now on."""
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _NUM_THREADS.value = n


def get_num_threads() -> int:
    return _NUM_THREADS.value


def _candidates() -> list[str]:
    found = ctypes.util.find_library("gomp")
    names = [found] if found else []
    names += ["libgomp.so.1", "libgomp.so", "libgomp.dylib", "libgomp-1.dll"]
    # Toolchains and wheels sometimes ship their own copy next to the interpreter.
    for root in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        names.append(os.path.join(root, "libgomp.so.1"))
    return names


# What `load_thread_runtime` set for libgomp (empty: the user's settings, or libgomp's defaults, apply).
WAIT_POLICY_APPLIED: dict[str, str] = {}


def apply_default_wait_policy(environ=None) -> dict[str, str]:
    """Set libgomp's wait policy (`DEFAULT_WAIT_POLICY`) in `environ` (the process environment) unless the
    user chose one (OMP_WAIT_POLICY or GOMP_SPINCOUNT is set); what was set. libgomp reads these once, when
    it is loaded, so this runs just before `load_thread_runtime` loads it; a libgomp already loaded by
    someone else keeps its settings."""
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return {}
    for key, value in DEFAULT_WAIT_POLICY.items():
        environ[key] = value
    return dict(DEFAULT_WAIT_POLICY)


def load_thread_runtime() -> str | None:
    """Load libgomp so JIT-compiled code can call it; the path loaded, or None when there is none."""
    global _LOADED, _TRIED
    with _LOCK:
        if _TRIED:
            return _LOADED
        _TRIED = True
        applied = apply_default_wait_policy()
        try:
            for name in _candidates():
                try:
                    llvm.load_library_permanently(name)
                except RuntimeError:
                    continue
                _LOADED = name
                break
        finally:
            # libgomp has read them; other OpenMP runtimes loaded later (torch's) see the user's environment.
            for key in applied:
                os.environ.pop(key, None)
        WAIT_POLICY_APPLIED.update(applied if _LOADED else {})
        return _LOADED


def thread_runtime_available() -> bool:
    return load_thread_runtime() is not None
