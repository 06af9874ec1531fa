"""Translate the supported subset of our loop IR to TVMScript text (apache-tvm 0.2x, `tirx` dialect).

Why text and not `tvm.tirx` constructors: TVM's Python constructors change shape between releases (LetStmt
lost its body, Allocate became AllocBuffer), while its script dialect stays close to ours, and the text is
the standalone reproducer a TVM bug report needs. The output parses with
`tvm.script.from_source(text, check_well_formed=False)` (blocks live in the s_tir dialect, which the
tirx well-formedness check does not know) and builds with `tvm.compile(mod, target="llvm")`.

What is normalized so that a difference is a bug and not a difference of definitions:
- every constant carries its dtype (`T.int64(3)`), so TVM's int32 defaults never apply;
- Let expressions and LetStmt are inlined (they are pure, so this keeps their meaning);
- `round` is `T.nearbyint` (round half to even, as our reference), not `T.round` (half away from zero);
- an Allocate'd buffer is zero-filled first, because our reference defines it zero-filled and TVM does not;
- integer division and modulo by zero are 0 in our IR (numpy's result); in TVM a constant zero divisor is an
  error (its constant folder checks "Divide by zero", dead code included) and a run-time one traps (SIGFPE),
  as INT_MIN / -1 does. A divisor not known to be nonzero (nor -1) from `var_bounds` is guarded:
  `Select(b == 0, 0, a / (b + (b == 0)))`, with b == -1 computed as 0 - a (or 0 for a modulo);
- float min/max propagate NaN in our IR (LLVM's llvm.maximum); TVM's are `a > b ? a : b` (NaN-blind), so
  they are written `Select(isnan(a) || isnan(b), a + b, max(a, b))`;
- an integer cast of a constant integer expression is folded here, wrapping as C does: TVM folds it into a
  literal of the target type and refuses one out of range (a known TVM bug, test_fuzz_tvm_bugs.py);
- float16 log1p and erf are computed in float32 and rounded: TVM's LLVM backend has no float16 lowering for
  them (the same known-bug file), and the rounded float32 result is what our reference computes;
- unrolled loops with a non-constant extent, and vectorized ones, run serially: TVM refuses both by design
  ("Cannot unroll non-constant loop"; vectorizing needs a constant or vscale-scaled extent on the target).

Anything else is refused with `NotTranslatable` (the campaign counts those tests as not translatable):
vectors, DeclBuffer, Evaluate, strides/offsets, non-finite constants, variable shift amounts.
"""

from __future__ import annotations

import math
import re

from shapeflow.ir import expr as E
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc


class NotTranslatable(Exception):
    """The function uses a construct the translator does not cover (not a bug of anyone)."""


