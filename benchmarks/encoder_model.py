"""The models of benchmarks/encoder.py in every framework it compares, with the same weights: a 2-layer MLP
and a post-norm BERT encoder block over x of shape (batch, seq, 768), as numpy (the reference), a shapeflow
graph module, an ONNX model (weights as initializers; onnxruntime and shapeflow with constant weights run it),
torch eager and an apache-tvm Relax module.

Kept apart from the timing code so that a change to the model is made once, here, for every framework;
benchmarks/compile_time.py builds the same models through benchmarks/encoder.py.
"""

from __future__ import annotations

import math
import time

import numpy as np

HIDDEN, HEADS, FFN = 768, 12, 3072
HEAD_DIM = HIDDEN // HEADS
EPS = 1e-5
MAX_SEQ = 512


# ---------------------------------------------------------------------------------------------
# Weights and the numpy models
# ---------------------------------------------------------------------------------------------


def make_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) / math.sqrt(shape[-1])).astype("float32")

    out = {n: w(HIDDEN, HIDDEN) for n in ("wq", "wk", "wv", "wo")}  # (out, in), as linear takes them
    out.update(w1=w(FFN, HIDDEN), b1=w(FFN), w2=w(HIDDEN, FFN), b2=w(HIDDEN))
    for n in ("g1", "g2"):
        out[n] = (1 + 0.1 * rng.standard_normal(HIDDEN)).astype("float32")
    for n in ("be1", "be2"):
        out[n] = (0.1 * rng.standard_normal(HIDDEN)).astype("float32")
    return out


MLP_PARAMS = ("w1", "b1", "w2", "b2")
ENCODER_PARAMS = ("wq", "wk", "wv", "wo", "g1", "be1", "w1", "b1", "w2", "b2", "g2", "be2")


def _np_gelu(x):
    from scipy.special import erf  # noqa: PLC0415

    return (0.5 * x * (1 + erf(x / np.float32(math.sqrt(2))))).astype("float32")


def _np_layer_norm(x, g, b):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(EPS)) * g + b


def numpy_mlp(x, w1, b1, w2, b2):
    return _np_gelu(x @ w1.T + b1) @ w2.T + b2


def numpy_encoder(x, wq, wk, wv, wo, g1, be1, w1, b1, w2, b2, g2, be2):
    bsz, seq, _ = x.shape

    def heads(t):
        return t.reshape(bsz, seq, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)

    q, k, v = heads(x @ wq.T), heads(x @ wk.T), heads(x @ wv.T)
    scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1 / math.sqrt(HEAD_DIM))
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    probs = scores / scores.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, HIDDEN)
    h = _np_layer_norm(x + ctx @ wo.T, g1, be1)
    return _np_layer_norm(h + numpy_mlp(h, w1, b1, w2, b2), g2, be2)


# ---------------------------------------------------------------------------------------------
# shapeflow (graph BlockBuilder)
# ---------------------------------------------------------------------------------------------


def shapeflow_model(kind: str):
    """The graph module of `kind` ("mlp" or "encoder"), weights as parameters, symbolic b and s."""
    from shapeflow.ir import Var  # noqa: PLC0415
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op  # noqa: PLC0415

    weights = make_weights()
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, HIDDEN), "float32"))
    names = MLP_PARAMS if kind == "mlp" else ENCODER_PARAMS
    params = {n: GraphVar(n, TensorType(weights[n].shape, "float32")) for n in names}
    P = params
    bb = BlockBuilder()

    def ffn(h):
        inner = bb.emit(op.gelu(op.linear(h, P["w1"], P["b1"])))
        return bb.emit(op.linear(inner, P["w2"], P["b2"]))

    with bb.function("main", [x, *params.values()]):
        with bb.dataflow():
            if kind == "mlp":
                out = bb.emit_output(ffn(x))
            else:

                def heads(t):
                    return op.permute_dims(op.reshape(t, (b, s, HEADS, HEAD_DIM)), (0, 2, 1, 3))

                q = bb.emit(heads(op.linear(x, P["wq"])))
                k = bb.emit(heads(op.linear(x, P["wk"])))
                v = bb.emit(heads(op.linear(x, P["wv"])))
                scores = bb.emit(
                    op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 1.0 / math.sqrt(HEAD_DIM))
                )
                probs = bb.emit(op.softmax(scores, axis=-1))
                ctx = bb.emit(op.reshape(op.permute_dims(op.matmul(probs, v), (0, 2, 1, 3)), (b, s, -1)))
                h = bb.emit(op.layer_norm(op.add(x, op.linear(ctx, P["wo"])), P["g1"], P["be1"], axes=(-1,)))
                y = bb.emit(op.add(h, ffn(h)))
                out = bb.emit_output(op.layer_norm(y, P["g2"], P["be2"], axes=(-1,), epsilon=EPS))
        bb.emit_func_output(out)
    return bb.get()


