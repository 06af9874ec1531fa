"""Run-time guards: shape relations inference could not prove, and index values, are checked before or
inside the kernels, so a user's bad input is a shapeflow Error naming the op, never an out-of-bounds read.

Each model has symbolic dims from different parameters, so the relation the kernel needs (contracted dims
agree, batch dims broadcast, ...) is unprovable at compile time; valid inputs must still run and match numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op
from shapeflow.ir.graph.expr import BindingBlock, If, SeqExpr, VarBinding
from shapeflow.ir.graph.legalize import legalize_call
from shapeflow.runtime.vm.guards import shape_guards

F32 = "float32"


def build(params, body):
    """A module whose main takes `params` ([(name, shape, dtype)]) and returns body(*vars)."""
    gvars = [GraphVar(name, TensorType(shape, dtype)) for name, shape, dtype in params]
    bb = BlockBuilder()
    with bb.function("main", gvars):
        with bb.dataflow():
            out = bb.emit_output(body(*gvars))
        bb.emit_func_output(out)
    return bb.get()


def rand(*shape, dtype=F32):
    return np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape).astype(dtype)


def refuses(exe, args, op_name: str, error=sf.ShapeError) -> str:
    with pytest.raises(error) as info:
        exe(*args)
    assert op_name in str(info.value)
    return str(info.value)


n, k1, k2, m, p, q = (Var(name) for name in ("n", "k1", "k2", "m", "p", "q"))


@pytest.fixture(scope="module")
def matmul_exe():
    return sf.compile(build([("a", (n, k1), F32), ("b", (k2, m), F32)], op.matmul))


def test_matmul_contracted_dims_checked(matmul_exe):
    a, b = rand(3, 5), rand(5, 2)
    np.testing.assert_allclose(matmul_exe(a, b), a @ b, rtol=1e-5, atol=1e-5)
    message = refuses(matmul_exe, (rand(3, 7), rand(5, 2)), "matmul")
    assert "contracted" in message
    refuses(matmul_exe, (rand(3, 2), rand(5, 2)), "matmul")  # smaller k1: no garbage result either


def test_matmul_batch_broadcast_checked():
    exe = sf.compile(build([("a", (p, n, 4), F32), ("b", (q, 4, m), F32)], op.matmul))
    for pa, qb in ((1, 3), (3, 1), (2, 2)):
        a, b = rand(pa, 2, 4), rand(qb, 4, 5)
        np.testing.assert_allclose(exe(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-5)
    message = refuses(exe, (rand(2, 2, 4), rand(3, 4, 5)), "matmul")
    assert "broadcast" in message


def test_linear_in_features_checked():
    exe = sf.compile(build([("x", (n, k1), F32), ("w", (m, k2), F32), ("b", (m,), F32)], op.linear))
    x, w, b = rand(2, 6), rand(3, 6), rand(3)
    np.testing.assert_allclose(exe(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-5)
    refuses(exe, (rand(2, 6), rand(3, 9), rand(3)), "linear")
    refuses(exe, (rand(2, 9), rand(3, 6), rand(3)), "linear")


def test_concat_other_dims_checked():
    exe = sf.compile(build([("x", (n, 2), F32), ("y", (m, 3), F32)], lambda x, y: op.concat([x, y], axis=1)))
    x, y = rand(4, 2), rand(4, 3)
    np.testing.assert_array_equal(exe(x, y), np.concatenate([x, y], 1))
    refuses(exe, (rand(4, 2), rand(9, 3)), "concat")
    refuses(exe, (rand(9, 2), rand(4, 3)), "concat")


def test_elementwise_and_where_broadcast_checked():
    add = sf.compile(build([("x", (n,), F32), ("y", (m,), F32)], op.add))
    np.testing.assert_allclose(add(rand(1), rand(5)), rand(1) + rand(5))
    refuses(add, (rand(2), rand(5)), "add")
    where = sf.compile(
        build([("c", (n,), "bool"), ("x", (m,), F32), ("y", (p,), F32)], lambda c, x, y: op.where(c, x, y))
    )
    c = np.array([True, False, True])
    np.testing.assert_array_equal(where(c, rand(3), rand(1)), np.where(c, rand(3), rand(1)))
    refuses(where, (c, rand(4), rand(1)), "where")


def test_layer_norm_scale_checked():
    exe = sf.compile(
        build(
            [("x", (n, k1), F32), ("g", (k2,), F32), ("b", (k2,), F32)],
            lambda x, g, b: op.layer_norm(x, g, b, axes=(-1,)),
        )
    )
    x, g, b = rand(2, 8), rand(8), rand(8)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(exe(x, g, b), (x - mean) / np.sqrt(var + 1e-5) * g + b, rtol=1e-4, atol=1e-4)
    refuses(exe, (rand(2, 8), rand(16), rand(16)), "layer_norm")


def test_attention_batch_and_heads_checked():
    b2, h, t = Var("b2"), Var("h"), Var("t")
    exe = sf.compile(
        build(
            [("q", (n, h, m, 8), F32), ("k", (b2, h, t, 8), F32), ("v", (b2, h, t, 8), F32)],
            lambda q, k, v: op.scaled_dot_product_attention(q, k, v),
        )
    )
    q, k = rand(2, 3, 4, 8), rand(2, 3, 5, 8)
    assert exe(q, k, k).shape == (2, 3, 4, 8)
    refuses(exe, (q, rand(1, 3, 5, 8), rand(1, 3, 5, 8)), "scaled_dot_product_attention")


def test_conv_and_group_norm_channels_checked():
    c1, c2 = Var("c1"), Var("c2")
    conv = sf.compile(build([("x", (1, c1, 6, 6), F32), ("w", (4, c2, 3, 3), F32)], op.conv2d))
    assert conv(rand(1, 2, 6, 6), rand(4, 2, 3, 3)).shape == (1, 4, 4, 4)
    refuses(conv, (rand(1, 5, 6, 6), rand(4, 2, 3, 3)), "conv2d")
    norm = sf.compile(
        build(
            [("x", (1, c1, 4), F32), ("g", (c2,), F32), ("b", (c2,), F32)],
            lambda x, g, b: op.group_norm(x, g, b, num_groups=2),
        )
    )
    assert norm(rand(1, 4, 4), rand(4), rand(4)).shape == (1, 4, 4)
    refuses(norm, (rand(1, 4, 4), rand(8), rand(8)), "group_norm")
    refuses(norm, (rand(1, 5, 4), rand(5), rand(5)), "group_norm")  # 5 channels in 2 groups


def test_reshape_with_hole_checks_divisibility():
    exe = sf.compile(build([("x", (n, k1), F32)], lambda x: op.reshape(x, (-1, 4))))
    np.testing.assert_array_equal(exe(rand(2, 6)), rand(2, 6).reshape(-1, 4))
    refuses(exe, (rand(1, 6),), "reshape")


def test_strided_slice_symbolic_begin_checked():
    exe = sf.compile(
        build(
            [("x", (n, 3), F32), ("y", (m,), F32)],
            lambda x, y: op.strided_slice(x, axes=(0,), begin=(m,), end=(m + 2,), strides=(1,)),
        )
    )
    x = rand(6, 3)
    np.testing.assert_array_equal(exe(x, rand(3)), x[3:5])
    refuses(exe, (x, rand(5)), "strided_slice")  # rows 5 and 6 of 6: the last is out of range


def test_take_indices_checked_in_the_kernel():
    exe = sf.compile(build([("x", (n, 4), F32), ("i", (m,), "int64")], lambda x, i: op.take(x, i, axis=0)))
    x = rand(3, 4)
    good = np.array([0, 2, -1, -3])
    np.testing.assert_array_equal(exe(x, good), np.take(x, good, axis=0))
    for bad in ([3], [-4], [0, 1, 1 << 40]):
        refuses(exe, (x, np.array(bad, "int64")), "'take'", error=sf.Error)


def test_take_int32_indices_on_a_later_axis():
    exe = sf.compile(build([("x", (n, 5), F32), ("i", (2, m), "int32")], lambda x, i: op.take(x, i, axis=1)))
    x = rand(2, 5)
    good = np.array([[0, 4], [-5, 1]], "int32")
    np.testing.assert_array_equal(exe(x, good), np.take(x, good, axis=1))
    refuses(exe, (x, np.array([[0, 5], [1, 1]], "int32")), "'take'", error=sf.Error)


def test_gather_elements_indices_and_dims_checked():
    exe = sf.compile(
        build([("x", (n, k1), F32), ("i", (m, k2), "int64")], lambda x, i: op.gather_elements(x, i, axis=1))
    )
    x = rand(3, 4)
    idx = np.array([[0, 3], [-1, 1], [2, -4]])
    np.testing.assert_array_equal(exe(x, idx), np.take_along_axis(x, np.where(idx < 0, idx + 4, idx), 1))
    refuses(exe, (x, np.array([[0, 4]])), "'gather_elements'", error=sf.Error)
    refuses(exe, (x, np.zeros((5, 1), "int64")), "gather_elements")  # more rows than the data has


def test_guards_come_from_inference_not_a_list():
    """Every op whose inference records a requirement gets a guard; proved relations get none."""
    unproved = build([("a", (n, k1), F32), ("b", (k2, m), F32)], op.matmul)
    proved = build([("a", (n, k1), F32), ("b", (k1, m), F32)], op.matmul)
    [guard] = shape_guards(unproved)["main"]
    assert guard.kind == "equal" and "matmul" in guard.where
    assert shape_guards(proved)["main"] == []


def test_guards_survive_save_and_load(tmp_path, matmul_exe):
    path = tmp_path / "m.sfa"
    matmul_exe.save(path)
    loaded = sf.load(path)
    refuses(loaded, (rand(3, 7), rand(5, 2)), "matmul")


@pytest.fixture(scope="module")
def batched_matmul_exe():
    return sf.compile(build([("a", (p, n, k1), F32), ("b", (q, k2, m), F32)], op.matmul))


@settings(deadline=None, max_examples=60)
@given(dims=st.tuples(*[st.integers(1, 3)] * 6))
def test_compiled_matmul_fails_exactly_when_numpy_does(batched_matmul_exe, dims):
    """Any shapes: the compiled kernel returns numpy's result or raises a ShapeError where numpy raises."""
    pa, rows, ka, qb, kb, cols = dims
    a, b = rand(pa, rows, ka), rand(qb, kb, cols)
    try:
        want = np.matmul(a, b)
    except ValueError:
        with pytest.raises(sf.ShapeError):
            batched_matmul_exe(a, b)
    else:
        np.testing.assert_allclose(batched_matmul_exe(a, b), want, rtol=1e-5, atol=1e-5)


