"""conv1d/conv2d, pooling, batch_norm and group_norm: type inference, and legalization against numpy."""

import pytest
from test_legalize_helpers import check, random_array, sym, tt

from shapeflow.errors import ShapeError
from shapeflow.ir.graph import GraphVar
from shapeflow.ir.graph.ops import infer_call_type, make_call
from shapeflow.ir.graph.shape import evaluate

SIZES = [1, 5, 7]


def test_conv2d_variants():
    h, w = sym("h", "w")
    for size in SIZES:
        x = random_array((2, 4, size, size + 2), "float32")
        types = [tt((2, 4, h, w)), tt((6, 2, 3, 2))]
        wt = random_array((6, 2, 3, 2), "float32")
        env = {h: size, w: size + 2}
        check("conv2d", types, [x, wt], env, padding=(1, 1), groups=2, rtol=1e-4, atol=1e-5)
        check(
            "conv2d",
            types,
            [x, wt],
            env,
            strides=(2, 1),
            padding=(2, 0, 1, 1),
            dilation=(2, 1),
            groups=2,
            rtol=1e-4,
            atol=1e-5,
        )
        wt1 = random_array((3, 4, 1, 1), "float32")
        check("conv2d", [tt((2, 4, h, w)), tt((3, 4, 1, 1))], [x, wt1], env, rtol=1e-4, atol=1e-5)


def test_conv1d():
    (n,) = sym("n")
    for size in SIZES:
        x = random_array((1, 3, size), "float32")
        wt = random_array((3, 1, 3), "float32")
        check(
            "conv1d",
            [tt((1, 3, n)), tt((3, 1, 3))],
            [x, wt],
            {n: size},
            padding=2,
            dilation=2,
            groups=3,
            rtol=1e-4,
            atol=1e-5,
        )


def test_conv_channel_mismatch_is_shape_error():
    call = make_call("conv2d", [GraphVar("x", tt((1, 4, 5, 5))), GraphVar("w", tt((2, 3, 1, 1)))])
    with pytest.raises(ShapeError):
        infer_call_type(call, [tt((1, 4, 5, 5)), tt((2, 3, 1, 1))])


def test_conv_output_shape_symbolic():
    (h,) = sym("h")
    types = [tt((1, 1, h, 9)), tt((1, 1, 3, 3))]
    call = make_call(
        "conv2d", [GraphVar("x", types[0]), GraphVar("w", types[1])], {"strides": (2, 2), "padding": (1,)}
    )
    out = infer_call_type(call, types)
    assert [evaluate(d, {h: 11}) for d in out.shape] == [1, 1, 6, 5]


def test_pools():
    h, w = sym("h", "w")
    for size in SIZES:
        x = random_array((1, 2, size + 2, size + 1), "float32")
        env = {h: size + 2, w: size + 1}
        t = [tt((1, 2, h, w))]
        check("max_pool2d", t, [x], env, pool_size=(2, 2), padding=(1, 1))
        check(
            "max_pool2d", t, [x], env, pool_size=(3, 2), strides=(2, 1), dilation=(1, 2), padding=(1, 1, 1, 0)
        )
        check("avg_pool2d", t, [x], env, pool_size=(2, 2), padding=(1, 1), count_include_pad=True)
        check(
            "avg_pool2d",
            t,
            [x],
            env,
            pool_size=(3, 3),
            strides=(2, 2),
            padding=(1, 1),
            count_include_pad=False,
        )
        check("adaptive_avg_pool2d", t, [x], env, output_size=(2, 3), rtol=1e-5)
        check("adaptive_avg_pool2d", t, [x], env, output_size=(1, 1), rtol=1e-5)


def test_batch_norm_and_group_norm():
    (n,) = sym("n")
    for size in SIZES:
        x = random_array((size, 4, 3, 2), "float32")
        params = [random_array((4,), "float32", 0.5, 1.5) for _ in range(4)]
        types = [tt((n, 4, 3, 2))] + [tt((4,))] * 4
        check("batch_norm", types, [x, *params], {n: size}, rtol=1e-5)
        check("group_norm", types[:3], [x, *params[:2]], {n: size}, num_groups=2, rtol=1e-4, atol=1e-5)
        check(
            "group_norm",
            [tt((2, 4, n)), tt((4,)), tt((4,))],
            [random_array((2, 4, size), "float32"), *params[:2]],
            {n: size},
            num_groups=4,
            rtol=1e-4,
            atol=1e-4,
        )
