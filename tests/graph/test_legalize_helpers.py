"""Shared checker for the legalization tests: an op call legalized to a PrimFunc, run through the loop-level
interpreter, against the op's numpy reference."""

from __future__ import annotations

import numpy as np

from shapeflow.ir.expr import PrimExpr, Var
from shapeflow.ir.graph import GraphVar, TensorType
from shapeflow.ir.graph.legalize import legalize_call, scalar_params
from shapeflow.ir.graph.ops import get_op_def, make_call
from shapeflow.ir.graph.shape import evaluate
from shapeflow.ir.graph.types import TupleType
from shapeflow.ir.tir.interpreter import run as run_prim_func

RNG = np.random.default_rng(0)


def random_array(shape, dtype, low=-2.0, high=2.0):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) < 0.5
    if dtype.kind in "iu":
        return RNG.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


def _eval_attr(value, env):
    if isinstance(value, PrimExpr):
        return evaluate(value, env)
    if isinstance(value, tuple) and any(isinstance(v, PrimExpr) for v in value):
        return tuple(_eval_attr(v, env) for v in value)
    return value


def legalize_and_run(name, types, arrays, env, **attrs):
    """(legalized outputs, reference outputs, PrimFunc) of op `name` with argument `types` on `arrays`."""
    args = [GraphVar(f"a{i}", t) for i, t in enumerate(types)]
    call = make_call(name, args, attrs)
    func, out_type = legalize_call(call, types)
    fields = out_type.fields if isinstance(out_type, TupleType) else (out_type,)
    outs = [np.zeros([evaluate(d, env) for d in f.shape], f.dtype.to_numpy()) for f in fields]
    scalars = [env[v] for v in scalar_params(func)]
    run_prim_func(func, *arrays, *outs, *scalars)
    op_def = get_op_def(name)
    full = op_def.normalize_attrs(call.attrs)
    ref = op_def.reference(*arrays, **{k: _eval_attr(v, env) for k, v in full.items()})
    refs = list(ref) if isinstance(ref, tuple) else [ref]
    return outs, [np.asarray(r) for r in refs], func


def check(name, types, arrays, env, rtol=1e-5, atol=1e-5, **attrs):
    outs, refs, func = legalize_and_run(name, types, arrays, env, **attrs)
    assert len(outs) == len(refs)
    for got, want in zip(outs, refs):
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
    return func


def sym(*names):
    return tuple(Var(n) for n in names)


def tt(shape, dtype="float32"):
    return TensorType(tuple(shape), dtype)
