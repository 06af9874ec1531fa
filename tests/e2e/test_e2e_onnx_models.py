"""ONNX models compiled once with symbolic dims and run at several sizes (1, a prime, the bound), checked
against onnxruntime: an MLP with two outputs, a CNN with conv/batch-norm/pooling, a BERT-like encoder (token
ids, embeddings, position ids from Shape/Range) and a GPT-2-like decoder block with a causal mask."""

import numpy as np
import pytest
from e2e_models import as_list, cnn, mlp, onnxruntime_outputs

import shapeflow as sf
from shapeflow.examples_embedded import transformer_encoder_onnx


def bert():
    return transformer_encoder_onnx(hidden=32, heads=2, ffn=64, layers=2, vocab=50, seed=1)


def gpt2():
    return transformer_encoder_onnx(
        hidden=32, heads=4, ffn=128, layers=1, causal=True, pre_norm=True, gelu="tanh", seed=2
    )


def _floats(rng, *shape):
    return rng.standard_normal(shape).astype("float32")


# name: (builder, dims, [dim values], inputs for the values, tolerance)
CASES = {
    "mlp": (mlp, {"N": (1, 64)}, [(1,), (7,), (64,)], lambda r, n: {"x": _floats(r, n, 20)}, 1e-5),
    "cnn": (
        cnn,
        {"batch": (1, 8)},
        [(1,), (5,), (8,)],
        lambda r, b: {"image": _floats(r, b, 3, 16, 16)},
        1e-4,
    ),
    "bert": (
        bert,
        {"batch": (1, 4), "seq": (1, 64)},
        [(1, 1), (3, 13), (4, 64)],
        lambda r, b, s: {"input_ids": r.integers(0, 50, (b, s)).astype("int64")},
        1e-3,
    ),
    "gpt2": (
        gpt2,
        {"batch": (1, 4), "seq": (1, 64)},
        [(1, 1), (2, 31), (4, 64)],
        lambda r, b, s: {"x": _floats(r, b, s, 32)},
        1e-3,
    ),
}


def _causal_prefix_check(exe):
    """Position i of a causal block depends only on positions <= i: a prefix run gives the same rows."""
    x = _floats(np.random.default_rng(5), 2, 23, 32)
    np.testing.assert_allclose(exe(x)[:, :11], exe(x[:, :11]), rtol=1e-4, atol=1e-4)


EXTRA_CHECKS = {"gpt2": _causal_prefix_check}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_once_matches_onnxruntime_at_each_size(name):
    """One test per model, so that each is compiled once even when the tests run in several processes."""
    builder, dims, values, make_inputs, tol = CASES[name]
    model = builder()
    exe = sf.compile(model, dims=dims)  # the ModelProto goes through shapeflow.frontend.from_onnx
    rng = np.random.default_rng(0)
    for value in values:
        feeds = make_inputs(rng, *value)
        expected = onnxruntime_outputs(model, feeds)
        got = as_list(exe(*feeds.values()))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape and g.dtype == e.dtype, (name, value)
            np.testing.assert_allclose(g, e, rtol=tol, atol=tol, err_msg=f"{name} at {value}")
    too_big = tuple(hi + 1 for _lo, hi in dims.values())
    with pytest.raises(sf.ShapeError, match="bound|range|outside"):
        exe(*make_inputs(rng, *too_big).values())
    if name in EXTRA_CHECKS:
        EXTRA_CHECKS[name](exe)
