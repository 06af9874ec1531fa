"""FuseTIR: each call of a "Primitive" sub-function (made by FuseOps) becomes ONE call_tir of one PrimFunc.

The sub-function's chain of call_tir's is merged: every callee's root-block body is inlined, in order, into
one root block, with
- the callee's buffer parameters replaced by the merged function's parameters (the sub-function's tensor
  parameters, then its constant arguments, then its outputs) or, for values produced and consumed inside
  the group, by intermediate buffers allocated in the root block (`alloc_buffers`), with symbolic shapes;
- the callee's symbolic Vars bound to the actual dims of its arguments (kernels are shared between calls of
  different shapes, so each inlined copy is specialized), and its own loop and block variables copied
  fresh, so a kernel inlined twice binds each variable once;
- block names made unique.
Symbolic Vars of the sub-function that no buffer parameter has as a plain dimension become trailing int64
scalar parameters (passed as call_tir's tir_vars, as legalization does). The merged PrimFunc keeps the
group's most demanding op_pattern. Sub-functions whose bodies are not plain chains of single-output
call_tir's are left alone; the replaced sub-functions are removed (their callees are left for
DeadCodeElimination).
"""

from __future__ import annotations

import dataclasses

from shapeflow.ir.expr import Var
from shapeflow.ir.functor import Mutator, substitute
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph.builder import type_vars
from shapeflow.ir.graph.ops.registry import make_call
from shapeflow.ir.graph.types import ShapeType, TensorType, TupleType
from shapeflow.ir.module import IRModule
from shapeflow.ir.node import replace
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import Block, BlockRealize, SeqStmt
from shapeflow.passes.graph.op_pattern import PATTERN_RANK
from shapeflow.passes.infra import Pass, PassContext, register_pass


class _Inliner(Mutator):
    """Copies a callee's body: parameter buffers and symbolic Vars mapped, other Vars fresh, blocks renamed
    to names not yet used."""

    def __init__(self, buffers: dict[int, Buffer], variables: dict[int, object], block_names: set[str]):
        super().__init__()
        self.buffers = buffers
        self.variables = dict(variables)
        self.block_names = block_names

    def visit_Buffer(self, buf: Buffer):
        mapped = self.buffers.get(id(buf))
        return mapped if mapped is not None else self.generic_visit(buf)

    def visit_Var(self, var: Var):
        mapped = self.variables.get(id(var))
        if mapped is None:
            mapped = type(var)(var.name, var.dtype)
            self.variables[id(var)] = mapped
        return mapped

    def visit_Block(self, block: Block):
        new = self.generic_visit(block)
        if not block.iter_vars and block.name == "root":
            return new
        name, k = new.name, 0
        while name in self.block_names:
            k += 1
            name = f"{new.name}_{k}"
        self.block_names.add(name)
        return new if name == new.name else replace(new, name=name)


def _root_block(func: PrimFunc) -> Block | None:
    body = func.body
    if isinstance(body, BlockRealize) and not body.iter_values and body.block.name == "root":
        return body.block
    return None


def _tensor_buffer(name: str, t) -> Buffer:
    return Buffer(name, t.shape, t.dtype)


