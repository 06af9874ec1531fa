"""scaled_dot_product_attention, gather_elements and pad: legalization vs numpy at symbolic sizes."""

import numpy as np
from test_legalize_helpers import check, random_array, sym, tt

SIZES = [1, 5, 8]


def test_sdpa():
    (s,) = sym("s")
    for size in SIZES:
        q, k, v = (random_array((1, 2, size, 4), "float32") for _ in range(3))
        types = [tt((1, 2, s, 4))] * 3
        check("scaled_dot_product_attention", types, [q, k, v], {s: size}, rtol=1e-4, atol=1e-5)
        check("scaled_dot_product_attention", types, [q, k, v], {s: size}, causal=True, rtol=1e-4, atol=1e-5)
        check(
            "scaled_dot_product_attention",
            types,
            [q * 40, k * 40, v],
            {s: size},
            scale=1.0,
            rtol=1e-4,
            atol=1e-5,
        )


def test_gather_elements_and_pad():
    (n,) = sym("n")
    for size in SIZES:
        x = random_array((size, 3), "float32")
        idx = random_array((size, 5), "int64", -3, 2)
        check("gather_elements", [tt((n, 3)), tt((n, 5), "int64")], [x, idx], {n: size}, axis=1)
        idx0 = np.array([[0, size - 1, -1]], "int32")
        check("gather_elements", [tt((n, 3)), tt((1, 3), "int32")], [x, idx0], {n: size}, axis=0)
        check("pad", [tt((n, 3))], [x], {n: size}, pad_width=(1, 2, 0, 3), pad_value=-1.5)
