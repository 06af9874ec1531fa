"""Hypothesis strategies for well-formed but not necessarily executable loop IR of every kind
(`ir_prim_funcs()`, `stmts()`), for the printer/parser and structural tests. The shared pieces and the
executable family are in strategies_tir.py, which re-exports these two strategies; see its docstring.
"""

from __future__ import annotations

from hypothesis import strategies as st
from strategies_tir import (
    ALL_SCALAR_DTYPES,
    BOOL,
    INT64,
    Env,
    _elementwise,
    _Func,
    _gen,
    _index_expr,
    _make_signature,
    _reduction,
)

from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc


def _any_dtype(draw, vectors: bool = True) -> DataType:
    dtype = DataType(draw(st.sampled_from(ALL_SCALAR_DTYPES)))
    if vectors and draw(st.integers(0, 3)) == 0:
        dtype = dtype.with_lanes(draw(st.sampled_from([2, 4, 8])))
    return dtype


def _attr_values():
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
        st.builds(E.IntImm, st.sampled_from(["int64", "int32", "bool"]), st.integers(0, 1)),
        st.builds(E.FloatImm, st.just("float32"), st.floats(-4, 4)),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=4), inner, max_size=3),
        ),
        max_leaves=8,
    )


def _rich_stmt(draw, fn: _Func, env: Env, depth: int) -> S.Stmt:
    kind = draw(st.integers(0, 11 if depth > 0 else 3))
    if kind == 0:
        return draw(st.sampled_from([_elementwise, _reduction]))(draw, fn)
    if kind == 1:
        return S.Evaluate(_gen(draw, _any_dtype(draw), env, 3))
    if kind == 2:
        return S.AssertStmt(_gen(draw, BOOL, env, 2), draw(st.text(max_size=8)))
    if kind == 3:
        out = draw(st.sampled_from(fn.inputs + fn.outputs))
        lanes = draw(st.sampled_from([1, 4]))
        index_dtype = INT64.with_lanes(lanes)
        indices = [_gen(draw, INT64, env, 1) for _ in out.shape]
        if indices and lanes > 1:
            indices[-1] = E.Ramp(indices[-1], E.IntImm(INT64, 1), lanes)
        elif lanes > 1:
            lanes = 1
        del index_dtype
        return S.BufferStore(out, _gen(draw, out.dtype.with_lanes(lanes), env, 2), tuple(indices))
    inner = depth - 1
    if kind == 4:
        cond = _gen(draw, BOOL, env, 2)
        other = _rich_stmt(draw, fn, env, inner) if draw(st.booleans()) else None
        return S.IfThenElse(cond, _rich_stmt(draw, fn, env, inner), other)
    if kind == 5:
        dtype = DataType(draw(st.sampled_from(["int64", "int32", "float32"])))
        var = E.Var(draw(st.sampled_from(["x", "y"])), dtype)
        value = _gen(draw, dtype, env, 2)
        return S.LetStmt(var, value, _rich_stmt(draw, fn, Env([*env.vars, var], env.loads, False), inner))
    if kind == 6:
        dtype = DataType(draw(st.sampled_from(["int64", "int32"])))
        var = E.Var(draw(st.sampled_from(["i", "j", "T", "lambda", "if"])), dtype)
        extent = _gen(draw, dtype, env, 1)
        loop_kind = draw(st.sampled_from(list(S.ForKind)))
        tag = (
            draw(st.sampled_from(["threadIdx.x", "blockIdx.y"]))
            if loop_kind == S.ForKind.THREAD_BINDING
            else ""
        )
        annotations = draw(st.dictionaries(st.sampled_from(["pragma", "x"]), _attr_values(), max_size=2))
        body = _rich_stmt(draw, fn, Env([*env.vars, var], env.loads, False), inner)
        return S.For(
            var, E.make_const(dtype, draw(st.integers(0, 2))), extent, loop_kind, body, tag, annotations
        )
    if kind in (7, 8):
        buf = _rich_buffer(draw, fn, env)
        inner_env = Env(
            env.vars, [*env.loads, E.BufferLoad(buf, tuple(E.IntImm(INT64, 0) for _ in buf.shape))], False
        )
        fn.inputs.append(buf)
        try:
            body = _rich_stmt(draw, fn, inner_env, inner)
        finally:
            fn.inputs.pop()
        return S.Allocate(buf, body) if kind == 7 else S.DeclBuffer(buf, body)
    if kind == 9:
        return S.seq(*[_rich_stmt(draw, fn, env, inner) for _ in range(draw(st.integers(2, 3)))])
    return _rich_block(draw, fn, env, inner)