def fuse_primitive(sub: G.GraphFunction, mod: IRModule, name: str):
    """The merged PrimFunc of Primitive sub-function `sub`, its constant arguments and its scalar Vars, or
    None when `sub` is not a chain of single-output call_tir's."""
    body = sub.body
    if not isinstance(body, G.SeqExpr) or not all(isinstance(b, G.DataflowBlock) for b in body.blocks):
        return None
    bindings = [b for block in body.blocks for b in block.bindings]
    outputs = body.body.fields if isinstance(body.body, G.Tuple) else (body.body,)
    if not all(isinstance(o, G.GraphVar) for o in outputs):
        return None
    buffers: dict[int, Buffer] = {}
    params: list = []
    for p in sub.params:
        if isinstance(p.type, TensorType):
            buffers[id(p)] = _tensor_buffer(p.name, p.type)
            params.append(buffers[id(p)])
        elif not isinstance(p.type, ShapeType):
            return None
    constants: list[G.Constant] = []
    out_buffers = []
    for o in outputs:
        if not isinstance(o.type, TensorType) or o.type.shape is None:
            return None
        out_buffers.append(_tensor_buffer(o.name, o.type))
    stmts, allocs, block_names, patterns = [], [], set(), []
    for b in bindings:
        value = b.value
        if not (
            isinstance(b, G.VarBinding)
            and isinstance(value, G.Call)
            and isinstance(value.op, G.Op)
            and value.op.name == "call_tir"
            and isinstance(b.var.type, TensorType)
        ):
            return None
        callee = mod.functions.get(value.args[0].name)
        root = _root_block(callee) if isinstance(callee, PrimFunc) else None
        if root is None or root.init is not None:
            return None
        patterns.append(callee.attrs.get("op_pattern", "opaque"))
        actual: list[Buffer] = []
        for arg in value.args[1].fields:
            if isinstance(arg, G.Constant):
                buf = Buffer(f"c{len(constants)}", arg.shape, arg.dtype)
                constants.append(arg)
                params.append(buf)
                actual.append(buf)
            elif isinstance(arg, G.GraphVar) and id(arg) in buffers:
                actual.append(buffers[id(arg)])
            else:
                return None
        k = next((i for i, o in enumerate(outputs) if o is b.var), None)
        if k is not None:
            out = out_buffers[k]
        else:
            out = _tensor_buffer(b.var.name, b.var.type)
            allocs.append(out)
        buffers[id(b.var)] = out
        actual.append(out)
        formal = callee.buffer_params
        if len(formal) != len(actual):
            return None
        buffer_map = {id(f): a for f, a in zip(formal, actual)}
        var_map: dict[int, object] = {}
        for f, a in zip(formal, actual):
            if len(f.shape) != len(a.shape):
                return None
            for fd, ad in zip(f.shape, a.shape):
                if isinstance(fd, Var):
                    var_map.setdefault(id(fd), ad)
        scalars = [p for p in callee.params if isinstance(p, Var)]
        values = value.args[2].values if len(value.args) == 3 else ()
        if len(scalars) != len(values):
            return None
        for s, v in zip(scalars, values):
            var_map[id(s)] = v
        inliner = _Inliner(buffer_map, var_map, block_names)
        new_root = inliner.visit(root)
        stmts.append(new_root.body)
        allocs.extend(new_root.alloc_buffers)
    buffer_params = [*params, *out_buffers]
    direct = {id(d) for buf in buffer_params for d in buf.shape if isinstance(d, Var)}
    scalar_params: list[Var] = []
    for p in sub.params:
        for v in type_vars(p.type):
            if id(v) not in direct and all(v is not s for s in scalar_params):
                scalar_params.append(v)
    root = Block(
        "root", (), (), (), SeqStmt(tuple(stmts)) if len(stmts) > 1 else stmts[0], None, tuple(allocs)
    )
    pattern = max(patterns, key=PATTERN_RANK.__getitem__) if patterns else "opaque"
    attrs = {"global_symbol": name, "tir.noalias": True, "op_pattern": pattern}
    func = PrimFunc((*buffer_params, *scalar_params), BlockRealize((), True, root), attrs)
    return func, constants, scalar_params


def _bind_symbolic(params, arg_types) -> dict:
    """The callee's symbolic Vars (whole dims of its parameter types) mapped to the caller's dims."""
    mapping: dict = {}
    for p, t in zip(params, arg_types):
        dims = p.type.shape if isinstance(p.type, TensorType) else getattr(p.type, "values", None)
        actual = t.shape if isinstance(t, TensorType) else getattr(t, "values", None)
        for d, a in zip(dims or (), actual or ()):
            if isinstance(d, Var) and d not in mapping:
                mapping[d] = a
    return mapping


class _CallRewriter(Mutator):
    def __init__(self, fused: dict):
        super().__init__()
        self.fused = fused

    def visit_Call(self, call: G.Call):
        call = self.generic_visit(call)
        if not isinstance(call.op, G.GlobalName) or call.op.name not in self.fused:
            return call
        sub, kernel, constants, scalars = self.fused[call.op.name]
        arg_types = []
        for a in call.args:
            if isinstance(a, G.ShapeExpr):
                arg_types.append(ShapeType(a.values))
            else:
                arg_types.append(a.type)
        mapping = _bind_symbolic(sub.params, arg_types)
        tensors = [a for a, p in zip(call.args, sub.params) if isinstance(p.type, TensorType)]
        args = [G.GlobalName(kernel), G.Tuple((*tensors, *constants))]
        if scalars:
            args.append(G.ShapeExpr(tuple(substitute(s, mapping) for s in scalars)))
        out_type = substitute(sub.ret_type, mapping)
        return make_call("call_tir", args, type_args=(out_type,))


@register_pass
@dataclasses.dataclass(frozen=True)
class FuseTIR(Pass):
    """Merge each Primitive sub-function into one PrimFunc called once (see the module docstring)."""

    name = "graph.fuse_tir"
    opt_level = 1

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        functions = dict(mod.functions)
        fused = {}
        for name, func in mod.items():
            if isinstance(func, G.GraphFunction) and func.attrs.get("Primitive"):
                if isinstance(func.ret_type, TupleType) and not all(
                    isinstance(f, TensorType) for f in func.ret_type.fields
                ):
                    continue
                result = fuse_primitive(func, mod, name)
                if result is None:
                    continue
                kernel, constants, scalars = result
                # The kernel takes the sub-function's name: the sub-function is gone once its calls are.
                functions[name] = kernel
                fused[name] = (func, name, constants, scalars)
        if not fused:
            return mod
        rewriter = _CallRewriter(fused)
        for name, func in list(functions.items()):
            if isinstance(func, G.GraphFunction) and name not in fused:
                functions[name] = rewriter.visit(func)
        return IRModule(functions, mod.attrs)
