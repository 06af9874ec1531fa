"""StaticPlanBlockMemory, KillAfterLastUse and the graph pipeline.

The memory plan is checked against hand-computed plans (before/expected), and, on random programs, against
its invariants: tensors alive at the same time never share a token, every token is at least as large as
each tensor it holds (at the declared bounds), and the planned total never exceeds the sum of the tensors.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shapeflow.ir import assert_structural_equal
from shapeflow.ir.expr import Var
from shapeflow.ir.graph import BlockBuilder, GraphFunction, GraphVar, TensorType, op, run, verify
from shapeflow.ir.graph.shape import evaluate
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.passes import PASSES, PassContext, TimePasses
from shapeflow.passes.graph import (
    AnnotateOpPattern,
    KillAfterLastUse,
    LegalizeOps,
    StaticPlanBlockMemory,
    graph_pipeline,
    memory_plan,
    planned_bytes,
)
from shapeflow.passes.graph.memory import analyze_liveness, tensor_bytes, upper_bound

n = Var("n", "int64")
BOUNDS = {"n": (1, 64)}


def chain_module(attrs=None, bounds=True):
    """x -> exp -> neg -> abs -> tanh (legalized): three intermediates, one result."""
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    fattrs = {"var_bounds": BOUNDS} if bounds else {}
    with bb.function("main", [x], attrs={**fattrs, **(attrs or {})}):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            b = bb.emit(op.neg(a))
            c = bb.emit(op.abs(b))
            out = bb.emit_output(op.tanh(c))
        bb.emit_func_output(out)
    return AnnotateOpPattern()(LegalizeOps()(bb.get()))


def test_plan_reuses_storage_after_last_use_with_bounds():
    before = chain_module()
    after = StaticPlanBlockMemory()(before)
    size = 64 * 4 * 4
    plan = {
        "storage": (size, size),
        "tensors": {"lv1": 0, "lv2": 1, "lv3": 0},
        "planned_bytes": 2 * size,
        "intermediate_bytes": 3 * size,
    }
    expected = chain_module(attrs={"memory_plan": plan})
    assert_structural_equal(after["main"], expected["main"])
    assert memory_plan(after["main"]) == plan
    x = np.random.rand(5, 4).astype("float32")
    np.testing.assert_allclose(run(after, x), run(before, x))


def test_plan_keeps_symbolic_sizes_without_bounds():
    after = StaticPlanBlockMemory()(chain_module(bounds=False))
    plan = memory_plan(after["main"])
    assert len(plan["storage"]) == 2
    assert all(not isinstance(s, int) for s in plan["storage"])
    assert planned_bytes(after["main"], {"n": 10}) == (2 * 160, 3 * 160)


def test_returned_and_tupled_tensors_are_not_planned():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(op.exp(x))
            b = bb.emit(op.neg(a))
            c = bb.emit_output(op.abs(b))
        bb.emit_func_output((c, a))
    mod = StaticPlanBlockMemory()(LegalizeOps()(bb.get()))
    assert memory_plan(mod["main"])["tensors"] == {"lv2": 0}


def test_upper_bound_uses_declared_bounds():
    m = Var("m", "int64")
    size = tensor_bytes(TensorType((n, m + 1), "float16"))
    assert upper_bound(size, {"n": (1, 8), "m": (0, 3)}) == 8 * 4 * 2
    assert upper_bound(size, {"n": (1, 8)}) is size


def test_kill_after_last_use():
    mod = KillAfterLastUse()(StaticPlanBlockMemory()(chain_module()))
    attrs = mod["main"].attrs
    assert attrs["kill_after"] == {"lv2": ("lv1",), "lv3": ("lv2",), "gv4": ("lv3",)}
    # Token 0 holds lv1 then lv3, so it is free only after lv3's last use.
    assert attrs["kill_storage_after"] == {"lv3": (1,), "gv4": (0,)}


def check_plan_invariants(func: GraphFunction) -> None:
    plan = memory_plan(func)
    live = analyze_liveness(func)
    bounds = func.attrs.get("var_bounds") or {}
    intervals = []
    for v in live.planned:
        token = plan["tensors"][v.name]
        size = upper_bound(tensor_bytes(v.type), bounds)
        assert size <= plan["storage"][token]
        intervals.append((live.defined_at[id(v)], live.last_use[id(v)], token))
    for i, (d1, l1, t1) in enumerate(intervals):
        for d2, l2, t2 in intervals[i + 1 :]:
            if t1 == t2:
                assert l1 < d2 or l2 < d1, "tensors alive together share a token"
    assert plan["planned_bytes"] <= plan["intermediate_bytes"]


UNARY = ["exp", "neg", "abs", "tanh"]


@settings(deadline=None, max_examples=30)
@given(
    st.lists(
        st.tuples(st.sampled_from(["unary", "sum", "concat", "add_back"]), st.integers(0, 5)), max_size=8
    )
)
def test_plan_invariants_on_random_programs(steps):
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    with bb.function("main", [x], attrs={"var_bounds": BOUNDS}):
        with bb.dataflow():
            values = [x]
            for kind, k in steps:
                v = values[k % len(values)]
                if kind == "unary":
                    values.append(bb.emit(getattr(op, UNARY[k % 4])(v)))
                elif kind == "sum":
                    values.append(bb.emit(op.add(v, op.sum(v, axis=1, keepdims=True))))
                elif kind == "concat":
                    values.append(bb.emit(op.concat([v, v], axis=1)))
                else:
                    values.append(bb.emit(op.add(values[-1], op.sum(v))))
            out = bb.emit_output(op.sum(values[-1]))
        bb.emit_func_output(out)
    before = bb.get()
    after = graph_pipeline(opt_level=0)(before)
    check_plan_invariants(after["main"])
    xv = np.random.default_rng(len(steps)).standard_normal((3, 4)).astype("float32")
    np.testing.assert_allclose(run(after, xv), run(before, xv), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def mlp_module():
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 8), "float32"))
    w1 = GraphVar("w1", TensorType((8, 16), "float32"))
    w2 = GraphVar("w2", TensorType((16, 4), "float32"))
    with bb.function("main", [x, w1, w2], attrs={"var_bounds": BOUNDS}):
        with bb.dataflow():
            scale = bb.emit(op.multiply(op.ones((16,), "float32"), 0.5))  # folds
            h = bb.emit(op.relu(op.matmul(x, w1)))
            h2 = bb.emit(op.relu(op.matmul(x, w1)))  # CSE
            y = bb.emit(op.matmul(op.multiply(op.add(h, h2), scale), w2))
            out = bb.emit_output(op.softmax(y, axis=1))
        bb.emit_func_output(out)
    return bb.get()


def random_args(func, size, rng):
    env = {n: size}
    return [
        rng.standard_normal([int(evaluate(d, env)) for d in p.type.shape]).astype("float32")
        for p in func.params
    ]


def test_pipeline_passes_are_registered():
    for p in graph_pipeline(2).passes:
        assert PASSES[p.name] is type(p)


def test_pipeline_at_each_level_keeps_meaning_up_to_the_bounds():
    before = mlp_module()
    rng = np.random.default_rng(3)
    for level in (0, 1, 2):
        with PassContext(opt_level=level):
            after = graph_pipeline(level)(before)
        verify(after)
        for size in (1, 7, 64):
            args = random_args(before["main"], size, rng)
            np.testing.assert_allclose(run(after, *args), run(before, *args), rtol=1e-4, atol=1e-5)
        kernels = [k for k, f in after.items() if isinstance(f, PrimFunc)]
        if level == 0:
            assert not any(k.startswith("fused_") for k in kernels)
        else:
            assert any(k.startswith("fused_") for k in kernels)
            assert not any(
                isinstance(f, GraphFunction) and f.attrs.get("Primitive") for f in after.functions.values()
            )
        main = after["main"]
        assert all(b.value.op.name == "call_tir" for blk in main.body.blocks for b in blk.bindings)
        planned, total = planned_bytes(main)
        assert 0 < planned <= total
        assert "kill_after" in main.attrs


def test_pipeline_fewer_kernel_calls_when_optimizing_and_instruments_see_each_pass():
    before = mlp_module()
    timer = TimePasses()
    with PassContext(opt_level=2, instruments=[timer]):
        o2 = graph_pipeline(2)(before)
    with PassContext(opt_level=0):
        o0 = graph_pipeline(0)(before)
    calls = lambda m: sum(len(b.bindings) for b in m["main"].body.blocks)  # noqa: E731
    assert calls(o2) < calls(o0)
    assert {name for name, _ in timer.records} == {p.name for p in graph_pipeline(2).passes}


@settings(deadline=None, max_examples=15)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["unary", "const", "repeat", "row_sum", "matmul", "transpose2", "softmax", "side"]
            ),
            st.integers(0, 7),
        ),
        min_size=1,
        max_size=7,
    ),
    st.sampled_from([0, 1, 2]),
)
def test_pipeline_keeps_meaning_on_random_programs(steps, level):
    """Random programs with repeated calls (CSE), constant subcomputations (folding), side branches and
    reductions mean the same after the whole pipeline, at sizes 1, a prime and the declared bound."""
    bb = BlockBuilder()
    x = GraphVar("x", TensorType((n, 4), "float32"))
    w = GraphVar("w", TensorType((4, 4), "float32"))
    with bb.function("main", [x, w], attrs={"var_bounds": BOUNDS}):
        with bb.dataflow():
            values = [x]
            for kind, k in steps:
                v = values[-1]
                if kind == "unary":
                    new = getattr(op, UNARY[k % 4])(v)
                elif kind == "const":
                    c = op.exp(op.multiply(op.ones((4,), "float32"), float(k) / 8))
                    new = op.multiply(v, c)
                elif kind == "repeat":
                    new = op.add(op.tanh(v), op.tanh(v))
                elif kind == "row_sum":
                    new = op.subtract(v, op.mean(v, axis=1, keepdims=True))
                elif kind == "matmul":
                    new = op.matmul(v, w)
                elif kind == "transpose2":
                    new = op.permute_dims(op.permute_dims(v, (1, 0)), (1, 0))
                elif kind == "softmax":
                    new = op.softmax(v, axis=1)
                else:
                    new = op.add(v, op.abs(values[k % len(values)]))
                values.append(bb.emit(new))
            out = bb.emit_output(values[-1])
        bb.emit_func_output(out)
    before = bb.get()
    with PassContext(opt_level=level):
        after = graph_pipeline(level)(before)
    verify(after)
    check_plan_invariants(after["main"])
    rng = np.random.default_rng(len(steps))
    for size in (1, 5, 64):
        args = random_args(before["main"], size, rng)
        np.testing.assert_allclose(run(after, *args), run(before, *args), rtol=2e-4, atol=1e-4)
