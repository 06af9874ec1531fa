"""Property: for random executable PrimFuncs (tests/strategies_tir.py), lowered and compiled code computes
what the reference interpreter computes on the unlowered function, for random symbolic dimensions."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_tir import prim_funcs

import shapeflow as sf
from shapeflow.ir.expr import IntImm, Var
from shapeflow.ir.tir.interpreter import run as interpret


def _arrays(func, dims, rng):
    out = []
    for p in func.params:
        shape = tuple(e.value if isinstance(e, IntImm) else dims[e.name] for e in p.shape)
        dtype = p.dtype.to_numpy()
        if p.dtype.is_float:
            out.append((rng.standard_normal(shape) * 2).astype(dtype))
        elif p.dtype.is_bool:
            out.append(rng.random(shape) < 0.5)
        else:
            info = np.iinfo(dtype)
            out.append(
                rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)
            )
    return out


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    func=prim_funcs(),
    sizes=st.lists(st.sampled_from([1, 2, 3, 7, 13, 16]), min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_compiled_equals_interpreter(func, sizes, seed):
    names = [v.name for p in func.params for v in p.shape if isinstance(v, Var)]
    dims = {"n": sizes[0], "m": sizes[1]}
    dims = {k: v for k, v in dims.items() if k in names}
    rng = np.random.default_rng(seed)
    inputs = _arrays(func, dims, rng)
    expected = [a.copy() for a in inputs]
    with np.errstate(all="ignore"):
        interpret(func, *expected)
    got = [a.copy() for a in inputs]
    lib = sf.build(sf.ir.IRModule({"main": func}), target=sf.Target("cpu", fast_math=False))
    lib["main"](*got)
    for g, e in zip(got, expected):
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-5, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, e)