_BINARY_OPS = {"Add": "+", "Sub": "-", "Mul": "*"}
_CMP_OPS = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_CALLS = {"Min": "T.min", "Max": "T.max", "FloorDiv": "T.floordiv", "FloorMod": "T.floormod"}
# Our intrinsic name -> TVMScript function; absent names are not translatable.
INTRINSIC_NAMES = {
    **{n: f"T.{n}" for n in ("exp", "exp2", "log", "log2", "log1p", "sqrt", "tanh", "sin", "cos")},
    **{n: f"T.{n}" for n in ("floor", "ceil", "trunc", "rsqrt", "sigmoid", "erf", "pow", "abs")},
    **{n: f"T.{n}" for n in ("isnan", "isinf", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not")},
    "round": "T.nearbyint",
    "fma": "T.fma",
    "shift_left": "T.shift_left",
    "shift_right": "T.shift_right",
}
_KINDS = {
    S.ForKind.SERIAL: "T.serial",
    S.ForKind.PARALLEL: "T.parallel",
    S.ForKind.VECTORIZED: "T.vectorized",
    S.ForKind.UNROLLED: "T.unroll",
}


class _Printer:
    def __init__(self):
        self.names: dict[int, str] = {}
        self.used: set[str] = {"T", "main"}
        self.inline: dict[int, str] = {}  # Let-bound Vars -> their value's text
        self.lines: list[str] = []
        self.enclosing: list[S.ForKind] = []  # kinds of the loops around the statement being printed
        self.bounds: dict[E.Var, tuple[int, int]] = {}  # declared var_bounds of dimensions and scalars

    # -- names ---------------------------------------------------------------------------------
    def name(self, obj, hint: str) -> str:
        found = self.names.get(id(obj)) if obj is not None else None
        if found is not None:
            return found
        base = re.sub(r"\W", "_", hint) or "v"
        if not base[0].isalpha():
            base = "v" + base
        name, k = base, 0
        while name in self.used or name in _RESERVED:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        if obj is not None:
            self.names[id(obj)] = name
        return name

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, e: E.PrimExpr) -> str:
        if e.dtype.is_vector:
            raise NotTranslatable("vector expressions")
        cls = type(e).__name__
        if cls in _BINARY_OPS:
            return f"({self.expr(e.a)} {_BINARY_OPS[cls]} {self.expr(e.b)})"
        if cls in _CMP_OPS:
            return f"({self.expr(e.a)} {_CMP_OPS[cls]} {self.expr(e.b)})"
        if cls in ("FloorDiv", "FloorMod") and e.dtype.is_float:
            # TVM's floordiv/floormod take integers only; this is our reference's float definition.
            a, b = self.expr(e.a), self.expr(e.b)
            return f"T.floor({a} / {b})" if cls == "FloorDiv" else f"({a} - T.floor({a} / {b}) * {b})"
        if cls in ("Min", "Max"):
            return self.min_max(_CALLS[cls], e)
        if cls in ("FloorDiv", "FloorMod"):
            return self.int_division(_CALLS[cls], e)
        if cls in _CALLS:
            return f"{_CALLS[cls]}({self.expr(e.a)}, {self.expr(e.b)})"
        fn = getattr(self, f"e_{cls}", None)
        if fn is None:
            raise NotTranslatable(f"expression {type(e).__name__}")
        return fn(e)

    def e_Var(self, e: E.Var) -> str:
        if id(e) in self.inline:
            return self.inline[id(e)]
        if id(e) not in self.names:
            raise NotTranslatable(f"free variable {e.name}")
        return self.names[id(e)]

    def e_IntImm(self, e: E.IntImm) -> str:
        if e.dtype.is_bool:
            return f"T.bool({bool(e.value)})"
        return f"T.{e.dtype}({int(e.value)})"

    def e_FloatImm(self, e: E.FloatImm) -> str:
        if not math.isfinite(e.value):
            return f'T.{e.dtype}("{e.value}")'
        return f"T.{e.dtype}({float(e.value)!r})"

    def e_Cast(self, e: E.Cast) -> str:
        v = e.value
        if _plain_int(v.dtype) and _plain_int(e.dtype):
            value = _constant_int(v)
            if value is not None:  # folded here: see the module docstring
                return f"T.{e.dtype}({_wrap_int(value, e.dtype)})"
        return f'T.Cast("{e.dtype}", {self.expr(v)})'

    def e_Not(self, e: E.Not) -> str:
        return f"T.Not({self.expr(e.a)})"

    def e_And(self, e) -> str:
        return f"T.And({self.expr(e.a)}, {self.expr(e.b)})"

    def e_Or(self, e) -> str:
        return f"T.Or({self.expr(e.a)}, {self.expr(e.b)})"

    def e_Div(self, e) -> str:
        if e.dtype.is_float:
            return f"({self.expr(e.a)} / {self.expr(e.b)})"
        return self.int_division("T.truncdiv", e)

    def e_Mod(self, e) -> str:
        if e.dtype.is_float:
            raise NotTranslatable("float Mod")
        return self.int_division("T.truncmod", e)

    def int_division(self, fn: str, e) -> str:
        """`fn(a, b)` with our definitions of a zero divisor (the result is 0) and of INT_MIN / -1 (it wraps),
        safe to run in TVM: both trap there (SIGFPE), which would kill the fuzzing worker."""
        a, b, dt = self.expr(e.a), self.expr(e.b), e.dtype
        if self.safe_divisor(e.b, signed=not dt.is_uint):
            return f"{fn}({a}, {b})"
        zero = f"({b} == T.{dt}(0))"
        if dt.is_uint:
            return f'T.Select({zero}, T.{dt}(0), {fn}({a}, {b} + T.Cast("{dt}", {zero})))'
        minus = f"({b} == T.{dt}(-1))"
        safe = f'{b} + T.Cast("{dt}", {zero}) + T.Cast("{dt}", {minus}) * T.{dt}(2)'  # 0 and -1 become 1
        negated = f"(T.{dt}(0) - {a})" if fn in ("T.truncdiv", "T.floordiv") else f"T.{dt}(0)"
        text = f"T.Select({zero}, T.{dt}(0), T.Select({minus}, {negated}, {fn}({a}, {safe})))"
        if len(text) > _MAX_EXPR_CHARS:  # the divisor is repeated five times
            raise NotTranslatable("nested integer divisions too large with zero-divisor guards")
        return text

    def safe_divisor(self, e: E.PrimExpr, signed: bool) -> bool:
        """Whether `e` is never 0 (nor -1, when `signed`) given the declared `var_bounds` of the function's
        dimensions. Such divisors stay unguarded: a guard would hide from TVM the very index arithmetic,
        `i % n`, that the fuzzer is after."""
        if isinstance(e, E.IntImm):
            return e.value not in ((0, -1) if signed else (0,))
        from shapeflow.ir.arith import const_int_bound  # noqa: PLC0415

        try:
            bound = const_int_bound(e, self.bounds)
        except Exception:  # noqa: BLE001  an expression the analyzer does not bound: guard it
            return False
        return bound.min_value >= 1 or bound.max_value <= (-2 if signed else -1)

    def min_max(self, fn: str, e) -> str:
        """`fn(a, b)`; for floats NaN-propagating, as our reference (TVM's min/max are NaN-blind)."""
        a, b = self.expr(e.a), self.expr(e.b)
        if not e.dtype.is_float:
            return f"{fn}({a}, {b})"
        text = f"T.Select(T.Or(T.isnan({a}), T.isnan({b})), {a} + {b}, {fn}({a}, {b}))"
        if len(text) > _MAX_EXPR_CHARS:  # each guard repeats its operands three times
            raise NotTranslatable("nested float min/max too large with NaN guards")
        return text

    def e_Select(self, e: E.Select) -> str:
        c, t, f = self.expr(e.condition), self.expr(e.true_value), self.expr(e.false_value)
        return f"T.Select({c}, {t}, {f})"

    def e_Let(self, e: E.Let) -> str:
        self.inline[id(e.var)] = self.expr(e.value)
        try:
            return self.expr(e.body)
        finally:
            del self.inline[id(e.var)]

    def e_Call(self, e: E.Call) -> str:
        fn = INTRINSIC_NAMES.get(e.op)
        if fn is None:
            raise NotTranslatable(f"intrinsic {e.op}")
        if e.op in ("shift_left", "shift_right"):
            amount = e.args[1]
            if not isinstance(amount, E.IntImm) or not 0 <= amount.value < e.dtype.bits:
                raise NotTranslatable("shift by a variable or out-of-range amount (undefined in LLVM)")
        args = [self.expr(a) for a in e.args]
        if e.op in _F16_IN_F32 and str(e.dtype) == "float16":
            wide = ", ".join(f'T.Cast("float32", {a})' for a in args)
            return f'T.Cast("float16", {fn}({wide}))'
        return f"{fn}({', '.join(args)})"

    def e_BufferLoad(self, e: E.BufferLoad) -> str:
        return f"{self.buffer(e.buffer)}[{self.indices(e.indices)}]"

    def indices(self, indices) -> str:
        return ", ".join(self.expr(i) for i in indices) if indices else "()"

    def buffer(self, b: Buffer) -> str:
        if id(b) not in self.names:
            raise NotTranslatable(f"buffer {b.name} used outside its scope")
        return self.names[id(b)]

    # -- statements ----------------------------------------------------------------------------
    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def stmt(self, s: S.Stmt, depth: int) -> None:
        fn = getattr(self, f"s_{type(s).__name__}", None)
        if fn is None:
            raise NotTranslatable(f"statement {type(s).__name__}")
        fn(s, depth)

    def s_SeqStmt(self, s: S.SeqStmt, depth: int) -> None:
        for x in s.seq:
            self.stmt(x, depth)

    def s_BufferStore(self, s: S.BufferStore, depth: int) -> None:
        self.emit(depth, f"{self.buffer(s.buffer)}[{self.indices(s.indices)}] = {self.expr(s.value)}")

    def s_LetStmt(self, s: S.LetStmt, depth: int) -> None:
        self.inline[id(s.var)] = self.expr(s.value)
        try:
            self.stmt(s.body, depth)
        finally:
            del self.inline[id(s.var)]

    def s_AssertStmt(self, s: S.AssertStmt, depth: int) -> None:
        self.emit(depth, f"assert {self.expr(s.condition)}, {s.message!r}")

    def s_IfThenElse(self, s: S.IfThenElse, depth: int) -> None:
        self.emit(depth, f"if {self.expr(s.condition)}:")
        self.stmt(s.then_case, depth + 1)
        if s.else_case is not None:
            self.emit(depth, "else:")
            self.stmt(s.else_case, depth + 1)

    def s_For(self, s: S.For, depth: int) -> None:
        if s.kind not in _KINDS or s.thread_tag:
            raise NotTranslatable(f"loop kind {s.kind}")
        kind = s.kind
        # TVM's limits, not differences of meaning (the generator's loops are race-free): its thread pool
        # runs no parallel loop inside another, and it vectorizes no loop inside a vectorized one or
        # around storage allocation. Those loops run serially instead.
        if kind == S.ForKind.PARALLEL and S.ForKind.PARALLEL in self.enclosing:
            kind = S.ForKind.SERIAL
        if kind == S.ForKind.VECTORIZED and (S.ForKind.VECTORIZED in self.enclosing or _allocates(s.body)):
            kind = S.ForKind.SERIAL
        if kind in (S.ForKind.VECTORIZED, S.ForKind.UNROLLED) and not isinstance(s.extent, E.IntImm):
            kind = S.ForKind.SERIAL  # TVM unrolls and vectorizes constant extents only
        lo, ext = self.expr(s.min), self.expr(s.extent)
        v = self.name(s.loop_var, s.loop_var.name)
        self.emit(depth, f"for {v} in {_KINDS[kind]}({lo}, {lo} + {ext}):")
        self.enclosing.append(kind)
        try:
            self.stmt(s.body, depth + 1)
        finally:
            self.enclosing.pop()

    def alloc(self, b: Buffer, depth: int) -> None:
        self.check_buffer(b)
        name = self.name(b, b.name)
        shape = ", ".join(self.expr(d) for d in b.shape)
        self.emit(depth, f'{name} = T.alloc_buffer(({shape},), "{b.dtype}", scope="{b.scope}")')
        # Zero-fill: our reference defines allocated storage as zeros, TVM leaves it uninitialized.
        loops = []
        for k, d in enumerate(b.shape):
            iv = f"{name}_z{k}"
            self.used.add(iv)
            self.emit(depth + k, f"for {iv} in T.serial(T.int64(0), {self.expr(d)}):")
            loops.append(iv)
        zero = f"T.{b.dtype}(0)" if not b.dtype.is_bool else "T.bool(False)"
        self.emit(depth + len(loops), f"{name}[{', '.join(loops) or '()'}] = {zero}")

    def s_Allocate(self, s: S.Allocate, depth: int) -> None:
        self.alloc(s.buffer, depth)
        self.stmt(s.body, depth)

    def region(self, r: S.BufferRegion) -> str:
        parts = []
        for rng in r.region:
            lo = self.expr(rng.min)
            parts.append(f"{lo}:{lo} + {self.expr(rng.extent)}")
        return f"{self.buffer(r.buffer)}[{', '.join(parts)}]"

    def s_BlockRealize(self, s: S.BlockRealize, depth: int) -> None:
        b = s.block
        if b.annotations:
            raise NotTranslatable("block annotations")
        values = [self.expr(v) for v in s.iter_values]  # in the enclosing scope
        self.emit(depth, f"with T.sblock({b.name!r}):")
        d = depth + 1
        for iv, value in zip(b.iter_vars, values):
            kind = {S.IterType.SPATIAL: "spatial", S.IterType.REDUCE: "reduce"}.get(iv.iter_type)
            if kind is None:
                raise NotTranslatable(f"iter type {iv.iter_type}")
            lo, ext = self.expr(iv.dom.min), self.expr(iv.dom.extent)
            name = self.name(iv.var, iv.var.name)
            self.emit(d, f"{name} = T.axis.{kind}(({lo}, {lo} + {ext}), {value})")
        if not (isinstance(s.predicate, E.IntImm) and s.predicate.value):
            self.emit(d, f"T.where({self.expr(s.predicate)})")
        self.emit(d, f"T.reads({', '.join(self.region(r) for r in b.reads)})")
        self.emit(d, f"T.writes({', '.join(self.region(r) for r in b.writes)})")
        for buf in b.alloc_buffers:
            self.alloc(buf, d)
        if b.init is not None:
            self.emit(d, "with T.init():")
            self.stmt(b.init, d + 1)
        self.stmt(b.body, d)

    def check_buffer(self, b: Buffer) -> None:
        if b.strides:
            raise NotTranslatable("strided buffer")
        if not (isinstance(b.elem_offset, E.IntImm) and b.elem_offset.value == 0):
            raise NotTranslatable("buffer with an element offset")
        if b.dtype.is_vector or b.dtype.is_handle:
            raise NotTranslatable(f"buffer dtype {b.dtype}")


# Intrinsics TVM accepts on float16 but cannot lower to LLVM; they are computed in float32 (see above).
_F16_IN_F32 = frozenset({"log1p", "erf"})
_MAX_EXPR_CHARS = 20000


def _plain_int(dtype) -> bool:
    return dtype.is_integer and dtype.is_scalar  # signed or unsigned, bool excluded


def _constant_int(e: E.PrimExpr) -> int | None:
    """The value of an integer expression without variables or loads (as our IR defines it), or None."""
    if isinstance(e, E.IntImm):
        return int(e.value)
    from shapeflow.ir.arith import evaluate  # noqa: PLC0415
    from shapeflow.ir.functor import collect  # noqa: PLC0415

    if collect(e, E.Var) or collect(e, E.BufferLoad):
        return None
    try:
        value = evaluate(e, {})
    except Exception:  # noqa: BLE001  undefined (x / 0) or not evaluable here: left to TVM
        return None
    return value if isinstance(value, int) else None


def _wrap_int(value: int, dtype) -> int:
    """`value` converted to the integer `dtype` as C converts it (two's complement wrap)."""
    bits = dtype.bits
    value &= (1 << bits) - 1
    if not dtype.is_uint and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _allocates(s: S.Stmt) -> bool:
    from shapeflow.ir.functor import collect  # noqa: PLC0415

    return bool(collect(s, S.Allocate)) or any(b.alloc_buffers for b in collect(s, S.Block))


_RESERVED = {"and", "or", "not", "if", "else", "for", "in", "with", "def", "lambda", "None", "True", "False"}
_RESERVED |= {"assert", "return", "class", "is", "as", "from", "import", "pass", "while", "del", "global"}
_RESERVED |= {"yield", "try", "except", "finally", "raise", "break", "continue", "elif", "nonlocal", "print"}


def to_tvmscript(func: PrimFunc) -> str:
    """TVMScript text of `func` (one PrimFunc named `main`, `T` being `tvm.script.tirx`), or
    NotTranslatable."""
    p = _Printer()
    buffers = [q for q in func.params if isinstance(q, Buffer)]
    scalars = [q for q in func.params if isinstance(q, E.Var)]
    if list(func.params) != buffers + scalars:
        raise NotTranslatable("scalar parameters before buffers")
    for v in scalars:
        if not v.dtype.is_integer or v.dtype.is_vector:
            raise NotTranslatable(f"scalar parameter of dtype {v.dtype}")
    dims: list[E.Var] = []
    for b in buffers:
        p.check_buffer(b)
        for d in b.shape:
            if isinstance(d, E.Var) and all(d is not x for x in dims + scalars):
                if str(d.dtype) != "int64":
                    raise NotTranslatable("non-int64 symbolic dimension")
                dims.append(d)
    declared = func.attrs.get("var_bounds") or {}
    if isinstance(declared, dict):
        for v in dims + scalars:
            if v.name in declared:
                lo, hi = declared[v.name]
                p.bounds[v] = (int(lo), int(hi))
    handles = [f"{p.name(None, b.name.lower() + '_h')}: T.handle" for b in buffers]
    handles += [f"{p.name(v, v.name)}: T.{v.dtype}" for v in scalars]
    header = [f"{p.name(d, d.name)} = T.int64()" for d in dims]
    for b, handle in zip(buffers, handles):
        shape = ", ".join(p.expr(d) for d in b.shape)
        header.append(
            f'{p.name(b, b.name)} = T.match_buffer({handle.split(":")[0]}, ({shape},), "{b.dtype}")'
        )
    p.lines = ["@T.prim_func", f"def main({', '.join(handles)}):"]
    for line in header:
        p.emit(1, line)
    p.stmt(func.body, 1)
    return "\n".join(p.lines) + "\n"


__all__ = ["NotTranslatable", "INTRINSIC_NAMES", "to_tvmscript"]
