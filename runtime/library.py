"""Compiled kernels as Python callables: `Library` (what `shapeflow.build` returns) and `Kernel`.

A call is destination-passing: `lib["add"](a, b, out)` writes `out`. Arguments are checked before native
code runs (shapeflow.runtime.args); the native function is called through ctypes, which releases the GIL.
"""

from __future__ import annotations

import ctypes

from shapeflow.codegen.llvm import (
    STATUS_MESSAGES,
    STATUS_NULL_POINTER_BASE,
    JITModule,
    KernelABI,
    emit_object,
)
from shapeflow.errors import Error, ShapeError
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.runtime.args import CallPlan


def _ctypes_signature(abi: KernelABI, buffers_as_ids: bool):
    types = []
    for p in abi.func.params:
        if isinstance(p, Buffer):
            types.append(ctypes.c_int64 if buffers_as_ids else ctypes.c_void_p)
        else:
            types.append(ctypes.c_double if p.dtype.is_float else ctypes.c_int64)
    types += [ctypes.c_int64] * len(abi.symbolic)
    return ctypes.CFUNCTYPE(ctypes.c_int32, *types)


class Kernel:
    """One compiled PrimFunc. Call it with arrays (numpy or DLPack) and scalars, in parameter order."""

    def __init__(self, abi: KernelABI, jit: JITModule, owner: Library):
        self.name = abi.name
        self.abi = abi
        self._owner = owner  # keeps the execution engine (and so the code) alive
        self._plan = CallPlan.build(abi.name, abi.func, abi.symbolic)
        self._native = _ctypes_signature(abi, False)(jit.address(abi.symbol))
        if abi.entry_symbol is not None:
            self._entry = _ctypes_signature(abi, True)(jit.address(abi.entry_symbol))
            self._fast = self._plan.make_fast(use_ids=True)
        else:
            self._entry = self._native
            self._fast = self._plan.make_fast(use_ids=False)

    @property
    def address(self) -> int:
        """The address of the native kernel (C calling convention, see codegen/llvm/function.py)."""
        return ctypes.cast(self._native, ctypes.c_void_p).value

    def __call__(self, *args) -> None:
        packed = self._fast(args)
        if packed is not None:
            status = self._entry(*packed)
        else:
            native, keep_alive = self._plan.slow(args)
            status = self._native(*native)
            del keep_alive
        if status:
            self._raise(status)

    @property
    def unchecked_entry(self):
        """`(fn, takes_ids)`: the native entry with no argument checks, for a caller that allocated or
        already checked every argument (the VM). `fn(*arrays, *scalars, *symbolic dims)` returns a status
        (pass a non-zero one to `raise_status`); arrays go as `id(array)` of C-contiguous numpy arrays when
        `takes_ids`, else as data addresses. Symbolic dims are `abi.symbolic`, in order."""
        return self._entry, self._entry is not self._native

    def raise_status(self, status: int) -> None:
        """Raise the error a non-zero status of the native entry stands for."""
        self._raise(status)

    def _raise(self, status: int) -> None:
        if status > 0:
            raise Error(f"kernel '{self.name}': assertion failed: {self.abi.messages[status - 1]}")
        params = self.abi.func.params
        index = STATUS_NULL_POINTER_BASE - status
        if 0 <= index < len(params):
            raise ShapeError(
                "null data pointer",
                function=self.name,
                parameter=params[index].name,
                expected="non-null data pointer",
                actual="null",
            )
        raise Error(f"kernel '{self.name}': {STATUS_MESSAGES.get(status, f'failed with status {status}')}")

    def __repr__(self) -> str:
        return f"<shapeflow.Kernel {self.name}>"


class Library:
    """The kernels of one build, by name; also the LLVM IR and an object-file export of them."""

    def __init__(self, jit: JITModule, abis: dict[str, KernelABI], llvm_ir: str, target):
        self._jit = jit
        self.target = target
        self.llvm_ir = llvm_ir
        self.kernels = {name: Kernel(abi, jit, self) for name, abi in abis.items()}

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self.kernels[name]
        except KeyError:
            raise KeyError(
                f"no kernel named {name!r} in this library (has: {sorted(self.kernels)})"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self.kernels

    def __iter__(self):
        return iter(self.kernels)

    def __len__(self) -> int:
        return len(self.kernels)

    def get_function(self, name: str) -> Kernel:
        return self[name]

    @property
    def optimized_ir(self) -> str:
        """The LLVM IR after optimization, as it was compiled."""
        return str(self._jit.module)

    def export_object(self, path: str) -> None:
        """Write a position-independent object file of the kernels (same IR, optimized the same way).

        Kernels are `shapeflow_<name>` with the C convention of codegen/llvm/function.py; the object needs
        libgomp, an `int32_t __shapeflow_num_threads` and a `double __shapeflow_parallel_min_work` from
        whoever links or loads it (shapeflow.runtime.threadpool provides both in this process)."""
        data = emit_object(self.llvm_ir, self.target.cpu, self.target.features)
        with open(path, "wb") as fh:
            fh.write(data)

    def __repr__(self) -> str:
        return f"<shapeflow.Library {sorted(self.kernels)} target={self.target}>"
