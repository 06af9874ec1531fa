"""LegalizeOps, AnnotateOpPattern, FuseOps and FuseTIR: before/expected pairs built with the BlockBuilder
(and `shapeflow.te` for the expected fused kernel), and agreement of before and after on the graph
interpreter, which runs the kernels through the loop-level interpreter, at several symbolic sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow import te
from shapeflow.ir import IRModule, assert_structural_equal
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import BlockBuilder, GraphFunction, GraphVar, TensorType, op, run, verify
from shapeflow.ir.graph.shape import evaluate
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.verify import verify as verify_tir
from shapeflow.passes.graph import (
    AnnotateOpPattern,
    DeadCodeElimination,
    FuseOps,
    FuseTIR,
    LegalizeOps,
    analyze_op_pattern,
)

n = Var("n", "int64")
SIZES = (1, 2, 5)


def random_inputs(func: GraphFunction, size: int, rng) -> list[np.ndarray]:
    env = {}
    out = []
    for p in func.params:
        shape = []
        for d in p.type.shape:
            if isinstance(d, Var) and d not in env:
                env[d] = size
            shape.append(int(evaluate(d, env)))
        out.append(rng.standard_normal(shape).astype(str(p.type.dtype)))
    return out


def assert_same_meaning(before: IRModule, after: IRModule, sizes=SIZES) -> None:
    verify(after)
    for func in after.functions.values():
        if isinstance(func, PrimFunc):
            verify_tir(func)
    rng = np.random.default_rng(1)
    for size in sizes:
        args = random_inputs(before["main"], size, rng)
        got, want = run(after, *args), run(before, *args)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def mlp_module() -> IRModule:
    """relu(x @ w + b) then a row sum plus one: a matmul epilogue and a reduction epilogue."""
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    w = GraphVar("w", TensorType((4, 3), "float32"))
    b = GraphVar("b", TensorType((3,), "float32"))
    with bb.function("main", [x, w, b]):
        with bb.dataflow():
            h = bb.emit(op.relu(op.add(op.matmul(x, w), b)))
            s = bb.emit(op.sum(h, axis=1))
            out = bb.emit_output(op.exp(s))
        bb.emit_func_output(out)
    return bb.get()


def lowered(mod: IRModule) -> IRModule:
    return AnnotateOpPattern()(LegalizeOps()(mod))


# ---------------------------------------------------------------------------------------------
# LegalizeOps and AnnotateOpPattern
# ---------------------------------------------------------------------------------------------


def test_legalize_ops_makes_call_tir_and_keeps_meaning():
    before = mlp_module()
    after = LegalizeOps()(before)
    calls = [b.value for b in after["main"].body.blocks[0].bindings]
    assert all(c.op.name == "call_tir" for c in calls)
    assert sorted(k for k in after.functions if k != "main") == ["add", "exp", "matmul", "relu", "sum"]
    assert_same_meaning(before, after)
    assert LegalizeOps()(after) is after


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda x, v: op.exp(x), "elementwise"),
        (lambda x, v: op.add(x, v), "broadcast"),
        (lambda x, v: op.permute_dims(x, (1, 0)), "injective"),
        (lambda x, v: op.sum(x, axis=1), "reduction"),
        (lambda x, v: op.matmul(x, op.permute_dims(x, (1, 0))), "out_elementwise_fusable"),
        (lambda x, v: op.softmax(x, axis=1), "opaque"),
    ],
)
def test_annotate_op_pattern(make, expected):
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    v = GraphVar("v", TensorType((4,), "float32"))
    with bb.function("main", [x, v]):
        out = bb.emit(make(x, v))
        bb.emit_func_output(out)
    mod = lowered(bb.get())
    call = mod["main"].body.blocks[0].bindings[-1].value
    kernel = mod[call.args[0].name]
    assert kernel.attrs["op_pattern"] == expected
    assert analyze_op_pattern(kernel) == expected


def test_annotate_op_pattern_keeps_an_existing_label():
    mod = lowered(mlp_module())
    relabelled = IRModule(
        {k: (f.with_attr("op_pattern", "opaque") if isinstance(f, PrimFunc) else f) for k, f in mod.items()}
    )
    assert AnnotateOpPattern()(relabelled) is relabelled


# ---------------------------------------------------------------------------------------------
# FuseOps
# ---------------------------------------------------------------------------------------------


def test_fuse_ops_groups_epilogues():
    before = lowered(mlp_module())
    kernels = {k: f for k, f in before.items() if isinstance(f, PrimFunc)}
    after = FuseOps()(before)

    f32 = "float32"
    bb = BlockBuilder()
    for k, f in kernels.items():
        bb.add_func(f, k)
    x = GraphVar("x", TensorType((n, 4), f32))
    w = GraphVar("w", TensorType((4, 3), f32))
    b = GraphVar("b", TensorType((3,), f32))
    with bb.function("fused_matmul_add_relu", [x, w, b]):
        with bb.dataflow():
            m = bb.emit(op.call_tir("matmul", [x, w], TensorType((n, 3), f32)))
            a = bb.emit(op.call_tir("add", [m, b], TensorType((n, 3), f32)))
            r = bb.emit_output(op.call_tir("relu", [a], TensorType((n, 3), f32)))
        bb.emit_func_output(r)
    h = GraphVar("h", TensorType((n, 3), f32))
    with bb.function("fused_sum_exp", [h]):
        with bb.dataflow():
            s = bb.emit(op.call_tir("sum", [h], TensorType((n,), f32)))
            e = bb.emit_output(op.call_tir("exp", [s], TensorType((n,), f32)))
        bb.emit_func_output(e)
    x = GraphVar("x", TensorType((n, 4), f32))
    w = GraphVar("w", TensorType((4, 3), f32))
    b = GraphVar("b", TensorType((3,), f32))
    with bb.function("main", [x, w, b]):
        with bb.dataflow():
            h = bb.emit(op.call("fused_matmul_add_relu", x, w, b))
            out = bb.emit_output(op.call("fused_sum_exp", h))
        bb.emit_func_output(out)
    expected = bb.get()
    for name in ("fused_matmul_add_relu", "fused_sum_exp"):
        f = expected[name]
        expected[name] = GraphFunction(f.params, f.body, f.ret_type, {"Primitive": True})

    assert sorted(after.functions) == sorted(expected.functions)
    for name in expected.functions:
        assert_structural_equal(after[name], expected[name])
    assert_same_meaning(before, after)


def test_fuse_ops_does_not_fuse_a_value_with_two_consumers_into_either():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            s = bb.emit(op.sum(x, axis=1))
            a = bb.emit(op.exp(s))
            c = bb.emit(op.sqrt(op.abs(s)))
            out = bb.emit_output(op.add(a, c))
        bb.emit_func_output(out)
    before = lowered(bb.get())
    after = FuseOps()(before)
    # The sum's post-dominator is the final add: sum, both branches and the add form one group.
    fused = [k for k, f in after.items() if isinstance(f, GraphFunction) and f.attrs.get("Primitive")]
    assert len(fused) == 1
    assert len(after[fused[0]].body.blocks[0].bindings) == 5
    assert_same_meaning(before, after)


def test_fuse_ops_keeps_two_reductions_apart_and_block_outputs_visible():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            e = bb.emit_output(op.exp(x))  # a block output: stays visible after the block
            s = bb.emit(op.sum(e, axis=1))
            out = bb.emit_output(op.max(op.expand_dims(s, 1), axis=1))
        bb.emit_func_output((out, e))
    before = lowered(bb.get())
    after = FuseOps()(before)
    for f in after.functions.values():
        if isinstance(f, GraphFunction) and f.attrs.get("Primitive"):
            patterns = [after[b.value.args[0].name].attrs["op_pattern"] for b in f.body.blocks[0].bindings]
            assert sum(p in ("reduction", "out_elementwise_fusable") for p in patterns) <= 1
    assert_same_meaning(before, after)


# ---------------------------------------------------------------------------------------------
# FuseTIR
# ---------------------------------------------------------------------------------------------


def test_fuse_tir_matches_a_te_built_kernel():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op.tanh(op.exp(x)))
        bb.emit_func_output(out)
    before = lowered(bb.get())
    after = DeadCodeElimination()(FuseTIR()(FuseOps()(before)))

    a = te.placeholder((n, 4), "float32", name="x")
    e = te.compute((n, 4), lambda i, j: te.exp(a[i, j]), name="exp")
    t = te.compute((n, 4), lambda i, j: te.tanh(e[i, j]), name="tanh")
    kernel = te.create_prim_func([a, t], name="fused_exp_tanh").with_attr("op_pattern", "elementwise")

    eb = BlockBuilder()
    eb.add_func(kernel, "fused_exp_tanh")
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with eb.function("main", [x]):
        with eb.dataflow():
            out = eb.emit_output(op.call_tir("fused_exp_tanh", [x], TensorType((n, 4), "float32")))
        eb.emit_func_output(out)
    expected = eb.get()

    assert sorted(after.functions) == ["fused_exp_tanh", "main"]
    assert_structural_equal(after["fused_exp_tanh"], expected["fused_exp_tanh"])
    assert_structural_equal(after["main"], expected["main"])
    assert_same_meaning(before, after)


def test_fuse_tir_mlp_one_kernel_per_group_with_local_intermediates():
    before = lowered(mlp_module())
    after = DeadCodeElimination()(FuseTIR()(FuseOps()(before)))
    kernels = {k: f for k, f in after.items() if isinstance(f, PrimFunc)}
    assert sorted(kernels) == ["fused_matmul_add_relu", "fused_sum_exp"]
    root = kernels["fused_matmul_add_relu"].body.block
    assert [tuple(str(d) for d in buf.shape) for buf in root.alloc_buffers] == [("n", "3"), ("n", "3")]
    assert kernels["fused_matmul_add_relu"].attrs["op_pattern"] == "out_elementwise_fusable"
    assert len(after["main"].body.blocks[0].bindings) == 2
    assert_same_meaning(before, after)


def test_fuse_tir_inlines_the_same_kernel_twice_and_passes_constants():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.add(x, 1.0))
            out = bb.emit_output(op.add(op.exp(a), 1.0))
        bb.emit_func_output(out)
    before = lowered(bb.get())
    after = DeadCodeElimination()(FuseTIR()(FuseOps()(before)))
    kernels = [f for f in after.functions.values() if isinstance(f, PrimFunc)]
    assert len(kernels) == 1
    assert len(kernels[0].buffer_params) == 4  # x, the two constants, the output
    assert_same_meaning(before, after)


UNARY = ["exp", "neg", "abs", "tanh", "sigmoid", "relu"]


@settings(deadline=None, max_examples=12)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(UNARY),
            st.sampled_from(["add_bias", "sum_keep", "transpose2", "matmul"]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 2**16),
)
def test_fusion_pipeline_keeps_meaning_on_random_chains(steps, seed):
    """Random chains of kernels (with side branches merged back) mean the same after fusion."""
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    bias = GraphVar("bias", TensorType((4,), "float32"))
    w = GraphVar("w", TensorType((4, 4), "float32"))
    rng = np.random.default_rng(seed)
    with bb.function("main", [x, bias, w]):
        with bb.dataflow():
            v = x
            for step in steps:
                if step in UNARY:
                    v = bb.emit(getattr(op, step)(v))
                elif step == "add_bias":
                    v = bb.emit(op.add(v, bias))
                elif step == "sum_keep":
                    v = bb.emit(op.add(v, op.sum(v, axis=1, keepdims=True)))
                elif step == "transpose2":
                    v = bb.emit(op.permute_dims(op.permute_dims(v, (1, 0)), (1, 0)))
                else:
                    v = bb.emit(op.matmul(v, w))
                if rng.random() < 0.3:
                    v = bb.emit(op.add(v, op.abs(v)))
            out = bb.emit_output(v)
        bb.emit_func_output(out)
    before = bb.get()
    after = DeadCodeElimination()(FuseTIR()(FuseOps()(lowered(before))))
    assert_same_meaning(before, after, sizes=(1, 3))


def test_fusion_passes_symbolic_vars_the_inputs_do_not_define():
    """A group with no tensor input (full, then elementwise) gets n as a shape argument, and the fused
    kernel takes n as a trailing scalar (call_tir's tir_vars)."""
    from shapeflow.ir.graph import ShapeExpr

    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            f = bb.emit(op.full((n * 2,), "float32", fill_value=1.5))
            out = bb.emit_output(op.exp(op.add(f, 1.0)))
        bb.emit_func_output((out, x))
    before = lowered(bb.get())
    fused = FuseOps()(before)
    call = fused["main"].body.blocks[0].bindings[0].value
    assert len(call.args) == 1 and isinstance(call.args[0], ShapeExpr) and call.args[0].values[0] is n
    after = DeadCodeElimination()(FuseTIR()(fused))
    call = after["main"].body.blocks[0].bindings[0].value
    assert call.op.name == "call_tir" and call.args[2].values[0] is n
    kernel = after[call.args[0].name]
    assert [type(p).__name__ for p in kernel.params] == ["Buffer", "Buffer", "Var"]
    assert_same_meaning(before, after)


def test_fuse_tir_of_a_hand_written_primitive_with_two_outputs():
    from shapeflow.ir.graph import TupleGetItem, TupleType

    base = lowered(mlp_module())  # for its relu kernel, on (n, 3)
    m = Var("m", "int64")
    f32 = "float32"
    bb = BlockBuilder()
    bb.add_func(base["relu"], "relu")
    y = GraphVar("y", TensorType((m, 3), f32))  # the sub-function's own symbolic Var
    with bb.function("prim", [y], attrs={"Primitive": True}):
        with bb.dataflow():
            e = bb.emit_output(op.call_tir("relu", [y], TensorType((m, 3), f32)))
            r = bb.emit_output(op.call_tir("relu", [e], TensorType((m, 3), f32)))
        bb.emit_func_output((e, r))
    x = GraphVar("x", TensorType((n, 3), f32))
    with bb.function("main", [x]):
        with bb.dataflow():
            t = bb.emit(op.call("prim", x))
            out = bb.emit_output(op.add(TupleGetItem(t, 0), TupleGetItem(t, 1)))
        bb.emit_func_output(out)
    before = bb.get()
    after = FuseTIR()(before)
    kernel = after["prim"]
    assert isinstance(kernel, PrimFunc) and len(kernel.buffer_params) == 3
    call = after["main"].body.blocks[0].bindings[0].value
    assert call.op.name == "call_tir" and isinstance(call.type_args[0], TupleType)
    assert call.type_args[0].fields[0].shape[0] is n  # the callee's m became the caller's n
    assert_same_meaning(before, after)


def test_fuse_ops_max_group_size():
    before = lowered(mlp_module())
    assert FuseOps(max_group_size=1)(before) is before
    after = FuseOps(max_group_size=2)(before)
    sizes = [
        len(f.body.blocks[0].bindings)
        for f in after.functions.values()
        if isinstance(f, GraphFunction) and f.attrs.get("Primitive")
    ]
    assert sizes and max(sizes) == 2
    assert_same_meaning(before, after)
