"""The TensorIR that te.create_prim_func builds: parameters, blocks, iteration kinds, regions, init."""

import math

import pytest

import shapeflow as sf
from shapeflow import te
from shapeflow.ir import FloatImm, IntImm, Max, Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir import Block, BlockRealize, BufferStore, For, IfThenElse, IterType


def blocks(func) -> dict:
    """Blocks by name, in program order (the root block included)."""
    found = collect(func.body, Block)
    order = sorted(found, key=lambda b: b.name != "root")
    return {b.name: b for b in order}


def iter_kinds(block) -> str:
    return "".join("S" if iv.iter_type == IterType.SPATIAL else "R" for iv in block.iter_vars)


def region_is_point(region, var) -> bool:
    return region.min is var and isinstance(region.extent, IntImm) and region.extent.value == 1


def test_design_example_rowsum():
    n = te.var("n")
    A = te.placeholder((n, 1024), "float32", name="A")
    k = te.reduce_axis((0, 1024), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    mod = sf.ir.IRModule({"rowsum": te.create_prim_func([A, B])})
    func = mod["rowsum"]
    a_buf, b_buf = func.params
    assert (a_buf.name, b_buf.name) == ("A", "B")
    assert a_buf.shape[0] is n and b_buf.shape[0] is n and a_buf.shape[1].value == 1024
    assert func.attrs["global_symbol"] == "main" and func.attrs["tir.noalias"] is True
    assert isinstance(func.body, BlockRealize) and func.body.block.name == "root"
    assert func.body.block.iter_vars == () and func.body.block.alloc_buffers == ()
    outer = func.body.block.body
    assert isinstance(outer, For) and outer.extent is n and outer.loop_var.name == "i"
    inner = outer.body
    assert isinstance(inner, For) and inner.extent.value == 1024 and inner.loop_var.name == "k"
    realize = inner.body
    assert realize.iter_values == (outer.loop_var, inner.loop_var)
    block = realize.block
    assert block.name == "B" and iter_kinds(block) == "SR"
    vi, vk = (iv.var for iv in block.iter_vars)
    assert block.iter_vars[0].dom.extent is n
    (read,) = block.reads
    assert read.buffer is a_buf
    assert region_is_point(read.region[0], vi) and region_is_point(read.region[1], vk)
    (write,) = block.writes
    assert write.buffer is b_buf and region_is_point(write.region[0], vi)
    assert isinstance(block.init, BufferStore) and block.init.value.value == 0.0
    assert block.init.buffer is b_buf and block.init.indices == (vi,)
    update = block.body
    assert isinstance(update, BufferStore) and update.buffer is b_buf
    assert update.value.a.buffer is b_buf and update.value.b.op == "exp"


def test_function_name_and_var_bounds():
    n = te.var("n")
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    func = te.create_prim_func([A, B], name="double", var_bounds={"n": (1, 4096)})
    assert func.attrs["global_symbol"] == "double"
    assert func.attrs["var_bounds"] == {"n": (1, 4096)}
    func2 = te.create_prim_func([A, B], var_bounds={n: (2, 8)})
    assert func2.attrs["var_bounds"] == {"n": (2, 8)}


def test_elementwise_has_no_init_and_spatial_iters_only():
    m, n = te.var("m"), te.var("n")
    A = te.placeholder((m, n), name="A")
    B = te.placeholder((m, n), name="B")
    C = te.compute((m, n), lambda i, j: A[i, j] + B[i, j], name="C")
    func = te.create_prim_func([A, B, C])
    block = blocks(func)["C"]
    assert iter_kinds(block) == "SS" and block.init is None
    assert [r.buffer.name for r in block.reads] == ["A", "B"]
    assert [iv.var.name for iv in block.iter_vars] == ["v_i", "v_j"]


def test_broadcast_reads_a_point_of_the_row_vector():
    n = te.var("n")
    A = te.placeholder((n, 8), name="A")
    b = te.placeholder((8,), name="b")
    C = te.compute((n, 8), lambda i, j: A[i, j] + b[j], name="C")
    block = blocks(te.create_prim_func([A, b, C]))["C"]
    vj = block.iter_vars[1].var
    (b_read,) = [r for r in block.reads if r.buffer.name == "b"]
    assert region_is_point(b_read.region[0], vj)


def test_index_arithmetic_reads_the_whole_extent():
    n = te.var("n")
    A = te.placeholder((n + 2,), name="A")
    k = te.reduce_axis((0, 3), name="k")
    C = te.compute((n,), lambda i: te.sum(A[i + k], axis=k), name="C")
    block = blocks(te.create_prim_func([A, C]))["C"]
    (read,) = block.reads
    assert read.region[0].min.value == 0 and read.region[0].extent is read.buffer.shape[0]


def test_matmul_iter_kinds_and_param_shapes():
    M = te.var("M")
    A = te.placeholder((M, 32), name="A")
    B = te.placeholder((32, 16), name="B")
    k = te.reduce_axis((0, 32), name="k")
    C = te.compute((M, 16), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    func = te.create_prim_func([A, B, C])
    assert [tuple(s.name if isinstance(s, Var) else s.value for s in p.shape) for p in func.params] == [
        ("M", 32),
        (32, 16),
        ("M", 16),
    ]
    block = blocks(func)["C"]
    assert iter_kinds(block) == "SSR"
    vi, vj, vk = (iv.var for iv in block.iter_vars)
    a_read, b_read = block.reads
    assert region_is_point(a_read.region[0], vi) and region_is_point(a_read.region[1], vk)
    assert region_is_point(b_read.region[0], vk) and region_is_point(b_read.region[1], vj)


def test_softmax_intermediates_are_root_allocations_in_order():
    n = te.var("n")
    A = te.placeholder((n, 10), name="A")
    k1 = te.reduce_axis((0, 10), name="k1")
    mx = te.compute((n,), lambda i: te.max(A[i, k1], axis=k1), name="row_max")
    ex = te.compute((n, 10), lambda i, j: te.exp(A[i, j] - mx[i]), name="exps")
    k2 = te.reduce_axis((0, 10), name="k2")
    sm = te.compute((n,), lambda i: te.sum(ex[i, k2], axis=k2), name="row_sum")
    out = te.compute((n, 10), lambda i, j: ex[i, j] / sm[i], name="softmax")
    func = te.create_prim_func([A, out])
    root = func.body.block
    assert [b.name for b in root.alloc_buffers] == ["row_max", "exps", "row_sum"]
    assert root.alloc_buffers[1].shape[0] is n
    names = [s.block.name for s in collect(root.body, BlockRealize)]
    assert names == ["row_max", "exps", "row_sum", "softmax"]
    assert [p.name for p in func.params] == ["A", "softmax"]
    init = blocks(func)["row_max"].init.value
    assert isinstance(init, FloatImm) and init.value == -math.inf
    assert isinstance(blocks(func)["row_max"].body.value, Max)


def test_output_listed_first_keeps_parameter_order():
    A = te.placeholder((4,), name="A")
    B = te.compute((4,), lambda i: A[i] + 1.0, name="B")
    func = te.create_prim_func([B, A])
    assert [p.name for p in func.params] == ["B", "A"]


def test_custom_comm_reducer_init_and_update():
    absmax = te.comm_reducer(
        lambda x, y: te.maximum(te.abs(x), te.abs(y)), lambda dt: te.const(0.0, dt), "absmax"
    )
    A = te.placeholder((6, 5), name="A")
    k = te.reduce_axis((0, 5), name="k")
    B = te.compute((6,), lambda i: absmax(A[i, k], axis=k), name="B")
    block = blocks(te.create_prim_func([A, B]))["B"]
    assert block.init.value.value == 0.0
    update = block.body.value
    assert isinstance(update, Max) and update.a.op == "abs" and update.b.op == "abs"


def test_where_predicate_guards_update_not_init():
    n = te.var("n")
    A = te.placeholder((n,), name="A")
    k = te.reduce_axis((0, n), name="k")
    B = te.compute((n,), lambda i: te.sum(A[k], axis=k, where=k <= i), name="prefix")
    block = blocks(te.create_prim_func([A, B]))["prefix"]
    assert isinstance(block.init, BufferStore)
    assert isinstance(block.body, IfThenElse) and isinstance(block.body.then_case, BufferStore)
    assert block.iter_vars[1].dom.extent is n


def test_scalar_var_parameter():
    n = te.var("n")
    alpha = te.var("alpha", "float32")
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * alpha, name="B")
    func = te.create_prim_func([A, alpha, B])
    assert func.params[1] is alpha
    assert [type(p).__name__ for p in func.params] == ["Buffer", "Var", "Buffer"]


def test_reduce_axis_with_offset_keeps_its_minimum():
    A = te.placeholder((10,), name="A")
    k = te.reduce_axis((2, 7), name="k")
    B = te.compute((1,), lambda i: te.sum(A[k], axis=k), name="B")
    func = te.create_prim_func([A, B])
    loops = collect(func.body, For)
    k_loop = [f for f in loops if f.loop_var.name == "k"][0]
    assert (k_loop.min.value, k_loop.extent.value) == (2, 5)
    dom = blocks(func)["B"].iter_vars[1].dom
    assert (dom.min.value, dom.extent.value) == (2, 5)


def test_multi_output_compute_is_one_block():
    A = te.placeholder((8,), name="A")
    lo, hi = te.compute((8,), lambda i: (A[i] - 1.0, A[i] + 1.0), name="pm")
    assert (lo.name, hi.name) == ("pm_v0", "pm_v1") and lo.op is hi.op
    func = te.create_prim_func([A, lo, hi])
    block = blocks(func)["pm"]
    assert [w.buffer.name for w in block.writes] == ["pm_v0", "pm_v1"]


def test_padding_select_becomes_if_so_no_out_of_bounds_load():
    n = te.var("n")
    A = te.placeholder((n,), name="A")
    P = te.compute((n + 2,), lambda i: te.if_then_else(te.all(i >= 1, i <= n), A[i - 1], 0.0), name="pad")
    block = blocks(te.create_prim_func([A, P]))["pad"]
    assert isinstance(block.body, IfThenElse)


def test_zero_dim_output():
    A = te.placeholder((5,), name="A")
    k = te.reduce_axis((0, 5), name="k")
    S = te.compute((), lambda: te.sum(A[k], axis=k), name="total")
    func = te.create_prim_func([A, S])
    block = blocks(func)["total"]
    assert iter_kinds(block) == "R" and block.writes[0].region == ()


def test_tensor_attributes():
    n = te.size_var("n")
    A = te.placeholder((n, 3), "float16", name="A")
    assert A.ndim == 2 and A.dtype == "float16" and A.name == "A" and A.shape[0] is n
    B = te.compute((n,), lambda i: A[i, 0], name="B", tag="copy", attrs={"note": 1})
    assert B.op.tag == "copy" and B.op.input_tensors == (A,) and len(B.op.axis) == 1
    assert blocks(te.create_prim_func([A, B]))["B"].annotations == {"note": 1}


@pytest.mark.parametrize(
    "reducer, dtype, expected",
    [
        (te.sum, "float32", 0.0),
        (te.prod, "float32", 1.0),
        (te.max, "float32", -math.inf),
        (te.min, "float32", math.inf),
        (te.max, "int32", -(2**31)),
        (te.min, "int8", 127),
        (te.prod, "int64", 1),
    ],
)
def test_identities(reducer, dtype, expected):
    A = te.placeholder((4, 4), dtype, name="A")
    k = te.reduce_axis((0, 4), name="k")
    B = te.compute((4,), lambda i: reducer(A[i, k], axis=k), name="B")
    init = blocks(te.create_prim_func([A, B]))["B"].init.value
    assert init.dtype == dtype and init.value == expected


def test_binary_max_min_and_limits():
    a, b = te.var("a", "float32"), te.var("b", "float32")
    assert type(te.max(a, b)).__name__ == "Max" and type(te.min(a, 1.0)).__name__ == "Min"
    assert type(te.maximum(a, b)).__name__ == "Max" and type(te.minimum(a, b)).__name__ == "Min"
    assert te.max_value("float32").value == pytest.approx(3.4028234663852886e38)
    assert te.min_value("int8").value == -128 and te.max_value("uint8").value == 255


def test_math_functions_build_intrinsic_calls():
    x = te.var("x", "float32")
    for name, fn in te.MATH_FUNCTIONS.items():
        arity = {"pow": 2, "power": 2, "fma": 3}.get(name, 1)
        call = fn(*([x] * arity))
        assert call.op == ("pow" if name == "power" else name)
        assert call.dtype == ("bool" if name in ("isnan", "isinf") else "float32")
    assert te.exp(1.0).dtype == "float32"
    assert te.floordiv(te.var("i"), 4).dtype == "int64"
    assert type(te.truncmod(te.var("i"), 4)).__name__ == "Mod"


def _softmax():
    n = te.var("n")
    A = te.placeholder((n, 10), name="A")
    k1, k2 = te.reduce_axis((0, 10), name="k"), te.reduce_axis((0, 10), name="k")
    mx = te.compute((n,), lambda i: te.max(A[i, k1], axis=k1), name="row_max")
    ex = te.compute((n, 10), lambda i, j: te.exp(A[i, j] - mx[i]), name="exps")
    sm = te.compute((n,), lambda i: te.sum(ex[i, k2], axis=k2), name="row_sum")
    return [A, te.compute((n, 10), lambda i, j: ex[i, j] / sm[i], name="softmax")]


def _padded_prefix_sum():
    n = te.var("n")
    X = te.placeholder((n,), name="X")
    P = te.compute((n + 2,), lambda i: te.if_then_else(te.all(i >= 1, i <= n), X[i - 1], 0.0), name="pad")
    k = te.reduce_axis((0, n), name="k")
    return [X, te.compute((n,), lambda i: te.sum(P[k], axis=k, where=k <= i), name="cumsum")]


def _scalar_and_multi_output():
    n, alpha = te.var("n"), te.var("alpha", "float32")
    A = te.placeholder((n, 9), "float32", name="A")
    pair = lambda i, j: (A[i, j] * alpha, te.cast(te.floordiv(i, 2), "float32"))
    lo, hi = te.compute((n, 9), pair, name="pm")
    k = te.reduce_axis((2, 7), name="k")
    S = te.compute((n,), lambda i: te.prod(hi[i, k], axis=k), name="S")
    return [A, alpha, lo, S]


def _int_max_reduction():
    m = te.size_var("m")
    A = te.placeholder((m, 4), "int32", name="A")
    k = te.reduce_axis((0, 4), name="k")
    return [A, te.compute((m,), lambda i: te.max(A[i, k], axis=k), name="B")]


@pytest.mark.parametrize("make", [_softmax, _padded_prefix_sum, _scalar_and_multi_output, _int_max_reduction])
def test_text_round_trip(make):
    """What prints parses back to a structurally equal function, inside a module as on its own."""
    func = te.create_prim_func(make())
    sf.ir.assert_structural_equal(sf.ir.parse(func.script()), func)
    mod = sf.ir.IRModule({"kernel": func})
    sf.ir.assert_structural_equal(sf.ir.parse(mod.script()), mod)


def test_design_example_round_trip():
    n = te.var("n")
    A = te.placeholder((n, 1024), "float32", name="A")
    k = te.reduce_axis((0, 1024), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    mod = sf.ir.IRModule({"rowsum": te.create_prim_func([A, B], var_bounds={"n": (1, 4096)})})
    assert sf.ir.structural_equal(sf.ir.parse(mod.script()), mod)
