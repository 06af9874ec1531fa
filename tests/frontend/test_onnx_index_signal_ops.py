"""ONNX TopK, ScatterElements, ScatterND, GatherND, ReverseSequence, TensorScatter, GridSample, AffineGrid,
Col2Im, DFT, Atan/Asin/Acos, Mod (fmod=0, floats) and BitCast: models built with onnx.helper, compiled for
the CPU and compared with onnx's reference evaluator on random shapes (1 and primes included); the graph
ops' numpy references are compared with it too."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import shapeflow as sf  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402
from shapeflow.ir.graph import run  # noqa: E402

OPSET = 24
_NP = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE,
       np.dtype("int64"): TensorProto.INT64, np.dtype("int32"): TensorProto.INT32,
       np.dtype("float16"): TensorProto.FLOAT16, np.dtype("uint8"): TensorProto.UINT8,
       np.dtype("bool"): TensorProto.BOOL, np.dtype("int16"): TensorProto.INT16}  # fmt: skip


def _model(node, inputs: dict, outputs: dict, inits: dict | None = None, opset: int = OPSET):
    """A one-node model; `inputs`/`outputs` map names to (dtype, shape) (shape entries may be dim names)."""
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info(n, _NP[np.dtype(d)], s) for n, (d, s) in inputs.items()],
        [helper.make_tensor_value_info(n, _NP[np.dtype(d)], s) for n, (d, s) in outputs.items()],
        [onnx.numpy_helper.from_array(v, n) for n, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def _check(model, feeds: list, rtol=1e-5, atol=1e-6, interpret=True):
    """Compiled (and interpreted) outputs equal the onnx reference evaluator's."""
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    want = ReferenceEvaluator(model).run(None, dict(zip(names, feeds)))
    mod = from_onnx(model)
    got = sf.compile(mod, target="cpu")(*feeds)
    got = list(got) if isinstance(got, tuple) else [got]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    if interpret:
        ref = run(mod, *feeds)
        ref = list(ref) if isinstance(ref, tuple) else [ref]
        for r, w in zip(ref, want):
            np.testing.assert_allclose(r, w, rtol=rtol, atol=atol)


rng = np.random.default_rng(5)


@pytest.mark.parametrize(
    "shape,axis,k,largest", [((7, 5), 1, 3, 1), ((1, 11), -1, 11, 0), ((3, 2, 13), 0, 2, 1)]
)
def test_topk_matches_reference_with_ties(shape, axis, k, largest):
    x = rng.integers(-3, 3, shape).astype(np.float32)  # many ties: lower index first
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    out_shape = list(shape)
    out_shape[axis] = k
    model = _model(
        node,
        {"x": ("float32", list(shape))},
        {"v": ("float32", out_shape), "i": ("int64", out_shape)},
        {"k": np.array([k], np.int64)},
    )
    _check(model, [x])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_with_duplicates(reduction):
    data = rng.standard_normal((5, 7)).astype(np.float32)
    indices = rng.integers(-5, 5, (3, 7)).astype(np.int64)
    if reduction == "none":  # unique targets per column: ONNX leaves duplicate order open for "none"
        indices = np.stack([rng.permutation(5)[:3] for _ in range(7)], axis=1).astype(np.int64)
    updates = rng.standard_normal((3, 7)).astype(np.float32)
    node = helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=0, reduction=reduction)
    model = _model(
        node,
        {"d": ("float32", ["n", 7]), "i": ("int64", [3, 7]), "u": ("float32", [3, 7])},
        {"y": ("float32", ["n", 7])},
    )
    _check(model, [data, indices, updates])


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_nd(reduction):
    data = rng.standard_normal((4, 3, 2)).astype(np.float32)
    indices = np.array([[[0, 1], [3, 2]], [[1, 0], [2, 2]]], np.int64)
    updates = rng.standard_normal((2, 2, 2)).astype(np.float32)
    node = helper.make_node("ScatterND", ["d", "i", "u"], ["y"], reduction=reduction)
    model = _model(
        node,
        {"d": ("float32", [4, 3, 2]), "i": ("int64", [2, 2, 2]), "u": ("float32", [2, 2, 2])},
        {"y": ("float32", [4, 3, 2])},
    )
    _check(model, [data, indices, updates])


