"""Graph inputs whose values determine shapes: shapeflow.compile(model) specializes on them (cached by value,
LRU), from_onnx refuses them naming the inputs unless fixed with `fixed_inputs`, `shapeflow compile
--fix-input` fixes them for an artifact; and old-opset models taken as they are when no op changed."""

import functools

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import shapeflow  # noqa: E402
from shapeflow.cli import main  # noqa: E402
from shapeflow.errors import ShapeError, UnsupportedError  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402
from shapeflow.frontend.onnx.importer import changed_schemas, value_inputs  # noqa: E402
from shapeflow.frontend.onnx.specialize import SpecializingExecutable, specialize_or_build  # noqa: E402
from shapeflow.ir.graph import run  # noqa: E402


def _model(nodes, inputs, outputs, opset=17, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _reshape_model():
    """y = Reshape(x, shape): x (n, 6) float, shape an int64[2] graph input."""
    return _model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
    )


def _two_value_inputs_model():
    """z = ReduceSum(Reshape(x, shape), axes): the second value input shows up once the first is fixed."""
    return _model(
        [
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
            helper.make_node("ReduceSum", ["y", "axes"], ["z"], keepdims=0),
        ],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("axes", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None])],
    )


def _interpreted(model, cache_size=8):
    return specialize_or_build(model, lambda mod: functools.partial(run, mod), cache_size=cache_size)


def test_compile_specializes_on_the_shape_input_and_keeps_data_dims_symbolic():
    exe = shapeflow.compile(_reshape_model())
    assert isinstance(exe, SpecializingExecutable)
    assert exe.specialized_inputs == ("shape",)
    for n in (1, 4, 7):  # one value, data of several sizes: compiled once
        x = np.random.rand(n, 6).astype(np.float32)
        np.testing.assert_array_equal(exe(x, np.array([-1, 3])), x.reshape(-1, 3))
    assert exe.compiles == 1 and exe.hits == 2
    x = np.random.rand(4, 6).astype(np.float32)
    np.testing.assert_array_equal(exe(x, np.array([3, 8])), x.reshape(3, 8))
    assert exe.compiles == 2
    assert exe.specializations == [{"shape": [-1, 3]}, {"shape": [3, 8]}]
    assert "shape" in repr(exe)


def test_cache_is_lru_and_recompiles_evicted_values():
    exe = _interpreted(_reshape_model(), cache_size=2)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    for value in ([3, 4], [4, 3], [3, 4], [12, 1], [4, 3]):
        np.testing.assert_array_equal(exe(x, np.array(value)), x.reshape(value))
    # [3,4] and [4,3] compiled, [3,4] hit, [12,1] evicts [4,3] (least recently used), [4,3] again
    assert (exe.compiles, exe.hits) == (4, 1)
    assert exe.specializations == [{"shape": [12, 1]}, {"shape": [4, 3]}]


def test_a_value_input_found_at_call_time_joins_the_specialization():
    exe = _interpreted(_two_value_inputs_model())
    assert exe.specialized_inputs == ("shape",)
    x = np.random.rand(2, 6).astype(np.float32)
    got = exe(x, np.array([4, 3]), np.array([1]))
    assert exe.specialized_inputs == ("shape", "axes")
    np.testing.assert_allclose(got, x.reshape(4, 3).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(exe(x, np.array([4, 3]), np.array([0])), x.reshape(4, 3).sum(0), rtol=1e-6)


def test_wrong_argument_count_and_non_tensor_values_are_shape_errors():
    exe = _interpreted(_reshape_model())
    with pytest.raises(ShapeError, match="2 inputs"):
        exe(np.zeros((2, 6), np.float32))
    with pytest.raises(ShapeError, match="'shape'"):
        exe(np.zeros((2, 6), np.float32), object())


def test_an_artifact_cannot_specialize_and_says_what_to_fix(tmp_path):
    exe = shapeflow.compile(_reshape_model())
    with pytest.raises(UnsupportedError, match="'shape'.*fixed_inputs"):
        exe.save(tmp_path / "m.sfa")


def test_from_onnx_refusal_names_the_inputs_and_fixed_inputs_fix_them():
    model = _reshape_model()
    with pytest.raises(UnsupportedError, match=r"--fix-input shape=") as info:
        from_onnx(model)
    assert info.value.value_inputs == ["shape"]
    mod = from_onnx(model, fixed_inputs={"shape": [-1, 2]})  # a list takes the input's dtype
    assert [p.name for p in mod["main"].params] == ["x"]
    x = np.random.rand(3, 6).astype(np.float32)
    np.testing.assert_array_equal(shapeflow.compile(mod)(x), x.reshape(-1, 2))
    with pytest.raises(UnsupportedError, match="does not fit"):
        from_onnx(model, fixed_inputs={"shape": [1.5, 2.0]})
    with pytest.raises(UnsupportedError, match="has shape"):
        from_onnx(model, fixed_inputs={"shape": [1, 2, 3]})


def test_values_computed_from_inputs_name_the_integer_inputs_not_through_shape():
    axes0 = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    model = _model(
        [
            helper.make_node("Add", ["a", "zero"], ["axes"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0),
        ],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6]),
            helper.make_tensor_value_info("a", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        inits=[axes0],
    )
    assert value_inputs(model.graph, "axes") == ["a"]
    exe = shapeflow.compile(model)
    assert exe.specialized_inputs == ("a",)
    x = np.random.rand(5, 6).astype(np.float32)
    np.testing.assert_allclose(exe(x, np.array([1])), x.sum(1), rtol=1e-5)
    # A shape taken from a data tensor with Shape is symbolic, not a value to specialize on.
    data_shape = _model(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])],
    )
    assert value_inputs(data_shape.graph, "s") == []
    assert not isinstance(shapeflow.compile(data_shape), SpecializingExecutable)


