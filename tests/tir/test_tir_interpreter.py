"""The loop-IR interpreter on whole programs: elementwise, reductions, block nests, vectors, aliasing,
allocation, control flow, and the argument checks at entry."""

import numpy as np
import pytest
from tir_interp_examples import elementwise, f32, i64, matmul, root, rowsum, serial

from shapeflow.errors import Error, ShapeError
from shapeflow.ir import (
    EQ,
    LT,
    Broadcast,
    FloatImm,
    IntImm,
    IRModule,
    Let,
    Ramp,
    Select,
    Var,
)
from shapeflow.ir.tir import (
    Allocate,
    AssertStmt,
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    DeclBuffer,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    LetStmt,
    PrimFunc,
    Range,
    call_intrinsic,
    decl_buffer,
    interpret,
    run_module,
    seq,
)
from shapeflow.ir.tir.interpreter import AssertionFailed, InterpreterError, run

SIZES = [1, 2, 3, 7, 13, 64, 97]


@pytest.mark.parametrize("n", SIZES + [1000])
def test_elementwise_matches_numpy(n):
    a = np.random.default_rng(n).standard_normal(n).astype("float32")
    b = np.full(n, np.nan, "float32")
    run(elementwise(), a, b)
    np.testing.assert_array_equal(b, a * np.float32(2) + np.float32(1))


@pytest.mark.parametrize("n,m", [(1, 1), (1, 13), (7, 1), (5, 11), (31, 17)])
def test_reduction_with_init_matches_numpy(n, m):
    a = np.random.default_rng(0).integers(-100, 100, (n, m)).astype("int32")
    b = np.full(n, 12345, "int32")  # garbage the init must overwrite
    run(rowsum(), a, b)
    np.testing.assert_array_equal(b, a.sum(axis=1))


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (2, 3, 5), (7, 1, 13), (16, 16, 16), (3, 17, 2)])
def test_matmul_block_nest_matches_numpy(m, n, k):
    rng = np.random.default_rng(m * 100 + n)
    a = rng.integers(-5, 5, (m, k)).astype("int64")
    b = rng.integers(-5, 5, (k, n)).astype("int64")
    c = np.full((m, n), -1, "int64")
    interpret(matmul("int64"), a, b, c)
    np.testing.assert_array_equal(c, a @ b)


