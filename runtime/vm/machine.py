"""The virtual machine: runs a `Program` with compiled kernels (a `Library`) and constants.

Loading turns every instruction into a Python closure `step(R, H)` (R: registers, H: the shape heap) once,
through the table `STEP_BUILDERS` keyed by opcode; a call then only loops over closures:

    pc = 0
    while (nxt := steps[pc](R, H)) is None: pc += 1   (a jump returns its target, `ret` returns -1)

Kernel calls the VM can vouch for (every argument a C-contiguous array the VM allocated or checked at the
boundary, every dimension proved at compile time to be what the kernel expects) go straight to the kernel's
unchecked native entry with `id(array)` arguments and symbolic sizes computed from the heap: one ctypes
call, no argument checking. Other calls go through the kernel's checked call.
"""

from __future__ import annotations

import numpy as np

from shapeflow.errors import Error, ShapeError, UnsupportedError
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.runtime.vm import check_steps as _check_steps  # noqa: F401  (registers the check steps)
from shapeflow.runtime.vm import gemm_steps as _gemm_steps  # noqa: F401  (registers call_gemm)
from shapeflow.runtime.vm import shape_code as SC
from shapeflow.runtime.vm.program import Program, VMFunction
from shapeflow.runtime.vm.steps import Step, build_step, builds, heap_codes, reg_index


class _Prepared:
    __slots__ = ("name", "steps", "num_regs", "num_heap", "num_params", "heap_names")

    def __init__(self, func: VMFunction, steps: list[Step]):
        self.name = func.name
        self.steps = steps
        self.num_regs = func.num_regs
        self.num_heap = len(func.heap)
        self.num_params = len(func.params)
        self.heap_names = func.heap


class VirtualMachine:
    """Runs the functions of `program`; kernels from `library`, constants by index."""

    def __init__(self, program: Program, library, constants: list[np.ndarray]):
        self.program = program
        self.library = library
        self.constants = constants
        if len(constants) != program.num_constants:
            raise Error(f"program needs {program.num_constants} constants, got {len(constants)}")
        missing = [k for k in program.kernels if library is None or k not in library]
        if missing:
            raise Error(f"program calls kernels missing from the library: {missing}")
        self.kernels = [library[k] for k in program.kernels]
        self._functions: dict[str, _Prepared] = {}
        self.pools: dict[tuple[str, int], list] = {}  # released storages, by (function, register)
        for name, func in program.functions.items():
            self._functions[name] = _Prepared(func, [])
        for name, func in program.functions.items():  # after all names exist: calls resolve by name
            self._functions[name].steps.extend(build_step(self, func, instr) for instr in func.code)

    def function_names(self) -> list[str]:
        return list(self._functions)

    def invoke(self, name: str, args) -> object:
        """Call VM function `name` with `args` (checked at the function's boundary)."""
        fn = self._functions.get(name)
        if fn is None:
            raise Error(f"no function named {name!r} (has: {sorted(self._functions)})")
        if len(args) != fn.num_params:
            raise ShapeError(
                "wrong number of arguments", function=name, expected=fn.num_params, actual=len(args)
            )
        regs = [None] * (fn.num_regs + 1)
        regs[: fn.num_params] = args
        heap = [0] * fn.num_heap
        steps = fn.steps
        pc = 0
        while True:
            nxt = steps[pc](regs, heap)
            if nxt is None:
                pc += 1
            elif nxt < 0:
                return regs[-1]
            else:
                pc = nxt


# ---------------------------------------------------------------------------------------------
# Step builders: allocation, calls, data movement, control flow (checks: check_steps.py)
# ---------------------------------------------------------------------------------------------


def _allocation_error(fname, exc) -> Error:
    if isinstance(exc, MemoryError):
        return Error(f"function '{fname}': out of memory while allocating a tensor")
    return ShapeError(f"cannot allocate a tensor ({exc})", function=fname)


@builds("alloc_tensor")
def _alloc_tensor(vm, func, dst, shape, dtype):
    dst, shape_fn, dt = (
        reg_index(func, dst),
        SC.compile_tuple(heap_codes(func, shape)),
        to_numpy_dtype(DataType(dtype)),
    )
    empty, fname = np.empty, func.name

    def step(R, H):
        try:
            R[dst] = empty(shape_fn(H), dt)
        except (ValueError, MemoryError) as exc:
            raise _allocation_error(fname, exc) from None

    return step


def _storage_pool(vm, func, reg) -> list:
    """Storages released by earlier calls of `func` for register `reg` (shared by alloc and release)."""
    return vm.pools.setdefault((func.name, reg), [])


@builds("alloc_storage")
def _alloc_storage(vm, func, dst, size):
    dst, size_fn, fname = reg_index(func, dst), SC.compile_one(heap_codes(func, [size])[0]), func.name
    pool = _storage_pool(vm, func, dst)

    def step(R, H):
        nbytes = size_fn(H)
        # A storage of an earlier call is reused when large enough: no malloc, no fresh page faults.
        # (list.pop is atomic, so concurrent calls never share one.)
        try:
            buf = pool.pop()
            if buf.size >= nbytes:
                R[dst] = buf
                return
        except IndexError:
            pass
        try:
            R[dst] = np.empty(max(nbytes, 1), np.uint8)
        except (ValueError, MemoryError) as exc:
            raise _allocation_error(fname, exc) from None

    return step


@builds("release_storage")
def _release_storage(vm, func, reg):
    reg = reg_index(func, reg)
    pool = _storage_pool(vm, func, reg)

    def step(R, H):
        buf, R[reg] = R[reg], None
        if buf is not None and len(pool) < 4:
            pool.append(buf)

    return step


