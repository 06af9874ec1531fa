"""from_onnx on models built with onnx.helper, checked against onnxruntime at several values of their
symbolic dims (1, a prime, the declared bound), plus the ways an import must fail."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import frontend_onnx_models as models  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import shapeflow  # noqa: E402
from shapeflow.errors import Error, ParseError, UnsupportedError  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402
from shapeflow.ir.graph import run  # noqa: E402
from shapeflow.ir.graph.types import TensorType  # noqa: E402


def _onnxruntime(model, feeds: dict) -> list:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _as_list(value) -> list:
    return list(value) if isinstance(value, tuple) else [value]


def _check(model, make_input, sizes, dims, rtol=1e-4, atol=1e-5):
    mod = from_onnx(model, dims=dims)
    exe = shapeflow.compile(mod, target="cpu")
    for size in sizes:
        x = make_input(size)
        want = _onnxruntime(model, {"x": x})
        got = _as_list(exe(x))
        interpreted = _as_list(run(mod, x))
        assert len(got) == len(want)
        for g, i, w in zip(got, interpreted, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
            np.testing.assert_allclose(i, w, rtol=rtol, atol=atol)
    return mod


def test_mlp_matches_onnxruntime_at_several_batches():
    rng = np.random.default_rng(0)
    model = models.mlp(rng)
    mod = _check(
        model,
        lambda b: rng.standard_normal((b, 16)).astype(np.float32),
        sizes=(1, 7, 64),
        dims={"batch": (1, 64)},
    )
    main = mod["main"]
    (x,) = main.params
    assert str(x.type.shape[0]) == "batch"
    assert main.attrs["var_bounds"] == {"batch": (1, 64)}


def test_cnn_with_two_outputs_matches_onnxruntime():
    rng = np.random.default_rng(1)
    model = models.cnn(rng)
    mod = _check(
        model,
        lambda b: rng.standard_normal((b, 3, 16, 16)).astype(np.float32),
        sizes=(1, 3, 8),
        dims={"batch": (1, 8)},
    )
    assert len(mod["main"].ret_type.fields) == 2


def test_attention_block_shape_subgraph_folds_to_symbolic_reshape():
    rng = np.random.default_rng(2)
    model = models.attention(rng)
    mod = _check(
        model,
        lambda s: rng.standard_normal((1, s, 16)).astype(np.float32),
        sizes=(1, 13, 32),
        dims={"seq": (1, 32)},
        rtol=1e-4,
        atol=1e-4,
    )
    text = mod.script()
    # The Shape/Gather/Concat subgraph is gone: reshapes name the symbolic seq, nothing computes shapes.
    assert "R.take" not in text and "R.concat" not in text
    assert "R.arange(start=0, end=seq" in text  # Range(0, Gather(Shape(x), 1)) became arange(0, seq)
    assert text.count("R.reshape") == 4
    for line in text.splitlines():
        if "R.reshape" in line:
            assert "seq" in line, line


def test_same_dim_param_is_one_var_and_unnamed_dims_get_fresh_vars():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", None])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", None])
    node = helper.make_node("Add", ["x", "y"], ["z"])
    model = helper.make_model(
        helper.make_graph([node], "g", [x, y], [z]), opset_imports=[helper.make_opsetid("", 17)]
    )
    mod = from_onnx(model)
    px, py = mod["main"].params
    assert px.type.shape[0] is py.type.shape[0]
    assert px.type.shape[1] is not py.type.shape[1]
    a = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(run(mod, a, a), a + a)


def test_external_data_loads(tmp_path):
    rng = np.random.default_rng(3)
    model = models.mlp(rng)
    path = tmp_path / "mlp.onnx"
    stored = onnx.ModelProto()
    stored.CopyFrom(model)  # save_model moves the initializers of the proto it saves out to the file
    onnx.save_model(stored, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)  # fmt: skip
    assert (tmp_path / "w.bin").exists()
    x = rng.standard_normal((5, 16)).astype(np.float32)
    got = run(from_onnx(str(path)), x)
    np.testing.assert_allclose(got, _onnxruntime(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_truncated_and_garbage_bytes_are_shapeflow_errors(tmp_path):
    data = models.cnn(np.random.default_rng(4)).SerializeToString()
    for i, blob in enumerate((data[: len(data) // 2], data[:37], b"\x00\xffnot a model at all", b"")):
        path = tmp_path / f"bad{i}.onnx"
        path.write_bytes(blob)
        with pytest.raises(Error):
            from_onnx(str(path))
        with pytest.raises(Error):
            from_onnx(blob)


def test_missing_file_is_a_parse_error(tmp_path):
    with pytest.raises(ParseError, match="not found"):
        from_onnx(str(tmp_path / "absent.onnx"))


def test_unsupported_op_is_named_at_import_time():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    node = helper.make_node("Unique", ["r"], ["y"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), node], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedError, match="'Unique'"):
        from_onnx(model)


def test_old_opset_unsupported_dtype_and_attribute_are_named():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    old = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    with pytest.raises(UnsupportedError, match="opset 7"):
        from_onnx(old)
    s = helper.make_tensor_value_info("x", TensorProto.STRING, [3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [s], [y])
    with pytest.raises(UnsupportedError, match="STRING"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    pads = onnx.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    graph = helper.make_graph(  # reflect padding of a symbolic axis
        [helper.make_node("Pad", ["x4", "pads"], ["y4"], mode="reflect")],
        "g",
        [helper.make_tensor_value_info("x4", TensorProto.FLOAT, [1, 1, "h", 5])],
        [helper.make_tensor_value_info("y4", TensorProto.FLOAT, [1, 1, None, 7])],
        [pads],
    )
    with pytest.raises(UnsupportedError, match="Pad.*reflect"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_runtime_shape_tensor_is_refused_at_import_not_at_run_time():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "g", [x, s], [y])
    with pytest.raises(UnsupportedError, match="Reshape.*shape"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_dims_naming_an_unknown_dim_is_refused():
    with pytest.raises(UnsupportedError, match="seq"):
        from_onnx(models.mlp(np.random.default_rng(5)), dims={"seq": (1, 8)})


def test_bounds_are_checked_at_run_time():
    model = models.mlp(np.random.default_rng(6))
    exe = shapeflow.compile(from_onnx(model, dims={"batch": (1, 4)}))
    with pytest.raises(Error):
        exe(np.zeros((9, 16), np.float32))


def test_initializers_are_constants_and_types_are_static():
    mod = from_onnx(models.cnn(np.random.default_rng(7)))
    main = mod["main"]
    assert [str(t.shape[1]) for t in main.ret_type.fields] == ["5", "4"]
    assert all(isinstance(t, TensorType) for t in main.ret_type.fields)
    assert "R.const" in mod.script()


def test_opset_11_is_converted_and_local_functions_are_inlined():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, 3])
    graph = helper.make_graph([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[1])], "g", [x], [y])
    old = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(from_onnx(old), a), a[:, None, :])

    add = helper.make_node("Add", ["a", "a"], ["b"])
    double = helper.make_function("local", "Double", ["a"], ["b"], [add], [helper.make_opsetid("", 17)])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("Double", ["x"], ["y"], domain="local")], "g", [x], [out])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[double],
    )
    np.testing.assert_array_equal(run(from_onnx(model), a), a + a)


def test_constants_fix_a_shape_input_at_import_time():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "g", [x, s], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    mod = from_onnx(model, constants={"s": np.array([3, 4], np.int64)})
    assert [p.name for p in mod["main"].params] == ["x"]
    a = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(shapeflow.compile(mod)(a), a.reshape(3, 4))
    with pytest.raises(UnsupportedError, match="constants"):
        from_onnx(model, constants={"s": np.array([3.0, 4.0])})
