"""Default schedule rule 2: elementwise/injective kernels get vectorized + parallel loops, reductions
row-parallel loops; compiled results equal the graph interpreter at sizes 1, primes and bounds; a rule that
cannot apply leaves the kernel as it was."""

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.ir.tir.stmt import For, ForKind
from shapeflow.passes.graph import graph_pipeline
from shapeflow.passes.tir.default_schedule import apply_default_schedule

rng = np.random.default_rng(11)


def chain():
    """reshape/permute, an elementwise chain, softmax and layer_norm over symbolic (b, s, 40)."""
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, 40), "float32"))
    g = GraphVar("g", TensorType((40,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, g]):
        with bb.dataflow():
            t = bb.emit(op.permute_dims(op.reshape(x, (b, s, 4, 10)), (0, 2, 1, 3)))
            e = bb.emit(op.tanh(op.add(op.multiply(t, 0.5), 1.0)))
            p = bb.emit(op.softmax(e, axis=-1))
            r = bb.emit(op.reshape(op.permute_dims(p, (0, 2, 1, 3)), (b, s, 40)))
            out = bb.emit_output(op.layer_norm(op.add(r, x), g, g, axes=(-1,)))
        bb.emit_func_output(out)
    return bb.get()


DIMS = {"b": (1, 3), "s": (1, 97)}


@pytest.fixture(scope="module")
def exe():
    return sf.compile(chain(), dims=DIMS)


@pytest.mark.parametrize(("b", "s"), [(1, 1), (1, 2), (2, 7), (3, 31), (3, 97)])
def test_scheduled_chain_matches_interpreter(exe, b, s):
    x = rng.standard_normal((b, s, 40)).astype("float32")
    g = rng.standard_normal(40).astype("float32")
    np.testing.assert_allclose(exe(x, g), run(chain(), x, g), rtol=1e-5, atol=1e-5)


def test_rules_fire_by_pattern():
    from shapeflow.compile import with_dim_bounds

    mod = graph_pipeline(2)(with_dim_bounds(chain(), DIMS))
    kinds = {}
    for name, f in mod.items():
        if "op_pattern" in getattr(f, "attrs", {}) and hasattr(f, "params"):
            kinds[name] = (
                f.attrs["op_pattern"],
                {x.kind for x in collect(apply_default_schedule(f).body, For)},
            )
    spatial = [k for p, k in kinds.values() if p in ("elementwise", "broadcast", "injective")]
    rows = [k for p, k in kinds.values() if p in ("reduction", "opaque")]
    assert spatial and all(ForKind.PARALLEL in k for k in spatial)
    assert any(ForKind.VECTORIZED in k for k in spatial)
    assert rows and all(ForKind.PARALLEL in k for k in rows)


def test_unscheduled_patterns_and_failing_rules_leave_the_kernel_alone():
    mod = graph_pipeline(2)(chain())
    f = next(f for f in mod.functions.values() if getattr(f, "attrs", {}).get("op_pattern") == "injective")
    other = f.with_attr("op_pattern", "out_elementwise_fusable")
    assert apply_default_schedule(other) is other
    # a vector width wider than any extent: nothing to vectorize, parallel still applies or nothing does
    wide = apply_default_schedule(f, lanes=1 << 20)
    assert ForKind.VECTORIZED not in {x.kind for x in collect(wide.body, For)}
