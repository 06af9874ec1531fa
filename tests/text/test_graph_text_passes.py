"""The module after every step of the graph pipeline prints and parses back (what `dump_ir` writes must be
readable): legalized kernels, fused sub-functions and kernels, and memory-plan attributes included."""

import pytest
from test_graph_text_roundtrip import MODELS

from shapeflow.ir import assert_structural_equal
from shapeflow.ir.text import parse, to_text
from shapeflow.passes.graph import graph_pipeline


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_graph_pipeline_step_round_trips(name):
    mod = MODELS[name]()
    for step in graph_pipeline(2).passes:
        mod = step(mod)
        text = to_text(mod)
        back = parse(text)
        assert_structural_equal(back, mod)
        assert to_text(back) == text, step.name
    # the end of the pipeline has kernels next to the graph functions that call them
    assert "@T.prim_func" in text and "R.call_tir(Module." in text