def test_cli_fix_input_compiles_an_artifact(tmp_path):
    path = tmp_path / "reshape.onnx"
    onnx.save(_reshape_model(), path)
    assert main(["-q", "compile", str(path), "-o", str(tmp_path / "no.sfa")]) != 0
    assert not (tmp_path / "no.sfa").exists()
    np.save(tmp_path / "shape.npy", np.array([-1, 3]))
    for option in ("shape=[-1,3]", f"shape={tmp_path / 'shape.npy'}"):
        out = tmp_path / "m.sfa"
        assert main(["-q", "compile", str(path), "-o", str(out), "--fix-input", option]) == 0
        exe = shapeflow.load(out)
        x = np.random.rand(5, 6).astype(np.float32)
        np.testing.assert_array_equal(exe(x), x.reshape(-1, 3))
    assert main(["-q", "compile", str(path), "-o", str(tmp_path / "x.sfa"), "--fix-input", "nope=[1]"]) != 0


def _binary_model(op_type, opset, dtype=TensorProto.BOOL):
    return _model(
        [helper.make_node(op_type, ["a", "b"], ["c"])],
        [helper.make_tensor_value_info(n, dtype, [2, 3]) for n in "ab"],
        [helper.make_tensor_value_info("c", dtype, [2, 3])],
        opset=opset,
    )


def test_old_opset_taken_as_is_when_no_schema_changed():
    model = _binary_model("Xor", 7)
    assert changed_schemas(model.graph, 7) == []
    a, b = np.random.rand(2, 2, 3) < 0.5
    np.testing.assert_array_equal(shapeflow.compile(model)(a, b), a ^ b)


def test_old_opset_with_a_changed_schema_is_refused_naming_op_and_versions():
    model = _binary_model("Add", 6, TensorProto.FLOAT)  # Add-6 has the broadcast attribute; 13 is Add-13
    assert changed_schemas(model.graph, 6) == [("Add", 6, 13)]
    with pytest.raises(UnsupportedError, match=r"'Add' is version 6 .* version 13"):
        from_onnx(model)


@pytest.mark.parametrize("mode", ["edge", "reflect", "wrap"])
def test_pad_modes_that_repeat_elements_match_numpy(mode):
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 2, 1, 0, 3, 2])
    model = _model(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 9, 6])],
        inits=[pads],
    )
    exe = shapeflow.compile(model)
    for n in (1, 5):
        x = np.random.rand(n, 4, 3).astype(np.float32)
        np.testing.assert_array_equal(exe(x), np.pad(x, [(0, 0), (2, 3), (1, 2)], mode=mode))


def test_training_dropout_with_ratio_zero_is_the_identity_specialized_on_mode_and_ratio():
    model = _model(
        [helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("r", TensorProto.FLOAT, []),
            helper.make_tensor_value_info("t", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, [3, 4]),
        ],
    )
    exe = _interpreted(model)
    x = np.random.rand(3, 4).astype(np.float32)
    y, mask = exe(x, np.array(0.0, np.float32), np.array(True))
    np.testing.assert_array_equal(y, x)
    assert mask.all() and set(exe.specialized_inputs) == {"r", "t"}
    with pytest.raises(UnsupportedError, match="non-zero ratio"):
        exe(x, np.array(0.5, np.float32), np.array(True))
