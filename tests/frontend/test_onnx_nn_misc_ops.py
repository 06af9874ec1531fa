"""ONNX LRN, BatchNormalization in training mode, LpPool (1-D, dilated, 3-D), AveragePool with dilations,
Det and MaxUnpool: compiled for the CPU and compared with onnx's reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import shapeflow as sf  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402

F = TensorProto.FLOAT
rng = np.random.default_rng(3)


def _run_both(node, inputs: dict, outputs: dict, inits: dict | None = None, opset: int = 22, rtol=1e-5):
    graph = helper.make_graph(
        [node],
        "t",
        [
            helper.make_tensor_value_info(
                n, TensorProto.FLOAT if a.dtype == np.float32 else TensorProto.INT64, list(a.shape)
            )
            for n, a in inputs.items()
        ],
        [helper.make_tensor_value_info(n, e, s) for n, (e, s) in outputs.items()],
        [onnx.numpy_helper.from_array(v, n) for n, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    want = ReferenceEvaluator(model).run(None, inputs)
    got = sf.compile(from_onnx(model), target="cpu")(*inputs.values())
    got = list(got) if isinstance(got, tuple) else [got]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_lrn(size):
    """Against the spec in numpy: onnx's reference evaluator loops over the batch dim instead of the
    channels (it leaves channels >= N unnormalized)."""
    x = rng.standard_normal((2, 7, 3, 2)).astype(np.float32)
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.3, beta=0.6, bias=1.5)
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", F, [2, 7, 3, 2])],
        [helper.make_tensor_value_info("y", F, [2, 7, 3, 2])],
    )
    got = sf.compile(from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])))(x)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    square = np.stack([(x[:, max(0, c - lo) : c + hi + 1] ** 2).sum(axis=1) for c in range(7)], axis=1)
    np.testing.assert_allclose(got, x / (1.5 + 0.3 / size * square) ** 0.6, rtol=1e-5)


def test_batch_norm_training_mode_outputs_running_statistics():
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    params = {n: rng.uniform(0.5, 1.5, 4).astype(np.float32) for n in ("s", "b", "m", "v")}
    node = helper.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1, momentum=0.7
    )
    _run_both(node, {"x": x, **params}, {"y": (F, [3, 4, 5]), "rm": (F, [4]), "rv": (F, [4])}, opset=15)


@pytest.mark.parametrize(
    "kernel,attrs,shape",
    [
        ([3], {"strides": [2]}, (1, 2, 9)),
        ([2, 2], {"dilations": [2, 1], "p": 3}, (1, 2, 7, 5)),
        ([2, 2, 2], {"pads": [1, 0, 0, 1, 0, 1]}, (1, 1, 4, 5, 3)),
    ],
)
def test_lp_pool(kernel, attrs, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    node = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=kernel, **attrs)
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", F, list(shape))],
        [helper.make_tensor_value_info("y", F, None)],
    )
    want = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])).run(
        None, {"x": x}
    )
    _run_both(node, {"x": x}, {"y": (F, list(want[0].shape))})


def test_average_pool_with_dilations():
    x = rng.standard_normal((1, 2, 8, 9)).astype(np.float32)
    node = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[2, 3], dilations=[3, 2], pads=[1, 0, 1, 1]
    )
    _run_both(node, {"x": x}, {"y": (F, [1, 2, 7, 6])})


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_det(n):
    x = rng.standard_normal((5, n, n)).astype(np.float32)
    node = helper.make_node("Det", ["x"], ["y"])
    _run_both(node, {"x": x}, {"y": (F, [5])}, rtol=1e-4)


def test_det_of_a_large_matrix_is_refused():
    node = helper.make_node("Det", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", F, [6, 6])],
        [helper.make_tensor_value_info("y", F, [])],
    )
    with pytest.raises(sf.UnsupportedError, match="Det"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]))


def test_max_unpool_inverts_max_pool_indices():
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    pool = helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2])
    outs = [
        helper.make_tensor_value_info("p", F, None),
        helper.make_tensor_value_info("i", TensorProto.INT64, None),
    ]
    graph = helper.make_graph([pool], "t", [helper.make_tensor_value_info("x", F, [2, 3, 4, 6])], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    pooled, indices = ReferenceEvaluator(model).run(None, {"x": x})
    node = helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    _run_both(node, {"p": pooled, "i": indices}, {"y": (F, [2, 3, 4, 6])})


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_with_ties_padding_and_dilation(storage_order):
    x = rng.integers(-2, 3, (2, 3, 7, 6)).astype(np.float32)  # many ties: the first in scan order wins
    node = helper.make_node(
        "MaxPool",
        ["x"],
        ["y", "i"],
        kernel_shape=[3, 2],
        strides=[2, 1],
        pads=[1, 0, 1, 1],
        dilations=[1, 2],
        storage_order=storage_order,
    )
    _run_both(node, {"x": x}, {"y": (F, [2, 3, 4, 5]), "i": (TensorProto.INT64, [2, 3, 4, 5])})


@pytest.mark.parametrize("equation", ["ii->i", "ii", "bii->bi", "ij,jj->ij", "iij->j"])
def test_einsum_with_repeated_subscripts(equation):
    operands = equation.split("->")[0].split(",")
    sizes = {"i": 4, "j": 3, "b": 2}
    arrays = [rng.standard_normal([sizes[c] for c in term]).astype(np.float32) for term in operands]
    names = [f"x{k}" for k in range(len(arrays))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    want = np.einsum(equation, *arrays)
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info(n, F, list(a.shape)) for n, a in zip(names, arrays)],
        [helper.make_tensor_value_info("y", F, list(want.shape))],
    )
    got = sf.compile(from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])))(
        *arrays
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "mode,low,high,skips", [("TF", 1, 2, 0), ("TF", 2, 2, 3), ("IDF", 1, 3, 1), ("TFIDF", 1, 2, 2)]
)
def test_tfidf_vectorizer(mode, low, high, skips):
    x = rng.integers(0, 4, (3, 9)).astype(np.int64)
    # 1-grams 0..3, 2-grams (0,1) (1,2) (3,3) (2,0), 3-grams (0,1,2)
    pool = [0, 1, 2, 3, 0, 1, 1, 2, 3, 3, 2, 0, 0, 1, 2]
    node = helper.make_node(
        "TfIdfVectorizer",
        ["x"],
        ["y"],
        mode=mode,
        min_gram_length=low,
        max_gram_length=high,
        max_skip_count=skips,
        ngram_counts=[0, 4, 12],
        ngram_indexes=[0, 1, 2, 3, 4, 5, 6, 7, 8],
        pool_int64s=pool,
        weights=[0.5 + 0.25 * i for i in range(9)],
    )
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [3, 9])],
        [helper.make_tensor_value_info("y", F, [3, 9])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(sf.compile(from_onnx(model))(x), want, rtol=1e-6)


def test_matmul_integer_with_per_row_and_per_column_zero_points():
    a = rng.integers(-128, 128, (5, 7)).astype(np.int8)
    b = rng.integers(-128, 128, (7, 3)).astype(np.int8)
    a_zp = rng.integers(-5, 5, 5).astype(np.int8)
    b_zp = rng.integers(-5, 5, 3).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    i8 = TensorProto.INT8
    graph = helper.make_graph(
        [node],
        "t",
        [
            helper.make_tensor_value_info(n, i8, list(v.shape))
            for n, v in (("a", a), ("b", b), ("az", a_zp), ("bz", b_zp))
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [5, 3])],
    )
    got = sf.compile(from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])))(
        a, b, a_zp, b_zp
    )
    want = (a.astype(np.int32) - a_zp[:, None]) @ (b.astype(np.int32) - b_zp[None, :])
    np.testing.assert_array_equal(got, want)


def test_conv_integer_with_per_channel_weight_zero_points():
    x = rng.integers(0, 256, (1, 2, 6, 5)).astype(np.uint8)
    w = rng.integers(0, 256, (3, 2, 3, 2)).astype(np.uint8)
    x_zp, w_zp = np.array(128, np.uint8), np.array([1, 100, 255], np.uint8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 0, 1, 1], strides=[2, 1])
    u8 = TensorProto.UINT8
    graph = helper.make_graph(
        [node],
        "t",
        [
            helper.make_tensor_value_info(n, u8, list(v.shape))
            for n, v in (("x", x), ("w", w), ("xz", x_zp), ("wz", w_zp))
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    want = ReferenceEvaluator(model).run(None, {"x": x, "w": w, "xz": x_zp, "wz": w_zp})[0]
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.INT32, list(want.shape)))
    np.testing.assert_array_equal(sf.compile(from_onnx(model))(x, w, x_zp, w_zp), want)
