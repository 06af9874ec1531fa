"""Run-time checks of compiled functions: ShapeError fields at the boundary, bounds, match_cast, broadcasts,
control flow, and compile-time refusals."""

import numpy as np
import pytest
import vm_models

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, If, SeqExpr, TensorType, op, run

rng = np.random.default_rng(1)


@pytest.fixture(scope="module")
def mlp_exe():
    return sf.compile(vm_models.mlp(), dims={"n": (1, 64)})


def _err(exe, *args) -> sf.ShapeError:
    with pytest.raises(sf.ShapeError) as info:
        exe(*args)
    return info.value


def test_dimension_mismatch_names_function_parameter_dimension(mlp_exe):
    x, w1, b1, w2 = vm_models.mlp_inputs(rng, 3)
    e = _err(mlp_exe, x[:, :31].copy(), w1, b1, w2)
    assert (e.function, e.parameter, e.dimension, e.expected, e.actual) == ("main", "x", 1, "32", 31)
    e = _err(mlp_exe, x, w1, b1[:63].copy(), w2)
    assert (e.parameter, e.dimension, e.actual) == ("b1", 0, 63)


def test_dtype_rank_and_arity(mlp_exe):
    x, w1, b1, w2 = vm_models.mlp_inputs(rng, 3)
    e = _err(mlp_exe, x.astype("float64"), w1, b1, w2)
    assert (e.parameter, e.expected, e.actual) == ("x", "float32", "float64")
    e = _err(mlp_exe, x[None], w1, b1, w2)
    assert (e.parameter, e.expected, e.actual) == ("x", 2, 3)
    e = _err(mlp_exe, x, w1, b1)
    assert (e.function, e.expected, e.actual) == ("main", 4, 3)
    e = _err(mlp_exe, "not a tensor", w1, b1, w2)
    assert e.parameter == "x"


def test_declared_bounds_checked_at_run_time(mlp_exe):
    e = _err(mlp_exe, *vm_models.mlp_inputs(rng, 65))
    assert e.function == "main" and e.parameter == "n" and e.actual == 65 and "64" in str(e.expected)
    e = _err(mlp_exe, *vm_models.mlp_inputs(rng, 0))
    assert e.parameter == "n" and e.actual == 0


def test_symbolic_expression_named_in_the_error():
    n = Var("n")
    x = GraphVar("x", TensorType((n, 4), "float32"))
    y = GraphVar("y", TensorType((n * 2,), "float32"))
    bb = BlockBuilder()
    with bb.function("f", [y, x]):  # y's dim uses n, which only x (a later parameter) defines
        with bb.dataflow():
            out = bb.emit_output(op.sum(op.reshape(x, (n * 4,))))
        bb.emit_func_output([out, y])
    exe = sf.compile(bb.get())
    a = rng.standard_normal((3, 4)).astype("float32")
    np.testing.assert_allclose(exe(np.zeros(6, "float32"), a)[0], a.sum(), rtol=1e-5)
    e = _err(exe, np.zeros(5, "float32"), a)
    assert (e.function, e.parameter, e.dimension, e.actual) == ("f", "y", 0, 5)
    assert e.expected == "(n * 2) = 6"


def test_unprovable_broadcast_is_checked_not_read_out_of_bounds():
    n, m = Var("n"), Var("m")
    x = GraphVar("x", TensorType((n,), "float32"))
    y = GraphVar("y", TensorType((m,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, y]):
        with bb.dataflow():
            out = bb.emit_output(op.add(x, y))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod)
    for a, b in [(5, 5), (1, 7), (7, 1)]:
        xa, ya = rng.standard_normal(a).astype("float32"), rng.standard_normal(b).astype("float32")
        np.testing.assert_allclose(exe(xa, ya), run(mod, xa, ya), rtol=1e-6)
    e = _err(exe, np.zeros(3, "float32"), np.zeros(5, "float32"))
    assert e.function == "main" and e.dimension == 0 and e.actual in (3, 5)


