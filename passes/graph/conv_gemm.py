"""ConvToGemm: 2-D convolutions become im2col + a dense GEMM, computed channels-last between convolutions.

    conv2d(x (N, C, H, W), w (O, C, KH, KW))
      -> permute_dims(linear(im2col(x), W2), NCHW)      W2 = w as (O, KH * KW * C), in im2col's column order

Why this shape of rewrite. The legalized conv2d is a 7-deep naive loop nest that no default rule schedules;
as a `linear` its GEMM stage is what SplitGemm (schedule_rules.py) hands to the hierarchy GEMM, with a
constant W2 packed once when the program loads, and FuseOps keeps the bias / batch-norm / relu / residual
epilogue fused behind it as usual (linear is out_elementwise_fusable). The GEMM's rows are output pixels
(N * OH * OW) and its columns output channels, so its result is channels-last (NHWC); the patch matrix is
channels-last too when its input is (a patch row is KH * KW contiguous runs of C inputs), and then a 1x1
stride-1 unpadded convolution needs no patch matrix at all (the NHWC input is already it). An input only
available as NCHW (the model's image) is read by im2col directly, in the weight's own (c, kh, kw) order.

Layout. Transposing back to NCHW after every convolution and forward again before the next would cost two
passes over every activation, so the transposes are kept virtual while the rewrite walks the block: a value
known to equal permute_dims(s, P) is remembered as (s, P) and only materialized (bound, by its original
variable, right before its first use that needs it) when something other than a layout-agnostic op reads
it. Layout-agnostic here: elementwise unary ops (out[i] = f(x[i])), broadcasting binary ops whose other
operand is permuted the same way or is a constant (transposed at compile time), further permute_dims
(composed; a pair that cancels disappears), max / average pooling (pooled channels-last), keepdims
reductions (global pooling) and the next conv2d. In the blocks it rewrites, a
permute_dims of a constant is folded too (same size; FoldConstant leaves large ones, so a classifier's
transposed weight would be transposed at every call).

Refused (left as they are): groups != 1 (depthwise / grouped convs stay direct loop nests, which
`schedule_direct_conv` hands to the default row-parallel rule), conv1d, other dtypes than float32, a
weight whose shape is not constant, channel counts that do not match. A weight that arrives at run time is
relaid by graph ops (permute_dims + reshape, one pass over the weight) and SplitGemm packs it per call. An
output with a unit spatial dim gives a linear that SplitGemm's matcher does not take (linear's
legalization reads a unit batch dim at index 0): correct, but a loop nest.

Kernels. The patch matrix over channels-last data is its own kernel, or the tail of the previous conv's
epilogue when FuseOps fuses it there; `schedule_patches` (run by SplitGemm with the other default schedule
rules) schedules both: epilogue inlined, channels vectorized, pixels parallel. On ResNet-50 (batch 1,
2 threads) the GEMMs then take ~80% of the time, patches, epilogues and pooling the rest
(benchmarks/conv2d.py and benchmarks/onnx_models.py measure it against numpy, torch and onnxruntime).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shapeflow.ir import expr as E
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op as graph_op
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops import get_op_def, list_ops
from shapeflow.ir.graph.shape import as_int, same_expr
from shapeflow.ir.graph.types import TensorType
from shapeflow.ir.module import IRModule
from shapeflow.passes.graph.common import GraphFunctionPass, rename_vars, used_vars
from shapeflow.passes.infra import PassContext, register_pass

KEEPDIMS_REDUCTIONS = ("mean", "sum", "max", "min", "prod")
NHWC = (0, 2, 3, 1)  # permute_dims axes taking NCHW to NHWC
NCHW = (0, 3, 1, 2)  # and back


def _layout_agnostic_ops() -> tuple[frozenset, frozenset]:
    """(unary, binary) op names that commute with a permutation of their (rank-4) operands: the registry's
    one-operand "elementwise" ops (out[i] = f(x[i]) by that pattern's definition) and two-operand
    "broadcast" ops (numpy broadcasting commutes with permuting both operands alike)."""
    unary, binary = set(), set()
    for name in list_ops():
        op_def = get_op_def(name)
        if op_def.pattern == "elementwise" and op_def.num_args == 1:
            unary.add(name)
        elif op_def.pattern == "broadcast" and op_def.num_args == 2:
            binary.add(name)
    return frozenset(unary), frozenset(binary)


def compose(p: tuple, q: tuple) -> tuple:
    """Axes of permute_dims(permute_dims(s, p), q) as one permute_dims of s."""
    return tuple(p[i] for i in q)


def inverse(p: tuple) -> tuple:
    out = [0] * len(p)
    for j, a in enumerate(p):
        out[a] = j
    return tuple(out)


def _f32_tensor(t) -> bool:
    return isinstance(t, TensorType) and t.shape is not None and str(t.dtype) == "float32"


def _conv_plan(call: G.Call, x_type, w) -> dict | None:
    """The im2col attributes of a conv2d call this rewrite handles exactly, else None."""
    attrs = call.attrs
    if attrs.get("groups", 1) != 1 or not _f32_tensor(x_type) or len(x_type.shape) != 4:
        return None
    w_type = w.type if isinstance(w, G.GraphVar) else None  # a Constant's shape is its own
    w_shape = w.shape if isinstance(w, G.Constant) else (w_type.shape if _f32_tensor(w_type) else None)
    if w_shape is None or len(w_shape) != 4:
        return None
    if isinstance(w, G.Constant) and str(w.dtype) != "float32":
        return None
    dims = [as_int(d) if not isinstance(d, int) else d for d in w_shape]
    if any(d is None for d in dims) or as_int(x_type.shape[1]) != dims[1]:
        return None
    o, c, kh, kw = dims
    strides = tuple(attrs["strides"]) * (2 if len(attrs["strides"]) == 1 else 1)
    dilation = tuple(attrs["dilation"]) * (2 if len(attrs["dilation"]) == 1 else 1)
    pads = tuple(attrs["padding"])
    pads = pads * 4 if len(pads) == 1 else (pads + pads if len(pads) == 2 else pads)
    if len(strides) != 2 or len(dilation) != 2 or len(pads) != 4:
        return None
    trivial = (kh, kw) == (1, 1) and strides == (1, 1) and not any(pads)
    return dict(o=o, c=c, kh=kh, kw=kw, strides=strides, dilation=dilation, padding=pads, trivial=trivial)


class _BlockRewriter:
    """One dataflow block, rewritten binding by binding (see the module docstring)."""

    def __init__(self, mod: IRModule, names: set):
        self.mod = mod
        self.names = names
        self.unary, self.binary = _layout_agnostic_ops()
        self.out: list[G.Binding] = []
        self.virtual: dict[int, tuple[G.Expr, tuple]] = {}  # id(var) -> (source, P): var = permute(source, P)
        self.permuted: dict[tuple[int, tuple], G.Expr] = {}  # (id(value), Q) -> permute(value, Q)
        self.constants: dict[int, G.Constant] = {}  # id(var) -> the constant it was bound to (folded)
        self.changed = False

    # -- emitting ----------------------------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def emit(self, call: G.Expr, hint: str) -> G.DataflowVar:
        var = G.DataflowVar(self._fresh(hint), type_of(call, self.mod))
        self.out.append(G.VarBinding(var, call))
        return var

    def materialize(self, var: G.GraphVar) -> None:
        """Bind `var` itself to permute_dims(source, P), so every later use of it reads the right value."""
        found = self.virtual.pop(id(var), None)
        if found is not None:
            source, perm = found
            identity = perm == tuple(range(len(perm)))
            self.out.append(G.VarBinding(var, source if identity else graph_op.permute_dims(source, perm)))

    def permute(self, value: G.Expr, perm: tuple, hint: str) -> G.Expr:
        """A value equal to permute_dims(value, perm), emitting as little as it can."""
        if isinstance(value, G.GraphVar) and id(value) in self.virtual:
            source, p = self.virtual[id(value)]
            value, perm = source, compose(p, perm)
        if perm == tuple(range(len(perm))):
            return value
        key = (id(value), perm)
        if key not in self.permuted:
            self.permuted[key] = self.emit(graph_op.permute_dims(value, perm), hint)
        return self.permuted[key]

    def set_virtual(self, var: G.GraphVar, source: G.Expr, perm: tuple) -> None:
        self.changed = True
        self.virtual[id(var)] = (source, perm)
        if not isinstance(var, G.DataflowVar):  # visible after the block: bound now
            self.materialize(var)

    # -- rules ---------------------------------------------------------------------------------------
    def rewrite(self, b: G.Binding) -> bool:
        """Handle `b` by a rule (True), or leave it to the caller (False)."""
        if not isinstance(b, G.VarBinding) or not isinstance(b.value, G.Call):
            return False
        call = b.value
        if not isinstance(call.op, G.Op):
            return False
        name = call.op.name
        if name == "conv2d":
            return self.conv2d(b.var, call)
        if name == "permute_dims" and isinstance(call.args[0], G.Constant):
            return self.constant_permute(b.var, call)
        if name == "permute_dims":
            return self.permute_dims(b.var, call)
        if name in ("max_pool2d", "avg_pool2d"):
            return self.pool(b.var, call)
        if name in KEEPDIMS_REDUCTIONS:
            return self.reduction(b.var, call)
        if name in self.unary:
            return self.elementwise_unary(b.var, call)
        if name in self.binary:
            return self.broadcast_binary(b.var, call)
        return False

    def _virtual_of(self, arg) -> tuple[G.Expr, tuple] | None:
        return self.virtual.get(id(arg)) if isinstance(arg, G.GraphVar) else None

    def conv2d(self, var: G.GraphVar, call: G.Call) -> bool:
        x, w = call.args
        x_type = x.type if isinstance(x, G.GraphVar) else None
        plan = _conv_plan(call, x_type, w)
        if plan is None:
            return False
        o, c, kh, kw = plan["o"], plan["c"], plan["kh"], plan["kw"]
        found = self._virtual_of(x)
        nhwc = found is not None and compose(found[1], NHWC) == (0, 1, 2, 3)
        if not nhwc:  # read as it is: a value kept in another layout is bound first
            self.materialize(x)
        if isinstance(w, G.GraphVar) and not nhwc:
            self.materialize(w)
        # Patch columns: (kh, kw, c) for channels-last input, (c, kh, kw) -- the weight's own order -- when
        # x is only available as NCHW (a model input): im2col then reads it directly, no transpose first.
        if isinstance(w, G.Constant):
            weight = w.array.transpose(0, 2, 3, 1) if nhwc else w.array
            w2 = G.Constant.from_array(np.ascontiguousarray(weight.reshape(o, kh * kw * c)))
        else:
            ordered = self.permute(w, NHWC, "w_ohwi") if nhwc else w
            w2 = self.emit(graph_op.reshape(ordered, (o, kh * kw * c)), "w_gemm")
        layout = "NHWC" if nhwc else "NCHW"
        patches = found[0] if nhwc else x
        if not (nhwc and plan["trivial"]):
            im2col = graph_op.im2col(
                patches, (kh, kw), plan["strides"], plan["padding"], plan["dilation"], layout
            )
            patches = self.emit(im2col, "patches")
        y = self.emit(graph_op.linear(patches, w2), f"{var.name}_nhwc")
        self.set_virtual(var, y, NCHW)
        return True

    def permute_dims(self, var: G.GraphVar, call: G.Call) -> bool:
        found = self._virtual_of(call.args[0])
        axes = call.attrs.get("axes")
        if found is None or axes is None:
            return False
        source, p = found
        rank = len(p)
        perm = compose(p, tuple(a % rank for a in axes))
        if perm == tuple(range(rank)):
            if isinstance(var, G.DataflowVar):
                self.changed = True
                self.virtual[id(var)] = (source, perm)  # an identity: materializing it is an alias
            else:
                self.out.append(G.VarBinding(var, source))
            return True
        self.set_virtual(var, source, perm)
        return True

    def constant_permute(self, var: G.GraphVar, call: G.Call) -> bool:
        """A transposed constant is a constant of the same size: fold it (FoldConstant keeps large ones as
        calls, to not grow the module, so ONNX Gemm's transB weight would be transposed at every call)."""
        arg = call.args[0]
        axes = call.attrs.get("axes")
        folded = G.Constant.from_array(np.ascontiguousarray(np.transpose(arg.array, axes)))
        self.changed = True
        if isinstance(var, G.DataflowVar):
            self.constants[id(var)] = folded
        else:
            self.out.append(G.VarBinding(var, folded))
        return True

    def pool(self, var: G.GraphVar, call: G.Call) -> bool:
        """Pooling of a channels-last value: pooled channels-last (the op's "NHWC" layout)."""
        found = self._virtual_of(call.args[0])
        if found is None or call.attrs.get("layout") != "NCHW" or compose(found[1], NHWC) != (0, 1, 2, 3):
            return False
        attrs = {**call.attrs, "layout": "NHWC"}
        y = self.emit(G.Call(call.op, (found[0],), attrs, call.type_args), f"{var.name}_nhwc")
        self.set_virtual(var, y, NCHW)
        return True

    def reduction(self, var: G.GraphVar, call: G.Call) -> bool:
        """A keepdims reduction of a permuted value, over the source's corresponding axes (rank kept, so the
        result is permuted the same way; each output sums in the same order, so bit for bit equal)."""
        found = self._virtual_of(call.args[0])
        axes = call.attrs.get("axis")
        if found is None or axes is None or call.attrs.get("keepdims") is not True:
            return False
        source, perm = found
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        attrs = {**call.attrs, "axis": tuple(sorted(perm[a % len(perm)] for a in axes))}
        y = self.emit(G.Call(call.op, (source,), attrs, call.type_args), f"{var.name}_t")
        self.set_virtual(var, y, perm)
        return True

    def elementwise_unary(self, var: G.GraphVar, call: G.Call) -> bool:
        found = self._virtual_of(call.args[0])
        if found is None:
            return False
        source, perm = found
        y = self.emit(G.Call(call.op, (source,), call.attrs, call.type_args), f"{var.name}_t")
        self.set_virtual(var, y, perm)
        return True

    def broadcast_binary(self, var: G.GraphVar, call: G.Call) -> bool:
        a, b = call.args
        va, vb = self._virtual_of(a), self._virtual_of(b)
        if va is None and vb is None:
            return False
        perm = (va or vb)[1]
        args = []
        for arg, found in ((a, va), (b, vb)):
            if found is not None:
                if found[1] != perm:
                    return False
                args.append(found[0])
            elif isinstance(arg, G.Constant) and len(arg.shape) <= len(perm):
                data = arg.array.reshape((1,) * (len(perm) - len(arg.shape)) + tuple(arg.shape))
                args.append(G.Constant.from_array(np.ascontiguousarray(data.transpose(inverse(perm)))))
            else:
                return False
        if va is not None and vb is not None:
            ta, tb = type_of(args[0], self.mod), type_of(args[1], self.mod)
            if not (ta.shape is not None and tb.shape is not None and same_expr(ta, tb)):
                return False
        y = self.emit(G.Call(call.op, tuple(args), call.attrs, call.type_args), f"{var.name}_t")
        self.set_virtual(var, y, perm)
        return True

    # -- driver --------------------------------------------------------------------------------------
    def run(self, block: G.DataflowBlock) -> G.DataflowBlock:
        for b in block.bindings:
            b = rename_vars(b, self.constants)
            if self.rewrite(b):
                continue
            for v in used_vars(b.value):
                self.materialize(v)
            self.out.append(b)
        # Every value escaping the block is a non-dataflow var, bound (materialized) when it was made.
        return dataclasses.replace(block, bindings=tuple(self.out))


def _names(func: G.GraphFunction) -> set:
    names = {p.name for p in func.params}
    names |= {b.var.name for blk in func.body.blocks for b in blk.bindings}
    return names


@register_pass
@dataclasses.dataclass(frozen=True)
class ConvToGemm(GraphFunctionPass):
    """conv2d as im2col + linear with virtual channels-last transposes (see the module docstring)."""

    name = "graph.conv_to_gemm"

    def transform_function(self, func: G.GraphFunction, mod: IRModule, ctx: PassContext) -> G.GraphFunction:
        if not isinstance(func.body, G.SeqExpr):
            return func
        names = _names(func)
        blocks, changed = [], False
        for blk in func.body.blocks:
            if not isinstance(blk, G.DataflowBlock) or not _has_conv(blk):
                blocks.append(blk)
                continue
            rewriter = _BlockRewriter(mod, names)
            new = rewriter.run(blk)
            changed |= rewriter.changed
            blocks.append(new if rewriter.changed else blk)
        if not changed:
            return func
        return dataclasses.replace(func, body=dataclasses.replace(func.body, blocks=tuple(blocks)))


def _has_conv(block: G.DataflowBlock) -> bool:
    return any(
        isinstance(b.value, G.Call) and isinstance(b.value.op, G.Op) and b.value.op.name == "conv2d"
        for b in block.bindings
    )


# ---------------------------------------------------------------------------------------------
# The patch kernels' schedule (applied by SplitGemm with the other default schedule rules)
# ---------------------------------------------------------------------------------------------


def schedule_patches(func) -> object | None:
    """An im2col kernel over channels-last data (possibly with the elementwise epilogue of the previous
    convolution fused in front), scheduled: the epilogue inlined into the patch copy, the patch index k
    split into (tap, c) at the channel count, c vectorized (contiguous loads and stores: the split makes
    k // C and k % C simplify to the loop variables), output pixels in parallel. The default injective rule
    would vectorize k itself, where every lane recomputes the tap and the loads are gathers (measured 12x
    slower on a 56x56x64 3x3 patch matrix). None when `func` is not such a kernel or a step does not apply."""
    from shapeflow.errors import ScheduleError  # noqa: PLC0415
    from shapeflow.ir.functor import collect  # noqa: PLC0415
    from shapeflow.ir.tir.function import PrimFunc  # noqa: PLC0415
    from shapeflow.ir.tir.stmt import Block  # noqa: PLC0415
    from shapeflow.passes.hierarchy import host_cpu_model  # noqa: PLC0415
    from shapeflow.passes.schedule import Schedule  # noqa: PLC0415

    if not isinstance(func, PrimFunc) or func.attrs.get("default_schedule") is False:
        return None
    if not any(block.name == "im2col" for block in collect(func.body, Block)):
        return None  # the common case, decided without building a Schedule
    try:
        sch = Schedule(func)
        names = [name for name in sch.block_names() if name != "root"]
        if "im2col" not in names:
            return None
        block = sch.get_block("im2col")
        sources = {id(x.buffer): x.buffer for x in collect(sch.find_block(block)[0].block.body, E.BufferLoad)}
        if len(sources) != 1:
            return None
        (source,) = sources.values()
        channels = as_int(source.shape[3]) if len(source.shape) == 4 else None
        if channels is None or channels <= 0:
            return None
        for name in names:
            if name != "im2col":
                sch.compute_inline(sch.get_block(name))
        if [name for name in sch.block_names() if name != "root"] != ["im2col"]:
            return None
        _, oh, ow, k = sch.get_loops(block)
        _, c = sch.split(k, [None, channels])
        lanes = max(1, host_cpu_model().lanes(4))
        if channels % lanes == 0:
            _, vec = sch.split(c, [None, lanes])
            sch.vectorize(vec)
        _parallel_rows(sch, oh, ow)
    except ScheduleError:
        return None
    return dataclasses.replace(sch.func, attrs={**func.attrs, **sch.func.attrs, "default_schedule": False})


def _parallel_rows(sch, oh, ow) -> None:
    """Output pixels in parallel: (oh, ow) fused when the schedule's analysis proves the fused iterations
    independent (more work items than rows on small maps), else the rows alone."""
    from shapeflow.errors import ScheduleError  # noqa: PLC0415

    trial = sch.copy()
    try:
        trial.parallel(trial.fuse(oh, ow))
    except ScheduleError:
        sch.parallel(oh)
        return
    sch.parallel(sch.fuse(oh, ow))


def schedule_direct_conv(func) -> object | None:
    """A convolution kernel the rewrite left alone (grouped / depthwise, conv1d, a runtime weight of
    symbolic shape), relabelled "reduction" so the default row rule runs it row-parallel: its output
    rows (and its padding and epilogue stages) spread over the threads, each sum sequential as before (bit
    for bit the unscheduled result). As "out_elementwise_fusable" no default rule touches it, and it runs
    on one thread. None for any other kernel."""
    from shapeflow.ir.functor import collect  # noqa: PLC0415
    from shapeflow.ir.tir.function import PrimFunc  # noqa: PLC0415
    from shapeflow.ir.tir.stmt import Block  # noqa: PLC0415

    if not isinstance(func, PrimFunc) or func.attrs.get("op_pattern") != "out_elementwise_fusable":
        return None
    if not any(b.name in ("conv1d", "conv2d") for b in collect(func.body, Block)):
        return None
    return dataclasses.replace(func, attrs={**func.attrs, "op_pattern": "reduction"})
