"""An op that is the identity for its attributes (pad by zero widths) still gets a kernel that writes its
output: destination-passing style has no way to return an input. Found by the ONNX frontend engineer
(compile failed with "tensor 'x0' is listed twice")."""

import numpy as np

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, op, tensor
from shapeflow.ir.graph.interpreter import run as interpret


def zero_pad_module():
    n = Var("n")
    x = GraphVar("x", tensor((n, 4), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            padded = bb.emit(op.pad(x, pad_width=(0, 0, 0, 0)))
            out = bb.emit_output(op.add(padded, x))
        bb.emit_func_output(out)
    return bb.get()


def test_zero_pad_compiles_and_matches_the_interpreter():
    mod = zero_pad_module()
    exe = sf.compile(mod)
    for n in (1, 7):
        x = np.random.default_rng(n).standard_normal((n, 4)).astype("float32")
        np.testing.assert_allclose(exe(x), interpret(mod, x), rtol=1e-6)
        np.testing.assert_allclose(exe(x), 2 * x, rtol=1e-6)


def test_a_lone_zero_pad_kernel_copies_its_input():
    mod = zero_pad_module()
    exe = sf.compile(mod, opt_level=0)  # no fusion: the pad is a kernel of its own
    x = np.arange(12, dtype="float32").reshape(3, 4)
    np.testing.assert_array_equal(exe(x), 2 * x)