def test_scatter_elements_refuses_out_of_range_index_at_run_time():
    node = helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=0)
    model = _model(
        node, {"d": ("float32", [3]), "i": ("int64", [1]), "u": ("float32", [1])}, {"y": ("float32", [3])}
    )
    exe = sf.compile(from_onnx(model), target="cpu")
    with pytest.raises(sf.Error):
        exe(np.zeros(3, np.float32), np.array([3], np.int64), np.ones(1, np.float32))


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd(batch_dims):
    data = rng.standard_normal((3, 5, 2)).astype(np.float32)
    indices = rng.integers(-2, 2, (3, 4, 1 if batch_dims else 2)).astype(np.int64)
    out = [3, 4, 2] if batch_dims else [3, 4, 2]
    node = helper.make_node("GatherND", ["d", "i"], ["y"], batch_dims=batch_dims)
    model = _model(
        node,
        {"d": ("float32", [3, 5, 2]), "i": ("int64", list(indices.shape))},
        {"y": ("float32", out if batch_dims else [3, 4, 2])},
    )
    _check(model, [data, indices])


@pytest.mark.parametrize("steps,batch", [(1, 1), (7, 3), (4, 5)])
def test_reverse_sequence_symbolic(steps, batch):
    x = rng.standard_normal((steps, batch, 2)).astype(np.float32)
    lens = rng.integers(0, steps + 1, batch).astype(np.int64)
    node = helper.make_node("ReverseSequence", ["x", "l"], ["y"], batch_axis=1, time_axis=0)
    model = _model(
        node, {"x": ("float32", ["t", "b", 2]), "l": ("int64", ["b"])}, {"y": ("float32", ["t", "b", 2])}
    )
    _check(model, [x, lens])


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    cache = rng.standard_normal((2, 3, 7, 4)).astype(np.float32)
    update = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    where = np.array([1, 4] if mode == "linear" else [5, 6], np.int64)
    node = helper.make_node("TensorScatter", ["c", "u", "w"], ["y"], axis=2, mode=mode)
    model = _model(
        node,
        {"c": ("float32", [2, 3, 7, 4]), "u": ("float32", [2, 3, 3, 4]), "w": ("int64", [2])},
        {"y": ("float32", [2, 3, 7, 4])},
    )
    _check(model, [cache, update, where])


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_2d(mode, padding, align):
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    grid = rng.uniform(-1.6, 1.6, (2, 4, 3, 2)).astype(np.float32)
    node = helper.make_node(
        "GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding, align_corners=align
    )
    model = _model(
        node,
        {"x": ("float32", [2, 3, 5, 7]), "g": ("float32", [2, 4, 3, 2])},
        {"y": ("float32", [2, 3, 4, 3])},
    )
    _check(model, [x, grid], rtol=1e-4, atol=1e-5, interpret=mode != "cubic")