def _rich_buffer(draw, fn: _Func, env: Env) -> Buffer:
    # Shapes use no Let: full regions repeat the shape's nodes, and a Let bound twice is not well-formed.
    index_env = Env([v for v in env.vars if v.dtype == INT64], [], True)
    shape = tuple(_index_expr(draw, index_env, 1) for _ in range(draw(st.integers(0, 2))))
    strides = tuple(_index_expr(draw, index_env, 1) for _ in shape) if draw(st.booleans()) else ()
    offset = _index_expr(draw, index_env, 1) if draw(st.booleans()) else 0
    scope = draw(st.sampled_from(["global", "shared", "local"]))
    align = draw(st.sampled_from([64, 16]))
    data = None
    if draw(st.booleans()) and fn.inputs:
        data = draw(st.sampled_from(fn.inputs)).data
    name = draw(st.sampled_from(["buf", "A0", "x", "None"]))
    return Buffer(name, shape, _any_dtype(draw, vectors=False), strides, offset, scope, data, align)


def _rich_block(draw, fn: _Func, env: Env, depth: int) -> S.Stmt:
    iter_vars, values = [], []
    axis_vars = []
    for _ in range(draw(st.integers(0, 2))):
        var = E.Var(draw(st.sampled_from(["vi", "vj", "v"])), INT64)
        lo = E.IntImm(INT64, draw(st.integers(0, 2)))
        iter_vars.append(
            S.IterVar(var, S.Range(lo, _gen(draw, INT64, env, 1)), draw(st.sampled_from(list(S.IterType))))
        )
        values.append(_gen(draw, INT64, env, 1))
        axis_vars.append(var)
    inner = Env([*env.vars, *axis_vars], env.loads, False)
    allocs = [_rich_buffer(draw, fn, inner) for _ in range(draw(st.integers(0, 1)))]
    regions = []
    for buf in draw(st.lists(st.sampled_from(fn.inputs + fn.outputs + allocs), max_size=3)):
        ranges = []
        for _ in buf.shape:
            extent = E.IntImm(INT64, 1) if draw(st.booleans()) else _gen(draw, INT64, inner, 1)
            ranges.append(S.Range(_gen(draw, INT64, inner, 1), extent))
        regions.append(S.BufferRegion(buf, tuple(ranges)))
    split = draw(st.integers(0, len(regions)))
    init = _rich_stmt(draw, fn, inner, depth) if draw(st.booleans()) else None
    body = _rich_stmt(draw, fn, inner, depth)
    annotations = draw(st.dictionaries(st.sampled_from(["a", "meta"]), _attr_values(), max_size=2))
    block = S.Block(
        draw(st.sampled_from(["root", "b", "block 1"])),
        tuple(iter_vars),
        tuple(regions[:split]),
        tuple(regions[split:]),
        body,
        init,
        tuple(allocs),
        annotations,
    )
    predicate = _gen(draw, BOOL, env, 2) if draw(st.booleans()) else E.IntImm(BOOL, 1)
    return S.BlockRealize(tuple(values), predicate, block)


@st.composite
def stmts(draw, fn_env: tuple | None = None, max_depth: int = 3) -> S.Stmt:
    """A statement of any kind over the buffers and variables of `fn_env` ((_Func, Env)), or of a fresh
    signature when None."""
    if fn_env is None:
        fn = _make_signature(draw, ALL_SCALAR_DTYPES, 2, 1, safe=False)
        env = Env(list(fn.dims), [], False)
    else:
        fn, env = fn_env
    return _rich_stmt(draw, fn, env, max_depth)


@st.composite
def ir_prim_funcs(draw, max_depth: int = 3) -> PrimFunc:
    """A well-formed PrimFunc using every kind of node (see the module docstring); not meant to run."""
    fn = _make_signature(draw, ALL_SCALAR_DTYPES, 2, 1, safe=False)
    fn.safe = False
    scalars = [
        E.Var(name, _any_dtype(draw)) for name in draw(st.lists(st.sampled_from(["x", "s", "n"]), max_size=2))
    ]
    if draw(st.booleans()):  # an int32 symbolic dimension, defined by a scalar parameter
        dim32 = E.Var("k", DataType("int32"))
        scalars.append(dim32)
        fn.inputs.append(Buffer("K", (dim32, E.IntImm(DataType("int32"), 2)), DataType("float32")))
    if fn.inputs and draw(st.booleans()):  # a parameter aliasing another's data, with strides and offset
        src = fn.inputs[0]
        fn.inputs.append(
            Buffer(
                "alias", (E.IntImm(INT64, 4),), src.dtype, (E.IntImm(INT64, 2),), 1, "global", src.data, 16
            )
        )
    env = Env([*fn.dims, *scalars], [], False)
    body = _rich_stmt(draw, fn, env, max_depth)
    attrs = draw(
        st.dictionaries(st.sampled_from(["global_symbol", "tir.noalias", "meta"]), _attr_values(), max_size=3)
    )
    if fn.dims and draw(st.booleans()):
        attrs["shape_expr"] = E.Add(fn.dims[0], E.IntImm(INT64, 1))
    params = [*fn.inputs, *fn.outputs]
    for var in scalars:
        params.insert(draw(st.integers(0, len(params))), var)
    return PrimFunc(tuple(params), body, attrs)
