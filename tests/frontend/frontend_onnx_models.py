"""Small ONNX models built with onnx.helper for the frontend tests: an MLP, a CNN with conv / batch norm /
pooling, and an attention block whose sequence length is symbolic and whose reshapes are computed by a
Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph (as torch.onnx exports them)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _model(nodes, inputs, outputs, inits, opset: int = OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def mlp(rng: np.random.Generator) -> onnx.ModelProto:
    """(batch, 16) -> Gemm -> Relu -> MatMul + Add -> Softmax, batch symbolic."""
    inits = [
        _init("w1", rng.standard_normal((32, 16)).astype(np.float32)),
        _init("b1", rng.standard_normal(32).astype(np.float32)),
        _init("w2", rng.standard_normal((32, 10)).astype(np.float32)),
        _init("b2", rng.standard_normal(10).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
    return _model(nodes, [x], [y], inits)


def cnn(rng: np.random.Generator) -> onnx.ModelProto:
    """(batch, 3, 16, 16) -> Conv/BN/Relu -> MaxPool -> Conv -> AveragePool -> GlobalAveragePool -> Flatten
    -> Gemm; two outputs (logits and the pooled features)."""
    inits = [
        _init("c1w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3),
        _init("c1b", rng.standard_normal(8).astype(np.float32)),
        _init("bn_s", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
        _init("bn_b", rng.standard_normal(8).astype(np.float32)),
        _init("bn_m", rng.standard_normal(8).astype(np.float32)),
        _init("bn_v", rng.uniform(0.5, 2.0, 8).astype(np.float32)),
        _init("c2w", rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 0.3),
        _init("fcw", rng.standard_normal((5, 4)).astype(np.float32)),
        _init("fcb", rng.standard_normal(5).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2w"], ["c2"], group=4, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node(
            "AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]
        ),
        helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fcw", "fcb"], ["logits"], transB=1),
    ]
    inits += [_init("lo", np.array(0.0, np.float32)), _init("hi", np.array(6.0, np.float32))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])
    return _model(nodes, [x], [logits, features], inits)


def attention(rng: np.random.Generator, hidden: int = 16, heads: int = 2) -> onnx.ModelProto:
    """A pre-norm self-attention block over (1, seq, hidden) with a causal mask; every reshape target is
    computed from Shape(x) at run time in the ONNX graph (batch and seq gathered, unsqueezed and
    concatenated with constants), as torch.onnx exports them."""
    head = hidden // heads
    f32 = np.float32
    inits = [
        _init("ln_w", rng.uniform(0.5, 1.5, hidden).astype(f32)),
        _init("ln_b", rng.standard_normal(hidden).astype(f32) * 0.1),
        _init("wq", rng.standard_normal((hidden, hidden)).astype(f32) * 0.3),
        _init("wk", rng.standard_normal((hidden, hidden)).astype(f32) * 0.3),
        _init("wv", rng.standard_normal((hidden, hidden)).astype(f32) * 0.3),
        _init("wo", rng.standard_normal((hidden, hidden)).astype(f32) * 0.3),
        _init("i0", np.array(0, np.int64)),
        _init("i1", np.array(1, np.int64)),
        _init("ax0", np.array([0], np.int64)),
        _init("heads", np.array([heads], np.int64)),
        _init("head", np.array([head], np.int64)),
        _init("hid", np.array([hidden], np.int64)),
        _init("scale", np.array(1.0 / np.sqrt(head), f32)),
        _init("neg", np.array(-1e9, f32)),
        _init("zero", np.array(0.0, f32)),
        _init("one_i", np.array(1, np.int64)),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_w", "ln_b"], ["h"], axis=-1, epsilon=1e-5),
        # shape subgraph: (batch, seq, heads, head)
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["xs", "i1"], ["s"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Unsqueeze", ["s", "ax0"], ["s1"]),
        helper.make_node("Concat", ["b1", "s1", "heads", "head"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["b1", "s1", "hid"], ["merge_shape"], axis=0),
    ]
    for name in ("q", "k", "v"):
        nodes += [
            helper.make_node("MatMul", ["h", f"w{name}"], [f"{name}p"]),
            helper.make_node("Reshape", [f"{name}p", "split_shape"], [f"{name}r"]),
            helper.make_node("Transpose", [f"{name}r"], [f"{name}t"], perm=[0, 2, 1, 3]),
        ]
    nodes += [
        helper.make_node("Transpose", ["kt"], ["ktt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["qt", "ktt"], ["scores0"]),
        helper.make_node("Mul", ["scores0", "scale"], ["scores1"]),
        # causal mask: Range(seq) rows vs columns, built from the same gathered seq length
        helper.make_node("Range", ["i0", "s", "one_i"], ["pos"]),
        helper.make_node("Unsqueeze", ["pos", "one_i_axes"], ["rows"]),
        helper.make_node("Unsqueeze", ["pos", "ax0"], ["cols"]),
        helper.make_node("Greater", ["cols", "rows"], ["future"]),
        helper.make_node("Where", ["future", "neg", "zero"], ["mask"]),
        helper.make_node("Add", ["scores1", "mask"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "vt"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctxt", "merge_shape"], ["merged"]),
        helper.make_node("MatMul", ["merged", "wo"], ["proj"]),
        helper.make_node("Add", ["x", "proj"], ["res"]),
        helper.make_node("Erf", ["res"], ["e"]),
        helper.make_node("Div", ["res", "e_den"], ["y_half"]),
        helper.make_node("Sub", ["y_half", "e"], ["y"]),
    ]
    inits += [_init("one_i_axes", np.array([1], np.int64)), _init("e_den", np.array(2.0, f32))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", hidden])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", hidden])
    return _model(nodes, [x], [y], inits)
