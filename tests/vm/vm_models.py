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


def attention(heads=2, dim=16):
    """One self-attention block with a residual and layer_norm; symbolic batch b and sequence s."""
    b, s = Var("b"), Var("s")
    dh = dim // heads
    x = GraphVar("x", TensorType((b, s, dim), "float32"))
    wq, wk, wv, wo = (GraphVar(f"w{c}", TensorType((dim, dim), "float32")) for c in "qkvo")
    gamma, beta = (GraphVar(n, TensorType((dim,), "float32")) for n in ("gamma", "beta"))
    bb = BlockBuilder()
    with bb.function("main", [x, wq, wk, wv, wo, gamma, beta]):
        with bb.dataflow():

            def heads_first(t):
                return op.permute_dims(op.reshape(t, (b, s, heads, dh)), (0, 2, 1, 3))

            q = bb.emit(heads_first(op.linear(x, wq)))
            k = bb.emit(heads_first(op.linear(x, wk)))
            v = bb.emit(heads_first(op.linear(x, wv)))
            scores = bb.emit(op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 1.0 / np.sqrt(dh)))
            probs = bb.emit(op.softmax(scores, axis=-1))
            ctx = bb.emit(op.reshape(op.permute_dims(op.matmul(probs, v), (0, 2, 1, 3)), (b, s, -1)))
            y = bb.emit(op.add(x, op.linear(ctx, wo)))
            out = bb.emit_output(op.layer_norm(y, gamma, beta, axes=(-1,), epsilon=1e-5))
        bb.emit_func_output(out)
    return bb.get()