def test_match_cast_defines_and_checks_vars():
    x = GraphVar("x", TensorType(None, "float32", ndim=2))
    n = Var("n")
    bb = BlockBuilder()
    with bb.function("main", [x]):
        xs = bb.match_cast(x, TensorType((n, 3), "float32"), name="xs")
        with bb.dataflow():
            out = bb.emit_output(op.multiply(op.sum(xs, axis=1), 2.0))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod)
    a = rng.standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(exe(a), 2 * a.sum(1), rtol=1e-5)
    e = _err(exe, rng.standard_normal((4, 5)).astype("float32"))
    assert (e.function, e.parameter, e.dimension, e.expected, e.actual) == ("main", "xs", 1, "3", 5)


def test_if_selects_a_branch_at_run_time():
    n = Var("n")
    c = GraphVar("c", TensorType((), "bool"))
    x = GraphVar("x", TensorType((n,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [c, x]):
        with bb.dataflow():
            e = bb.emit_output(op.exp(x))
            g = bb.emit_output(op.neg(x))
        r = bb.emit(If(c, SeqExpr((), e), SeqExpr((), g)))
        bb.emit_func_output(r)
    mod = bb.get()
    exe = sf.compile(mod)
    a = rng.standard_normal(6).astype("float32")
    np.testing.assert_allclose(exe(np.array(True), a), np.exp(a), rtol=1e-6)
    np.testing.assert_allclose(exe(np.array(False), a), -a)


def test_onnx_paths_go_to_the_frontend(tmp_path):
    with pytest.raises(sf.ParseError, match="ONNX"):
        sf.compile(str(tmp_path / "model.onnx"))  # no such file
    with pytest.raises(sf.UnsupportedError):
        sf.compile(42)


def test_bad_dims_argument():
    with pytest.raises(sf.UnsupportedError, match="dims"):
        sf.compile(vm_models.mlp(), dims={"n": (5, 1)})


def test_dump_ir_and_instruments_see_the_pipeline(tmp_path):
    from shapeflow.passes.infra import PassContext, TimePasses

    timer = TimePasses()
    with PassContext(instruments=[timer]):
        sf.compile(vm_models.reshape_concat(), dump_ir=tmp_path / "ir")
    dumped = sorted(p.name for p in (tmp_path / "ir").iterdir())
    assert dumped[0] == "000_input.txt" and any("legalize" in name for name in dumped)
    assert len(dumped) >= 3
    assert any("legalize" in name for name in timer.totals())


def test_unprovable_reshape_is_checked():
    n, m = Var("n"), Var("m")
    x = GraphVar("x", TensorType((n, 2), "float32"))
    y = GraphVar("y", TensorType((m,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, y]):
        with bb.dataflow():
            r = bb.emit_output(op.reshape(x, (m,)))  # n * 2 == m only at run time
        bb.emit_func_output([r, y])
    exe = sf.compile(bb.get())
    a = rng.standard_normal((3, 2)).astype("float32")
    np.testing.assert_array_equal(exe(a, np.zeros(6, "float32"))[0], a.reshape(6))
    e = _err(exe, a, np.zeros(7, "float32"))
    assert e.function == "main" and "element count" in str(e) and "= 6" in str(e.actual)


def test_dims_must_name_symbolic_dims_of_the_model():
    with pytest.raises(sf.UnsupportedError, match="batch"):
        sf.compile(vm_models.mlp(), dims={"batch": (1, 8)})


def test_returned_constant_is_a_copy():
    from shapeflow.ir.graph import const

    x = GraphVar("x", TensorType((2,), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        bb.emit_func_output([x, const(np.array([1.0, 2.0], "float32"))])
    exe = sf.compile(bb.get())
    first = exe(np.zeros(2, "float32"))[1]
    first[:] = 7.0
    np.testing.assert_array_equal(exe(np.zeros(2, "float32"))[1], [1.0, 2.0])
