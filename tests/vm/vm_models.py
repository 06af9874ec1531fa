"""Graph models for the VM tests, written with the BlockBuilder (shared by the test files of tests/vm)."""

import numpy as np

from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op


def mlp():
    """x (n, 32) -> linear 64 + gelu -> matmul 10 -> log_softmax; symbolic batch n."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, 32), "float32"))
    w1 = GraphVar("w1", TensorType((64, 32), "float32"))
    b1 = GraphVar("b1", TensorType((64,), "float32"))
    w2 = GraphVar("w2", TensorType((64, 10), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, w1, b1, w2]):
        with bb.dataflow():
            h = bb.emit(op.gelu(op.linear(x, w1, b1)))
            logits = bb.emit(op.matmul(h, w2))
            out = bb.emit_output(op.log_softmax(logits, axis=-1))
        bb.emit_func_output(out)
    return bb.get()


def mlp_inputs(rng, n):
    return [rng.standard_normal(s).astype("float32") for s in [(n, 32), (64, 32), (64,), (64, 10)]]


def norm_chain():
    """softmax and layer_norm chains over a symbolic (b, s, 24) input, with a constant scale."""
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, 24), "float32"))
    g = GraphVar("g", TensorType((24,), "float32"))
    beta = GraphVar("beta", TensorType((24,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, g, beta]):
        with bb.dataflow():
            y = bb.emit(op.layer_norm(x, g, beta, axes=(-1,), epsilon=1e-5))
            p = bb.emit(op.softmax(op.multiply(y, np.float32(0.5) * np.ones((24,), "float32")), axis=-1))
            z = bb.emit(op.add(op.exp(p), x))
            out = bb.emit_output(op.layer_norm(z, g, beta, axes=(-1,), epsilon=1e-5))
        bb.emit_func_output(out)
    return bb.get()


def reshape_concat():
    """(n, 6) -> reshape (n, 2, 3) -> permute -> reshape (n, 6) -> concat with x along 1 -> (n, 12);
    returns a tuple (the concat and its row sums)."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, 6), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            r = bb.emit(op.reshape(x, (n, 2, 3)))
            t = bb.emit(op.reshape(op.permute_dims(r, (0, 2, 1)), (n, -1)))
            c = bb.emit(op.concat([t, op.neg(x)], axis=1))
            c = bb.emit_output(c)
            s = bb.emit_output(op.sum(c, axis=1))
        bb.emit_func_output([c, s])
    return bb.get()
