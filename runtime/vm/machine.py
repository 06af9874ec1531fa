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

from collections.abc import Callable

import numpy as np

from shapeflow.errors import Error, ShapeError, UnsupportedError
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.runtime.vm import shape_code as SC
from shapeflow.runtime.vm.builtins import as_array, check_prim, dim_error, to_dtype
from shapeflow.runtime.vm.program import Program, VMFunction

Step = Callable[[list, list], "int | None"]


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
            self._functions[name].steps.extend(_build_step(self, func, instr) for instr in func.code)

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
# Step builders, one per opcode
# ---------------------------------------------------------------------------------------------

STEP_BUILDERS: dict[str, Callable] = {}


def builds(opcode: str):
    def register(fn):
        STEP_BUILDERS[opcode] = fn
        return fn

    return register


def _build_step(vm: VirtualMachine, func: VMFunction, instr: list) -> Step:
    try:
        return STEP_BUILDERS[instr[0]](vm, func, *instr[1:])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise Error(f"VM function '{func.name}': malformed instruction {instr!r}: {exc}") from None


def _reg(func: VMFunction, r) -> int:
    if type(r) is not int or not 0 <= r < func.num_regs:
        raise Error(f"VM function '{func.name}': register {r!r} out of range")
    return r


def _slot(func: VMFunction, s) -> int:
    if type(s) is not int or not 0 <= s < len(func.heap):
        raise Error(f"VM function '{func.name}': heap slot {s!r} out of range")
    return s


def _codes(func: VMFunction, codes) -> list:
    for c in codes:
        SC.render(c)  # validates
        if SC.max_slot(c) >= len(func.heap):
            raise Error(f"VM function '{func.name}': shape expression {c!r} reads past the heap")
    return list(codes)


def _expected_text(code, value, names) -> str:
    text = SC.describe(code, names)
    return text if code[0] in ("c", "h") else f"{text} = {value}"


@builds("check_tensor")
def _check_tensor(vm, func, reg, where, dtype, ndim, dims):
    reg = _reg(func, reg)
    want = to_dtype(dtype)
    stores = [(int(d), _slot(func, arg)) for d, mode, arg in dims if mode == "store"]
    asserts = [
        (int(d), c, SC.compile_one(c)) for d, mode, c in dims if mode == "assert" and _codes(func, [c])
    ]
    fname, names = func.name, func.heap

    def step(R, H):
        a = R[reg]
        if type(a) is not np.ndarray or not a.flags.c_contiguous:
            a = R[reg] = as_array(a, fname, where)
        if want is not None and a.dtype != want:
            raise ShapeError(
                "dtype mismatch", function=fname, parameter=where, expected=dtype, actual=str(a.dtype)
            )
        if ndim >= 0 and a.ndim != ndim:
            raise ShapeError("rank mismatch", function=fname, parameter=where, expected=ndim, actual=a.ndim)
        s = a.shape
        for d, slot in stores:
            H[slot] = s[d]
        for d, code, fn in asserts:
            value = fn(H)
            if s[d] != value:
                raise dim_error(fname, where, d, _expected_text(code, value, names), s[d])

    return step


@builds("assert_dim")
def _assert_dim(vm, func, reg, where, d, code):
    reg, fn = _reg(func, reg), SC.compile_one(_codes(func, [code])[0])
    fname, names = func.name, func.heap

    def step(R, H):
        actual, value = R[reg].shape[d], fn(H)
        if actual != value:
            raise dim_error(fname, where, d, _expected_text(code, value, names), actual)

    return step


@builds("check_shape")
def _check_shape(vm, func, reg, where, ndim, dims):
    reg = _reg(func, reg)
    fname, names = func.name, func.heap
    stores = [(int(d), _slot(func, arg)) for d, mode, arg in dims if mode == "store"]
    asserts = [
        (int(d), c, SC.compile_one(c)) for d, mode, c in dims if mode == "assert" and _codes(func, [c])
    ]

    def step(R, H):
        value = R[reg]
        if not isinstance(value, (tuple, list)) or not all(isinstance(v, (int, np.integer)) for v in value):
            raise ShapeError(
                "expected a shape",
                function=fname,
                parameter=where,
                expected="tuple of ints",
                actual=type(value).__name__,
            )
        value = R[reg] = tuple(int(v) for v in value)
        if ndim >= 0 and len(value) != ndim:
            raise ShapeError(
                "shape length mismatch", function=fname, parameter=where, expected=ndim, actual=len(value)
            )
        for d, slot in stores:
            H[slot] = value[d]
        for d, code, fn in asserts:
            want = fn(H)
            if value[d] != want:
                raise dim_error(fname, where, d, _expected_text(code, want, names), value[d])

    return step


@builds("check_prim")
def _check_prim(vm, func, reg, where, dtype, mode, arg):
    reg = _reg(func, reg)
    dt = DataType(dtype)
    slot = _slot(func, arg) if mode == "store" else None
    fn = SC.compile_one(_codes(func, [arg])[0]) if mode == "assert" else None
    fname = func.name

    def step(R, H):
        value = R[reg] = check_prim(R[reg], dt, fname, where)
        if slot is not None:
            H[slot] = value
        elif fn is not None and value != fn(H):
            raise ShapeError("value mismatch", function=fname, parameter=where, expected=fn(H), actual=value)

    return step


