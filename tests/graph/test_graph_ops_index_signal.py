"""The graph ops topk_indices, scatter_elements, scatter_nd, gather_nd, reverse_sequence, tensor_scatter,
grid_sample, col2im, dft, atan/asin/acos: compiled once over symbolic dims, run at random sizes (1 and
primes among them) and compared with the ops' numpy references, which are checked against numpy/ONNX
semantics here too."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.builder import BlockBuilder
from shapeflow.ir.graph.ops import get_op_def
from shapeflow.ir.graph.types import TensorType

SIZES = st.sampled_from([1, 2, 3, 5, 7, 11])
_CACHE: dict = {}


def _compiled(key, params, build):
    """A module main(params) -> build(*params), compiled once per key."""
    if key not in _CACHE:
        bb = BlockBuilder()
        with bb.function("main", params):
            with bb.dataflow():
                out = bb.emit_output(build(*params))
            bb.emit_func_output(out)
        _CACHE[key] = sf.compile(bb.get(), target="cpu")
    return _CACHE[key]


def _ref(name, *args, **attrs):
    op_def = get_op_def(name)
    return op_def.reference(*args, **op_def.normalize_attrs(attrs))


def test_topk_reference_orders_ties_by_position():
    x = np.array([[3, 1, 3, 2, 1]], np.float32)
    np.testing.assert_array_equal(_ref("topk_indices", x, axis=1, k=4, largest=True), [[0, 2, 3, 1]])
    np.testing.assert_array_equal(_ref("topk_indices", x, axis=1, k=3, largest=False), [[1, 4, 3]])


@settings(deadline=None, max_examples=8)
@given(n=SIZES, m=SIZES, data=st.data())
def test_topk_symbolic(n, m, data):
    k = data.draw(st.integers(1, m))
    rows, cols = Var("rows", "int64"), Var("cols", "int64")
    x = G.GraphVar("x", TensorType((rows, cols), "float32"))
    exe = _compiled(("topk", k), [x], lambda v: op.topk_indices(v, axis=1, k=k, largest=True))
    a = np.random.default_rng(n * 31 + m).integers(-2, 3, (n, m)).astype(np.float32)
    np.testing.assert_array_equal(exe(a), _ref("topk_indices", a, axis=1, k=k, largest=True))


@settings(deadline=None, max_examples=8)
@given(n=SIZES, m=SIZES, r=SIZES, reduction=st.sampled_from(["add", "mul", "max", "min", "none"]))
def test_scatter_elements_symbolic(n, m, r, reduction):
    rows, cols, upd = Var("rows", "int64"), Var("cols", "int64"), Var("upd", "int64")
    d = G.GraphVar("d", TensorType((rows, cols), "float32"))
    i = G.GraphVar("i", TensorType((upd, cols), "int64"))
    u = G.GraphVar("u", TensorType((upd, cols), "float32"))
    exe = _compiled(
        ("scatter", reduction),
        [d, i, u],
        lambda a, b, c: op.scatter_elements(a, b, c, axis=0, reduction=reduction),
    )
    rng = np.random.default_rng(n + 7 * m + 49 * r)
    data = rng.standard_normal((n, m)).astype(np.float32)
    if reduction == "none":  # distinct targets per column
        r = min(r, n)
        idx = np.stack([rng.permutation(n)[:r] for _ in range(m)], axis=1).astype(np.int64)
    else:
        idx = rng.integers(-n, n, (r, m)).astype(np.int64)
    updates = rng.standard_normal((r, m)).astype(np.float32)
    want = _ref("scatter_elements", data, idx, updates, axis=0, reduction=reduction)
    np.testing.assert_allclose(exe(data, idx, updates), want, rtol=1e-5, atol=1e-6)


def test_scatter_elements_reference_matches_a_serial_loop():
    data = np.zeros(4, np.float32)
    got = _ref(
        "scatter_elements",
        data,
        np.array([1, 1, -1]),
        np.array([2.0, 3.0, 4.0], np.float32),
        axis=0,
        reduction="add",
    )
    np.testing.assert_array_equal(got, [0, 5, 0, 4])
    with pytest.raises(IndexError):
        _ref("scatter_elements", data, np.array([4]), np.ones(1, np.float32), axis=0)


@settings(deadline=None, max_examples=6)
@given(n=SIZES, m=SIZES, p=SIZES)
def test_scatter_nd_and_gather_nd_symbolic(n, m, p):
    rows, cols, pts = Var("rows", "int64"), Var("cols", "int64"), Var("pts", "int64")
    d = G.GraphVar("d", TensorType((rows, cols), "float32"))
    i = G.GraphVar("i", TensorType((pts, 2), "int64"))
    u = G.GraphVar("u", TensorType((pts,), "float32"))
    scatter = _compiled("scatter_nd", [d, i, u], lambda a, b, c: op.scatter_nd(a, b, c, reduction="add"))
    gather = _compiled("gather_nd", [d, i], lambda a, b: op.gather_nd(a, b, batch_dims=0))
    rng = np.random.default_rng(n * 3 + m * 5 + p)
    data = rng.standard_normal((n, m)).astype(np.float32)
    idx = np.stack([rng.integers(-n, n, p), rng.integers(-m, m, p)], axis=1).astype(np.int64)
    updates = rng.standard_normal(p).astype(np.float32)
    want = data.copy()
    np.add.at(want, (idx[:, 0] % n, idx[:, 1] % m), updates)
    np.testing.assert_allclose(scatter(data, idx, updates), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(gather(data, idx), data[idx[:, 0] % n, idx[:, 1] % m])


@settings(deadline=None, max_examples=6)
@given(t=SIZES, b=SIZES)
def test_reverse_sequence_symbolic(t, b):
    tv, bv = Var("t", "int64"), Var("b", "int64")
    x = G.GraphVar("x", TensorType((tv, bv), "float32"))
    lens = G.GraphVar("l", TensorType((bv,), "int64"))
    exe = _compiled("revseq", [x, lens], lambda a, c: op.reverse_sequence(a, c, batch_axis=1, time_axis=0))
    rng = np.random.default_rng(t * 13 + b)
    a = rng.standard_normal((t, b)).astype(np.float32)
    ln = rng.integers(0, t + 1, b).astype(np.int64)
    want = a.copy()
    for j in range(b):
        want[: ln[j], j] = a[: ln[j], j][::-1]
    np.testing.assert_array_equal(exe(a, ln), want)


@settings(deadline=None, max_examples=6)
@given(n=SIZES, lines=SIZES)
def test_dft_reference_is_numpy_fft_and_compiled_matches(n, lines):
    x = np.random.default_rng(n + 17 * lines).standard_normal((lines, n, 2)).astype(np.float64)
    want = np.fft.fft(x[..., 0] + 1j * x[..., 1], axis=1)
    ref = _ref("dft", x, axis=1, length=n)
    np.testing.assert_allclose(ref[..., 0] + 1j * ref[..., 1], want, rtol=1e-9, atol=1e-9)
    lv = Var("lines", "int64")
    param = G.GraphVar("x", TensorType((lv, n, 2), "float64"))
    exe = _compiled(("dft", n), [param], lambda v: op.dft(v, axis=1, length=n))
    np.testing.assert_allclose(exe(x), ref, rtol=1e-9, atol=1e-9)


def test_col2im_reference_inverts_an_unfold_of_ones():
    # 1x1 channel, 4x4 image, 2x2 blocks stride 1: each pixel is covered by (#blocks touching it) blocks
    cols = np.ones((1, 4, 9), np.float32)
    got = _ref(
        "col2im",
        cols,
        image_shape=(4, 4),
        block_shape=(2, 2),
        strides=(1, 1),
        pads=(0, 0, 0, 0),
        dilations=(1, 1),
    )
    cover = np.array([1, 2, 2, 1], np.float32)
    np.testing.assert_array_equal(got[0, 0], np.outer(cover, cover))


@settings(deadline=None, max_examples=6)
@given(
    h=SIZES,
    w=SIZES,
    mode=st.sampled_from(["nearest", "linear", "cubic"]),
    padding=st.sampled_from(["zeros", "border", "reflection"]),
    align=st.booleans(),
)
@example(h=1, w=1, mode="linear", padding="reflection", align=True)  # reflection over a zero span
def test_grid_sample_symbolic_input_size(h, w, mode, padding, align):
    hv, wv = Var("h", "int64"), Var("w", "int64")
    x = G.GraphVar("x", TensorType((1, 2, hv, wv), "float32"))
    g = G.GraphVar("g", TensorType((1, 3, 4, 2), "float32"))
    exe = _compiled(
        ("grid", mode, padding, align),
        [x, g],
        lambda a, b: op.grid_sample(a, b, mode=mode, padding_mode=padding, align_corners=align),
    )
    rng = np.random.default_rng(h * 7 + w)
    a = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    grid = rng.uniform(-1.5, 1.5, (1, 3, 4, 2)).astype(np.float32)
    want = _ref("grid_sample", a, grid, mode=mode, padding_mode=padding, align_corners=align)
    np.testing.assert_allclose(exe(a, grid), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,fn", [("atan", np.arctan), ("asin", np.arcsin), ("acos", np.arccos)])
def test_inverse_trig_near_the_ends(name, fn):
    n = Var("n", "int64")
    x = G.GraphVar("x", TensorType((n,), "float64"))
    exe = _compiled(name, [x], lambda v: getattr(op, name)(v))
    values = np.array([-1.0, -0.999999, -0.5, -1e-300, 0.0, 1e-8, 0.66, 0.67, 0.999999, 1.0])
    if name == "atan":
        values = np.concatenate([values, [2.41, 2.42, 1e300, -np.inf, np.inf]])
    np.testing.assert_allclose(exe(values), fn(values), rtol=4e-16, atol=1e-300)
