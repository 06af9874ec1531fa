import pytest

from shapeflow.errors import VerifyError
from shapeflow.ir import (
    EQ,
    Add,
    Broadcast,
    Cast,
    FloatImm,
    FloorDiv,
    FloorMod,
    IntImm,
    Sub,
    Var,
    const,
    select,
)
from shapeflow.ir.tir import call_intrinsic, decl_buffer


def test_operators_build_nodes_with_python_semantics():
    n = Var("n")
    e = (n + 1) * 4 // 3 % 5
    assert isinstance(e, FloorMod) and isinstance(e.a, FloorDiv)
    assert e.dtype == "int64"
    neg = -n
    assert isinstance(neg, Sub) and neg.a.value == 0


def test_constants_take_the_dtype_of_the_other_side():
    x = Var("x", "float32")
    e = x + 1
    assert isinstance(e.b, FloatImm) and e.b.dtype == "float32"
    i = Var("i", "int32")
    assert (i * 2).b.dtype == "int32"


def test_mixed_dtypes_are_promoted():
    a, b = Var("a", "int32"), Var("b", "int64")
    e = a + b
    assert e.dtype == "int64" and isinstance(e.a, Cast)
    f = Var("f", "float32") * a
    assert f.dtype == "float32"
    v = Var("v", "float32x8") + Var("s", "float32")
    assert v.dtype == "float32x8" and isinstance(v.b, Broadcast)


def test_eq_builds_a_node_but_dict_lookup_uses_identity():
    n, m = Var("n"), Var("n")
    assert isinstance(n == m, EQ)
    table = {n: 1}
    assert table[n] == 1 and m not in table


def test_python_bool_of_symbolic_condition_is_refused():
    n = Var("n")
    with pytest.raises(TypeError):
        if n < 3:
            pass


def test_constant_ranges_are_checked():
    with pytest.raises(VerifyError):
        IntImm("int8", 200)
    assert IntImm("uint8", 255).value == 255
    with pytest.raises(VerifyError):
        IntImm("float32", 1)
    assert const(True).dtype == "bool" and const(2.5).dtype == "float32"


def test_constructors_check_field_types():
    with pytest.raises(VerifyError):
        Add(Var("n"), 3)  # raw constructors take expressions only


def test_intrinsic_calls_and_buffer_loads():
    x = Var("x", "float32")
    e = call_intrinsic("exp", x)
    assert e.dtype == "float32" and e.op == "exp"
    assert call_intrinsic("isnan", x).dtype == "bool"
    with pytest.raises(VerifyError):
        call_intrinsic("exp", Var("i", "int32"))
    n = Var("n")
    A = decl_buffer((n, 8), "float16", "A")
    assert A[n - 1, 7].dtype == "float16"
    s = select(n > 3, 1.5, x)
    assert s.dtype == "float32"
