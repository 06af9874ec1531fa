"""Statements compiled by the LLVM backend: loops of every kind (parallel included), lets, ifs, asserts,
allocations, unsupported input, object export, and build with the lowering passes."""

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import expr as E
from shapeflow.ir.tir import (
    Allocate,
    AssertStmt,
    BufferStore,
    DeclBuffer,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    PrimFunc,
    decl_buffer,
    seq,
)
from shapeflow.ir.tir.interpreter import run as interpret
from shapeflow.runtime import threadpool

I64 = "int64"
ZERO = E.IntImm(I64, 0)


def rowsum(kind_outer, kind_inner=ForKind.SERIAL, dtype="float32"):
    """B[i] = sum_k A[i, k] through a local accumulator, flattened to 1-D aliases like lowering does."""
    n, m = E.Var("n"), E.Var("m")
    a = decl_buffer((n, m), dtype, "A")
    b = decl_buffer((n,), dtype, "B")
    a_flat = decl_buffer((n * m,), dtype, "A_flat", data=a.data)
    acc = decl_buffer((1,), dtype, "acc", scope="local")
    i, k = E.Var("i"), E.Var("k")
    zero = E.make_const(dtype, 0)
    inner = For(k, 0, m, kind_inner, BufferStore(acc, acc[0] + a_flat[i * m + k], (ZERO,)))
    body = Allocate(acc, seq(BufferStore(acc, zero, (ZERO,)), inner, BufferStore(b, acc[0], (i,))))
    func_body = DeclBuffer(a_flat, For(i, 0, n, kind_outer, body))
    return PrimFunc((a, b), func_body, {"tir.noalias": True})


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 257), (1031, 3)])
@pytest.mark.parametrize("kind", [ForKind.SERIAL, ForKind.PARALLEL, ForKind.UNROLLED])
def test_rowsum_loops_match_interpreter(shape, kind):
    rng = np.random.default_rng(shape[0])
    a = rng.standard_normal(shape).astype(np.float32)
    func = rowsum(kind)
    got = np.zeros(shape[0], np.float32)
    sf.build(func, lower=False)["main"](a, got)
    want = np.zeros(shape[0], np.float32)
    if shape[0] * shape[1] < 20000:
        interpret(func, a, want)
    else:
        want = a.sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_parallel_equals_serial_for_every_thread_count(threads):
    a = np.random.default_rng(1).integers(-1000, 1000, (97, 33)).astype(np.int64)
    serial = np.zeros(97, np.int64)
    sf.build(rowsum(ForKind.SERIAL, dtype="int64"), lower=False)["main"](a, serial)
    parallel_lib = sf.build(rowsum(ForKind.PARALLEL, dtype="int64"), lower=False)
    old = threadpool.get_num_threads()
    try:
        threadpool.set_num_threads(threads)
        got = np.zeros(97, np.int64)
        parallel_lib["main"](a, got)
    finally:
        threadpool.set_num_threads(old)
    np.testing.assert_array_equal(got, serial)
    np.testing.assert_array_equal(got, a.sum(axis=1))


def test_parallel_loop_uses_gomp_and_nested_parallel_runs_serially():
    n, m = E.Var("n"), E.Var("m")
    a = decl_buffer((n, m), "int32", "A")
    i, j = E.Var("i"), E.Var("j")
    body = For(
        i, 0, n, "parallel", For(j, 0, m, "parallel", BufferStore(a, E.Cast("int32", i * 100 + j), (i, j)))
    )
    lib = sf.build(PrimFunc((a,), body), target=sf.Target("cpu", num_threads=4), lower=False)
    assert lib.llvm_ir.count('call void @"GOMP_parallel"') == 1
    out = np.zeros((37, 5), np.int32)
    lib["main"](out)
    np.testing.assert_array_equal(out, np.arange(37)[:, None] * 100 + np.arange(5))


def test_set_num_threads_validates():
    with pytest.raises(ValueError):
        threadpool.set_num_threads(0)
    assert threadpool.thread_runtime_available()


def test_let_if_and_select():
    n = E.Var("n")
    x = decl_buffer((n,), "int32", "X")
    y = decl_buffer((n,), "int32", "Y")
    i, t = E.Var("i"), E.Var("t", "int32")
    body = For(
        i,
        0,
        n,
        "serial",
        LetStmt(
            t,
            x[i] * 3,
            IfThenElse(
                E.floormod(t, E.IntImm("int32", 2)) == E.IntImm("int32", 0),
                BufferStore(y, t, (i,)),
                BufferStore(
                    y, E.Let(E.Var("u", "int32"), E.IntImm("int32", -1), E.IntImm("int32", -1)), (i,)
                ),
            ),
        ),
    )
    func = PrimFunc((x, y), body)
    a = np.arange(-10, 10, dtype=np.int32)
    got = np.zeros(20, np.int32)
    sf.build(func, lower=False)["main"](a, got)
    np.testing.assert_array_equal(got, np.where((a * 3) % 2 == 0, a * 3, -1))


