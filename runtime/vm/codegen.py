"""VM codegen: a legalized graph module (every op call a `call_tir`, fused or not) to a VM `Program`.

Per graph function:
- parameters occupy registers 0..k-1 and are checked at entry (dtype, rank, dims: a dim that is a new Var is
  stored into the shape heap, other dims are asserted, after all parameters when they use later Vars), then
  the declared `var_bounds`;
- each binding gets its own register; `call_tir` / `call_dps_library` outputs are allocated explicitly from
  the output types (shape expressions over the heap), then the kernel is called in destination-passing style;
- `match_cast` stores new Vars and asserts known dims; a register is freed after the binding that uses it
  last (liveness over the function's top-level bindings);
- the result is checked against the return type when the body's type does not already say so.

A kernel call is emitted unchecked (straight to native code) when each argument's static type matches the
kernel's buffer and every dim the kernel expects is proved equal to the dim we pass; otherwise it goes through
the kernel's own argument checks. These static decisions are in `codegen_proofs.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.builder import type_vars
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.shape import free_vars
from shapeflow.ir.graph.types import FuncType, ObjectType, PrimType, ShapeType, TensorType, TupleType, Type
from shapeflow.ir.module import IRModule
from shapeflow.runtime.vm import shape_code as SC
from shapeflow.runtime.vm.codegen_proofs import plan_kernel_call, type_implies, value_uses
from shapeflow.runtime.vm.gemm_steps import GEMM_KINDS
from shapeflow.runtime.vm.guards import Guard
from shapeflow.runtime.vm.program import Program, VMFunction

GEMM_PREFIX = "shapeflow.gemm."


class _Module:
    """What all functions share: the kernel table, the constants, the library's kernel ABIs."""

    def __init__(self, mod: IRModule, library, guards: dict[str, list[Guard]]):
        self.mod = mod
        self.library = library
        self.guards = guards
        self.kernels: list[str] = []
        self.constants: list[np.ndarray] = []
        self._constant_ids: dict[int, int] = {}

    def kernel_index(self, name: str) -> int:
        if name not in self.library:
            raise VerifyError(f"call_tir of '{name}', which is not a compiled kernel")
        if name not in self.kernels:
            self.kernels.append(name)
        return self.kernels.index(name)

    def constant_index(self, const: G.Constant) -> int:
        key = id(const)
        if key not in self._constant_ids:
            self._constant_ids[key] = len(self.constants)
            self.constants.append(np.array(const.array))  # a writeable copy owned by the program
        return self._constant_ids[key]


def codegen(mod: IRModule, library, guards: dict[str, list[Guard]] | None = None) -> tuple[Program, list]:
    """The VM program of every graph function of `mod`, and its constants."""
    shared = _Module(mod, library, guards or {})
    functions = {}
    graph_funcs = [(n, f) for n, f in mod.items() if isinstance(f, G.GraphFunction)]
    if not graph_funcs:
        raise UnsupportedError("the module has no graph function to compile")
    for name, func in graph_funcs:
        functions[name] = _FunctionCodegen(shared, name, func).run()
    names = [n for n, _ in graph_funcs]
    entry = "main" if "main" in names else names[0]
    return Program(functions, shared.kernels, len(shared.constants), entry), shared.constants


