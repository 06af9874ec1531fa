"""conv2d on the hierarchy GEMM (passes/graph/conv_gemm.py + ir/graph/ops/im2col.py): the im2col op against
numpy, the rewrite's structure (what it refuses, transposes cancelled between convs), and compiled models
against the graph interpreter at batch 1, primes and 8, with stride, padding, dilation and epilogues."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.ir.graph import expr as G
from shapeflow.passes.graph import Normalize
from shapeflow.passes.graph.conv_gemm import ConvToGemm

rng = np.random.default_rng(11)


def _weights(*shape):
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype("float32")


def _conv_module(c, o, h, w, k, stride=1, pad=0, dilation=1, groups=1, symbolic_hw=False, const_w=True):
    """x (n, c, h, w) -> relu(conv2d(x, W) + bias); n symbolic (h, w too when asked)."""
    n = Var("n")
    hh, ww = (Var("h"), Var("w")) if symbolic_hw else (h, w)
    x = GraphVar("x", TensorType((n, c, hh, ww), "float32"))
    weight = _weights(o, c // groups, k, k)
    params = [x]
    if not const_w:
        wv = GraphVar("wt", TensorType(weight.shape, "float32"))
        params.append(wv)
    bias = rng.standard_normal((1, o, 1, 1)).astype("float32")
    bb = BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            conv = op.conv2d(x, weight if const_w else params[1], stride, pad, dilation, groups)
            out = bb.emit_output(op.relu(op.add(conv, bias)))
        bb.emit_func_output(out)
    return bb.get(), weight


def _op_names(mod) -> list[str]:
    func = mod["main"]
    return [
        b.value.op.name
        for blk in func.body.blocks
        for b in blk.bindings
        if isinstance(b.value, G.Call) and isinstance(b.value.op, G.Op)
    ]


def _gemm_calls(exe) -> list:
    return [ins for f in exe.program.functions.values() for ins in f.code if ins[0] == "call_gemm"]


# -- the im2col op -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_im2col_reference_times_weight_is_the_convolution(layout):
    x = rng.standard_normal((2, 3, 7, 6)).astype("float32")
    w = _weights(4, 3, 3, 2)
    attrs = dict(kernel_size=(3, 2), strides=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2), layout=layout)
    from shapeflow.ir.graph.ops import get_op_def

    data = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
    patches = get_op_def("im2col").reference(data, **attrs)
    w2 = (w.transpose(0, 2, 3, 1) if layout == "NHWC" else w).reshape(4, -1)
    got = (patches @ w2.T).transpose(0, 3, 1, 2)
    want = get_op_def("conv2d").reference(x, w, (2, 1), (1, 0, 2, 1), (1, 2), 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_im2col_compiled_matches_reference(layout):
    n, h, w = Var("n"), Var("h"), Var("w")
    shape = (n, h, w, 5) if layout == "NHWC" else (n, 5, h, w)
    x = GraphVar("x", TensorType(shape, "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op.im2col(x, (3, 3), (2, 1), (1, 2, 0, 1), (2, 1), layout))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod)
    for dims in [(1, 5, 5), (2, 7, 11), (3, 13, 4)]:
        b, hv, wv = dims
        data = rng.standard_normal((b, hv, wv, 5) if layout == "NHWC" else (b, 5, hv, wv)).astype("float32")
        np.testing.assert_array_equal(exe(data), run(mod, data))


# -- the rewrite ---------------------------------------------------------------------------------------


def test_rewrite_turns_conv_into_linear_and_leaves_grouped_conv_alone():
    mod, _ = _conv_module(4, 6, 9, 9, 3, pad=1)
    names = _op_names(ConvToGemm()(Normalize()(mod)))
    assert "conv2d" not in names and names.count("linear") == 1 and "im2col" in names
    grouped, _ = _conv_module(4, 6, 9, 9, 3, pad=1, groups=2)
    before = Normalize()(grouped)
    assert ConvToGemm()(before) is before


def _resnet_block(c=8, width=4, stride=2):
    """A bottleneck block with a projection shortcut, then a second block: relu/add epilogues throughout."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, c, 9, 11), "float32"))
    bias = {}

    def conv(v, cin, cout, k, s=1, relu=True):
        key = len(bias)
        bias[key] = rng.standard_normal((1, cout, 1, 1)).astype("float32") * 0.1
        y = op.add(op.conv2d(v, _weights(cout, cin, k, k), s, k // 2), bias[key])
        return op.relu(y) if relu else y

    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(conv(x, c, width, 1))
            h = bb.emit(conv(h, width, width, 3, stride))
            h = bb.emit(conv(h, width, width * 4, 1, relu=False))
            sc = bb.emit(conv(x, c, width * 4, 1, stride, relu=False))
            y = bb.emit(op.relu(op.add(h, sc)))
            h = bb.emit(conv(y, width * 4, width, 1))
            h = bb.emit(conv(h, width, width, 3))
            h = bb.emit(conv(h, width, width * 4, 1, relu=False))
            out = bb.emit_output(op.relu(op.add(h, y)))
        bb.emit_func_output(out)
    return bb.get()


def test_no_transposes_between_consecutive_convs():
    names = _op_names(ConvToGemm()(Normalize()(_resnet_block())))
    assert names.count("linear") == 7 and "conv2d" not in names
    assert names.count("permute_dims") == 1  # the block's output back to NCHW; the input is read as NCHW


def test_resnet_blocks_compiled_match_interpreter():
    mod = _resnet_block()
    exe = sf.compile(mod, dims={"n": (1, 8)})
    assert len(_gemm_calls(exe)) == 7
    assert all(g[1] == "dense" and g[3][0] == "const" for g in _gemm_calls(exe))
    for b in (1, 3, 8):
        x = rng.standard_normal((b, 8, 9, 11)).astype("float32")
        np.testing.assert_allclose(exe(x), run(mod, x), rtol=1e-4, atol=1e-4)


CONFIGS = [
    # (c, o, h, w, k, stride, pad, dilation)
    (3, 5, 7, 5, 3, 1, 1, 1),
    (1, 1, 1, 1, 1, 1, 0, 1),
    (5, 7, 13, 11, 3, 2, 1, 1),
    (4, 3, 11, 7, 3, 1, 2, 2),
    (6, 2, 8, 9, 1, 2, 0, 1),
    (2, 3, 5, 6, 5, 1, 0, 1),
    (2, 3, 7, 6, 5, 1, 0, 1),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_conv_epilogue_matches_interpreter(config):
    c, o, h, w, k, stride, pad, dilation = config
    mod, _ = _conv_module(c, o, h, w, k, stride, pad, dilation)
    exe = sf.compile(mod, dims={"n": (1, 8)})
    # An output with a unit spatial dim is read at index 0 by linear's legalization (a broadcast dim), which
    # the GEMM matcher does not take: that conv stays a loop nest (correct, not fast).
    oh = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    assert len(_gemm_calls(exe)) == (1 if oh > 1 and ow > 1 else 0)
    for b in (1, 2, 8):
        x = rng.standard_normal((b, c, h, w)).astype("float32")
        np.testing.assert_allclose(exe(x), run(mod, x), rtol=1e-4, atol=1e-4)


def test_symbolic_spatial_dims():
    mod, _ = _conv_module(3, 4, 0, 0, 3, 2, 1, symbolic_hw=True)
    exe = sf.compile(mod, dims={"n": (1, 8), "h": (1, 32), "w": (1, 32)})
    assert len(_gemm_calls(exe)) == 1
    for b, h, w in [(1, 1, 1), (2, 7, 13), (8, 17, 5), (1, 32, 32)]:
        x = rng.standard_normal((b, 3, h, w)).astype("float32")
        np.testing.assert_allclose(exe(x), run(mod, x), rtol=1e-4, atol=1e-4)


def test_runtime_weight():
    mod, weight = _conv_module(5, 7, 9, 8, 3, 1, 1, const_w=False)
    exe = sf.compile(mod, dims={"n": (1, 8)})
    assert len(_gemm_calls(exe)) == 1
    for b in (1, 8):
        x = rng.standard_normal((b, 5, 9, 8)).astype("float32")
        np.testing.assert_allclose(exe(x, weight), run(mod, x, weight), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pad", [0, 1])
def test_grouped_conv_stays_a_row_parallel_loop_nest_and_matches(pad):
    from shapeflow.ir.tir.function import PrimFunc
    from shapeflow.passes.graph import graph_pipeline
    from shapeflow.passes.graph.schedule_rules import SplitGemm

    mod, _ = _conv_module(4, 6, 7, 5, 3, 1, pad, groups=2)
    lowered = SplitGemm()(graph_pipeline(2)(mod))
    convs = [f for f in lowered.functions.values() if isinstance(f, PrimFunc) and "conv2d" in f.script()]
    # Row-parallel by the default rule: relabelled when it was an epilogue-fused "out_elementwise_fusable"
    # kernel (unpadded); a padded one is "opaque" already (its padding stage branches).
    assert convs and all(f.attrs["op_pattern"] in ("reduction", "opaque") for f in convs)
    exe = sf.compile(mod, dims={"n": (1, 8)})
    assert not _gemm_calls(exe)
    x = rng.standard_normal((3, 4, 7, 5)).astype("float32")
    np.testing.assert_allclose(exe(x), run(mod, x), rtol=1e-4, atol=1e-4)


def test_conv_output_read_as_nchw_by_other_ops():
    """A conv result read by an op that is not layout-agnostic (softmax over channels) and by a binary op
    with a non-constant NCHW operand: both see the NCHW value."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, 3, 6, 5), "float32"))
    r = GraphVar("r", TensorType((n, 4, 6, 5), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, r]):
        with bb.dataflow():
            y = bb.emit(op.relu(op.conv2d(x, _weights(4, 3, 3, 3), 1, 1)))
            s = bb.emit(op.softmax(y, axis=1))
            out = bb.emit_output(op.add(op.multiply(y, r), s))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod, dims={"n": (1, 8)})
    for b in (1, 5):
        xv = rng.standard_normal((b, 3, 6, 5)).astype("float32")
        rv = rng.standard_normal((b, 4, 6, 5)).astype("float32")
        np.testing.assert_allclose(exe(xv, rv), run(mod, xv, rv), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@settings(deadline=None, max_examples=8)
@given(
    c=st.sampled_from([1, 2, 3, 7]),
    o=st.sampled_from([1, 4, 5]),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    k=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([1, 2, 3]),
    pad=st.integers(0, 2),
    dilation=st.sampled_from([1, 2]),
)
def test_random_convs_match_interpreter(c, o, h, w, k, stride, pad, dilation):
    if h + 2 * pad < dilation * (k - 1) + 1 or w + 2 * pad < dilation * (k - 1) + 1:
        return  # an empty output: not a model anyone compiles
    mod, _ = _conv_module(c, o, h, w, k, stride, pad, dilation)
    exe = sf.compile(mod, dims={"n": (1, 8)})
    for b in (1, 8):
        x = rng.standard_normal((b, c, h, w)).astype("float32")
        np.testing.assert_allclose(exe(x), run(mod, x), rtol=1e-4, atol=1e-4)


def test_patch_kernel_schedule_vectorizes_channels_and_matches():
    """A 3x3 conv on channels-last activations (32 channels): its im2col kernel gets the (tap, channel)
    schedule, and the compiled pair of convs equals the interpreter."""
    from shapeflow.ir.tir.function import PrimFunc
    from shapeflow.ir.tir.stmt import For, ForKind
    from shapeflow.passes.graph import graph_pipeline
    from shapeflow.passes.graph.conv_gemm import schedule_patches
    from shapeflow.passes.graph.schedule_rules import SplitGemm

    n = Var("n")
    x = GraphVar("x", TensorType((n, 8, 7, 6), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(op.relu(op.conv2d(x, _weights(32, 8, 1, 1))))
            out = bb.emit_output(op.conv2d(h, _weights(5, 32, 3, 3), 1, 1))
        bb.emit_func_output(out)
    mod = bb.get()
    # The NCHW input's 1x1 conv needs no patches; the 3x3 one's are fused behind the first GEMM's relu, so
    # SplitGemm leaves them in that GEMM's epilogue, which it schedules with schedule_patches.
    lowered = SplitGemm()(graph_pipeline(2)(mod))
    prims = [f for f in lowered.functions.values() if isinstance(f, PrimFunc)]
    scheduled = [f for f in prims if f.attrs.get("default_schedule") is False]
    assert len(scheduled) == 1 and "im2col" in scheduled[0].script()
    assert all(schedule_patches(f) is None for f in prims)  # done already, or not a patch kernel
    scheduled = scheduled[0]
    kinds = {loop.kind for loop in _loops(scheduled.body, For)}
    assert ForKind.VECTORIZED in kinds and ForKind.PARALLEL in kinds
    exe = sf.compile(mod, dims={"n": (1, 8)})
    for b in (1, 8):
        xv = rng.standard_normal((b, 8, 7, 6)).astype("float32")
        np.testing.assert_allclose(exe(xv), run(mod, xv), rtol=1e-4, atol=1e-4)


def _loops(stmt, kind):
    from shapeflow.ir.functor import collect

    return collect(stmt, kind)


def test_pooling_kernels_get_parallel_schedules_and_match():
    """Max / average pooling (padded or not) and global average pooling come out of the default rules with
    a parallel loop (they are reductions, or opaque when a padding stage branches: row-parallel)."""
    from shapeflow.ir.functor import collect
    from shapeflow.ir.tir.function import PrimFunc
    from shapeflow.ir.tir.stmt import For, ForKind
    from shapeflow.passes.graph import graph_pipeline
    from shapeflow.passes.graph.schedule_rules import SplitGemm
    from shapeflow.passes.tir.default_schedule import apply_default_schedule

    n = Var("n")
    x = GraphVar("x", TensorType((n, 16, 40, 40), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(op.relu(op.conv2d(x, _weights(16, 16, 3, 3), 2, 1)))
            p = bb.emit(op.max_pool2d(y, (3, 3), (2, 2), (1, 1)))
            q = bb.emit(op.avg_pool2d(p, (2, 2), (1, 1), (0, 0)))
            out = bb.emit_output(op.mean(q, (2, 3), True))
        bb.emit_func_output(out)
    mod = bb.get()
    # The pools and the keepdims mean run channels-last: one transpose, of the (n, 1, 1, 16) result.
    names = _op_names(ConvToGemm()(Normalize()(mod)))
    assert names.count("permute_dims") == 1 and names.index("permute_dims") > names.index("mean")
    lowered = SplitGemm()(graph_pipeline(2)(mod))
    pools = {
        name: f
        for name, f in lowered.items()
        if isinstance(f, PrimFunc) and any(s in name for s in ("pool", "mean"))
    }
    assert len(pools) >= 3, sorted(pools)
    for name, f in pools.items():
        scheduled = apply_default_schedule(f, bounds={"n": (1, 8)})
        kinds = {loop.kind for loop in collect(scheduled.body, For)}
        assert ForKind.PARALLEL in kinds, name
    exe = sf.compile(mod, dims={"n": (1, 8)})
    for b in (1, 8):
        xv = rng.standard_normal((b, 16, 40, 40)).astype("float32")
        np.testing.assert_allclose(exe(xv), run(mod, xv), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["max", "avg_include_pad", "avg_exclude_pad"])
def test_channels_last_pooling_matches_nchw(kind):
    """max_pool2d / avg_pool2d with layout="NHWC" (what the rewrite pools channels-last activations with):
    compiled and interpreted, equal to NCHW pooling of the transposed input."""
    from shapeflow.ir.graph.ops import get_op_def

    n, h, w = Var("n"), Var("h"), Var("w")
    x = GraphVar("x", TensorType((n, h, w, 6), "float32"))
    attrs = dict(pool_size=(3, 2), strides=(2, 1), padding=(1, 0, 1, 1), dilation=(1, 1), layout="NHWC")
    if kind != "max":
        attrs["count_include_pad"] = kind == "avg_include_pad"
    build = op.max_pool2d if kind == "max" else op.avg_pool2d
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(build(x, **attrs))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod, dims={"n": (1, 8), "h": (1, 32), "w": (1, 32)})
    nchw = {**attrs, "layout": "NCHW"}
    reference = get_op_def(f"{kind[:3]}_pool2d").reference
    for b, hv, wv in [(1, 1, 1), (2, 7, 5), (8, 13, 11)]:
        xv = rng.standard_normal((b, hv, wv, 6)).astype("float32")
        want = reference(xv.transpose(0, 3, 1, 2), **nchw).transpose(0, 2, 3, 1)
        np.testing.assert_allclose(run(mod, xv), want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(exe(xv), want, rtol=1e-5, atol=1e-6)


def test_conv_of_a_value_kept_in_another_layout():
    """conv -> swap H and W -> conv: the second conv's input is a virtual transpose that is not
    channels-last; it is bound (materialized) before the NCHW patches read it."""
    n = Var("n")
    x = GraphVar("x", TensorType((n, 3, 6, 9), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(op.relu(op.conv2d(x, _weights(4, 3, 3, 3), 1, 1)))
            t = bb.emit(op.permute_dims(y, (0, 1, 3, 2)))
            out = bb.emit_output(op.conv2d(t, _weights(5, 4, 3, 1), 2, 1))
        bb.emit_func_output(out)
    mod = bb.get()
    exe = sf.compile(mod, dims={"n": (1, 8)})
    assert len(_gemm_calls(exe)) == 2
    for b in (1, 8):
        xv = rng.standard_normal((b, 3, 6, 9)).astype("float32")
        np.testing.assert_allclose(exe(xv), run(mod, xv), rtol=1e-4, atol=1e-4)