def test_assert_raises_shapeflow_error_with_message_and_stops():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    i = E.Var("i")
    body = For(
        i,
        0,
        n,
        "serial",
        seq(
            AssertStmt(x[i] >= E.FloatImm("float32", 0.0), "X must be non-negative"),
            BufferStore(x, x[i] * 2.0, (i,)),
        ),
    )
    lib = sf.build(PrimFunc((x,), body), lower=False)
    a = np.array([1, 2, -1, 4], np.float32)
    with pytest.raises(sf.Error, match="X must be non-negative"):
        lib["main"](a)
    np.testing.assert_array_equal(a, [2, 4, -1, 4])  # stopped at the failing element


def test_assert_inside_parallel_loop_and_heap_allocation():
    n = E.Var("n")
    x = decl_buffer((n,), "int64", "X")
    tmp = decl_buffer((n,), "int64", "tmp")  # symbolic size: heap allocated, freed on the error path too
    i = E.Var("i")
    body = Allocate(
        tmp,
        seq(
            For(
                i,
                0,
                n,
                "parallel",
                seq(AssertStmt(x[i] != E.IntImm(I64, 13), "thirteen"), BufferStore(tmp, x[i] + 1, (i,))),
            ),
            For(i, 0, n, "serial", BufferStore(x, tmp[i] * 2, (i,))),
        ),
    )
    lib = sf.build(PrimFunc((x,), body), lower=False)
    a = np.arange(100, dtype=np.int64) + 20
    lib["main"](a)
    np.testing.assert_array_equal(a, (np.arange(100) + 21) * 2)
    bad = np.arange(100, dtype=np.int64)
    with pytest.raises(sf.Error, match="thirteen"):
        lib["main"](bad)
    assert "aligned_alloc" in lib.llvm_ir and "free" in lib.llvm_ir


def test_stack_allocation_in_loop_and_vectorized_loop_kind():
    n = E.Var("n")
    x = decl_buffer((n, 8), "float32", "X")
    y = decl_buffer((n,), "float32", "Y")
    scratch = decl_buffer((8,), "float32", "scratch", scope="local")
    i, j = E.Var("i"), E.Var("j")
    body = For(
        i,
        0,
        n,
        "serial",
        Allocate(
            scratch,
            seq(
                For(j, 0, 8, "vectorized", BufferStore(scratch, x[i, j] * x[i, j], (j,))),
                BufferStore(y, scratch[0] + scratch[7], (i,)),
            ),
        ),
    )
    func = PrimFunc((x, y), body)
    lib = sf.build(func, lower=False)
    assert "alloca" in lib.llvm_ir and "llvm.loop.vectorize.enable" in lib.llvm_ir
    a = np.random.default_rng(0).random((9, 8), dtype=np.float32)
    got = np.zeros(9, np.float32)
    lib["main"](a, got)
    np.testing.assert_allclose(got, a[:, 0] ** 2 + a[:, 7] ** 2, rtol=1e-6)


def test_unsupported_inputs_raise_unsupported_error():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    i = E.Var("i")
    one = E.FloatImm("float32", 1.0)
    gpu = For(i, 0, n, ForKind.THREAD_BINDING, BufferStore(x, one, (i,)), thread_tag="threadIdx.x")
    with pytest.raises(sf.UnsupportedError, match="thread_binding"):
        sf.build(PrimFunc((x,), gpu), lower=False)
    with pytest.raises(sf.UnsupportedError, match="cuda"):
        sf.build(PrimFunc((x,), For(i, 0, n, "serial", BufferStore(x, one, (i,)))), target="cuda")
    with pytest.raises(sf.UnsupportedError):
        sf.Target.from_str("tpu")
    with pytest.raises(sf.UnsupportedError, match="handle"):
        h = E.Var("h", "handle")
        sf.build(PrimFunc((h,), For(i, 0, 1, "serial", BufferStore(x, one, (i,)))), lower=False)


def test_undefined_variable_is_a_compile_error():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    i, ghost = E.Var("i"), E.Var("ghost")
    func = PrimFunc((x,), For(i, 0, n, "serial", BufferStore(x, E.Cast("float32", ghost), (i,))))
    with pytest.raises(sf.CompileError, match="ghost"):
        sf.build(func, lower=False)


def test_export_object_file(tmp_path):
    lib = sf.build(rowsum(ForKind.PARALLEL), lower=False)
    path = tmp_path / "kernels.o"
    lib.export_object(str(path))
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and b"shapeflow_main" in data


def test_target_parsing():
    t = sf.Target.from_str("cpu fast_math=0 num_threads=3")
    assert (t.kind, t.fast_math, t.num_threads) == ("cpu", False, 3)
    assert sf.Target("llvm").kind == "cpu" and sf.Target("cuda").kind == "cuda"
    assert sf.Target("cpu").host_cpu and isinstance(sf.Target("cpu").host_features, str)


def test_build_runs_the_lowering_passes_on_blocks():
    from shapeflow import te

    n = te.var("n")
    a = te.placeholder((n, 16), "float32", name="A")
    k = te.reduce_axis((0, 16), name="k")
    b = te.compute((n,), lambda i: te.sum(te.exp(a[i, k]), axis=k), name="B")
    mod = sf.ir.IRModule({"rowsum": te.create_prim_func([a, b])})
    lib = sf.build(mod, target="cpu")
    x = np.random.default_rng(0).random((7, 16), dtype=np.float32)
    out = np.empty(7, np.float32)
    lib["rowsum"](x, out)
    np.testing.assert_allclose(out, np.exp(x).sum(axis=1), rtol=1e-5)