DIMS = {"b": (1, 8), "s": (1, MAX_SEQ)}


def shapeflow_compile(kind: str):
    import shapeflow as sf  # noqa: PLC0415

    return sf.compile(shapeflow_model(kind), target="cpu", dims=DIMS)


# ---------------------------------------------------------------------------------------------
# The encoder as ONNX (weights as initializers): onnxruntime, and shapeflow with constant weights
# ---------------------------------------------------------------------------------------------


def encoder_onnx():
    """The encoder above as an onnx.ModelProto (opset 17, dims "batch" and "seq"), the same weights as
    initializers: linear = MatMul with the transposed weight (+ Add bias), GELU through Erf."""
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    weights = make_weights()
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op_type, inputs, **attrs):
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(t, w, bias=None):
        y = node("MatMul", [t, const(f"{w}_t", np.ascontiguousarray(weights[w].T))])
        return y if bias is None else node("Add", [y, const(bias, weights[bias])])

    def layer_norm(t, g, b):
        return node(
            "LayerNormalization", [t, const(g, weights[g]), const(b, weights[b])], axis=-1, epsilon=EPS
        )

    split = const("split_heads", np.array([0, 0, HEADS, HEAD_DIM], "int64"))
    q = node("Transpose", [node("Reshape", [linear("x", "wq"), split])], perm=[0, 2, 1, 3])
    k = node("Transpose", [node("Reshape", [linear("x", "wk"), split])], perm=[0, 2, 3, 1])
    v = node("Transpose", [node("Reshape", [linear("x", "wv"), split])], perm=[0, 2, 1, 3])
    scores = node("Mul", [node("MatMul", [q, k]), const("scale", np.float32(1 / math.sqrt(HEAD_DIM)))])
    ctx = node("Transpose", [node("MatMul", [node("Softmax", [scores], axis=-1), v])], perm=[0, 2, 1, 3])
    ctx = node("Reshape", [ctx, const("merge_heads", np.array([0, 0, HIDDEN], "int64"))])
    h = layer_norm(node("Add", ["x", linear(ctx, "wo")]), "g1", "be1")
    inner = linear(h, "w1", "b1")
    erf = node("Erf", [node("Div", [inner, const("sqrt2", np.float32(math.sqrt(2)))])])
    gelu = node(
        "Mul",
        [
            node("Mul", [inner, node("Add", [erf, const("one", np.float32(1))])]),
            const("half", np.float32(0.5)),
        ],
    )
    y = layer_norm(node("Add", [h, linear(gelu, "w2", "b2")]), "g2", "be2")
    nodes.append(helper.make_node("Identity", [y], ["y"]))
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "seq", HIDDEN]) for n in ("x", "y")]
    graph = helper.make_graph(nodes, "encoder", io[:1], io[1:], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="shapeflow")
    model.ir_version = 8
    return model


def onnxruntime_model():
    """An onnxruntime CPU session of `encoder_onnx()` with 2 intra-op threads (its default optimizations)."""
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        encoder_onnx().SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda x: session.run(None, {"x": x})[0]


def shapeflow_constant_model():
    """`encoder_onnx()` through shapeflow.compile: the weights are constants (packed once, at load)."""
    import shapeflow as sf  # noqa: PLC0415

    return sf.compile(encoder_onnx(), target="cpu", dims={"batch": DIMS["b"], "seq": DIMS["s"]})


# ---------------------------------------------------------------------------------------------
# torch eager
# ---------------------------------------------------------------------------------------------


