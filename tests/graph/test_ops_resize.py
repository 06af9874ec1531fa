"""resize2d: type inference, the legalized kernel against the numpy reference (every method x mode, upsample,
downsample and size-1 edges, symbolic dims), and the numpy reference against onnxruntime's Resize."""

import numpy as np
import pytest
from test_legalize_helpers import check, random_array, sym, tt

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir.graph import GraphVar
from shapeflow.ir.graph.ops import get_op_def, infer_call_type, make_call
from shapeflow.ir.graph.shape import evaluate

METHODS = ("nearest", "linear")
MODES = ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel")
ROUNDINGS = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
# (in_h, in_w) -> (out_h, out_w): up, down, mixed, and size-1 on either side.
CASES = [((3, 4), (7, 9)), ((7, 5), (3, 2)), ((4, 4), (4, 6)), ((1, 3), (4, 1)), ((5, 2), (1, 1))]


def _infer(types, **attrs):
    call = make_call("resize2d", [GraphVar("x", types[0])], attrs)
    return infer_call_type(call, types)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
def test_legalized_matches_reference(method, mode):
    h, w = sym("h", "w")
    for (ih, iw), (oh, ow) in CASES:
        x = random_array((2, 3, ih, iw), "float32")
        roundings = ROUNDINGS if method == "nearest" else ("round_prefer_floor",)
        for rounding in roundings:
            check(
                "resize2d",
                [tt((2, 3, h, w))],
                [x],
                {h: ih, w: iw},
                size=(oh, ow),
                method=method,
                coordinate_transformation_mode=mode,
                rounding_method=rounding,
            )


def test_symbolic_output_size():
    """Output sizes that are expressions of the input dims (2h, w - 1) and a fresh symbolic size."""
    n, h, w, k = sym("n", "h", "w", "k")
    for ih, iw, kk in ((3, 5, 4), (1, 2, 1)):
        x = random_array((2, 1, ih, iw), "float32")
        for method in METHODS:
            check(
                "resize2d",
                [tt((n, 1, h, w))],
                [x],
                {n: 2, h: ih, w: iw, k: kk},
                size=(h * 2, k),
                method=method,
                coordinate_transformation_mode="half_pixel",
            )


def test_reference_values():
    """Hand-computed: 2 -> 4 half_pixel linear is [a, .75a + .25b, .25a + .75b, b]; nearest floor doubles."""
    ref = get_op_def("resize2d").reference
    x = np.array([1.0, 5.0], np.float32).reshape(1, 1, 1, 2)
    got = ref(x, (1, 4), "linear", "half_pixel", "round_prefer_floor")
    np.testing.assert_allclose(got.ravel(), [1.0, 2.0, 4.0, 5.0])
    got = ref(x, (1, 4), "nearest", "asymmetric", "floor")
    np.testing.assert_array_equal(got.ravel(), [1.0, 1.0, 5.0, 5.0])
    got = ref(x, (1, 3), "linear", "align_corners", "round_prefer_floor")
    np.testing.assert_allclose(got.ravel(), [1.0, 3.0, 5.0])


def test_infer_type():
    n, h, w = sym("n", "h", "w")
    out = _infer([tt((n, 3, h, w))], size=(h * 2, 5), method="linear")
    assert out.dtype == tt((1,)).dtype
    assert [evaluate(d, {n: 2, h: 3, w: 4}) for d in out.shape] == [2, 3, 6, 5]


@pytest.mark.parametrize(
    "attrs, word",
    [
        ({"method": "cubic"}, "cubic"),
        ({"coordinate_transformation_mode": "tf_crop_and_resize"}, "tf_crop_and_resize"),
        ({"rounding_method": "banker"}, "banker"),
    ],
)
def test_unsupported_choices(attrs, word):
    with pytest.raises(UnsupportedError, match=word):
        _infer([tt((1, 1, 2, 2))], size=(3, 3), **attrs)


def test_bad_rank_and_size_are_verify_errors():
    with pytest.raises(VerifyError):
        _infer([tt((1, 2, 2))], size=(3, 3))
    with pytest.raises(VerifyError):
        _infer([tt((1, 1, 2, 2))], size=(3,))
    with pytest.raises(VerifyError):
        _infer([tt((1, 1, 2, 2), "int32")], size=(3, 3))


def _onnxruntime_resize(x, size, method, mode, rounding):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    sizes = np.array([x.shape[0], x.shape[1], *size], np.int64)
    node = helper.make_node(
        "Resize",
        ["X", "", "", "sizes"],
        ["Y"],
        mode=method,
        coordinate_transformation_mode=mode,
        nearest_mode=rounding,
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [int(s) for s in sizes])],
        initializer=[numpy_helper.from_array(sizes, "sizes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x})[0]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
def test_reference_matches_onnxruntime(method, mode):
    ref = get_op_def("resize2d").reference
    roundings = (
        ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil") if method == "nearest" else ("floor",)
    )
    for (ih, iw), (oh, ow) in [((3, 4), (7, 9)), ((7, 5), (3, 2)), ((4, 3), (1, 6))]:
        x = random_array((1, 2, ih, iw), "float32")
        for rounding in roundings:
            want = _onnxruntime_resize(x, (oh, ow), method, mode, rounding)
            got = ref(x, (oh, ow), method, mode, rounding)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{method} {mode} {rounding}")