def test_split_of_a_symbolic_dim_checked():
    sections = sf.compile(build([("x", (n, 2), F32)], lambda x: op.split(x, 2, axis=0)))
    x = rand(4, 2)
    for got, want in zip(sections(x), np.split(x, 2)):
        np.testing.assert_array_equal(got, want)
    refuses(sections, (rand(5, 2),), "split")
    points = sf.compile(build([("x", (n, 2), F32)], lambda x: op.split(x, (1, 3), axis=0)))
    x = rand(5, 2)
    for got, want in zip(points(x), np.split(x, (1, 3))):
        np.testing.assert_array_equal(got, want)
    refuses(points, (rand(2, 2),), "split")  # the second section would read rows 1..2 of 2


def test_ops_inside_if_branches_are_checked_by_their_kernels():
    """Branch bodies run only when taken, so the VM checks nothing for them on entry: the kernels assert
    their own shape requirements."""
    c = GraphVar("c", TensorType((), "bool"))
    a, b = GraphVar("a", TensorType((n, k1), F32)), GraphVar("b", TensorType((k2, m), F32))
    v, w = GraphVar("v", TensorType((n, m), F32)), GraphVar("w", TensorType((n, m), F32))
    bb = BlockBuilder()
    with bb.function("main", [c, a, b]):
        then = SeqExpr((BindingBlock((VarBinding(v, op.matmul(a, b)),)),), v)
        other = SeqExpr((BindingBlock((VarBinding(w, op.zeros((n, m), F32)),)),), w)
        bb.emit_func_output(bb.emit(If(c, then, other)))
    exe = sf.compile(bb.get())
    x, y = rand(2, 3), rand(3, 4)
    np.testing.assert_allclose(exe(np.array(True), x, y), x @ y, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(exe(np.array(False), rand(2, 30), y), np.zeros((2, 4)))  # not taken
    refuses(exe, (np.array(True), rand(2, 30), y), "'matmul'", error=sf.Error)


def test_legalized_kernel_checks_its_own_shape_requirements():
    """Called directly (no VM), a kernel with unprovable shape relations still refuses bad arrays."""
    a, b = GraphVar("a", TensorType((n, k1), F32)), GraphVar("b", TensorType((k2, m), F32))
    func, _ = legalize_call(op.matmul(a, b), [a.type, b.type])
    lib = sf.build(sf.ir.IRModule({"mm": func}), target="cpu")
    x, y = rand(2, 3), rand(3, 4)
    out = np.empty((2, 4), F32)
    lib["mm"](x, y, out)
    np.testing.assert_allclose(out, x @ y, rtol=1e-5, atol=1e-5)
    with pytest.raises(sf.Error, match="contracted"):
        lib["mm"](rand(2, 30), y, out)
