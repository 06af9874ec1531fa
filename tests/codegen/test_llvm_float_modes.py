"""Float modes of the LLVM backend: by default only a reduction's accumulator update is reassociable (so row
sums, maxima and softmax still vectorize), every other float operation keeps IEEE meaning, so identities
that are false for NaN/inf (x - x = 0, (a + c) - (a + c) = 0, x * 0 = 0) are not folded. `fast_math=True`
is the explicit opt-in to reassociating everything; `strict_float=True` is bit-exact sequential."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.codegen.llvm import CodegenOptions, generate_llvm_ir, host_cpu
from shapeflow.codegen.llvm.reduction import reduction_update
from shapeflow.errors import UnsupportedError
from shapeflow.examples_embedded import make_rowsum_module
from shapeflow.ir import expr as E
from shapeflow.ir.tir import Allocate, BufferStore, For, PrimFunc, decl_buffer, seq
from shapeflow.ir.tir.interpreter import run as interpret

I64 = "int64"
ZERO = E.IntImm(I64, 0)
SPECIAL = np.array([np.nan, np.inf, -np.inf, 2.0, -0.0], "float32")


def f32(value: float) -> E.PrimExpr:
    return E.FloatImm("float32", value)


def _benchmarks():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import elementwise  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    return elementwise


def elementwise_kernel(make_value) -> PrimFunc:
    """OUT[i] = make_value(W[i]) over a symbolic n."""
    n = E.Var("n")
    w, out = decl_buffer((n,), "float32", "W"), decl_buffer((n,), "float32", "OUT")
    i = E.Var("i")
    return PrimFunc((w, out), For(i, 0, n, "serial", BufferStore(out, make_value(w[i]), (i,))))


# Identities that hold for finite x only: each folds to a constant under reassoc/nsz, but is NaN for NaN or
# infinite x in IEEE arithmetic (and in the interpreter).
FALSE_IDENTITIES = {
    "x - x": lambda x: x - x,
    "(x*x + 1) - (x*x + 1)": lambda x: (x * x + f32(1.0)) - (x * x + f32(1.0)),
    "(x + 3) - x - 3": lambda x: (x + f32(3.0)) - x - f32(3.0),
    "x * 0": lambda x: x * f32(0.0),
}


@pytest.mark.parametrize("target", ["cpu", "cpu strict_float=1"])
@pytest.mark.parametrize("name", sorted(FALSE_IDENTITIES))
def test_nan_and_inf_are_not_folded_away(name, target):
    func = elementwise_kernel(FALSE_IDENTITIES[name])
    expected, got = np.zeros(5, "float32"), np.full(5, 7.0, "float32")
    with np.errstate(all="ignore"):
        interpret(func, SPECIAL, expected)
    sf.build(sf.ir.IRModule({"main": func}), target)["main"](SPECIAL, got)
    assert np.isnan(expected[:3]).all(), name  # the inputs NaN, inf, -inf give NaN
    np.testing.assert_array_equal(got, expected, err_msg=f"{name} on {target}")


def test_fast_math_is_an_explicit_opt_in_that_flags_everything():
    func = elementwise_kernel(FALSE_IDENTITIES["(x*x + 1) - (x*x + 1)"])
    fast, _ = generate_llvm_ir({"main": func}, CodegenOptions(float_mode="fast"))
    default, _ = generate_llvm_ir({"main": func}, CodegenOptions())
    strict, _ = generate_llvm_ir({"main": func}, CodegenOptions(float_mode="strict"))
    ops = re.compile(r"= (fadd|fsub|fmul)( [a-z ]*?)? float")
    assert [m.group(2) for m in ops.finditer(fast)] == [" reassoc contract nsz"] * 5
    assert [m.group(2) for m in ops.finditer(default)] == [" contract"] * 5  # FMA only: no reassociation
    assert [m.group(2) for m in ops.finditer(strict)] == [None] * 5
    assert sf.Target().float_mode == "default" and not sf.Target().fast_math
    assert sf.Target(fast_math=True).float_mode == "fast"


def test_only_the_accumulator_update_is_reassociable():
    """In the row sum, the one reassoc fadd is `acc[0] + A[i, k]`; the kernel's other arithmetic is plain."""
    func = _benchmarks().row_reduce_kernel("sum")
    text, _ = generate_llvm_ir({"rowsum": func})
    flagged = re.findall(r"= fadd reassoc contract float [^\n]+", text)
    assert len(flagged) == 1, text
    assert "reassoc" not in text.replace(flagged[0], "")


