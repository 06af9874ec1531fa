"""Well-formedness of graph functions. `verify(mod)` raises VerifyError naming the function and binding.

Checked:
- every variable is defined before use, and bound once; parameters are not DataflowVars;
- DataflowVars are bound only inside a DataflowBlock and used only inside the block that binds them;
- symbolic Vars used in expressions (ShapeExpr, PrimValue, op attributes such as reshape's shape, call
  output types) are defined: by a parameter's type, a MatchCast, or an earlier binding's type;
- calls: the op is registered, arity and attributes are valid, call_tir names a PrimFunc of the module,
  a GlobalName names a function of the module;
- each binding is well typed: the inferred type of its value fits the variable's declared type (a
  provable shape conflict inside a call is reported as the binding's error too);
- the body fits the declared return type.
"""

from __future__ import annotations

from shapeflow.errors import Error, VerifyError
from shapeflow.ir.expr import PrimExpr
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.builder import type_vars
from shapeflow.ir.graph.infer import type_mismatch, type_of
from shapeflow.ir.graph.ops.registry import is_registered
from shapeflow.ir.graph.shape import free_vars
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc


def verify(mod_or_func: IRModule | G.GraphFunction) -> None:
    """Raise VerifyError at the first ill-formed binding of any graph function."""
    if isinstance(mod_or_func, G.GraphFunction):
        mod_or_func = IRModule({mod_or_func.name or "main": mod_or_func})
    for name, func in mod_or_func.functions.items():
        if isinstance(func, G.GraphFunction):
            _FunctionVerifier(mod_or_func, name).check_function(func)


class _FunctionVerifier:
    def __init__(self, mod: IRModule, name: str):
        self.mod = mod
        self.name = name
        self.defined: set[int] = set()  # GraphVars in scope (ids)
        self.dataflow: set[int] | None = None  # DataflowVars of the current dataflow block
        self.symbolic: set[int] = set()
        self.where = "parameters"
        self.keep: list = []  # keep ids alive

    def fail(self, message: str, node=None) -> VerifyError:
        return VerifyError(message, node=node, where=f"function '{self.name}', {self.where}")

    # -- scopes ------------------------------------------------------------------------------------
    def define(self, var: G.GraphVar) -> None:
        if id(var) in self.defined or (self.dataflow is not None and id(var) in self.dataflow):
            raise self.fail(f"variable {var.name!r} is bound more than once", var)
        self.keep.append(var)
        if isinstance(var, G.DataflowVar):
            if self.dataflow is None:
                raise self.fail(f"DataflowVar {var.name!r} is bound outside a dataflow block", var)
            self.dataflow.add(id(var))
        else:
            self.defined.add(id(var))

    def define_symbolic(self, t) -> None:
        for v in type_vars(t):
            self.keep.append(v)
            self.symbolic.add(id(v))

    def use_symbolic(self, exprs, what: str) -> None:
        for v in free_vars(exprs):
            if id(v) not in self.symbolic:
                raise self.fail(f"symbolic variable {v.name!r} in {what} is not defined", v)

    # -- functions and blocks ----------------------------------------------------------------------
    def check_function(self, func: G.GraphFunction) -> None:
        for p in func.params:
            self.define(p)
            self.define_symbolic(p.type)
        self.check_expr(func.body)
        self.where = "return value"
        actual = self.typed(func.body)
        why = type_mismatch(func.ret_type, actual)
        if why is not None:
            raise self.fail(f"body does not fit the declared return type: {why}", func)

    def check_seq(self, seq: G.SeqExpr) -> None:
        outer_where = self.where
        for block in seq.blocks:
            is_dataflow = isinstance(block, G.DataflowBlock)
            self.dataflow = set() if is_dataflow else None
            for binding in block.bindings:
                self.where = f"binding '{binding.var.name}'"
                self.check_binding(binding)
            self.dataflow = None
        self.where = outer_where
        self.check_expr(seq.body)

    def check_binding(self, binding: G.Binding) -> None:
        self.check_expr(binding.value)
        actual = self.typed(binding.value)
        if isinstance(binding, G.MatchCast):
            self.define_symbolic(binding.type)
            if binding.var.type is not binding.type and type_mismatch(binding.var.type, binding.type):
                raise self.fail("MatchCast variable's type differs from the cast type", binding)
        else:
            why = type_mismatch(binding.var.type, actual)
            if why is not None:
                raise self.fail(f"ill-typed binding: {why}", binding)
            self.define_symbolic(binding.var.type)
        self.define(binding.var)

    def typed(self, expr: G.Expr):
        try:
            return type_of(expr, self.mod)
        except VerifyError as exc:
            raise self.fail(exc.message, expr) from None
        except Error as exc:  # a provable shape conflict, an unknown attribute
            raise self.fail(str(exc), expr) from None

    # -- expressions -----------------------------------------------------------------------------
    def check_expr(self, expr: G.Expr) -> None:
        if isinstance(expr, G.DataflowVar):
            if self.dataflow is None or id(expr) not in self.dataflow:
                raise self.fail(
                    f"DataflowVar {expr.name!r} is used outside the dataflow block binding it", expr
                )
        elif isinstance(expr, G.GraphVar):
            if id(expr) not in self.defined:
                raise self.fail(f"variable {expr.name!r} is used but not defined", expr)
        elif isinstance(expr, G.Tuple):
            for f in expr.fields:
                self.check_expr(f)
        elif isinstance(expr, G.TupleGetItem):
            self.check_expr(expr.tuple_value)
        elif isinstance(expr, G.ShapeExpr):
            self.use_symbolic(expr.values, "a shape expression")
        elif isinstance(expr, G.PrimValue):
            self.use_symbolic([expr.value], "a prim value")
        elif isinstance(expr, G.Call):
            self.check_call(expr)
        elif isinstance(expr, G.If):
            self.check_expr(expr.cond)
            for branch in (expr.true_branch, expr.false_branch):
                saved = (set(self.defined), self.dataflow, set(self.symbolic))
                self.dataflow = None
                self.check_expr(branch)
                self.defined, self.dataflow, self.symbolic = saved
        elif isinstance(expr, G.SeqExpr):
            saved_defined, saved_symbolic = set(self.defined), set(self.symbolic)
            self.check_seq(expr)
            self.defined, self.symbolic = saved_defined, saved_symbolic

    def check_call(self, call: G.Call) -> None:
        if isinstance(call.op, G.Op):
            if not is_registered(call.op.name):
                raise self.fail(f"call of unknown op '{call.op.name}'", call)
            if call.op.name == "call_tir" and call.args and isinstance(call.args[0], G.GlobalName):
                callee = self.mod.functions.get(call.args[0].name)
                if not isinstance(callee, PrimFunc):
                    raise self.fail(
                        f"call_tir callee '{call.args[0].name}' is not a PrimFunc of the module", call
                    )
            for value in call.attrs.values():
                exprs = [
                    v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, PrimExpr)
                ]
                self.use_symbolic(exprs, f"an attribute of '{call.op.name}'")
            for t in call.type_args:
                self.use_symbolic(type_vars(t), f"the output type of '{call.op.name}'")
        elif isinstance(call.op, G.GlobalName):
            if call.op.name not in self.mod.functions:
                raise self.fail(f"call of '{call.op.name}', which is not a function of the module", call)
        else:
            self.check_expr(call.op)
        for arg in call.args:
            if not isinstance(arg, (G.GlobalName, G.ExternFunc)):
                self.check_expr(arg)