class _FunctionCodegen:
    def __init__(self, shared: _Module, name: str, func: G.GraphFunction):
        self.shared = shared
        self.name = name
        self.func = func
        self.out = VMFunction(name, [p.name for p in func.params], 0, [])
        self.regs: dict[G.GraphVar, int] = {}
        self.owned: set[int] = set()  # registers that hold a variable
        self.slots: dict[int, int] = {}  # id(Var) -> heap slot
        self.bounds = dict(func.attrs.get("var_bounds") or {})
        self.guards = list(shared.guards.get(name, ()))
        # The memory plan of passes/graph/memory.py: storage tokens (sizes in bytes) and the tensors in them.
        plan = func.attrs.get("memory_plan") or {}
        self.planned: dict[str, int] = dict(plan.get("tensors") or {})
        self.pending_storage = dict(enumerate(plan.get("storage") or ()))
        self.storage_regs: dict[int, int] = {}
        self.release_after: dict[str, tuple] = dict(func.attrs.get("kill_storage_after") or {})
        self.binding_name: str | None = None  # the top-level binding being compiled

    # -- registers and the heap -------------------------------------------------------------------
    def new_reg(self) -> int:
        self.out.num_regs += 1
        return self.out.num_regs - 1

    def new_slot(self, var: Var) -> int:
        slot = len(self.out.heap)
        self.slots[id(var)] = slot
        self.out.heap.append(var.name)
        return slot

    def code(self, expr) -> list:
        return SC.encode(expr, self.slots)

    def defined(self, expr) -> bool:
        if isinstance(expr, int):
            return True
        return all(id(v) in self.slots for v in free_vars([expr]))

    # -- the function -------------------------------------------------------------------------------
    def run(self) -> VMFunction:
        for p in self.func.params:
            self.regs[p] = self.new_reg()
            self.owned.add(self.regs[p])
        deferred: list[Callable[[], None]] = []
        for p in self.func.params:
            self.match(self.regs[p], p.type, p.name, deferred)
        for emit in deferred:
            emit()
        self.after_new_vars()
        body = self.func.body
        if isinstance(body, G.SeqExpr):
            result = self.emit_seq(body, top_level=True)
            body_type = self.static_type(body.body)
        else:
            result = self.emit_expr(body)
            body_type = self.static_type(body)
        if not type_implies(body_type, self.func.ret_type):
            self.match(result, self.func.ret_type, "return value", None)
        if self.guards:  # a kernel would run on shapes nobody checked: refuse rather than risk it
            g = self.guards[0]
            raise UnsupportedError(
                f"function '{self.name}': cannot check '{g.what}' at {g.where} at run time "
                "(its symbolic dims are never bound in the function's shape heap)"
            )
        self.out.emit("ret", result)
        self.out.validate()
        return self.out

    def after_new_vars(self) -> None:
        """Emit the bounds and broadcast checks, and the planned storages, whose Vars are all in the heap
        now."""
        checks = []
        for name, (lo, hi) in list(self.bounds.items()):
            slot = next((s for s, n in enumerate(self.out.heap) if n == name), None)
            if slot is not None:
                checks.append([slot, name, lo, hi])
                del self.bounds[name]
        if checks:
            self.out.emit("check_bounds", checks)
        for guard in list(self.guards):
            if self.defined(guard.value) and self.defined(guard.other):
                value, other = self.code(guard.value), self.code(guard.other)
                if guard.kind == "broadcast":
                    self.out.emit("assert_bcast", guard.where, guard.dimension, value, other)
                elif guard.kind == "le":
                    self.out.emit("assert_le", guard.where, value, other, guard.what)
                else:
                    self.out.emit("assert_eq", guard.where, value, other, guard.what)
                self.guards.remove(guard)
        for token, size in list(self.pending_storage.items()):
            if self.defined(size):
                reg = self.new_reg()
                self.out.emit("alloc_storage", reg, self.code(size))
                self.storage_regs[token] = reg
                del self.pending_storage[token]

    # -- matching values against types ----------------------------------------------------------
    def match(self, reg: int, t: Type, where: str, deferred: list | None) -> None:
        """Check R[reg] against `t`: store dims that are new Vars, assert the others (later, through
        `deferred`, when they use Vars not stored yet)."""
        if isinstance(t, TensorType):
            dims = self.match_dims(reg, t.shape, where, deferred)
            self.out.emit("check_tensor", reg, where, None if t.dtype is None else str(t.dtype), t.ndim, dims)
        elif isinstance(t, ShapeType):
            dims = self.match_dims(reg, t.values, where, deferred)
            self.out.emit("check_shape", reg, where, t.ndim, dims)
        elif isinstance(t, PrimType):
            self.out.emit("check_prim", reg, where, str(t.dtype), "any", None)
        elif isinstance(t, TupleType):
            for i, field in enumerate(t.fields):
                item = self.new_reg()
                self.out.emit("get_item", item, reg, i)
                self.match(item, field, f"{where}[{i}]", deferred)
        elif not isinstance(t, (ObjectType, FuncType)):
            raise UnsupportedError(f"the VM cannot check a value of type {type(t).__name__}")

    def match_dims(self, reg, dims, where, deferred) -> list:
        out = []
        for d, dim in enumerate(dims or ()):
            if isinstance(dim, Var) and id(dim) not in self.slots:
                out.append([d, "store", self.new_slot(dim)])
            elif self.defined(dim):
                out.append([d, "assert", self.code(dim)])
            elif deferred is not None:
                deferred.append(
                    lambda d=d, dim=dim: self.out.emit("assert_dim", reg, where, d, self.code(dim))
                )
            else:
                raise VerifyError(f"function '{self.name}': dim {d} of '{where}' uses an undefined Var", dim)
        return out

    # -- bindings -----------------------------------------------------------------------------------
    def emit_seq(self, seq: G.SeqExpr, top_level: bool = False) -> int:
        bindings = [b for block in seq.blocks for b in block.bindings]
        last_use: dict[G.GraphVar, int] = {}
        if top_level:
            for i, b in enumerate(bindings):
                for v in value_uses(b.value):
                    last_use[v] = i
            for v in value_uses(seq.body):
                last_use[v] = len(bindings)
        free_at: dict[int, list[G.GraphVar]] = {}
        for v, i in last_use.items():
            free_at.setdefault(i, []).append(v)
        for i, b in enumerate(bindings):
            self.binding_name = b.var.name if top_level else None
            self.emit_binding(b)
            self.binding_name = None
            if top_level:
                for token in self.release_after.get(b.var.name, ()):
                    if token in self.storage_regs:
                        self.out.emit("release_storage", self.storage_regs[token])
            for v in free_at.get(i, ()):
                if v in self.regs:
                    self.out.emit("free", self.regs[v])
            if b.var not in last_use and top_level and not isinstance(b, G.MatchCast):
                self.out.emit("free", self.regs[b.var])  # never used: dead result of an effectful call
        return self.emit_expr(seq.body)

    def emit_binding(self, b: G.Binding) -> None:
        value = self.emit_expr(b.value)
        if value in self.owned:  # another variable's register: copy, so liveness can free each one
            reg = self.new_reg()
            self.out.emit("move", reg, value)
        else:
            reg = value
        self.regs[b.var] = reg
        self.owned.add(reg)
        if isinstance(b, G.MatchCast):
            self.match(reg, b.type, b.var.name, None)
            self.after_new_vars()
        elif any(id(v) not in self.slots for v in type_vars(b.var.type)):
            self.match(reg, b.var.type, b.var.name, None)  # a type that defines Vars (e.g. a callee's result)
            self.after_new_vars()

    # -- expressions --------------------------------------------------------------------------------
    def static_type(self, expr) -> Type:
        if isinstance(expr, G.GraphVar):
            return expr.type
        if isinstance(expr, G.Constant):
            return expr.type
        try:
            return type_of(expr, self.shared.mod)
        except VerifyError:
            return ObjectType()

    def emit_expr(self, expr) -> int:
        rule = _EMIT.get(type(expr))
        if rule is None:
            raise UnsupportedError(f"the VM codegen cannot compile a {type(expr).__name__}")
        return rule(self, expr)

    def emit_var(self, var: G.GraphVar) -> int:
        try:
            return self.regs[var]
        except KeyError:
            raise VerifyError(f"variable '{var.name}' is used before it is defined", var) from None

    def emit_constant(self, const: G.Constant) -> int:
        reg = self.new_reg()
        self.out.emit("const", reg, self.shared.constant_index(const))
        return reg

    def emit_prim_value(self, pv: G.PrimValue) -> int:
        reg = self.new_reg()
        value = pv.value
        if value.dtype.is_integer and not value.dtype.is_bool:
            self.out.emit("prim", reg, self.code(value))
        else:
            const = getattr(value, "value", None)
            if not isinstance(const, (int, float, bool)):
                raise UnsupportedError(f"the VM cannot compute the scalar {value!r}")
            self.out.emit("literal", reg, bool(const) if value.dtype.is_bool else const)
        return reg

    def emit_shape(self, shape: G.ShapeExpr) -> int:
        reg = self.new_reg()
        self.out.emit("shape", reg, [self.code(v) for v in shape.values])
        return reg

    def emit_tuple(self, tup: G.Tuple) -> int:
        fields = [self.emit_expr(f) for f in tup.fields]
        reg = self.new_reg()
        self.out.emit("tuple", reg, fields)
        return reg

    def emit_get_item(self, item: G.TupleGetItem) -> int:
        src = self.emit_expr(item.tuple_value)
        reg = self.new_reg()
        self.out.emit("get_item", reg, src, item.index)
        return reg

    def emit_if(self, expr: G.If) -> int:
        cond = self.emit_expr(expr.cond)
        reg = self.new_reg()
        branch = self.out.emit("if", cond, -1)
        self.out.emit("move", reg, self.emit_expr(expr.true_branch))
        jump = self.out.emit("goto", -1)
        self.out.code[branch][2] = len(self.out.code)
        self.out.emit("move", reg, self.emit_expr(expr.false_branch))
        self.out.code[jump][1] = len(self.out.code)
        return reg

    def emit_call(self, call: G.Call) -> int:
        if isinstance(call.op, G.Op):
            if call.op.name == "call_tir":
                return self.emit_call_tir(call)
            if call.op.name == "call_dps_library":
                return self.emit_call_lib(call)
            raise UnsupportedError(f"op '{call.op.name}' was not legalized; the VM runs call_tir only")
        if isinstance(call.op, G.GlobalName):
            callee = self.shared.mod.functions.get(call.op.name)
            if not isinstance(callee, G.GraphFunction):
                raise VerifyError(f"call of '{call.op.name}', which is not a graph function of the module")
            args = [self.emit_expr(a) for a in call.args]
            reg = self.new_reg()
            self.out.emit("call", reg, call.op.name, args)
            return reg
        raise UnsupportedError(f"the VM cannot call a {type(call.op).__name__}")

    def alloc_outputs(self, out_type: Type) -> tuple[list[int], list[TensorType]]:
        fields = list(out_type.fields) if isinstance(out_type, TupleType) else [out_type]
        token = self.planned.get(self.binding_name) if len(fields) == 1 else None
        regs = []
        for f in fields:
            reg = self.new_reg()
            shape = [self.code(d) for d in f.shape]
            if token in self.storage_regs:  # a planned intermediate: a view at offset 0 of its storage
                self.out.emit("alloc_view", reg, self.storage_regs[token], ["c", 0], shape, str(f.dtype))
            else:
                self.out.emit("alloc_tensor", reg, shape, str(f.dtype))
            regs.append(reg)
        return regs, fields

    def result(self, out_type: Type, out_regs: list[int]) -> int:
        if not isinstance(out_type, TupleType):
            return out_regs[0]
        reg = self.new_reg()
        self.out.emit("tuple", reg, out_regs)
        return reg

    def emit_call_tir(self, call: G.Call) -> int:
        name = call.args[0].name
        inputs = list(call.args[1].fields)
        in_regs = [self.emit_expr(a) for a in inputs]
        in_types = [self.static_type(a) for a in inputs]
        out_regs, out_fields = self.alloc_outputs(call.type_args[0])
        scalars = list(call.args[2].values) if len(call.args) == 3 else []
        kernel = self.shared.library[name]
        symbolic = plan_kernel_call(kernel.abi.func, kernel.abi.symbolic, [*in_types, *out_fields], scalars)
        self.out.emit(
            "call_tir",
            self.shared.kernel_index(name),
            in_regs + out_regs,
            [self.code(s) for s in scalars],
            [] if symbolic is None else [self.code(e) for e in symbolic],
            symbolic is None,
        )
        return self.result(call.type_args[0], out_regs)

    def emit_call_lib(self, call: G.Call) -> int:
        name = call.args[0].name
        if name.startswith(GEMM_PREFIX) and name[len(GEMM_PREFIX) :] in GEMM_KINDS:
            return self.emit_call_gemm(call, name[len(GEMM_PREFIX) :])
        in_regs = [self.emit_expr(a) for a in call.args[1].fields]
        out_regs, _ = self.alloc_outputs(call.type_args[0])
        scalars = list(call.args[2].values) if len(call.args) == 3 else []
        self.out.emit("call_lib", call.args[0].name, in_regs, out_regs, [self.code(s) for s in scalars])
        return self.result(call.type_args[0], out_regs)

    def emit_call_gemm(self, call: G.Call, kind: str) -> int:
        """A hierarchy GEMM (passes/graph/schedule_rules.py); a constant weight by index, so the VM packs
        it once at load (runtime/vm/gemm_steps.py)."""
        a, b = call.args[1].fields
        a_reg = self.emit_expr(a)
        b_op = ["const", self.shared.constant_index(b)] if isinstance(b, G.Constant) else self.emit_expr(b)
        out_regs, _ = self.alloc_outputs(call.type_args[0])
        fallback = call.attrs.get("fallback")
        if fallback is not None:
            fallback = [self.shared.kernel_index(fallback), int(call.attrs["fallback_max_rows"])]
        self.out.emit("call_gemm", kind, a_reg, b_op, out_regs[0], fallback)
        return out_regs[0]


_EMIT: dict[type, Callable] = {
    G.GraphVar: _FunctionCodegen.emit_var,
    G.DataflowVar: _FunctionCodegen.emit_var,
    G.Constant: _FunctionCodegen.emit_constant,
    G.PrimValue: _FunctionCodegen.emit_prim_value,
    G.ShapeExpr: _FunctionCodegen.emit_shape,
    G.Tuple: _FunctionCodegen.emit_tuple,
    G.TupleGetItem: _FunctionCodegen.emit_get_item,
    G.If: _FunctionCodegen.emit_if,
    G.SeqExpr: _FunctionCodegen.emit_seq,
    G.Call: _FunctionCodegen.emit_call,
}