def test_grid_sample_3d_symbolic_input():
    x = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (1, 2, 3, 2, 3)).astype(np.float32)
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode="linear", padding_mode="border")
    model = _model(
        node,
        {"x": ("float32", [1, 2, "d", "h", "w"]), "g": ("float32", [1, 2, 3, 2, 3])},
        {"y": ("float32", [1, 2, 2, 3, 2])},
    )
    _check(model, [x, grid], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid(align):
    theta = rng.standard_normal((2, 2, 3)).astype(np.float32)
    node = helper.make_node("AffineGrid", ["t", "s"], ["g"], align_corners=align)
    model = _model(
        node,
        {"t": ("float32", [2, 2, 3])},
        {"g": ("float32", [2, 5, 1, 2])},
        {"s": np.array([2, 3, 5, 1], np.int64)},
    )
    _check(model, [theta])


def test_col2im_strided_padded():
    node = helper.make_node(
        "Col2Im", ["x", "img", "blk"], ["y"], strides=[2, 1], pads=[1, 0, 1, 2], dilations=[1, 2]
    )
    # blocks: h (5 + 2 - 2) // 2 + 1 = 3, w (7 + 2 - 5) // 1 + 1 = 5
    x = rng.standard_normal((2, 3 * 2 * 3, 15)).astype(np.float32)
    model = _model(
        node,
        {"x": ("float32", [2, 18, 15])},
        {"y": ("float32", [2, 3, 5, 7])},
        {"img": np.array([5, 7], np.int64), "blk": np.array([2, 3], np.int64)},
    )
    _check(model, [x])


@pytest.mark.parametrize(
    "inverse,onesided,complex_in", [(0, 0, 0), (0, 1, 0), (1, 0, 1), (0, 0, 1), (1, 1, 1)]
)
def test_dft(inverse, onesided, complex_in):
    n = 7
    x = rng.standard_normal((2, n, 3, 2 if complex_in else 1)).astype(np.float32)
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], inverse=inverse, onesided=onesided)
    length = 2 * (n - 1) if inverse and onesided else n
    out_n = length // 2 + 1 if onesided and not inverse else length
    out = [2, out_n, 3, 1 if inverse and onesided else 2]
    model = _model(
        node, {"x": ("float32", list(x.shape))}, {"y": ("float32", out)}, {"axis": np.array(1, np.int64)}
    )
    _check(model, [x], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["Atan", "Asin", "Acos"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inverse_trig(name, dtype):
    scale = 40.0 if name == "Atan" else 1.0
    x = np.concatenate([rng.uniform(-scale, scale, 29), [0.0, 1.0, -1.0, np.nan]]).astype(dtype)
    node = helper.make_node(name, ["x"], ["y"])
    model = _model(node, {"x": (dtype, ["n"])}, {"y": (dtype, ["n"])})
    tol = 2e-7 if dtype == "float32" else 1e-14
    _check(model, [x], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_float_mod_signs_and_edges(dtype):
    x = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, 3.0, -3.0, np.inf, 1.0, 1.0], dtype)
    y = np.array([2.0, 2.0, -2.0, -2.0, -2.0, 2.0, np.inf, np.inf, 2.0, 0.0, np.nan], dtype)
    node = helper.make_node("Mod", ["x", "y"], ["z"], fmod=0)
    model = _model(node, {"x": (dtype, [11]), "y": (dtype, [11])}, {"z": (dtype, [11])})
    want = np.mod(x, y)
    got = sf.compile(from_onnx(model), target="cpu")(x, y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize(
    "src,dst", [("float32", "int32"), ("float16", "int16"), ("int64", "float64"), ("bool", "uint8")]
)
def test_bitcast(src, dst):
    x = (rng.standard_normal(6) * 100).astype(src)
    node = helper.make_node("BitCast", ["x"], ["y"], to=_NP[np.dtype(dst)])
    model = _model(node, {"x": (src, ["n"])}, {"y": (dst, ["n"])}, opset=26)
    got = sf.compile(from_onnx(model), target="cpu")(x)
    np.testing.assert_array_equal(got, x.view(dst))


@pytest.mark.parametrize("with_window", [False, True])
def test_stft(with_window):
    signal = rng.standard_normal((2, 37, 1)).astype(np.float32)
    inits = {"step": np.array(5, np.int64)}
    if with_window:
        inits["window"] = np.hanning(8).astype(np.float32)
        inputs = ["s", "step", "window"]
    else:
        inits["length"] = np.array(8, np.int64)
        inputs = ["s", "step", "", "length"]
    node = helper.make_node("STFT", inputs, ["y"])
    model = _model(node, {"s": ("float32", [2, 37, 1])}, {"y": ("float32", [2, 6, 5, 2])}, inits, opset=17)
    _check(model, [signal], rtol=1e-4, atol=1e-4)


def test_mel_weight_matrix_is_a_constant():
    node = helper.make_node("MelWeightMatrix", ["bins", "dft", "rate", "lo", "hi"], ["y"])
    inits = {
        "bins": np.array(6, np.int32),
        "dft": np.array(32, np.int32),
        "rate": np.array(8000, np.int32),
        "lo": np.array(50.0, np.float32),
        "hi": np.array(3000.0, np.float32),
    }
    model = _model(node, {}, {"y": ("float32", [17, 6])}, inits, opset=17)
    _check(model, [])


@pytest.mark.parametrize("mode,transform", [("avg", "half_pixel"), ("max", "output_half_pixel")])
def test_roi_align(mode, transform):
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    rois = np.array([[0.5, 1.0, 5.5, 7.0], [-2.0, -1.5, 3.0, 2.0], [1.0, 1.0, 1.2, 1.1]], np.float32)
    batch = np.array([1, 0, 1], np.int64)
    node = helper.make_node(
        "RoiAlign",
        ["x", "r", "b"],
        ["y"],
        mode=mode,
        output_height=3,
        output_width=2,
        sampling_ratio=2,
        spatial_scale=0.75,
        coordinate_transformation_mode=transform,
    )
    model = _model(
        node,
        {"x": ("float32", [2, 3, 9, 7]), "r": ("float32", [3, 4]), "b": ("int64", [3])},
        {"y": ("float32", [3, 3, 3, 2])},
        opset=22,
    )
    _check(model, [x, rois, batch], rtol=1e-4, atol=1e-5)