def _vector_reductions(ir_text: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for kind, lanes in re.findall(r"llvm\.vector\.reduce\.(fadd|fmaximum)\.v(\d+)f32\(", ir_text):
        found.setdefault(kind, set()).add(int(lanes))
    return found


def _lanes() -> int:
    return 16 if "+avx512f" in host_cpu()[1] else 4


@pytest.mark.parametrize("kernel", ["sum", "max", "softmax", "te_rowsum"])
def test_reduction_loops_still_vectorize_by_default(kernel):
    """The reduction loops end in a vector reduction of `<16 x float>` values on AVX-512 hosts (the
    benchmark kernels, and the te-built rowsum of `shapeflow example --kernel`)."""
    bench = _benchmarks()
    if kernel == "te_rowsum":
        lib, needs = sf.build(make_rowsum_module()), {"fadd"}
    else:
        func = bench.softmax_kernel() if kernel == "softmax" else bench.row_reduce_kernel(kernel)
        lib = sf.build(sf.ir.IRModule({kernel: func}), lower=False)
        needs = {"sum": {"fadd"}, "max": {"fmaximum"}, "softmax": {"fadd", "fmaximum"}}[kernel]
    found = _vector_reductions(lib.optimized_ir)
    for kind in needs:
        assert kind in found and max(found[kind]) >= _lanes(), (kernel, found)
    if _lanes() == 16:
        assert "<16 x float>" in lib.optimized_ir


def test_strict_float_gives_up_vectorizing_the_sum_for_bit_exactness():
    func = _benchmarks().row_reduce_kernel("sum")
    lib = sf.build(sf.ir.IRModule({"rowsum": func}), "cpu strict_float=1", lower=False)
    assert "fadd" not in _vector_reductions(lib.optimized_ir)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4096)).astype("float32") * 1000
    got, want = np.zeros(3, "float32"), np.zeros(3, "float32")
    lib["rowsum"](a, got)
    interpret(func, a, want)
    np.testing.assert_array_equal(got, want)  # same order of additions: bit-exact


@pytest.mark.parametrize("target", ["cpu", "cpu fast_math=1"])
def test_vectorized_sum_and_max_still_propagate_nan_and_inf(target):
    bench = _benchmarks()
    a = np.ones((5, 4096), "float32")
    a[0, 100], a[1, 4095], a[2, 7], a[3, 9], a[3, 3000] = np.nan, np.inf, -np.inf, np.inf, -np.inf
    for kind, reference in (("sum", np.sum), ("max", np.max)):
        lib = sf.build(sf.ir.IRModule({kind: bench.row_reduce_kernel(kind)}), target, lower=False)
        got = np.zeros(5, "float32")
        lib[kind](a, got)
        with np.errstate(all="ignore"):
            want = reference(a, axis=1)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} on {target}")


def test_rowsum_with_nan_matches_the_interpreter_through_te():
    a = np.ones((3, 1024), "float32")
    a[1, 5] = np.nan
    a[2, 17] = np.inf
    got = np.zeros(3, "float32")
    sf.build(make_rowsum_module())["rowsum"](a, got)
    with np.errstate(all="ignore"):
        want = np.exp(a.astype(np.float64)).sum(axis=1)
    assert np.isnan(got[1]) and got[2] == np.inf
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


# -- the recognizer ---------------------------------------------------------------------------


def _parts():
    n = E.Var("n")
    x = decl_buffer((n,), "float32", "X")
    acc = decl_buffer((1,), "float32", "acc", scope="local")
    k = E.Var("k")
    return x, acc, k


@pytest.mark.parametrize("make", [lambda a, v: a + v, lambda a, v: v * a, E.max_expr, E.min_expr])
def test_accumulator_updates_are_recognized(make):
    x, acc, k = _parts()
    store = BufferStore(acc, make(acc[ZERO], x[k]), (ZERO,))
    assert reduction_update(store, [{k}]) is store.value


def test_non_reductions_are_not_recognized():
    x, acc, k = _parts()
    out = decl_buffer((E.Var("m"),), "float32", "OUT")
    j = E.Var("j")
    cases = [
        (BufferStore(acc, acc[ZERO] - x[k], (ZERO,)), [{k}]),  # subtraction is not reassociable
        (BufferStore(acc, acc[ZERO] + x[k], (ZERO,)), []),  # no loop: nothing to reorder
        (BufferStore(out, out[k] + x[k], (k,)), [{k}]),  # the index varies with the only loop
        (BufferStore(out, out[j] + x[k], (j,)), [{k, j}]),  # j is bound inside the loop
        (BufferStore(acc, x[k] + x[k], (ZERO,)), [{k}]),  # does not read the accumulator
        (BufferStore(out, out[k + 1] + x[k], (k,)), [set(), {k}]),  # reads another element
    ]
    for store, scopes in cases:
        assert reduction_update(store, scopes) is None, store
    ints = decl_buffer((1,), "int32", "iacc", scope="local")
    assert reduction_update(BufferStore(ints, ints[ZERO] + E.IntImm("int32", 1), (ZERO,)), [{k}]) is None