def torch_model(kind: str):
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415, N812

    torch.set_num_threads(2)
    W = {k: torch.from_numpy(v) for k, v in make_weights().items()}

    def mlp(x):
        return F.linear(F.gelu(F.linear(x, W["w1"], W["b1"])), W["w2"], W["b2"])

    def encoder(x):
        bsz, seq, _ = x.shape

        def heads(t):
            return t.reshape(bsz, seq, HEADS, HEAD_DIM).permute(0, 2, 1, 3)

        q, k, v = heads(F.linear(x, W["wq"])), heads(F.linear(x, W["wk"])), heads(F.linear(x, W["wv"]))
        probs = torch.softmax((q @ k.transpose(-1, -2)) * (1 / math.sqrt(HEAD_DIM)), dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(bsz, seq, HIDDEN)
        h = F.layer_norm(x + F.linear(ctx, W["wo"]), (HIDDEN,), W["g1"], W["be1"], EPS)
        return F.layer_norm(h + mlp(h), (HIDDEN,), W["g2"], W["be2"], EPS)

    fn = mlp if kind == "mlp" else encoder

    def run(x):
        with torch.no_grad():
            return fn(torch.from_numpy(x)).numpy()

    return run


# ---------------------------------------------------------------------------------------------
# apache-tvm: the same model as a Relax module, default tvm.compile
# ---------------------------------------------------------------------------------------------


def tvm_model(kind: str):
    import tvm  # noqa: PLC0415
    from tvm import relax  # noqa: PLC0415

    weights = make_weights()
    names = MLP_PARAMS if kind == "mlp" else ENCODER_PARAMS
    tir = getattr(tvm, "tir", None) or tvm.tirx  # apache-tvm 0.27 names the loop IR package tirx
    b, s = tir.Var("b", "int64"), tir.Var("s", "int64")
    tensor_type = getattr(relax, "TensorStructInfo", None) or relax.TensorType  # renamed in 0.27
    x = relax.Var("x", tensor_type((b, s, HIDDEN), "float32"))
    P = {n: relax.Var(n, tensor_type(weights[n].shape, "float32")) for n in names}
    R = relax.op
    bb = relax.BlockBuilder()

    def linear(t, w, bias=None):
        y = R.matmul(t, R.permute_dims(w))
        return y if bias is None else R.add(y, bias)

    def ffn(h):
        inner = bb.emit(R.nn.gelu(linear(h, P["w1"], P["b1"])))
        return bb.emit(linear(inner, P["w2"], P["b2"]))

    with bb.function("main", [x, *P.values()]):
        with bb.dataflow():
            if kind == "mlp":
                out = bb.emit_output(ffn(x))
            else:

                def heads(t):
                    return R.permute_dims(R.reshape(t, (b, s, HEADS, HEAD_DIM)), (0, 2, 1, 3))

                q = bb.emit(heads(linear(x, P["wq"])))
                k = bb.emit(heads(linear(x, P["wk"])))
                v = bb.emit(heads(linear(x, P["wv"])))
                scale = relax.const(1.0 / math.sqrt(HEAD_DIM), "float32")
                scores = bb.emit(R.multiply(R.matmul(q, R.permute_dims(k, (0, 1, 3, 2))), scale))
                probs = bb.emit(R.nn.softmax(scores, axis=-1))
                ctx = bb.emit(R.reshape(R.permute_dims(R.matmul(probs, v), (0, 2, 1, 3)), (b, s, HIDDEN)))
                h = bb.emit(
                    R.nn.layer_norm(R.add(x, linear(ctx, P["wo"])), P["g1"], P["be1"], axes=[-1], epsilon=EPS)
                )
                y = bb.emit(R.add(h, ffn(h)))
                out = bb.emit_output(R.nn.layer_norm(y, P["g2"], P["be2"], axes=[-1], epsilon=EPS))
        bb.emit_func_output(out)
    start = time.perf_counter()
    ex = tvm.compile(bb.get(), target="llvm")
    compile_s = time.perf_counter() - start
    dev = tvm.cpu()
    vm = relax.VirtualMachine(ex, dev)
    args = [tvm.runtime.tensor(weights[n], dev) for n in names]

    def run(x_np):
        return vm["main"](tvm.runtime.tensor(x_np, dev), *args).numpy()

    return run, compile_s
