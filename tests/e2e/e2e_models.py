"""ONNX models for the end-to-end tests, built with onnx.helper (the transformers come from
shapeflow.examples_embedded.transformer_encoder_onnx, the builder of the shipped example), and the
onnxruntime reference they are checked against."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(nodes, inputs, outputs, initializers, name):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _init(rng, name, shape, scale=None):
    scale = 1.0 / np.sqrt(shape[-1] if len(shape) > 1 else 1) if scale is None else scale
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype("float32"), name)


def mlp(seed=0):
    """x (N, 20) -> Gemm 32 + Relu -> MatMul + Add 16 + Tanh -> Gemm(transB) 5 -> Softmax; symbolic N.
    Two outputs: the probabilities and the hidden layer."""
    rng = np.random.default_rng(seed)
    inits = [
        _init(rng, "w1", (20, 32)),
        _init(rng, "b1", (32,), 0.1),
        _init(rng, "w2", (32, 16)),
        _init(rng, "b2", (16,), 0.1),
        _init(rng, "w3", (5, 16)),
        _init(rng, "b3", (5,), 0.1),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["g1"]),
        helper.make_node("Relu", ["g1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "w2"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["a2"]),
        helper.make_node("Tanh", ["a2"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w3", "b3"], ["logits"], transB=1, alpha=0.5),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20])]
    outputs = [
        helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5]),
        helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", 16]),
    ]
    return _model(nodes, inputs, outputs, inits, "mlp")


def cnn(seed=0, channels=8, classes=10):
    """image (batch, 3, 16, 16) -> [Conv 3x3 + BatchNorm + Relu] -> MaxPool 2 -> Conv 3x3 stride 2 + BN +
    Relu -> AveragePool 2 -> GlobalAveragePool -> Flatten -> Gemm; symbolic batch."""
    rng = np.random.default_rng(seed)
    c = channels
    inits = [_init(rng, "conv1_w", (c, 3, 3, 3), 0.3), _init(rng, "conv1_b", (c,), 0.1)]
    inits += [_init(rng, "conv2_w", (2 * c, c, 3, 3), 0.2)]
    for name, width in (("bn1", c), ("bn2", 2 * c)):
        inits += [
            numpy_helper.from_array((1 + 0.1 * rng.standard_normal(width)).astype("f4"), f"{name}_scale"),
            numpy_helper.from_array((0.1 * rng.standard_normal(width)).astype("f4"), f"{name}_bias"),
            numpy_helper.from_array((0.1 * rng.standard_normal(width)).astype("f4"), f"{name}_mean"),
            numpy_helper.from_array((0.5 + rng.random(width)).astype("f4"), f"{name}_var"),
        ]
    inits += [_init(rng, "fc_w", (2 * c, classes)), _init(rng, "fc_b", (classes,), 0.1)]

    def bn(x, name, out):
        ins = [x] + [f"{name}_{k}" for k in ("scale", "bias", "mean", "var")]
        return helper.make_node("BatchNormalization", ins, [out], epsilon=1e-5)

    nodes = [
        helper.make_node("Conv", ["image", "conv1_w", "conv1_b"], ["c1"], pads=[1, 1, 1, 1]),
        bn("c1", "bn1", "n1"),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2_w"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        bn("c2", "bn2", "n2"),
        helper.make_node("Relu", ["n2"], ["r2"]),
        helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "fc_w"], ["fc"]),
        helper.make_node("Add", ["fc", "fc_b"], ["logits"]),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])]
    return _model(nodes, inputs, outputs, inits, "cnn")


def onnxruntime_outputs(model, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def as_list(result) -> list[np.ndarray]:
    return list(result) if isinstance(result, tuple) else [result]
