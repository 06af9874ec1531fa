"""The native thread pool behind parallel loops: libgomp, driven directly from generated code.

Generated code calls `GOMP_parallel(fn, data, num_threads, 0)` and `omp_get_thread_num` /
`omp_get_num_threads` (see shapeflow.codegen.llvm.parallel); this module makes those symbols resolvable for
the JIT by loading libgomp into the process, and owns the thread count that kernels read from the global
`__shapeflow_num_threads` at every parallel loop.

Thread count: `os.cpu_count()` by default (the CPUs this process may run on, where the OS says), overridden
by the environment variable SHAPEFLOW_NUM_THREADS at import and by `set_num_threads(n)` at any time (it
affects kernels already compiled).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import llvmlite.binding as llvm

NUM_THREADS_SYMBOL = "__shapeflow_num_threads"

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


def load_thread_runtime() -> str | None:
    """Load libgomp so JIT-compiled code can call it; the path loaded, or None when there is none."""
    global _LOADED, _TRIED
    with _LOCK:
        if _TRIED:
            return _LOADED
        _TRIED = True
        for name in _candidates():
            try:
                llvm.load_library_permanently(name)
            except RuntimeError:
                continue
            _LOADED = name
            break
        return _LOADED


def thread_runtime_available() -> bool:
    return load_thread_runtime() is not None