def test_matmul_float32_close_to_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((9, 23)).astype("float32"), rng.standard_normal((23, 5)).astype("float32")
    c = np.zeros((9, 5), "float32")
    run(matmul(), a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_init_runs_at_reduction_domain_minimum_and_predicate_skips():
    # The reduction axis has domain [2, 6): init must run when vk == 2 (not 0), and the predicate
    # (i < 3) must skip rows 3.. entirely, leaving them untouched.
    A = decl_buffer((5, 6), "int32", "A")
    B = decl_buffer((5,), "int32", "B")
    i, k, vi, vk = Var("i"), Var("k"), Var("vi"), Var("vk")
    block = Block(
        "B",
        (IterVar(vi, Range.from_extent(5)), IterVar(vk, Range(i64(2), i64(4)), IterType.REDUCE)),
        (BufferRegion.full(A),),
        (BufferRegion.full(B),),
        BufferStore(B, B[vi] + A[vi, vk], (vi,)),
        init=BufferStore(B, IntImm("int32", 100), (vi,)),
    )
    realize = BlockRealize((i, k + 2), LT(i, i64(3)), block)
    func = PrimFunc((A, B), root(serial(i, i64(5), serial(k, i64(4), realize))))
    a = np.arange(30, dtype="int32").reshape(5, 6)
    b = np.full(5, -7, "int32")
    run(func, a, b)
    expected = np.array([100 + a[r, 2:6].sum() for r in range(3)] + [-7, -7], "int32")
    np.testing.assert_array_equal(b, expected)


def test_block_binding_outside_domain_is_an_error():
    A = decl_buffer((4,), "int32", "A")
    i, vi = Var("i"), Var("vi")
    block = Block(
        "A",
        (IterVar(vi, Range.from_extent(3)),),
        (),
        (BufferRegion.full(A),),
        BufferStore(A, IntImm("int32", 1), (vi,)),
    )
    func = PrimFunc((A,), root(serial(i, i64(4), BlockRealize((i,), IntImm("bool", 1), block))))
    with pytest.raises(Error, match="outside its domain"):
        run(func, np.zeros(4, "int32"))


def test_every_loop_kind_runs_serially_in_order():
    # A loop-carried dependency shows the order: B[i] = B[i - 1] + 1 counts up only if run serially.
    for kind in (ForKind.SERIAL, ForKind.PARALLEL, ForKind.VECTORIZED, ForKind.UNROLLED):
        B = decl_buffer((6,), "int32", "B")
        i = Var("i")
        body = BufferStore(B, B[i - 1 + 1 - 1] + IntImm("int32", 1), (i,))
        func = PrimFunc((B,), For(i, i64(1), i64(5), kind, body))
        b = np.zeros(6, "int32")
        run(func, b)
        np.testing.assert_array_equal(b, [0, 1, 2, 3, 4, 5])
    B = decl_buffer((4,), "int32", "B")
    t = Var("tx")
    func = PrimFunc(
        (B,),
        For(
            t,
            i64(0),
            i64(4),
            ForKind.THREAD_BINDING,
            BufferStore(B, IntImm("int32", 9), (t,)),
            thread_tag="threadIdx.x",
        ),
    )
    b = np.zeros(4, "int32")
    run(func, b)
    assert (b == 9).all()


def test_vector_load_store_broadcast_select():
    # B[4i:4i+4] = select(A[4i:4i+4] < 0, 0, A[4i:4i+4] + 1.5), with Ramp indices.
    n = Var("n")
    A = decl_buffer((n * 4,), "float32", "A")
    B = decl_buffer((n * 4,), "float32", "B")
    i = Var("i")
    idx = Ramp(i * 4, i64(1), 4)
    load = A.load((idx,))
    value = Select(LT(load, Broadcast(f32(0.0), 4)), Broadcast(f32(0.0), 4), load + Broadcast(f32(1.5), 4))
    func = PrimFunc((A, B), serial(i, n, BufferStore(B, value, (idx,))))
    a = np.random.default_rng(1).standard_normal(28).astype("float32")
    b = np.zeros(28, "float32")
    run(func, a, b)
    np.testing.assert_array_equal(b, np.where(a < 0, np.float32(0), a + np.float32(1.5)))


def test_strided_vector_gather_and_int_ramp():
    A = decl_buffer((3, 4), "int32", "A")
    B = decl_buffer((4, 3), "int32", "B")
    j = Var("j")
    # Transpose one column per iteration: B[j, 0:3] = A[0:3, j].
    func = PrimFunc(
        (A, B),
        serial(j, i64(4), BufferStore(B, A.load((Ramp(i64(0), i64(1), 3), j)), (j, Ramp(i64(0), i64(1), 3)))),
    )
    a = np.arange(12, dtype="int32").reshape(3, 4)
    b = np.zeros((4, 3), "int32")
    run(func, a, b)
    np.testing.assert_array_equal(b, a.T)


def test_decl_buffer_aliases_the_same_storage():
    n = Var("n")
    A = decl_buffer((n, 4), "float32", "A")
    flat = decl_buffer((n * 4,), "float32", "A_flat", data=A.data)
    j = Var("j")
    body = DeclBuffer(flat, serial(j, n * 4, BufferStore(flat, flat[j] + f32(1.0), (j,))))
    func = PrimFunc((A,), body)
    a = np.arange(12, dtype="float32").reshape(3, 4)
    run(func, a)
    np.testing.assert_array_equal(a, np.arange(12, dtype="float32").reshape(3, 4) + 1)


def test_decl_buffer_reinterprets_dtype():
    A = decl_buffer((2,), "float32", "A")
    bits = decl_buffer((2,), "int32", "bits", data=A.data)
    out = decl_buffer((2,), "int32", "out")
    j = Var("j")
    func = PrimFunc((A, out), DeclBuffer(bits, serial(j, i64(2), BufferStore(out, bits[j], (j,)))))
    a = np.array([1.0, -2.0], "float32")
    o = np.zeros(2, "int32")
    run(func, a, o)
    np.testing.assert_array_equal(o, a.view("int32"))


def test_allocate_is_fresh_zeroed_scratch_per_execution():
    # Each outer iteration allocates T (zeros), adds i into it twice, and stores T[0] out.
    B = decl_buffer((4,), "int64", "B")
    T = decl_buffer((1,), "int64", "T", scope="local")
    i = Var("i")
    acc = BufferStore(T, T[0] + i, (i64(0),))
    body = Allocate(T, seq(acc, acc, BufferStore(B, T[0], (i,))))
    func = PrimFunc((B,), serial(i, i64(4), body))
    b = np.full(4, -1, "int64")
    run(func, b)
    np.testing.assert_array_equal(b, [0, 2, 4, 6])


def test_let_if_assert_and_intrinsics():
    n = Var("n")
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    i, x, y = Var("i"), Var("x", "float32"), Var("y", "float32")
    exp_x = call_intrinsic("exp", x)
    then = BufferStore(B, Let(y, exp_x, y * f32(2.0)), (i,))
    other = BufferStore(B, f32(-1.0), (i,))
    body = LetStmt(x, A[i], IfThenElse(EQ(FloorMod_(i), i64(0)), then, other))
    func = PrimFunc((A, B), seq(AssertStmt(LT(i64(0), n), "n must be positive"), serial(i, n, body)))
    a = np.linspace(-1, 1, 9).astype("float32")
    b = np.zeros(9, "float32")
    run(func, a, b)
    expected = np.where(
        np.arange(9) % 2 == 0, np.exp(a.astype("float64")).astype("float32") * np.float32(2), -1
    )
    np.testing.assert_array_equal(b, expected.astype("float32"))
    with pytest.raises(AssertionFailed, match="n must be positive") as info:
        run(func, np.zeros(0, "float32"), np.zeros(0, "float32"))
    assert isinstance(info.value, Error) and info.value.message == "n must be positive"


def FloorMod_(i):
    return i % 2


def test_out_of_bounds_access_names_buffer_and_index():
    A = decl_buffer((4,), "float32", "A")
    B = decl_buffer((4,), "float32", "B")
    i = Var("i")
    func = PrimFunc((A, B), serial(i, i64(4), BufferStore(B, A[i + 1], (i,))))
    with pytest.raises(InterpreterError, match=r"A\[4\]") as info:
        run(func, np.zeros(4, "float32"), np.zeros(4, "float32"))
    assert "out-of-bounds load" in str(info.value)
    # 2-D: an index past its own dimension is caught even when the flat element is in the storage.
    C = decl_buffer((2, 3), "int32", "C")
    func = PrimFunc((C,), BufferStore(C, IntImm("int32", 1), (i64(0), i64(3))))
    with pytest.raises(Error, match=r"store C\[0, 3\].*dimension 1"):
        run(func, np.zeros((2, 3), "int32"))


def test_explicit_strides_and_offset_use_the_flat_storage():
    # A (2, 3) view with row stride 4 and offset 1 over a 12-element array: element (r, c) is at 1 + 4r + c.
    s, off = Var("s"), Var("off")
    A = decl_buffer((2, 3), "int32", "A", strides=(i64(4), i64(1)), elem_offset=i64(1))
    B = decl_buffer((2, 3), "int32", "B")
    r, c = Var("r"), Var("c")
    func = PrimFunc((A, B), serial(r, i64(2), serial(c, i64(3), BufferStore(B, A[r, c], (r, c)))))
    storage = np.arange(12, dtype="int32")
    # The parameter's array must have the buffer's shape; the layout (strides, offset) is the buffer's.
    a = np.zeros((2, 3), "int32")
    a.reshape(-1)[:] = storage[:6]
    with pytest.raises(InterpreterError, match="outside the storage"):
        run(func, a, np.zeros((2, 3), "int32"))
    # Symbolic strides/offset are bound from the array (compact strides, offset 0).
    A2 = decl_buffer((2, 3), "int32", "A2", strides=(s, i64(1)), elem_offset=off)
    func2 = PrimFunc((A2, B), serial(r, i64(2), serial(c, i64(3), BufferStore(B, A2[r, c] + off, (r, c)))))
    a2 = np.arange(6, dtype="int32").reshape(2, 3)
    b = np.zeros((2, 3), "int32")
    run(func2, a2, b)
    np.testing.assert_array_equal(b, a2)


def test_scalar_params_var_values_and_run_module():
    n = Var("n")
    alpha = Var("alpha", "float32")
    A = decl_buffer((n,), "float32", "A")
    i = Var("i")
    func = PrimFunc((A, alpha), serial(i, n, BufferStore(A, A[i] * alpha, (i,))), {"global_symbol": "scale"})
    a = np.arange(5, dtype="float32")
    run_module(IRModule({"scale": func}), "scale", a, 3.0)
    np.testing.assert_array_equal(a, np.arange(5, dtype="float32") * 3)
    with pytest.raises(ShapeError) as info:
        run(func, np.zeros(4, "float32"), 1.0, var_values={"n": 5})
    assert (info.value.parameter, info.value.expected, info.value.actual) == ("A", 5, 4)


def test_shape_errors_name_function_parameter_dimension():
    func = rowsum()
    with pytest.raises(ShapeError) as info:
        run(func, np.zeros((3,), "int32"), np.zeros(3, "int32"))
    e = info.value
    assert (e.function, e.parameter, e.expected, e.actual) == ("rowsum", "A", 2, 1)
    with pytest.raises(ShapeError) as info:
        run(func, np.zeros((3, 2), "float32"), np.zeros(3, "int32"))
    e = info.value
    assert e.parameter == "A" and e.expected == np.dtype("int32") and e.actual == np.dtype("float32")
    with pytest.raises(ShapeError) as info:
        run(func, np.zeros((3, 2), "int32"), np.zeros(4, "int32"))
    e = info.value
    assert (e.function, e.parameter, e.dimension, e.expected, e.actual) == ("rowsum", "B", 0, 3, 4)
    assert "rowsum" in str(e) and "'B'" in str(e)
    with pytest.raises(ShapeError, match="number of arguments"):
        run(func, np.zeros((3, 2), "int32"))
    with pytest.raises(ShapeError, match="numpy array"):
        run(func, [[1, 2]], np.zeros(1, "int32"))


def test_expression_dimension_is_checked():
    n = Var("n")
    A = decl_buffer((n,), "int32", "A")
    B = decl_buffer((n * 2,), "int32", "B")
    i = Var("i")
    func = PrimFunc((A, B), serial(i, n, BufferStore(B, A[i], (i * 2,))), {"global_symbol": "spread"})
    b = np.zeros(6, "int32")
    run(func, np.array([4, 5, 6], "int32"), b)
    np.testing.assert_array_equal(b, [4, 0, 5, 0, 6, 0])
    with pytest.raises(ShapeError) as info:
        run(func, np.zeros(3, "int32"), np.zeros(5, "int32"))
    assert (info.value.parameter, info.value.dimension, info.value.expected, info.value.actual) == (
        "B",
        0,
        6,
        5,
    )


def test_integer_division_by_zero_is_defined_as_zero():
    # The IR defines x // 0 as 0 (numpy's result and the CPU backend's), so the reference agrees with
    # compiled code instead of failing where the compiled kernel returns a value.
    A = decl_buffer((1,), "int32", "A")
    d = Var("d", "int32")
    func = PrimFunc((A, d), BufferStore(A, A[0] // d, (i64(0),)))
    a = np.full(1, 7, "int32")
    run(func, a, 0)
    assert a[0] == 0
    run(func, a, 0)
    with np.errstate(divide="ignore"):
        assert a[0] == np.floor_divide(np.int32(7), np.int32(0))
    # Float division by zero is IEEE (inf), not an error.
    F = decl_buffer((1,), "float32", "F")
    g = PrimFunc((F,), BufferStore(F, F[0] / FloatImm("float32", 0.0), (i64(0),)))
    f = np.ones(1, "float32")
    run(g, f)
    assert np.isinf(f[0])
