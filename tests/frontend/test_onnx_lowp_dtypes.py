"""The ONNX low-precision storage types (float8 x4, E8M0, float4, int4/uint4/int2/uint2): Cast, CastLike,
QuantizeLinear and DequantizeLinear compiled and interpreted, compared bit for bit with ml_dtypes /
onnx.numpy_helper / onnx.reference on exhaustive bit patterns, every tie between neighbours, random float32
bit patterns (subnormals, infinities and NaN included); data movement passes the bits through; every other
op on them is refused; the Executable takes and returns ml_dtypes arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ml_dtypes = pytest.importorskip("ml_dtypes")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import shapeflow  # noqa: E402
from shapeflow.errors import ShapeError, UnsupportedError  # noqa: E402
from shapeflow.frontend import from_onnx  # noqa: E402
from shapeflow.ir.graph import run  # noqa: E402

OPSET = 25
FLOAT8 = {
    "FLOAT8E4M3FN": ml_dtypes.float8_e4m3fn,
    "FLOAT8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "FLOAT8E5M2": ml_dtypes.float8_e5m2,
    "FLOAT8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
}
SMALL_FLOATS = {**FLOAT8, "FLOAT4E2M1": ml_dtypes.float4_e2m1fn}
INTS = {"INT4": ml_dtypes.int4, "UINT4": ml_dtypes.uint4, "INT2": ml_dtypes.int2, "UINT2": ml_dtypes.uint2}
ALL = {**SMALL_FLOATS, "FLOAT8E8M0": ml_dtypes.float8_e8m0fnu, **INTS}


def _model(inputs, nodes, outputs, inits=()):
    graph = helper.make_graph(nodes, "lowp", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _info(name, onnx_type, shape):
    return helper.make_tensor_value_info(name, getattr(TensorProto, onnx_type), shape)


def _bits(a) -> np.ndarray:
    return np.asarray(a).view(np.uint8)


def _compiled_and_interpreted(model, *inputs):
    """(compiled outputs, interpreted outputs as bits/numbers): the interpreter takes the uint8 bits."""
    mod = from_onnx(model)
    exe = shapeflow.compile(mod, target="cpu")
    got = exe(*inputs)
    got = list(got) if isinstance(got, tuple) else [got]
    bits = [_bits(x) if x.dtype.itemsize == 1 and x.dtype.kind in "Vf" else x for x in inputs]
    with np.errstate(all="ignore"):  # the references see 1 / -0.0 and inf * 0 on purpose
        interp = run(mod, *bits)
    interp = list(interp) if isinstance(interp, tuple) else [interp]
    return got, interp


def _encode_inputs(dtype, rng) -> np.ndarray:
    """Every finite value of `dtype`, every midpoint between neighbours and one float32 ulp either side,
    values past the largest, specials, and random float32 bit patterns (NaN only with its sign clear: the
    sign of a NaN is not observable without a bitcast)."""
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32)
    finite = np.unique(values[np.isfinite(values)])
    mids = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    top = np.float32(finite[-1])
    parts = [
        finite,
        mids,
        np.nextafter(mids, np.float32(np.inf)),
        np.nextafter(mids, np.float32(-np.inf)),
        np.array([top * 1.03125, top * 1.0625, top * 1.25, top * 2, 1e30, 3.4e38], np.float32),
        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40], np.float32),
    ]
    random = rng.integers(0, 2**32, size=3000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    random = random[~np.isnan(random)]
    small = (rng.standard_normal(1000) * np.float32(finite[-1] / 4)).astype(np.float32)
    x = np.concatenate(parts + [random, small]).astype(np.float32)
    return np.concatenate([x, -x[~np.isnan(x)]])


@pytest.mark.parametrize("source", ["FLOAT", "FLOAT16", "DOUBLE"])
def test_cast_to_small_floats_is_bit_exact(source):
    rng = np.random.default_rng(0)
    x = np.concatenate([_encode_inputs(dt, rng) for dt in SMALL_FLOATS.values()])
    if source == "FLOAT16":
        with np.errstate(over="ignore"):
            x = x.astype(np.float16)
    elif source == "DOUBLE":  # values between float32 neighbours: ml_dtypes rounds through float32 first
        x = np.concatenate([x, x.astype(np.float64) * (1 + 2.0**-30)])
    variants = [(name, s) for name in SMALL_FLOATS for s in ((1, 0) if name in FLOAT8 else (1,))]
    nodes = [
        helper.make_node("Cast", ["x"], [f"{n}_{s}"], to=getattr(TensorProto, n), saturate=s)
        for n, s in variants
    ]
    model = _model([_info("x", source, ["n"])], nodes, [_info(f"{n}_{s}", n, ["n"]) for n, s in variants])
    got, interp = _compiled_and_interpreted(model, x)
    for (name, saturate), g, i in zip(variants, got, interp):
        dtype = SMALL_FLOATS[name]
        want = numpy_helper.saturate_cast(x, dtype) if saturate and name in FLOAT8 else x.astype(dtype)
        assert g.dtype == np.dtype(dtype)
        bad = np.flatnonzero(_bits(g) != _bits(want))
        assert bad.size == 0, f"{name} saturate={saturate}: {x[bad[:5]]} -> {_bits(g)[bad[:5]]}"
        np.testing.assert_array_equal(_bits(i), _bits(want))


def test_decode_every_bit_pattern_exactly():
    names = list(ALL)
    patterns = np.arange(256, dtype=np.uint8)
    inputs = [patterns.view(ALL[n]) for n in names]
    nodes, outputs = [], []
    for n in names:
        for to in ("FLOAT", "FLOAT16"):
            nodes.append(helper.make_node("Cast", [n], [f"{n}_{to}"], to=getattr(TensorProto, to)))
            outputs.append(_info(f"{n}_{to}", to, [256]))
    model = _model([_info(n, n, [256]) for n in names], nodes, outputs)
    got, interp = _compiled_and_interpreted(model, *inputs)
    for k, (g, i) in enumerate(zip(got, interp)):
        x = inputs[k // 2]
        with np.errstate(over="ignore", under="ignore"):
            want = x.astype(np.float32 if k % 2 == 0 else np.float16)
        for out in (g, i):
            assert out.dtype == want.dtype
            np.testing.assert_array_equal(out, want)  # NaN where NaN
            finite = ~np.isnan(want)
            np.testing.assert_array_equal(np.signbit(out[finite]), np.signbit(want[finite]))


@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_cast_to_e8m0_matches_onnx_numpy_helper(round_mode):
    rng = np.random.default_rng(1)
    powers = np.ldexp(np.float32(1), np.arange(-149, 128)).astype(np.float32)
    x = np.concatenate(
        [
            powers,
            powers * np.float32(1.5),
            np.nextafter(powers, np.float32(np.inf)),
            np.nextafter(powers, np.float32(0)),
            rng.integers(0, 2**32, size=4000, dtype=np.uint64).astype(np.uint32).view(np.float32),
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -3.0, 3.4e38], np.float32),
        ]
    ).astype(np.float32)
    nodes = [
        helper.make_node(
            "Cast", ["x"], [f"y{s}"], to=TensorProto.FLOAT8E8M0, saturate=s, round_mode=round_mode
        )
        for s in (1, 0)
    ]
    model = _model([_info("x", "FLOAT", ["n"])], nodes, [_info(f"y{s}", "FLOAT8E8M0", ["n"]) for s in (1, 0)])
    got, interp = _compiled_and_interpreted(model, x)
    for s, g, i in zip((1, 0), got, interp):
        want = _bits(numpy_helper.to_float8e8m0(x, bool(s), round_mode))
        bad = np.flatnonzero(_bits(g) != want)
        assert bad.size == 0, f"saturate={s}: {x[bad[:5]]} -> {_bits(g)[bad[:5]]}, want {want[bad[:5]]}"
        np.testing.assert_array_equal(_bits(i), want)


@pytest.mark.parametrize("source", ["FLOAT", "DOUBLE", "INT32", "INT8", "UINT8"])
def test_cast_to_small_ints_wraps_like_ml_dtypes(source):
    if source in ("FLOAT", "DOUBLE"):
        x = np.concatenate(
            [np.arange(-300, 300, 0.25), [np.nan, np.inf, -np.inf, 1e9, -1e9, 2.5, -2.5, 0.0]]
        ).astype(np.float32 if source == "FLOAT" else np.float64)
        if source == "DOUBLE":  # truncated as doubles, not rounded to float32 first
            x = np.concatenate([x, [7.9999999999, -8.9999999999, 15.9999999999, 3.0000000001]])
    elif source == "INT32":
        x = np.arange(-1000, 1000, dtype=np.int32)
    else:
        x = np.arange(256, dtype=np.uint8).view(np.int8 if source == "INT8" else np.uint8)
    nodes = [helper.make_node("Cast", ["x"], [n], to=getattr(TensorProto, n)) for n in INTS]
    model = _model([_info("x", source, ["n"])], nodes, [_info(n, n, ["n"]) for n in INTS])
    got, interp = _compiled_and_interpreted(model, x)
    for name, g, i in zip(INTS, got, interp):
        with np.errstate(invalid="ignore"):
            want = x.astype(INTS[name])
        assert g.dtype == np.dtype(INTS[name])
        np.testing.assert_array_equal(g.astype(np.int32), want.astype(np.int32))
        np.testing.assert_array_equal(_bits(g), _bits(want))  # canonical bytes: high bits clear
        np.testing.assert_array_equal(_bits(i), _bits(want))


QUANT_TYPES = [*SMALL_FLOATS, *INTS]


@pytest.mark.parametrize("name", QUANT_TYPES)
@pytest.mark.parametrize("per_axis", [False, True])
def test_quantize_dequantize_match_the_reference(name, per_axis):
    rng = np.random.default_rng(hash((name, per_axis)) % 2**32)
    dtype = ALL[name]
    rows = 3
    x = (rng.standard_normal((rows, 29)) * 4).astype(np.float32)
    # Infinities and NaN into ints: the reference casts them to int32 (undefined: INT_MIN here, then the
    # zero point added with wraparound), so only for floats.
    x[0, :5] = [np.inf, -np.inf, 1e6, -1e6, np.nan] if name not in INTS else [1e9, -1e9, 1e6, -1e6, 0.0]
    shape = [rows] if per_axis else []
    scale = np.full(shape, 0.5, np.float32) if not per_axis else np.array([0.5, 0.25, 2.0], np.float32)
    if name in INTS:
        lo, hi = int(ml_dtypes.iinfo(dtype).min), int(ml_dtypes.iinfo(dtype).max)
        zp = np.array(rng.integers(lo, hi + 1, size=shape), dtype=dtype)
    else:
        zp = np.zeros(shape, dtype=dtype)
    inits = [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(zp, "zp")]
    saturate = {"saturate": 0} if name in FLOAT8 and per_axis else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], axis=0, **saturate),
        helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["d"], axis=0),
    ]
    model = _model(
        [_info("x", "FLOAT", [rows, "n"])],
        nodes,
        [_info("q", name, [rows, "n"]), _info("d", "FLOAT", [rows, "n"])],
        inits,
    )
    want_q, want_d = ReferenceEvaluator(model).run(None, {"x": x})
    exe = shapeflow.compile(model, target="cpu")
    for n in (1, 13, 29):  # symbolic trailing dim: 1, a prime, the full size
        q, d = exe(np.ascontiguousarray(x[:, :n]))
        assert q.dtype == np.dtype(dtype) and d.dtype == np.float32
        np.testing.assert_array_equal(_bits(q), _bits(want_q[:, :n]))
        np.testing.assert_array_equal(d, want_d[:, :n])


def test_castlike_takes_the_storage_type_of_its_like_input():
    x = np.array([0.1, 1.0, 300.0, 500.0, -0.02], np.float32)
    like = np.zeros(0, ml_dtypes.float8_e4m3fn)
    nodes = [helper.make_node("CastLike", ["x", "like"], ["y"], saturate=0)]
    model = _model(
        [_info("x", "FLOAT", [5]), _info("like", "FLOAT8E4M3FN", [0])],
        nodes,
        [_info("y", "FLOAT8E4M3FN", [5])],
    )
    (y,), _ = _compiled_and_interpreted(model, x, like)
    np.testing.assert_array_equal(_bits(y), _bits(x.astype(ml_dtypes.float8_e4m3fn)))


def test_a_cast_to_the_same_storage_type_keeps_it():
    nodes = [
        helper.make_node("Cast", ["x"], ["same"], to=TensorProto.FLOAT8E4M3FN),
        helper.make_node("Cast", ["same"], ["y"], to=TensorProto.FLOAT),
    ]
    model = _model(
        [_info("x", "FLOAT8E4M3FN", [256])],
        nodes,
        [_info("y", "FLOAT", [256]), _info("same", "FLOAT8E4M3FN", [256])],
    )
    x = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    (y, same), _ = _compiled_and_interpreted(model, x)
    np.testing.assert_array_equal(y, x.astype(np.float32))
    assert same.dtype == x.dtype
    np.testing.assert_array_equal(_bits(same), _bits(x))


def test_data_movement_passes_the_bits_through():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(2, 6), dtype=np.uint8).view(ml_dtypes.float8_e5m2)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("Concat", ["t", "t"], ["c"], axis=0),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("Identity", ["r"], ["y"]),
    ]
    shape = numpy_helper.from_array(np.array([4, 6], np.int64), "shape")
    model = _model([_info("x", "FLOAT8E5M2", [2, 6])], nodes, [_info("y", "FLOAT8E5M2", [4, 6])], [shape])
    (y,), (yi,) = _compiled_and_interpreted(model, x)
    want = np.concatenate([x.T, x.T]).reshape(4, 6)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(_bits(y), _bits(want))
    np.testing.assert_array_equal(_bits(yi), _bits(want))


@pytest.mark.parametrize(
    ("op_type", "name", "extra"),
    [
        ("Add", "FLOAT8E4M3FN", {}),
        ("Relu", "INT4", {}),
        ("Pad", "FLOAT8E8M0", {}),
        ("ReduceSum", "UINT2", {}),
    ],
)
def test_ops_that_compute_on_storage_types_are_refused(op_type, name, extra):
    inputs = ["x", "x"] if op_type == "Add" else (["x", "pads"] if op_type == "Pad" else ["x"])
    inits = [numpy_helper.from_array(np.array([1, 1], np.int64), "pads")] if op_type == "Pad" else []
    node = helper.make_node(op_type, inputs, ["y"], **extra)
    model = _model([_info("x", name, [3])], [node], [_info("y", name, [None])], inits)
    with pytest.raises(UnsupportedError, match=rf"'{op_type}'.*{name}"):
        from_onnx(model)


def test_storage_types_inside_subgraphs_are_refused():
    """If/Loop bodies are inlined under fresh names; a storage type there is refused rather than lost."""
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"])], "then", [], [_info("t", "FLOAT8E4M3FN", [3])]
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])], "else", [], [_info("e", "FLOAT8E4M3FN", [3])]
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes = [
        helper.make_node("If", ["cond"], ["y8"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Cast", ["y8"], ["y"], to=TensorProto.FLOAT),
    ]
    model = _model([_info("x", "FLOAT8E4M3FN", [3])], nodes, [_info("y", "FLOAT", [3])], [cond])
    with pytest.raises(UnsupportedError, match="'If'.*FLOAT8E4M3FN.*subgraph"):
        from_onnx(model)


def test_a_storage_type_as_indices_is_refused():
    nodes = [helper.make_node("Gather", ["x", "i"], ["y"])]
    model = _model([_info("x", "FLOAT", [4]), _info("i", "INT4", [2])], nodes, [_info("y", "FLOAT", [2])])
    with pytest.raises(UnsupportedError, match="'Gather'.*INT4"):
        from_onnx(model)


@pytest.mark.parametrize(
    ("op_type", "types", "message"),
    [
        ("DequantizeLinear", ("INT8", "FLOAT8E4M3FN", "INT8"), "DequantizeLinear.*FLOAT8E4M3FN"),
        ("DequantizeLinear", ("INT8", "FLOAT", "INT4"), "zero point of dtype INT4"),
        ("DequantizeLinear", ("UINT4", "FLOAT", "INT4"), "not of dtype UINT4"),
        ("QuantizeLinear", ("INT4", "FLOAT", "INT4"), "QuantizeLinear.*INT4"),
    ],
)
def test_storage_types_in_the_wrong_place_of_a_conversion_are_refused(op_type, types, message):
    """Models the ONNX type constraints forbid (the checker does not look): refused, never misread."""
    names = ["x", "scale", "zp"]
    model = _model(
        [_info(n, t, [3]) for n, t in zip(names, types)],
        [helper.make_node(op_type, names, ["y"], axis=0)],
        [_info("y", "FLOAT", [3])],
    )
    with pytest.raises(UnsupportedError, match=message):
        from_onnx(model)


def test_the_executable_boundary_views_without_copying(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    model = _model([_info("x", "FLOAT8E4M3FN", ["n"])], nodes, [_info("y", "FLOAT8E4M3FN", ["n"])])
    exe = shapeflow.compile(model, target="cpu")
    x = np.array([1.0, -2.0, 448.0], ml_dtypes.float8_e4m3fn)
    y = exe(x)
    assert y.dtype == x.dtype and y.base is not None  # a view of the uint8 result
    np.testing.assert_array_equal(_bits(y), _bits(x))
    np.testing.assert_array_equal(_bits(exe(_bits(x))), _bits(x))  # the bits themselves are accepted
    with pytest.raises(ShapeError, match="float8_e4m3fn"):
        exe(np.ones(3, np.float32))
    path = tmp_path / "m.sfa"
    exe.save(path)
    loaded = shapeflow.load(path)
    assert loaded(x).dtype == x.dtype


CROSS = [
    ("FLOAT8E4M3FN", "FLOAT8E5M2", 1),
    ("FLOAT8E5M2", "FLOAT8E4M3FN", 1),
    ("FLOAT8E5M2", "FLOAT8E4M3FN", 0),
    ("FLOAT8E5M2FNUZ", "FLOAT8E4M3FNUZ", 0),
    ("FLOAT8E4M3FNUZ", "FLOAT4E2M1", 1),
    ("INT4", "FLOAT8E4M3FN", 1),
    ("FLOAT8E4M3FN", "UINT4", 1),
    ("FLOAT4E2M1", "INT2", 1),
]


def test_casts_between_storage_types_go_through_their_values():
    patterns = np.arange(256, dtype=np.uint8)
    names = sorted({s for s, _, _ in CROSS})
    nodes = [
        helper.make_node("Cast", [s], [f"{s}_{d}_{k}"], to=getattr(TensorProto, d), saturate=k)
        for s, d, k in CROSS
    ]
    outputs = [_info(f"{s}_{d}_{k}", d, [256]) for s, d, k in CROSS]
    model = _model([_info(n, n, [256]) for n in names], nodes, outputs)
    inputs = {n: patterns.view(ALL[n]) for n in names}
    got, interp = _compiled_and_interpreted(model, *(inputs[n] for n in names))
    for (s, d, k), g, i in zip(CROSS, got, interp):
        with np.errstate(invalid="ignore", over="ignore"):
            values = inputs[s].astype(np.float32)
            saturating = k and d in FLOAT8
            want = numpy_helper.saturate_cast(values, ALL[d]) if saturating else inputs[s].astype(ALL[d])
        bad = np.flatnonzero(_bits(g) != _bits(want))
        assert bad.size == 0, f"{s}->{d} saturate={k}: bits {patterns[bad[:5]]} -> {_bits(g)[bad[:5]]}"
        np.testing.assert_array_equal(_bits(i), _bits(want))


@pytest.mark.parametrize("weight_type", ["INT4", "UINT4", "FLOAT8E4M3FN"])
def test_weight_only_quantized_matmul(weight_type):
    """The deployment pattern: a low-precision weight initializer dequantized per output channel, then a
    MatMul over a symbolic batch."""
    rng = np.random.default_rng(3)
    dtype = ALL[weight_type]
    if weight_type in INTS:
        info = ml_dtypes.iinfo(dtype)
        w = rng.integers(int(info.min), int(info.max) + 1, size=(64, 32)).astype(dtype)
        zp = rng.integers(int(info.min), int(info.max) + 1, size=32).astype(dtype)
    else:
        w = (rng.standard_normal((64, 32)) * 8).astype(dtype)
        zp = np.zeros(32, dtype)
    scale = rng.uniform(0.01, 0.1, size=32).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (scale, "scale"), (zp, "zp"))]
    nodes = [
        helper.make_node("DequantizeLinear", ["w", "scale", "zp"], ["wd"], axis=1),
        helper.make_node("MatMul", ["x", "wd"], ["y"]),
    ]
    model = _model([_info("x", "FLOAT", ["batch", 64])], nodes, [_info("y", "FLOAT", ["batch", 32])], inits)
    exe = shapeflow.compile(model, target="cpu", dims={"batch": (1, 64)})
    reference = ReferenceEvaluator(model)
    for batch in (1, 7, 64):
        x = rng.standard_normal((batch, 64)).astype(np.float32)
        (want,) = reference.run(None, {"x": x})
        np.testing.assert_allclose(exe(x), want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def float8_encoders():
    """One executable casting float32 to each float8 type, saturating and not."""
    variants = [(n, s) for n in FLOAT8 for s in (1, 0)]
    nodes = [
        helper.make_node("Cast", ["x"], [f"{n}_{s}"], to=getattr(TensorProto, n), saturate=s)
        for n, s in variants
    ]
    model = _model([_info("x", "FLOAT", ["n"])], nodes, [_info(f"{n}_{s}", n, ["n"]) for n, s in variants])
    return variants, shapeflow.compile(model, target="cpu")


@settings(deadline=None, max_examples=60)
@given(xs=st.lists(st.floats(width=32, allow_nan=False) | st.just(float("nan")), min_size=1, max_size=40))
def test_float8_encoding_of_arbitrary_float32_is_bit_exact(float8_encoders, xs):
    variants, exe = float8_encoders
    x = np.array(xs, np.float32)
    for (name, saturate), got in zip(variants, exe(x)):
        dtype = FLOAT8[name]
        want = numpy_helper.saturate_cast(x, dtype) if saturate else x.astype(dtype)
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"{name} saturate={saturate}: {x}")
