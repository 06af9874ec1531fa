import pytest

from shapeflow.errors import VerifyError
from shapeflow.ir import IRModule, Var, assert_structural_equal, structural_equal, structural_hash
from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer


def make_copy(name_n="n", name_i="i", kind=ForKind.SERIAL):
    n = Var(name_n)
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    i = Var(name_i)
    body = For(i, 0, n, kind, BufferStore(B, A[i] + 1.0, (i,)))
    return PrimFunc((A, B), body, {"global_symbol": "copy"})


def test_equal_up_to_renaming():
    a, b = make_copy(), make_copy("m", "j")
    assert structural_equal(a, b)
    assert structural_hash(a) == structural_hash(b)
    assert structural_equal(IRModule({"f": a}), IRModule({"f": b}))


def test_different_structure_is_reported_with_path():
    a, b = make_copy(), make_copy(kind=ForKind.PARALLEL)
    assert not structural_equal(a, b)
    with pytest.raises(VerifyError) as info:
        assert_structural_equal(a, b)
    assert "root.body.kind" in str(info.value)


def test_variables_must_correspond_one_to_one():
    x, y = Var("x"), Var("y")
    assert structural_equal(x + y, Var("a") + Var("b"))
    a = Var("a")
    assert not structural_equal(x + x, a + Var("b"))
    assert not structural_equal(x + y, a + a)


def test_dtypes_and_constants_matter():
    assert not structural_equal(Var("x", "int32") + 1, Var("x", "int64") + 1)
    assert not structural_equal(Var("x") + 1, Var("x") + 2)
    nan = Var("f", "float32") * float("nan")
    assert structural_equal(nan, Var("g", "float32") * float("nan"))


def test_same_function_under_two_names_equals_its_copy():
    f = make_copy()
    mod = IRModule({"a": f, "b": f})
    other = IRModule({"a": make_copy("m"), "b": make_copy("k")})
    assert structural_equal(mod, other)
    assert structural_hash(mod) == structural_hash(other)
