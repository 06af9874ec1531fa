"""State of LLVM code generation: one `ModuleContext` per LLVM module, one `FunctionContext` per function.

Expressions and statements are emitted by rules looked up in tables keyed by node class (`EXPR_RULES`,
`STMT_RULES`, filled by `expr.py` and `stmt.py`), the way hidet's backends dispatch: the context holds the
builder and the variable environment, the rules hold the knowledge about each node.

Errors inside generated code (a failed AssertStmt, an allocation that failed) make the function return a
nonzero `i32` status: `k >= 1` is the k-th assertion message of the kernel (`FunctionContext.messages`),
negative codes are the fixed ones in `STATUS_MESSAGES`. Heap memory live at that point is freed first.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import llvmlite.ir as ir

from shapeflow.codegen.llvm.types import I32, PTR, VOID
from shapeflow.errors import CompileError
from shapeflow.ir.expr import PrimExpr, Var
from shapeflow.ir.tir.stmt import Stmt

# Status codes reserved by the code generator (assertions use 1, 2, ...).
STATUS_OUT_OF_MEMORY = -1
STATUS_NULL_POINTER_BASE = -1000  # -1000 - i: the data pointer of parameter i is null
STATUS_MESSAGES = {STATUS_OUT_OF_MEMORY: "out of memory in a heap allocation of the kernel"}

EXPR_RULES: dict[type, Callable] = {}
STMT_RULES: dict[type, Callable] = {}

# Float flags, by `CodegenOptions.float_mode` (see compiler/target.py for the user-facing contract).
# Reassociation is what lets LLVM vectorize a float reduction, but on arbitrary arithmetic it also licenses
# folds such as (a + c) - (a + c) -> 0, which are wrong for NaN/inf inputs. So by default it is given only to
# the accumulator update of a reduction (reduction.py), where reordering the chain of updates changes
# rounding but not NaN/inf propagation (there are no nnan/ninf flags anywhere). `contract` (FMA forming)
# is allowed everywhere by default: it skips the rounding of a product, which changes finite results by
# rounding and can keep a product that would overflow finite, but never makes a NaN or infinite input
# disappear.
FAST_MATH_FLAGS = ("reassoc", "contract", "nsz")  # opt-in: every float operation may be reassociated
DEFAULT_FLAGS = ("contract",)
REDUCTION_FLAGS = ("reassoc", "contract")
FLOAT_MODES = ("strict", "default", "fast")
_FLAGS = {  # mode -> (flags of ordinary float arithmetic, flags of a reduction's accumulator update)
    "strict": ((), ()),
    "default": (DEFAULT_FLAGS, REDUCTION_FLAGS),
    "fast": (FAST_MATH_FLAGS, FAST_MATH_FLAGS),
}


def expr_rule(*classes: type):
    """Register the decorated function as the emitter of expressions of `classes`."""

    def register(fn):
        for cls in classes:
            EXPR_RULES[cls] = fn
        return fn

    return register


def stmt_rule(*classes: type):
    """Register the decorated function as the emitter of statements of `classes`."""

    def register(fn):
        for cls in classes:
            STMT_RULES[cls] = fn
        return fn

    return register


def _lookup(table: dict[type, Callable], cls: type, what: str) -> Callable:
    rule = table.get(cls)
    if rule is None:
        for base in cls.__mro__[1:]:
            rule = table.get(base)
            if rule is not None:
                table[cls] = rule
                break
    if rule is None:
        from shapeflow.errors import UnsupportedError  # noqa: PLC0415

        raise UnsupportedError(f"the LLVM code generator does not handle {what} {cls.__name__}")
    return rule


@dataclass
class CodegenOptions:
    """Knobs of the CPU code generator (set from `shapeflow.Target`)."""

    # "strict": IEEE in program order, bit-exact with the interpreter; "default": strict except FMA
    # contraction and reassociation of reduction accumulators; "fast": reassoc/contract/nsz everywhere.
    float_mode: str = "default"
    # Emit parallel loops through libgomp; False runs them serially (no thread runtime available).
    parallel: bool = True
    # Offset of the data pointer inside a numpy array object, when the Python entry points may read it
    # (see shapeflow.runtime.pyabi); None builds no such entry points.
    ndarray_data_offset: int | None = None
    # A fixed thread count for parallel loops; None reads the runtime's global at every parallel loop.
    num_threads: int | None = None


class ModuleContext:
    """One LLVM module: declarations shared by all functions, unique names, loop metadata."""

    def __init__(self, name: str, options: CodegenOptions, triple: str = "", data_layout: str = ""):
        self.module = ir.Module(name=name)
        if triple:
            self.module.triple = triple
        if data_layout:
            self.module.data_layout = data_layout
        self.options = options
        self._counter = itertools.count()

    def unique(self, prefix: str) -> str:
        return f"{prefix}.{next(self._counter)}"

    def declare(self, name: str, return_type: ir.Type, arg_types: list[ir.Type]) -> ir.Function:
        """The function `name`, declared once per module."""
        found = self.module.globals.get(name)
        if found is None:
            found = ir.Function(self.module, ir.FunctionType(return_type, arg_types), name=name)
        return found

    def global_i32(self, name: str) -> ir.GlobalVariable:
        """An external i32 global (provided by the runtime, e.g. the thread count)."""
        return self.external_global(name, I32)

    def external_global(self, name: str, ty: ir.Type) -> ir.GlobalVariable:
        """An external global of type `ty`, provided by the runtime (thread count, parallel threshold)."""
        found = self.module.globals.get(name)
        if found is None:
            found = ir.GlobalVariable(self.module, ty, name=name)
            found.linkage = "external"
        return found

    def loop_metadata(self, hints: list[tuple[str, object]]):
        """A loop ID carrying `hints`. llvmlite cannot express the self reference a loop ID needs, so the
        first operand is a unique marker string that `patch_loop_ids` turns into the self reference."""
        ops = [ir.MetaDataString(self.module, f"shapeflow.loop_id.{next(self._counter)}")]
        for name, value in hints:
            entry = [ir.MetaDataString(self.module, name)]
            if value is not None:
                entry.append(value)
            ops.append(self.module.add_metadata(entry))
        return self.module.add_metadata(ops)


@dataclass
class FunctionContext:
    """Emission state of one LLVM function."""

    mod: ModuleContext
    function: ir.Function
    kernel_name: str
    messages: list[str]
    env: dict[Var, ir.Value] = field(default_factory=dict)
    noalias: set = field(default_factory=set)
    in_parallel: bool = False
    heap_live: list[ir.Value] = field(default_factory=list)
    # One set per enclosing loop being emitted (innermost last): its loop variable and every variable bound
    # inside it, i.e. what may change from one iteration to the next (reduction.py reads this).
    loop_scopes: list[set] = field(default_factory=list)
    # The float expression being emitted as a reduction's accumulator update (gets REDUCTION_FLAGS).
    reduction_update: object = None

    def __post_init__(self):
        # Stack slots live in their own first block, so `alloca` never disturbs the builder's position;
        # `finish` links it to the code.
        self.entry_block = self.function.append_basic_block("entry")
        self._alloca_builder = ir.IRBuilder(self.entry_block)
        self.start_block = self.function.append_basic_block("start")
        self.builder = ir.IRBuilder(self.start_block)

    def finish(self) -> None:
        """Close the function: branch from the stack-slot block into the code."""
        self._alloca_builder.branch(self.start_block)

    @property
    def options(self) -> CodegenOptions:
        return self.mod.options

    def float_flags(self, expr: PrimExpr | None = None) -> tuple[str, ...]:
        """The fast-math flags of the float operation emitted for `expr` (None: an ordinary operation)."""
        try:
            ordinary, reduction = _FLAGS[self.mod.options.float_mode]
        except KeyError:
            raise CompileError(
                f"unknown float mode {self.mod.options.float_mode!r} (known: {', '.join(FLOAT_MODES)})"
            ) from None
        return reduction if expr is not None and expr is self.reduction_update else ordinary

    # -- emission -------------------------------------------------------------------------------
    def emit_expr(self, expr: PrimExpr) -> ir.Value:
        return _lookup(EXPR_RULES, type(expr), "expression")(self, expr)

    def emit_stmt(self, stmt: Stmt) -> None:
        _lookup(STMT_RULES, type(stmt), "statement")(self, stmt)

    def lookup(self, var: Var) -> ir.Value:
        try:
            return self.env[var]
        except KeyError:
            raise CompileError(
                f"in kernel '{self.kernel_name}': variable '{var.name}' ({var.dtype}) is used but not defined"
            ) from None

    @contextmanager
    def bind(self, var: Var, value: ir.Value):
        """`var` means `value` inside the with-block (shadowing restores the outer binding)."""
        missing = object()
        old = self.env.get(var, missing)
        self.env[var] = value
        for scope in self.loop_scopes:  # a variable bound inside a loop may vary with it
            scope.add(var)
        try:
            yield
        finally:
            if old is missing:
                del self.env[var]
            else:
                self.env[var] = old

    def alloca(self, ty: ir.Type, count: int = 1, align: int = 64) -> ir.Value:
        """Stack storage in the entry block, so that allocations inside loops do not grow the stack."""
        slot = self._alloca_builder.alloca(
            ty, size=ir.Constant(ir.IntType(64), count) if count != 1 else None
        )
        slot.align = align
        slot.type = PTR  # llvmlite types allocas as typed pointers; the rest of the module is opaque
        return slot

    # -- failure paths ----------------------------------------------------------------------------
    def message_code(self, message: str) -> int:
        self.messages.append(message)
        return len(self.messages)

    def fail_unless(self, ok: ir.Value, code: int | ir.Value, label: str = "check") -> None:
        """Continue when the i1 `ok` holds; otherwise free live heap memory and return `code`."""
        fail = self.function.append_basic_block(f"{label}.fail")
        cont = self.function.append_basic_block(f"{label}.ok")
        self.builder.cbranch(ok, cont, fail)
        self.builder.position_at_end(fail)
        self.return_status(ir.Constant(I32, code) if isinstance(code, int) else code)
        self.builder.position_at_end(cont)

    def return_status(self, status: ir.Value) -> None:
        free = self.mod.declare("free", VOID, [PTR])
        for pointer in reversed(self.heap_live):
            self.builder.call(free, [pointer])
        self.builder.ret(status)
