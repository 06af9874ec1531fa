"""Legalization builds each distinct (op, attributes, argument types) kernel once: repeated layers reuse it,
while any difference (attributes, a float's sign, another symbolic dim) still gets its own kernel, and the
legalized module computes what the graph interpreter does."""

import numpy as np

from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.ir.graph import legalize as legalize_module_impl
from shapeflow.ir.graph.legalize import legalize_module
from shapeflow.ir.tir.function import PrimFunc


def _model():
    n, m = Var("n"), Var("m")
    x = GraphVar("x", TensorType((n, 6), "float32"))
    y = GraphVar("y", TensorType((m, 6), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, y]):
        with bb.dataflow():
            a = bb.emit(op.softmax(x, axis=-1))
            b = bb.emit(op.softmax(a, axis=-1))  # same op, attrs and type: the same kernel
            c = bb.emit(op.softmax(b, axis=0))  # other attrs
            d = bb.emit(op.softmax(y, axis=-1))  # another symbolic dim
            e = bb.emit(op.clip(c, 0.0, 1.0))
            f = bb.emit(op.clip(e, -0.0, 1.0))  # -0.0 is not 0.0
            out = bb.emit_output(op.add(op.sum(f), op.sum(d)))
        bb.emit_func_output(out)
    return bb.get()


def test_equal_calls_legalize_once_and_differences_do_not(monkeypatch):
    calls = []
    real = legalize_module_impl.legalize_call

    def counted(call, arg_types):
        calls.append(call.op.name)
        return real(call, arg_types)

    monkeypatch.setattr(legalize_module_impl, "legalize_call", counted)
    mod = _model()
    legalized = legalize_module(mod)
    assert calls.count("softmax") == 3 and calls.count("clip") == 2
    kernels = [f for f in legalized.functions.values() if isinstance(f, PrimFunc)]
    assert len(kernels) >= 5
    rng = np.random.default_rng(3)
    for n, m in ((1, 1), (5, 3), (7, 2)):
        x = rng.standard_normal((n, 6)).astype("float32")
        y = rng.standard_normal((m, 6)).astype("float32")
        np.testing.assert_allclose(run(legalized, x, y), run(mod, x, y), rtol=1e-5, atol=1e-5)
