"""ONNX Resize: the 2-D NCHW resizes that the graph op resize2d expresses become one resize2d call (also for
symbolic H and W), the rest keep the per-axis matrices; both compiled and compared with onnxruntime."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import shapeflow  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402


def _resize_model(in_shape, scales=None, sizes=None, axes=None, **attrs):
    inits = [helper.make_tensor("roi", TensorProto.FLOAT, [0], [])]
    names = ["x", "roi"]
    if scales is not None:
        inits.append(helper.make_tensor("scales", TensorProto.FLOAT, [len(scales)], scales))
        names.append("scales")
    else:
        inits.append(helper.make_tensor("sizes", TensorProto.INT64, [len(sizes)], sizes))
        names += ["", "sizes"]
    if axes is not None:
        attrs["axes"] = axes
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(in_shape))],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)


def _onnxruntime(model, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _uses_resize2d(model) -> bool:
    return "resize2d" in from_onnx(model).script()


MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
ROUNDINGS = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")

# (input shape, keyword arguments of _resize_model)
FUSED = [
    ((1, 2, 4, 5), {"sizes": [1, 2, 7, 3]}),  # up in H, down in W
    ((2, 3, 5, 4), {"sizes": [3, 1], "axes": [3, 2]}),  # axes listed W first
    ((1, 1, 3, 4), {"scales": [1.0, 1.0, 2.0, 3.0]}),  # integer scales
    ((1, 2, 8, 6), {"scales": [1.0, 1.0, 0.5, 0.5]}),  # out / in is the scale exactly
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["nearest", "linear"])
@pytest.mark.parametrize("shape_and_args", FUSED)
def test_two_d_resize_is_one_resize2d_and_matches_onnxruntime(shape_and_args, method, mode):
    shape, kwargs = shape_and_args
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    roundings = ROUNDINGS if method == "nearest" else ROUNDINGS[:1]
    for rounding in roundings:
        model = _resize_model(
            shape, mode=method, coordinate_transformation_mode=mode, nearest_mode=rounding, **kwargs
        )
        assert _uses_resize2d(model)
        got = shapeflow.compile(model)(x)
        np.testing.assert_allclose(got, _onnxruntime(model, x), rtol=1e-5, atol=1e-5)


def test_symbolic_height_and_width_with_an_integer_scale():
    model = _resize_model(["n", 3, "h", "w"], scales=[1.0, 1.0, 2.0, 2.0], mode="linear")
    assert _uses_resize2d(model)
    exe = shapeflow.compile(model)
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 1, 1), (2, 3, 5, 7), (1, 3, 13, 2)]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(exe(x), _onnxruntime(model, x), rtol=1e-5, atol=1e-5)


# Resizes resize2d does not express: cubic, antialias, a scale that is not out / in, a resized batch or
# channel axis, rank 3, and half_pixel_symmetric.
GENERAL = [
    ((1, 1, 4, 4), {"scales": [1.0, 1.0, 0.6, 0.6], "mode": "linear"}),
    ((1, 1, 4, 4), {"sizes": [1, 1, 3, 3], "mode": "cubic"}),
    ((1, 1, 4, 4), {"sizes": [1, 1, 3, 3], "mode": "linear", "antialias": 1}),
    ((2, 2, 3, 3), {"sizes": [3, 2, 3, 3], "mode": "nearest"}),
    ((2, 5, 3), {"sizes": [2, 7, 6], "mode": "linear"}),
    ((1, 1, 4, 4), {"sizes": [1, 1, 6, 6], "coordinate_transformation_mode": "half_pixel_symmetric"}),
]


@pytest.mark.parametrize("shape_and_args", GENERAL)
def test_other_resizes_keep_the_matrix_path_and_match_onnxruntime(shape_and_args):
    shape, kwargs = shape_and_args
    model = _resize_model(shape, **kwargs)
    assert not _uses_resize2d(model)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(shapeflow.compile(model)(x), _onnxruntime(model, x), rtol=1e-4, atol=1e-5)


def _upsample_model(in_shape, scales, opset):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(in_shape))
    if opset >= 9:
        inits = [helper.make_tensor("scales", TensorProto.FLOAT, [len(scales)], scales)]
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")
    else:
        inits, node = [], helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=scales)
    graph = helper.make_graph([node], "upsample", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=4)


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize(
    "shape,scales",
    [
        ((1, 2, 3, 4), [1.0, 1.0, 2.0, 3.0]),
        ((2, 3, 5), [1.0, 1.5, 2.5]),
        ((1, 1, 4, 4), [1.0, 2.0, 1.0, 2.0]),
    ],
)
def test_old_opset_upsample_matches_onnxruntime(opset, shape, scales):
    model = _upsample_model(shape, scales, opset)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(shapeflow.compile(model)(x), _onnxruntime(model, x))


def test_upsample_of_symbolic_height_and_width_is_one_resize2d():
    model = _upsample_model(["n", 3, "h", "w"], [1.0, 1.0, 2.0, 2.0], 9)
    assert _uses_resize2d(model)
    exe = shapeflow.compile(model)
    for shape in [(1, 3, 1, 1), (2, 3, 5, 7)]:
        x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(exe(x), x.repeat(2, axis=2).repeat(2, axis=3))