@builds("alloc_view")
def _alloc_view(vm, func, dst, storage, offset, shape, dtype):
    dst, storage = reg_index(func, dst), reg_index(func, storage)
    offset_fn = SC.compile_one(heap_codes(func, [offset])[0])
    shape_fn, dt = SC.compile_tuple(heap_codes(func, shape)), to_numpy_dtype(DataType(dtype))
    ndarray, fname = np.ndarray, func.name

    def step(R, H):
        buf, off = R[storage], offset_fn(H)
        if off % dt.itemsize:
            raise ShapeError(
                "misaligned view", function=fname, expected=f"offset multiple of {dt.itemsize}", actual=off
            )
        try:  # numpy checks that the view lies inside the storage
            R[dst] = ndarray(shape_fn(H), dt, buffer=buf, offset=off)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"view outside its storage ({exc})", function=fname) from None

    return step


@builds("call_tir")
def _call_tir(vm, func, kernel, args, scalars, symbolic, checked):
    if type(kernel) is not int or not 0 <= kernel < len(vm.kernels):
        raise Error(f"VM function '{func.name}': kernel index {kernel!r} out of range")
    k = vm.kernels[kernel]
    args = [reg_index(func, r) for r in args]
    scalar_src = [SC.render(c) for c in heap_codes(func, scalars)]
    sym_src = [SC.render(c) for c in heap_codes(func, symbolic)]
    env = dict(SC.ENV, K=k)
    if checked:
        parts = [f"R[{r}]" for r in args] + scalar_src
        src = f"def step(R, H):\n    K({', '.join(parts)})\n"
    else:
        entry, takes_ids = k.unchecked_entry
        env["E"] = entry
        ptr = "id(R[{}])" if takes_ids else "R[{}].ctypes.data"
        parts = [ptr.format(r) for r in args] + scalar_src + sym_src
        src = f"def step(R, H):\n    st = E({', '.join(parts)})\n    if st:\n        K.raise_status(st)\n"
    exec(compile(src, f"<shapeflow vm {func.name}: {k.name}>", "exec"), env)  # noqa: S102
    return env["step"]


@builds("call_lib")
def _call_lib(vm, func, name, inputs, outputs, scalars):
    from shapeflow.ir.graph.ops.dps import get_library_function  # noqa: PLC0415

    fn = get_library_function(name)
    regs = [reg_index(func, r) for r in (*inputs, *outputs)]
    scalar_fn = SC.compile_tuple(heap_codes(func, scalars)) if scalars else (lambda H: ())

    def step(R, H):
        fn(*[R[r] for r in regs], *scalar_fn(H))

    return step


@builds("call")
def _call(vm, func, dst, callee, args):
    dst, args = reg_index(func, dst), [reg_index(func, r) for r in args]
    if callee not in vm.program.functions:
        raise Error(f"VM function '{func.name}' calls unknown function {callee!r}")
    invoke = vm.invoke

    def step(R, H):
        R[dst] = invoke(callee, [R[r] for r in args])

    return step


@builds("const")
def _const(vm, func, dst, index):
    dst, value = reg_index(func, dst), vm.constants[index]

    def step(R, H):
        R[dst] = value

    return step


@builds("literal")
def _literal(vm, func, dst, value):
    if not isinstance(value, (int, float, bool)):
        raise Error(f"VM function '{func.name}': literal {value!r} is not a scalar")
    dst = reg_index(func, dst)

    def step(R, H):
        R[dst] = value

    return step


@builds("prim")
def _prim(vm, func, dst, code):
    dst, fn = reg_index(func, dst), SC.compile_one(heap_codes(func, [code])[0])

    def step(R, H):
        R[dst] = fn(H)

    return step


@builds("shape")
def _shape(vm, func, dst, codes):
    dst, fn = reg_index(func, dst), SC.compile_tuple(heap_codes(func, codes)) if codes else (lambda H: ())

    def step(R, H):
        R[dst] = fn(H)

    return step


@builds("tuple")
def _tuple(vm, func, dst, regs):
    dst, regs = reg_index(func, dst), [reg_index(func, r) for r in regs]

    def step(R, H):
        R[dst] = tuple([R[r] for r in regs])

    return step


@builds("get_item")
def _get_item(vm, func, dst, src, index):
    dst, src = reg_index(func, dst), reg_index(func, src)

    def step(R, H):
        R[dst] = R[src][index]

    return step


@builds("move")
def _move(vm, func, dst, src):
    dst, src = reg_index(func, dst), reg_index(func, src)

    def step(R, H):
        R[dst] = R[src]

    return step


@builds("free")
def _free(vm, func, reg):
    reg = reg_index(func, reg)

    def step(R, H):
        R[reg] = None

    return step


@builds("if")
def _if(vm, func, reg, else_pc):
    reg, fname = reg_index(func, reg), func.name

    def step(R, H):
        cond = R[reg]
        if isinstance(cond, np.ndarray) and cond.size != 1:
            raise ShapeError(
                "If condition must be a scalar", function=fname, expected="1 element", actual=cond.size
            )
        return None if bool(cond) else else_pc

    return step


@builds("goto")
def _goto(vm, func, pc):
    def step(R, H):
        return pc

    return step


@builds("ret")
def _ret(vm, func, reg):
    reg = reg_index(func, reg)

    def step(R, H):
        R[-1] = R[reg]
        return -1

    return step


def unsupported(opcode: str) -> UnsupportedError:
    return UnsupportedError(f"the VM has no instruction {opcode!r}")
