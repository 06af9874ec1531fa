"""Legalized unary ops agree with their numpy references on NaN, +-inf and signed zeros, both through the
loop-level interpreter and compiled with shapeflow.build: NaN where numpy gives NaN, and the sign of a zero
result where numpy's is well defined (sign, neg, abs, relu, clip)."""

import numpy as np
import pytest
from test_legalize_helpers import legalize_and_run, sym, tt

import shapeflow as sf
from shapeflow.ir.graph.legalize import scalar_params
from shapeflow.ir.module import IRModule

SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, 3e38, -1e-40], "float32")


def assert_same_values(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal as IEEE values, and NaN in the same places and zeros with the same sign."""
    assert got.dtype == want.dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN positions")
    both = ~np.isnan(want)
    np.testing.assert_array_equal(got[both], want[both], err_msg=what)
    np.testing.assert_array_equal(np.signbit(got[both]), np.signbit(want[both]), err_msg=f"{what}: signs")


def run_everywhere(name: str, x: np.ndarray, **attrs) -> None:
    (n,) = sym("n")
    env = {n: len(x)}
    with np.errstate(all="ignore"):
        outs, refs, func = legalize_and_run(name, [tt((n,), str(x.dtype))], [x], env, **attrs)
    assert_same_values(outs[0], refs[0], f"{name}{attrs} in the interpreter")
    compiled = np.zeros_like(outs[0])
    sf.build(IRModule({"main": func}), "cpu")["main"](x, compiled, *[env[v] for v in scalar_params(func)])
    assert_same_values(compiled, refs[0], f"{name}{attrs} compiled")


@pytest.mark.parametrize("name", ["sign", "neg", "abs", "relu", "square"])
def test_unary_special_values(name):
    run_everywhere(name, SPECIAL)


def test_sign_of_nan_is_nan_and_of_either_zero_is_plus_zero():
    (n,) = sym("n")
    with np.errstate(all="ignore"):
        outs, _, _ = legalize_and_run("sign", [tt((n,))], [SPECIAL], {n: len(SPECIAL)})
    got = outs[0]
    assert np.isnan(got[0])
    assert list(got[1:3]) == [1.0, -1.0] and list(got[5:]) == [1.0, -1.0, 1.0, -1.0]
    assert got[3] == 0.0 and got[4] == 0.0 and not np.signbit(got[3]) and not np.signbit(got[4])


def test_neg_of_plus_zero_is_minus_zero():
    (n,) = sym("n")
    outs, _, _ = legalize_and_run("neg", [tt((n,))], [np.array([0.0, -0.0], "float32")], {n: 2})
    assert list(np.signbit(outs[0])) == [True, False]


@pytest.mark.parametrize(
    "bounds",
    [
        {"min": 0.0, "max": 1.0},
        {"min": -1.0, "max": -0.0},
        {"max": 0.0},
        {"min": -0.0},
        {"min": 2.0, "max": 1.0},  # min above max: numpy gives max everywhere
        {"min": float("nan"), "max": 1.0},  # a NaN bound makes everything NaN, as in numpy
        {"min": -np.inf, "max": np.inf},
    ],
)
def test_clip_special_values(bounds):
    run_everywhere("clip", SPECIAL, **bounds)


def test_clip_keeps_the_sign_of_a_zero_inside_the_bounds():
    """np.clip returns x itself where it lies within [min, max]: clip(-0.0, 0, 1) is -0.0."""
    (n,) = sym("n")
    outs, _, _ = legalize_and_run("clip", [tt((n,))], [np.array([-0.0], "float32")], {n: 1}, min=0.0, max=1.0)
    assert np.signbit(outs[0][0])


@pytest.mark.parametrize("name", ["sign", "neg", "abs", "relu", "square"])
def test_integer_unary_ops_still_match(name):
    x = np.array([-(2**31), -5, -1, 0, 1, 7, 2**31 - 1], "int32")
    run_everywhere(name, x)


@pytest.mark.parametrize("bounds", [{"min": -2.5, "max": 3.7}, {"max": -1.0}, {"min": 5.5}])
def test_integer_clip_still_matches(bounds):
    # (an infinite bound is left out: numpy's float -> int32 conversion of it is platform-specific)
    run_everywhere("clip", np.array([-9, -3, -1, 0, 2, 3, 4, 9], "int32"), **bounds)