@builds("check_bounds")
def _check_bounds(vm, func, bounds):
    checks = [(_slot(func, s), str(n), lo, hi) for s, n, lo, hi in bounds]
    fname = func.name

    def step(R, H):
        for slot, name, lo, hi in checks:
            v = H[slot]
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ShapeError(
                    f"symbolic dim {name} out of its declared bounds",
                    function=fname,
                    parameter=name,
                    expected=f"{lo} <= {name} <= {hi}",
                    actual=v,
                )

    return step


@builds("assert_bcast")
def _assert_bcast(vm, func, where, d, code, out_code):
    fn, out_fn = (SC.compile_one(c) for c in _codes(func, [code, out_code]))
    fname, names = func.name, func.heap

    def step(R, H):
        value, out = fn(H), out_fn(H)
        if value != 1 and value != out:
            raise ShapeError(
                "operands cannot be broadcast together",
                function=fname,
                parameter=where,
                dimension=d,
                expected=f"{SC.describe(code, names)} == 1 or {SC.describe(out_code, names)} = {out}",
                actual=value,
            )

    return step


@builds("assert_eq")
def _assert_eq(vm, func, where, code, other, what):
    fn, other_fn = (SC.compile_one(c) for c in _codes(func, [code, other]))
    fname, names, what = func.name, func.heap, str(what)

    def step(R, H):
        value, want = fn(H), other_fn(H)
        if value != want:
            raise ShapeError(
                f"{what} mismatch",
                function=fname,
                parameter=where,
                expected=f"{SC.describe(other, names)} = {want}",
                actual=f"{SC.describe(code, names)} = {value}",
            )

    return step


def _allocation_error(fname, exc) -> Error:
    if isinstance(exc, MemoryError):
        return Error(f"function '{fname}': out of memory while allocating a tensor")
    return ShapeError(f"cannot allocate a tensor ({exc})", function=fname)


@builds("alloc_tensor")
def _alloc_tensor(vm, func, dst, shape, dtype):
    dst, shape_fn, dt = (
        _reg(func, dst),
        SC.compile_tuple(_codes(func, shape)),
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
    dst, size_fn, fname = _reg(func, dst), SC.compile_one(_codes(func, [size])[0]), func.name
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
    reg = _reg(func, reg)
    pool = _storage_pool(vm, func, reg)

    def step(R, H):
        buf, R[reg] = R[reg], None
        if buf is not None and len(pool) < 4:
            pool.append(buf)

    return step


@builds("alloc_view")
def _alloc_view(vm, func, dst, storage, offset, shape, dtype):
    dst, storage = _reg(func, dst), _reg(func, storage)
    offset_fn = SC.compile_one(_codes(func, [offset])[0])
    shape_fn, dt = SC.compile_tuple(_codes(func, shape)), to_numpy_dtype(DataType(dtype))
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
    args = [_reg(func, r) for r in args]
    scalar_src = [SC.render(c) for c in _codes(func, scalars)]
    sym_src = [SC.render(c) for c in _codes(func, symbolic)]
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
    regs = [_reg(func, r) for r in (*inputs, *outputs)]
    scalar_fn = SC.compile_tuple(_codes(func, scalars)) if scalars else (lambda H: ())

    def step(R, H):
        fn(*[R[r] for r in regs], *scalar_fn(H))

    return step


@builds("call")
def _call(vm, func, dst, callee, args):
    dst, args = _reg(func, dst), [_reg(func, r) for r in args]
    if callee not in vm.program.functions:
        raise Error(f"VM function '{func.name}' calls unknown function {callee!r}")
    invoke = vm.invoke

    def step(R, H):
        R[dst] = invoke(callee, [R[r] for r in args])

    return step


@builds("const")
def _const(vm, func, dst, index):
    dst, value = _reg(func, dst), vm.constants[index]

    def step(R, H):
        R[dst] = value

    return step


@builds("literal")
def _literal(vm, func, dst, value):
    if not isinstance(value, (int, float, bool)):
        raise Error(f"VM function '{func.name}': literal {value!r} is not a scalar")
    dst = _reg(func, dst)

    def step(R, H):
        R[dst] = value

    return step


@builds("prim")
def _prim(vm, func, dst, code):
    dst, fn = _reg(func, dst), SC.compile_one(_codes(func, [code])[0])

    def step(R, H):
        R[dst] = fn(H)

    return step


@builds("shape")
def _shape(vm, func, dst, codes):
    dst, fn = _reg(func, dst), SC.compile_tuple(_codes(func, codes)) if codes else (lambda H: ())

    def step(R, H):
        R[dst] = fn(H)

    return step


@builds("tuple")
def _tuple(vm, func, dst, regs):
    dst, regs = _reg(func, dst), [_reg(func, r) for r in regs]

    def step(R, H):
        R[dst] = tuple([R[r] for r in regs])

    return step


@builds("get_item")
def _get_item(vm, func, dst, src, index):
    dst, src = _reg(func, dst), _reg(func, src)

    def step(R, H):
        R[dst] = R[src][index]

    return step


@builds("move")
def _move(vm, func, dst, src):
    dst, src = _reg(func, dst), _reg(func, src)

    def step(R, H):
        R[dst] = R[src]

    return step


@builds("free")
def _free(vm, func, reg):
    reg = _reg(func, reg)

    def step(R, H):
        R[reg] = None

    return step


@builds("if")
def _if(vm, func, reg, else_pc):
    reg, fname = _reg(func, reg), func.name

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
    reg = _reg(func, reg)

    def step(R, H):
        R[-1] = R[reg]
        return -1

    return step


def unsupported(opcode: str) -> UnsupportedError:
    return UnsupportedError(f"the VM has no instruction {opcode!r}")