def test_a_let_bound_index_inside_the_loop_is_not_invariant():
    """acc[j] with `j = k` bound inside the loop over k is a new element each iteration: no reassoc flag."""
    n = E.Var("n")
    x, out = decl_buffer((n,), "float32", "X"), decl_buffer((n,), "float32", "OUT")
    k, j = E.Var("k"), E.Var("j")
    from shapeflow.ir.tir import LetStmt  # noqa: PLC0415

    body = For(k, 0, n, "serial", LetStmt(j, k, BufferStore(out, out[j] + x[k], (j,))))
    text, _ = generate_llvm_ir({"main": PrimFunc((x, out), body)})
    assert "fadd contract float" in text and "reassoc" not in text


def test_a_matmul_accumulator_is_reassociable_inside_its_k_loop():
    m = E.Var("m")
    a, b = decl_buffer((m, m), "float32", "A"), decl_buffer((m, m), "float32", "B")
    c = decl_buffer((m, m), "float32", "C")
    i, j, k = E.Var("i"), E.Var("j"), E.Var("k")
    update = BufferStore(c, c[i, j] + a[i, k] * b[k, j], (i, j))
    body = For(
        i,
        0,
        m,
        "serial",
        For(j, 0, m, "serial", seq(BufferStore(c, f32(0.0), (i, j)), For(k, 0, m, "serial", update))),
    )
    text, _ = generate_llvm_ir({"main": PrimFunc((a, b, c), body)})
    assert re.findall(r"= (fmul|fadd)( [a-z ]+)? float", text) == [
        ("fmul", " contract"),
        ("fadd", " reassoc contract"),
    ]
    lib = sf.build(sf.ir.IRModule({"main": PrimFunc((a, b, c), body)}), lower=False)
    x = np.arange(9, dtype="float32").reshape(3, 3)
    x[1, 1] = np.nan
    got = np.zeros((3, 3), "float32")
    lib["main"](x, x, got)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(x @ x))


# -- the target knobs --------------------------------------------------------------------------


def test_target_float_options_parse_and_print():
    t = sf.Target.from_str("cpu strict_float=1 num_threads=2")
    assert (t.float_mode, t.num_threads) == ("strict", 2)
    assert sf.Target.from_str(str(t)) == t
    assert sf.Target.from_str("cpu fast_math").float_mode == "fast"
    assert str(sf.Target.from_str("cpu fast_math=1")) == "cpu fast_math=1"
    assert sf.Target.from_str("cpu fast_math=0").float_mode == "default"
    with pytest.raises(UnsupportedError, match="cannot both"):
        sf.Target(fast_math=True, strict_float=True)
    with pytest.raises(UnsupportedError, match="strict_float takes a boolean"):
        sf.Target.from_str("cpu strict_float=maybe")


def test_unknown_float_mode_is_a_compile_error():
    from shapeflow.errors import CompileError  # noqa: PLC0415

    func = elementwise_kernel(lambda x: x + x)
    with pytest.raises(CompileError, match="unknown float mode"):
        generate_llvm_ir({"main": func}, CodegenOptions(float_mode="sloppy"))


def test_allocate_then_reduce_in_the_benchmark_shape():
    """A local accumulator declared inside the parallel row loop is recognized inside the outlined body."""
    n = E.Var("n")
    a, out = decl_buffer((n, 64), "float32", "A"), decl_buffer((n,), "float32", "B")
    acc = decl_buffer((1,), "float32", "acc", scope="local")
    i, k = E.Var("i"), E.Var("k")
    row = Allocate(
        acc,
        seq(
            BufferStore(acc, f32(0.0), (ZERO,)),
            For(k, 0, 64, "serial", BufferStore(acc, acc[ZERO] + a[i, k], (ZERO,))),
            BufferStore(out, acc[ZERO], (i,)),
        ),
    )
    text, _ = generate_llvm_ir({"main": PrimFunc((a, out), For(i, 0, n, "parallel", row))})
    assert len(re.findall(r"fadd reassoc contract float", text)) == 1
