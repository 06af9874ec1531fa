"""The loop-IR verifier: checks a PrimFunc (or every PrimFunc of an IRModule) for the mistakes the node
constructors cannot see, because they only check field types: scoping, dtype consistency, vector lanes,
intrinsic signatures, block bindings and block write sets, buffer scoping and allocation shapes.

`verify(obj)` raises VerifyError naming the function (`where`), the offending node (`node`) and the
problem; `well_formed(obj)` answers True/False. The pass infrastructure runs `verify` after each pass.

Scoping rules: parameters, and every variable in a buffer parameter's shape/strides/elem_offset, are
defined for the whole function; a For, Let, LetStmt or block iteration variable is defined in its body only,
and may be bound only once in a function. Buffers are usable where declared: parameters everywhere,
Allocate/DeclBuffer in their body, a block's alloc_buffers inside that block. Inside a block, stores go
only to buffers in its writes (or allocated inside it); a block without iteration variables that declares
no reads and no writes (the root block) is opaque and not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

from shapeflow.errors import VerifyError
from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.intrinsics import INTRINSICS


def describe(node) -> str:
    """A short description of a node for messages: its class and a one-line excerpt of its text."""
    try:
        text = " ".join(repr(node).split())
    except Exception:
        text = ""
    if len(text) > 100:
        text = text[:97] + "..."
    return f"{type(node).__name__} `{text}`" if text else type(node).__name__


class _BlockFrame:
    """What the innermost enclosing block may store to: its writes, plus buffers allocated inside it."""

    __slots__ = ("block", "writes", "reads", "local", "opaque")

    def __init__(self, block: S.Block):
        self.block = block
        # A block with no iteration variables that declares no regions at all (the root block, TVM's
        # opaque blocks) makes no claim about what it touches, so its stores are not checked.
        self.opaque = not block.iter_vars and not block.reads and not block.writes
        self.writes = {id(r.buffer) for r in block.writes} | {id(r.buffer.data) for r in block.writes}
        self.reads = {id(r.buffer) for r in block.reads} | {id(r.buffer.data) for r in block.reads}
        self.local: set[int] = set()


class FunctionVerifier:
    """Checks one PrimFunc; `where` names it in every error."""

    def __init__(self, func: PrimFunc, name: str):
        self.func = func
        self.where = f"PrimFunc {name}"
        self.defined: dict[int, int] = {}  # id(var) -> how many enclosing scopes define it
        self.bound_by: dict[int, object] = {}  # id(var) -> the node that bound it (one binding per function)
        self.buffers: dict[int, int] = {}  # id(buffer) -> scope depth count
        self.data_vars: dict[int, int] = {}  # id(data var) -> count of in-scope buffers using it
        self.blocks: list[_BlockFrame] = []

    # -- helpers ---------------------------------------------------------------------------------
    def fail(self, message: str, node) -> None:
        raise VerifyError(f"{message} (in {describe(node)})", node, self.where)

    def define(self, var: E.Var, binder) -> None:
        previous = self.bound_by.get(id(var))
        if previous is not None and previous is not binder:
            self.fail(f"variable {var.name} is defined twice", binder)
        self.bound_by[id(var)] = binder
        self.defined[id(var)] = self.defined.get(id(var), 0) + 1

    def undefine(self, var: E.Var) -> None:
        self.defined[id(var)] -= 1

    def enter_buffer(self, buffer: Buffer) -> None:
        self.buffers[id(buffer)] = self.buffers.get(id(buffer), 0) + 1
        self.data_vars[id(buffer.data)] = self.data_vars.get(id(buffer.data), 0) + 1
        if self.blocks:
            self.blocks[-1].local.update((id(buffer), id(buffer.data)))

    def leave_buffer(self, buffer: Buffer) -> None:
        self.buffers[id(buffer)] -= 1
        self.data_vars[id(buffer.data)] -= 1

    def check_buffer_in_scope(self, buffer: Buffer, node) -> None:
        if not self.buffers.get(id(buffer)):
            self.fail(
                f"buffer {buffer.name} is used but is neither a parameter nor allocated/declared in scope",
                node,
            )

    def check_allocation(self, buffer: Buffer, node) -> None:
        for d, extent in enumerate(buffer.shape):
            if isinstance(extent, E.IntImm) and extent.value <= 0:
                self.fail(
                    f"allocation of {buffer.name} has non-positive extent {extent.value} in dimension {d}",
                    node,
                )
        self.check_buffer_exprs(buffer)

    def check_buffer_exprs(self, buffer: Buffer) -> None:
        for e in (*buffer.shape, *buffer.strides, buffer.elem_offset):
            self.expr(e)
            if not e.dtype.is_integer:
                self.fail(
                    f"buffer {buffer.name}: shape, strides and offset must be integers, got {e.dtype}", e
                )

    def check_indices(self, buffer: Buffer, indices, node) -> int:
        """Rank, integer dtypes and lanes of `indices`; returns the lanes of the access."""
        if len(indices) != buffer.ndim:
            self.fail(f"{len(indices)} indices for buffer {buffer.name} of rank {buffer.ndim}", node)
        lanes = 1
        for index in indices:
            self.expr(index)
            if not index.dtype.is_integer:
                self.fail(f"index dtype must be an integer, got {index.dtype}", node)
            if index.dtype.lanes > 1:
                if lanes > 1 and index.dtype.lanes != lanes:
                    self.fail(f"vector indices with different lanes ({lanes} and {index.dtype.lanes})", node)
                lanes = index.dtype.lanes
        return lanes

    def check_bool(self, cond: E.PrimExpr, what: str, node, scalar: bool = True) -> None:
        if not cond.dtype.is_bool or (scalar and cond.dtype.is_vector):
            kind = "a scalar bool" if scalar else "bool"
            self.fail(f"{what} must be {kind}, got {cond.dtype}", node)

    # -- entry -----------------------------------------------------------------------------------
    def run(self) -> None:
        for p in self.func.params:
            if isinstance(p, E.Var):
                self.define(p, self.func)
        for p in self.func.params:
            if isinstance(p, Buffer):
                for e in (*p.shape, *p.strides, p.elem_offset):
                    for var in collect(e, E.Var):
                        if not self.defined.get(id(var)):
                            self.define(var, self.func)
                self.enter_buffer(p)
        for p in self.func.params:
            if isinstance(p, Buffer):
                self.check_buffer_exprs(p)
        self.check_var_bounds()
        self.stmt(self.func.body)

    def check_var_bounds(self) -> None:
        """ "var_bounds" is {name: (lo, hi)} of ints (inclusive): a dimension is an integer, so a fractional
        bound has no meaning, and consumers disagree on it (the fuzzer's input chooser truncates 0.5 to 0,
        below the declared range; the runtime compares against the float)."""
        bounds = self.func.attrs.get("var_bounds")
        if bounds is None:
            return
        if not isinstance(bounds, dict):
            self.fail(f"var_bounds must be a dict {{name: (lo, hi)}}, got {bounds!r}", self.func)
        for name, pair in bounds.items():
            ok = isinstance(pair, (tuple, list)) and len(pair) == 2
            if not ok or not all(isinstance(b, Integral) and not isinstance(b, bool) for b in pair):
                self.fail(f"var_bounds of {name!r} must be a pair of ints (lo, hi), got {pair!r}", self.func)

    def expr(self, e: E.PrimExpr) -> None:
        rule = _EXPR_RULES.get(type(e))
        if rule is None:
            self.fail(f"unknown expression node {type(e).__name__}", e)
        rule(self, e)

    def stmt(self, s: S.Stmt) -> None:
        rule = _STMT_RULES.get(type(s))
        if rule is None:
            self.fail(f"unknown statement node {type(s).__name__}", s)
        rule(self, s)

    # -- expressions -----------------------------------------------------------------------------
    def var(self, v: E.Var) -> None:
        if not self.defined.get(id(v)) and not self.data_vars.get(id(v)):
            self.fail(f"undefined variable {v.name} (used outside the scope that defines it)", v)

    def leaf(self, e) -> None:
        pass

    def binary(self, e: E.BinaryOp) -> None:
        self.expr(e.a)
        self.expr(e.b)
        name = type(e).__name__
        if e.a.dtype != e.b.dtype:
            self.fail(f"operand dtype mismatch in {name}: {e.a.dtype} vs {e.b.dtype}", e)
        if name in ("And", "Or"):
            self.check_bool(e.a, f"{name} operand", e, scalar=False)
        elif e.a.dtype.is_handle:
            self.fail(f"arithmetic {name} on handle values", e)

    def compare(self, e: E.CmpOp) -> None:
        self.expr(e.a)
        self.expr(e.b)
        if e.a.dtype != e.b.dtype:
            self.fail(f"comparison {type(e).__name__} of mismatched dtypes {e.a.dtype} and {e.b.dtype}", e)

    def not_(self, e: E.Not) -> None:
        self.expr(e.a)
        self.check_bool(e.a, "Not operand", e, scalar=False)

    def select(self, e: E.Select) -> None:
        for part in (e.condition, e.true_value, e.false_value):
            self.expr(part)
        self.check_bool(e.condition, "Select condition", e, scalar=False)
        if e.true_value.dtype != e.false_value.dtype:
            self.fail(f"Select branch dtype mismatch: {e.true_value.dtype} vs {e.false_value.dtype}", e)
        if e.condition.dtype.lanes not in (1, e.true_value.dtype.lanes):
            self.fail(f"Select condition has {e.condition.dtype.lanes} lanes, branches {e.dtype.lanes}", e)

    def cast(self, e: E.Cast) -> None:
        self.expr(e.value)
        if e.dtype.is_handle or e.value.dtype.is_handle:
            self.fail(f"Cast from {e.value.dtype} to {e.dtype}: casts to or from handle are not allowed", e)
        if e.dtype.lanes != e.value.dtype.lanes:
            self.fail(f"Cast changes lanes: {e.value.dtype} to {e.dtype}", e)

    def call(self, e: E.Call) -> None:
        intrinsic = INTRINSICS.get(e.op)
        if intrinsic is None:
            self.fail(f"call to unknown intrinsic {e.op!r}", e)
        for a in e.args:
            self.expr(a)
        if len(e.args) != intrinsic.arity:
            self.fail(f"intrinsic {e.op} takes {intrinsic.arity} arguments, got {len(e.args)}", e)
        try:
            intrinsic.check([a.dtype for a in e.args], e)
        except VerifyError as exc:
            self.fail(f"bad call of intrinsic {e.op}: {exc.message}", e)

    def ramp(self, e: E.Ramp) -> None:
        self.expr(e.base)
        self.expr(e.stride)
        if e.base.dtype.is_vector or e.stride.dtype.is_vector:
            self.fail("Ramp base and stride must be scalars (vector lane mismatch)", e)
        if e.base.dtype != e.stride.dtype:
            self.fail(f"Ramp base and stride dtypes differ: {e.base.dtype} vs {e.stride.dtype}", e)

    def broadcast(self, e: E.Broadcast) -> None:
        self.expr(e.value)
        if e.value.dtype.is_vector:
            self.fail(f"Broadcast of a vector value ({e.value.dtype}); it takes a scalar", e)

    def let(self, e: E.Let) -> None:
        self.expr(e.value)
        if e.var.dtype != e.value.dtype:
            self.fail(f"Let binds {e.var.name} of {e.var.dtype} to a value of {e.value.dtype}", e)
        self.define(e.var, e)
        self.expr(e.body)
        self.undefine(e.var)

    def buffer_load(self, e: E.BufferLoad) -> None:
        self.check_buffer_in_scope(e.buffer, e)
        self.check_indices(e.buffer, e.indices, e)

    # -- statements ------------------------------------------------------------------------------
    def buffer_store(self, s: S.BufferStore) -> None:
        buffer = s.buffer
        self.check_buffer_in_scope(buffer, s)
        lanes = self.check_indices(buffer, s.indices, s)
        self.expr(s.value)
        expected = buffer.dtype.with_lanes(lanes)
        if s.value.dtype != expected:
            self.fail(
                f"store of a {s.value.dtype} value into {buffer.name} needs {expected} (buffer dtype "
                f"{buffer.dtype}, {lanes} index lanes)",
                s,
            )
        if self.blocks and not self.blocks[-1].opaque:
            frame = self.blocks[-1]
            key, data = id(buffer), id(buffer.data)
            if not ({key, data} & (frame.writes | frame.local)):
                if {key, data} & frame.reads:
                    self.fail(
                        f"writes to read-only region: buffer {buffer.name} is only in the reads of "
                        f"block {frame.block.name}",
                        s,
                    )
                self.fail(
                    f"block {frame.block.name} writes to buffer {buffer.name}, which is not in its writes", s
                )

    def evaluate(self, s: S.Evaluate) -> None:
        self.expr(s.value)

    def let_stmt(self, s: S.LetStmt) -> None:
        self.expr(s.value)
        if s.var.dtype != s.value.dtype:
            self.fail(f"LetStmt binds {s.var.name} of {s.var.dtype} to a value of {s.value.dtype}", s)
        self.define(s.var, s)
        self.stmt(s.body)
        self.undefine(s.var)

    def assert_stmt(self, s: S.AssertStmt) -> None:
        self.expr(s.condition)
        self.check_bool(s.condition, "AssertStmt condition", s)

    def if_then_else(self, s: S.IfThenElse) -> None:
        self.expr(s.condition)
        self.check_bool(s.condition, "IfThenElse condition", s)
        self.stmt(s.then_case)
        if s.else_case is not None:
            self.stmt(s.else_case)

    def for_(self, s: S.For) -> None:
        var = s.loop_var
        if not var.dtype.is_integer or var.dtype.is_vector:
            self.fail(f"loop variable {var.name} must be a scalar integer, got {var.dtype}", s)
        for part, what in ((s.min, "min"), (s.extent, "extent")):
            self.expr(part)
            if part.dtype != var.dtype:
                self.fail(f"For {what} has dtype {part.dtype} but loop variable {var.name} is {var.dtype}", s)
        self.define(var, s)
        self.stmt(s.body)
        self.undefine(var)

    def seq(self, s: S.SeqStmt) -> None:
        for x in s.seq:
            self.stmt(x)

    def allocate(self, s: S.Allocate) -> None:
        self.check_allocation(s.buffer, s)
        self.enter_buffer(s.buffer)
        self.stmt(s.body)
        self.leave_buffer(s.buffer)

    def decl_buffer(self, s: S.DeclBuffer) -> None:
        if not self.data_vars.get(id(s.buffer.data)) and not self.defined.get(id(s.buffer.data)):
            self.fail(f"DeclBuffer {s.buffer.name}: its storage {s.buffer.data.name} is not defined here", s)
        self.check_buffer_exprs(s.buffer)
        self.enter_buffer(s.buffer)
        self.stmt(s.body)
        self.leave_buffer(s.buffer)

    def block_realize(self, s: S.BlockRealize) -> None:
        block = s.block
        for v in s.iter_values:
            self.expr(v)
        self.expr(s.predicate)
        self.check_bool(s.predicate, "block predicate", s)
        if len(s.iter_values) != len(block.iter_vars):
            self.fail(
                f"block {block.name} has {len(block.iter_vars)} iteration variables but "
                f"{len(s.iter_values)} iter_values",
                s,
            )
        for iv, value in zip(block.iter_vars, s.iter_values):
            if not value.dtype.is_integer or value.dtype.is_vector:
                self.fail(
                    f"block {block.name}: binding of {iv.var.name} must be a scalar integer, got "
                    f"{value.dtype}",
                    s,
                )
            if value.dtype != iv.var.dtype:
                self.fail(
                    f"block {block.name}: binding of {iv.var.name} ({iv.var.dtype}) has dtype {value.dtype}",
                    s,
                )
        self.block_body(block)

    def bare_block(self, s: S.Block) -> None:
        if s.iter_vars:
            self.fail(f"block {s.name} has iteration variables but no BlockRealize binds them", s)
        self.block_body(s)

    def block_body(self, block: S.Block) -> None:
        for iv in block.iter_vars:
            for part in (iv.dom.min, iv.dom.extent):
                self.expr(part)
                if not part.dtype.is_integer:
                    self.fail(f"domain of {iv.var.name} must be integer, got {part.dtype}", block)
            if not iv.var.dtype.is_integer:
                self.fail(
                    f"block iteration variable {iv.var.name} must be an integer, got {iv.var.dtype}", block
                )
        for iv in block.iter_vars:
            self.define(iv.var, block)
        frame = _BlockFrame(block)
        self.blocks.append(frame)
        for b in block.alloc_buffers:
            self.check_allocation(b, block)
            self.enter_buffer(b)
        for region in (*block.reads, *block.writes):
            self.check_buffer_in_scope(region.buffer, block)
            if len(region.region) != region.buffer.ndim:
                self.fail(
                    f"region of {region.buffer.name} has {len(region.region)} ranges for rank "
                    f"{region.buffer.ndim}",
                    block,
                )
            for r in region.region:
                self.expr(r.min)
                self.expr(r.extent)
        if block.init is not None:
            self.stmt(block.init)
        self.stmt(block.body)
        for b in block.alloc_buffers:
            self.leave_buffer(b)
        self.blocks.pop()
        for iv in block.iter_vars:
            self.undefine(iv.var)


_V = FunctionVerifier
_EXPR_RULES: dict[type, Callable] = {
    E.Var: _V.var,
    E.IntImm: _V.leaf,
    E.FloatImm: _V.leaf,
    E.StringImm: _V.leaf,
    **{
        cls: _V.binary
        for cls in (E.Add, E.Sub, E.Mul, E.Div, E.Mod, E.FloorDiv, E.FloorMod, E.Min, E.Max, E.And, E.Or)
    },
    **{cls: _V.compare for cls in (E.EQ, E.NE, E.LT, E.LE, E.GT, E.GE)},
    E.Not: _V.not_,
    E.Select: _V.select,
    E.Cast: _V.cast,
    E.Call: _V.call,
    E.Ramp: _V.ramp,
    E.Broadcast: _V.broadcast,
    E.Let: _V.let,
    E.BufferLoad: _V.buffer_load,
}
_STMT_RULES: dict[type, Callable] = {
    S.BufferStore: _V.buffer_store,
    S.Evaluate: _V.evaluate,
    S.LetStmt: _V.let_stmt,
    S.AssertStmt: _V.assert_stmt,
    S.IfThenElse: _V.if_then_else,
    S.For: _V.for_,
    S.SeqStmt: _V.seq,
    S.Allocate: _V.allocate,
    S.DeclBuffer: _V.decl_buffer,
    S.BlockRealize: _V.block_realize,
    S.Block: _V.bare_block,
}


def _function_name(func: PrimFunc, fallback: str) -> str:
    symbol = func.attrs.get("global_symbol")
    return symbol if isinstance(symbol, str) and symbol else fallback


def verify(obj) -> None:
    """Raise VerifyError for the first problem in a PrimFunc or in any PrimFunc of an IRModule."""
    if isinstance(obj, PrimFunc):
        FunctionVerifier(obj, _function_name(obj, "prim_func")).run()
    elif isinstance(obj, IRModule):
        for name, func in obj.items():
            if isinstance(func, PrimFunc):
                FunctionVerifier(func, name).run()
    else:
        raise VerifyError(f"verify expects a PrimFunc or an IRModule, got {type(obj).__name__}", obj)


def well_formed(obj) -> bool:
    """True when `verify(obj)` passes."""
    try:
        verify(obj)
    except VerifyError:
        return False
    return True


__all__ = ["verify", "well_formed", "FunctionVerifier", "describe"]
