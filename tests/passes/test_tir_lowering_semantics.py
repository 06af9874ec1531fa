"""The lowering passes keep the meaning of programs: checked on the reference interpreter after every
pass of the pipeline, for hand-built functions, TE functions (row sum, softmax, matmul) and random ones."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_tir import prim_funcs
from tir_pass_helpers import ALL_BUILDERS, assert_same_meaning, module

from shapeflow import te
from shapeflow.ir import BufferLoad, Ramp
from shapeflow.ir.functor import collect
from shapeflow.ir.node import replace
from shapeflow.ir.tir import Block, BlockRealize, BufferStore, For, ForKind
from shapeflow.ir.tir.verify import verify
from shapeflow.passes import PASSES, PassContext, PassInstrument, get_pass
from shapeflow.passes.tir import lower, lower_pipeline


class CheckMeaning(PassInstrument):
    """After every pass, the function must still compute what the original computed."""

    def __init__(self, original, sizes):
        self.original, self.sizes = original, sizes
        self.checked: list[str] = []

    def after_pass(self, pass_, before, after, seconds):
        if after is before:
            return
        for func in after.functions.values():
            try:
                assert_same_meaning(self.original, func, sizes=self.sizes)
            except AssertionError as err:
                raise AssertionError(f"pass {pass_.spec()} changed the meaning:\n{func}") from err
        self.checked.append(pass_.name)


def assert_lowered_form(mod) -> None:
    """What the code generators rely on (see passes/tir/pipeline.py)."""
    for func in mod.functions.values():
        verify(func)
        assert not collect(func.body, (Block, BlockRealize)), "blocks left after lowering"
        for node in collect(func.body, (BufferLoad, BufferStore)):
            assert len(node.indices) == 1, f"an access that is not 1-D: {node}"
        for loop in collect(func.body, For):
            assert loop.kind != ForKind.VECTORIZED, "a vectorized loop left after lowering"


@pytest.mark.parametrize("opt_level", [0, 1, 2])
@pytest.mark.parametrize("builder", sorted(ALL_BUILDERS))
def test_every_pass_of_lower_keeps_meaning(builder, opt_level):
    func = ALL_BUILDERS[builder]()
    check = CheckMeaning(func, sizes=(1, 7, 37))
    with PassContext(opt_level=opt_level, instruments=[check]):
        out = lower(func)
    assert_lowered_form(out)
    assert "convert-blocks-to-loops" in check.checked


def test_tail_loop_is_partitioned_and_vectorized():
    out = lower(ALL_BUILDERS["tail_scale_vec"](), opt_level=2)["tail_scale"]
    stores = collect(out.body, BufferStore)
    assert any(isinstance(s.indices[0], Ramp) for s in stores), "the main loop was not vectorized"
    assert any(not isinstance(s.indices[0], Ramp) for s in stores), "the guarded tail must stay scalar"


def test_opt_level_zero_makes_vectorized_loops_serial():
    out = lower(ALL_BUILDERS["tail_scale_vec"](), opt_level=0)["tail_scale"]
    assert not collect(out.body, Ramp)
    assert not [x for x in collect(out.body, For) if x.kind == ForKind.VECTORIZED]


def test_storage_is_shared_in_a_three_stage_pipeline():
    n = te.var("n")
    A = te.placeholder((n, 8), "float32", name="A")
    X = te.compute((n, 8), lambda i, j: A[i, j] + 1.0, name="X")
    Y = te.compute((n, 8), lambda i, j: X[i, j] * 2.0, name="Y")
    Z = te.compute((n, 8), lambda i, j: Y[i, j] - 3.0, name="Z")
    func = te.create_prim_func([A, Z])
    out = lower(func)
    assert_lowered_form(out)
    assert_same_meaning(func, out["main"] if "main" in out else next(iter(out.functions.values())))


def _te_functions():
    n = te.var("n")
    A = te.placeholder((n, 16), "float32", name="A")
    k = te.reduce_axis((0, 16), name="k")
    rowsum = te.compute((n,), lambda i: te.sum(A[i, k], axis=k), name="B")
    mx = te.compute((n,), lambda i: te.max(A[i, k], axis=k), name="mx")
    ex = te.compute((n, 16), lambda i, j: te.exp(A[i, j] - mx[i]), name="ex")
    k2 = te.reduce_axis((0, 16), name="k2")
    den = te.compute((n,), lambda i: te.sum(ex[i, k2], axis=k2), name="den")
    softmax = te.compute((n, 16), lambda i, j: ex[i, j] / den[i], name="softmax")
    m = te.var("m")
    W = te.placeholder((16, m), "float32", name="W")
    k3 = te.reduce_axis((0, 16), name="k3")
    mm = te.compute((n, m), lambda i, j: te.sum(A[i, k3] * W[k3, j], axis=k3), name="C")
    return {
        "rowsum": te.create_prim_func([A, rowsum]),
        "softmax": te.create_prim_func([A, softmax]),
        "matmul": te.create_prim_func([A, W, mm]),
    }


@pytest.mark.parametrize("name", ["rowsum", "softmax", "matmul"])
def test_te_functions_lower_with_the_same_meaning(name):
    func = _te_functions()[name]
    for level in (0, 2):
        out = lower(func, opt_level=level)
        assert_lowered_form(out)
        (lowered,) = out.functions.values()
        assert_same_meaning(func, lowered, sizes=(1, 7, 37))


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(func=prim_funcs(), opt_level=st.sampled_from([0, 2]))
def test_lower_keeps_meaning_of_random_functions(func, opt_level):
    out = lower(func, opt_level=opt_level)
    assert_lowered_form(out)
    (lowered,) = out.functions.values()
    assert_same_meaning(func, lowered, sizes=(1, 7, 16))


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    func=prim_funcs(),
    names=st.lists(st.sampled_from(sorted(PASSES)), min_size=1, max_size=6),
)
def test_any_sequence_of_passes_keeps_meaning(func, names):
    """The fuzzer runs passes in any order: each must be correct (or do nothing) on any input."""
    mod = module(func)
    for name in names:
        mod = get_pass(name)(mod)
    (out,) = mod.functions.values()
    assert_same_meaning(func, out, sizes=(1, 7, 16))


def test_lower_pipeline_lists_named_steps():
    seq = lower_pipeline(2)
    names = [p.name for p in seq.passes]
    assert names[:3] == ["lower-init-block", "convert-blocks-to-loops", "flatten-buffer"]
    assert "loop-partition" in names and "vectorize-loop" in names
    assert "loop-partition" not in [p.name for p in lower_pipeline(0).passes]


def test_interpreter_sees_a_difference_when_meaning_changes():
    """The semantic check itself must be able to fail."""
    func = ALL_BUILDERS["rowsum"]()
    lowered = get_pass("convert-blocks-to-loops")(func)
    outer, inner = collect(lowered.body, For)[::-1]
    without_init = replace(outer, body=replace(inner, body=inner.body.seq[1]))
    with pytest.raises(AssertionError, match="differs"):
        assert_same_meaning(func, lowered.with_body(without_init))
