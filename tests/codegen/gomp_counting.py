"""Test helpers: count the thread teams compiled kernels start, and set the thread runtime for a block.

While a test builds its kernels inside `counting_gomp()`, the JIT resolves `GOMP_parallel` to a counting
wrapper around libgomp's own (symbols are bound when a module is finalized, so only kernels built inside
the block see the wrapper; they keep it afterwards)."""

import contextlib
import ctypes

import llvmlite.binding as llvm

from shapeflow.runtime import threadpool

_GOMP_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)
_ALIVE = []  # the wrappers, kept alive for as long as kernels may call them


@contextlib.contextmanager
def counting_gomp():
    """Yield a list that gets the thread count of every GOMP_parallel call of kernels built in the block."""
    threadpool.load_thread_runtime()
    real_address = llvm.address_of_symbol("GOMP_parallel")
    real = _GOMP_SIGNATURE(real_address)
    calls: list[int] = []

    def wrapper(fn, data, num_threads, flags):
        calls.append(num_threads)
        real(fn, data, num_threads, flags)

    callback = _GOMP_SIGNATURE(wrapper)
    _ALIVE.append(callback)
    llvm.add_symbol("GOMP_parallel", ctypes.cast(callback, ctypes.c_void_p).value)
    try:
        yield calls
    finally:
        llvm.add_symbol("GOMP_parallel", real_address)


@contextlib.contextmanager
def runtime_settings(threads: int, min_work: float):
    """Run the block with `threads` threads and the parallel work threshold `min_work`."""
    old_threads, old_work = threadpool.get_num_threads(), threadpool.get_parallel_min_work()
    threadpool.set_num_threads(threads)
    threadpool.set_parallel_min_work(min_work)
    try:
        yield
    finally:
        threadpool.set_num_threads(old_threads)
        threadpool.set_parallel_min_work(old_work)
