"""Type inference of every graph op family over symbolic shapes."""

import pytest

from shapeflow.errors import ShapeError, UnsupportedError, VerifyError
from shapeflow.ir import IntImm, Var, structural_equal
from shapeflow.ir.graph import GraphVar, TensorType, TupleType, op, type_of
from shapeflow.ir.graph.ops import get_op_def, list_ops
from shapeflow.ir.graph.shape import compare_dims, format_shape

n, m, k = Var("n"), Var("m"), Var("k")


def tv(name, shape, dtype="float32", ndim=-1):
    return GraphVar(name, TensorType(shape, dtype, ndim))


def shape_of(call):
    t = type_of(call)
    assert isinstance(t, TensorType)
    return format_shape(t.shape)


def assert_dims(call, *expected):
    """The inferred dims are provably equal to `expected` (ints or expressions)."""
    t = type_of(call)
    assert t.ndim == len(expected), format_shape(t.shape)
    for got, want in zip(t.shape, expected):
        assert compare_dims(got, want) is True, f"{format_shape(t.shape)} vs {expected}"


def test_every_declared_op_has_inference_and_reference_or_special_handling():
    for name in list_ops():
        d = get_op_def(name)
        assert callable(d.infer_type)
        assert d.reference is not None or name in ("call_tir", "call_dps_library")


UNARY = "exp log sqrt rsqrt tanh sigmoid erf abs neg relu gelu gelu_tanh silu".split()


@pytest.mark.parametrize("name", UNARY)
def test_unary_keeps_the_symbolic_type(name):
    x = tv("x", (n, 4))
    t = type_of(getattr(op, name)(x))
    assert structural_equal(t, x.type)
    assert t.shape[0] is n


def test_unary_float_op_refuses_integers():
    with pytest.raises(VerifyError, match="float"):
        type_of(op.exp(tv("x", (n,), "int32")))


def test_binary_broadcasting_symbolic():
    x, y = tv("x", (n, 1, 4)), tv("y", (m, 1))
    assert_dims(op.add(x, y), n, m, 4)
    assert_dims(op.multiply(tv("a", (n, k)), tv("b", (k,))), n, k)
    # a dim proved != 1 wins; the other must be 1 or equal (checked at run time)
    assert_dims(op.add(tv("a", (n + 1,)), tv("b", (3,))), 3)


def test_binary_unprovable_pair_is_max():
    t = type_of(op.add(tv("a", (n,)), tv("b", (m,))))
    assert "max" in format_shape(t.shape)


def test_binary_provable_mismatch_is_shape_error_naming_op_and_dims():
    with pytest.raises(ShapeError) as info:
        type_of(op.add(tv("a", (n, 3)), tv("b", (n, 4))))
    err = info.value
    assert "add" in str(err) and err.dimension == 1 and (err.expected, err.actual) == ("3", "4")
    with pytest.raises(ShapeError):
        type_of(op.subtract(tv("a", (n + 2,)), tv("b", (n + 3,))))


def test_comparisons_give_bool_and_logic_needs_bool():
    assert str(type_of(op.less(tv("a", (n,)), tv("b", (n,)))).dtype) == "bool"
    with pytest.raises(VerifyError):
        type_of(op.logical_and(tv("a", (n,)), tv("b", (n,))))
    with pytest.raises(VerifyError, match="dtypes"):
        type_of(op.add(tv("a", (n,)), tv("b", (n,), "float16")))


def test_where_astype_clip():
    c = tv("c", (n, 1), "bool")
    assert_dims(op.where(c, tv("a", (1, m)), tv("b", (m,))), n, m)
    assert str(type_of(op.astype(tv("a", (n,)), "float16")).dtype) == "float16"
    assert structural_equal(type_of(op.clip(tv("a", (n,)), 0.0, 6.0)), TensorType((n,), "float32"))


def test_scalar_operand_becomes_constant_of_tensor_dtype():
    call = op.multiply(tv("a", (n,), "float16"), 2.0)
    assert str(type_of(call).dtype) == "float16"


def test_matmul_batched_broadcast_and_1d():
    assert_dims(op.matmul(tv("a", (k, 1, n, 8)), tv("b", (3, 8, m))), k, 3, n, m)
    assert_dims(op.matmul(tv("a", (8,)), tv("b", (n, 8, m))), n, m)
    assert_dims(op.matmul(tv("a", (n, 8)), tv("b", (8,))), n)
    assert type_of(op.matmul(tv("a", (8,)), tv("b", (8,)))).ndim == 0
    with pytest.raises(ShapeError) as info:
        type_of(op.matmul(tv("a", (n, 8)), tv("b", (9, m))))
    assert "matmul" in str(info.value)
    # unprovable contraction (n vs m) is left to run time
    assert_dims(op.matmul(tv("a", (k, n)), tv("b", (m, 4))), k, 4)


def test_linear():
    assert_dims(op.linear(tv("x", (n, m, 16)), tv("w", (32, 16)), tv("b", (32,))), n, m, 32)
    with pytest.raises(ShapeError):
        type_of(op.linear(tv("x", (n, 16)), tv("w", (32, 15))))


def test_reductions():
    x = tv("x", (n, m, 4))
    assert_dims(op.sum(x, axis=1), n, 4)
    assert_dims(op.mean(x, axis=(0, -1), keepdims=True), 1, m, 1)
    assert type_of(op.max(x)).ndim == 0
    t = type_of(op.argmax(x, axis=-1))
    assert str(t.dtype) == "int64"
    assert_dims(op.argmin(x, axis=0, keepdims=True), 1, m, 4)
    with pytest.raises(VerifyError, match="axis"):
        type_of(op.sum(x, axis=3))
    assert structural_equal(type_of(op.softmax(x, axis=1)), x.type)
    assert structural_equal(type_of(op.log_softmax(x)), x.type)


def test_norms():
    x = tv("x", (n, m, 64))
    assert structural_equal(type_of(op.layer_norm(x, tv("g", (64,)), tv("b", (64,)))), x.type)
    assert structural_equal(type_of(op.rms_norm(x, tv("w", (64,)))), x.type)
    with pytest.raises(ShapeError):
        type_of(op.rms_norm(x, tv("w", (63,))))
    with pytest.raises(VerifyError, match="rank"):
        type_of(op.layer_norm(x, tv("g", (m, 64)), tv("b", (64,))))


def test_reshape_infers_minus_one_symbolically():
    x = tv("x", (n, 4, m))
    assert_dims(op.reshape(x, (-1, m)), n * 4, m)
    assert_dims(op.reshape(x, (n, -1)), n, m * 4)
    assert_dims(op.reshape(tv("y", (n, 6)), (3, -1)), 3, n * 2)
    assert_dims(op.reshape(tv("z", (2, 3, 5)), (-1,)), 30)


def test_reshape_errors():
    with pytest.raises(ShapeError):
        type_of(op.reshape(tv("x", (3, 5)), (4, -1)))
    with pytest.raises(ShapeError, match="element counts"):
        type_of(op.reshape(tv("x", (n, 4)), (n + 1, 4)))
    # n * 4 == n * 3 when n == 0 (a legal size), so this is not provably wrong: checked at run time
    type_of(op.reshape(tv("x", (n, 4)), (n, 3)))
    with pytest.raises(VerifyError, match="-1"):
        type_of(op.reshape(tv("x", (n, 4)), (-1, -1)))


def test_permute_expand_squeeze_flatten():
    x = tv("x", (n, m, 4))
    assert_dims(op.permute_dims(x, (2, 0, 1)), 4, n, m)
    assert_dims(op.permute_dims(x), 4, m, n)
    assert_dims(op.expand_dims(x, (0, -1)), 1, n, m, 4, 1)
    assert type_of(op.squeeze(tv("y", (n, 1, 4, 1)))).shape is None  # n might be 1: known only at run time
    assert_dims(op.squeeze(tv("y", (n, 1, 4, 1)), axis=(1, 3)), n, 4)
    assert_dims(op.squeeze(tv("y", (5, 1, 4))), 5, 4)
    with pytest.raises(ShapeError):
        type_of(op.squeeze(tv("y", (n, 4)), axis=1))
    assert_dims(op.flatten(x), n * m * 4)
    assert_dims(op.flatten(x, start_dim=1), n, m * 4)


def test_concat_split_broadcast_to_take():
    a, b = tv("a", (n, 4)), tv("b", (m, 4))
    assert_dims(op.concat([a, b], axis=0), n + m, 4)
    with pytest.raises(ShapeError):
        type_of(op.concat(a, tv("c", (n, 5)), axis=0))
    t = type_of(op.split(tv("x", (n, 12)), 3, axis=1))
    assert isinstance(t, TupleType) and len(t.fields) == 3
    assert compare_dims(t.fields[0].shape[1], 4) is True
    t = type_of(op.split(tv("x", (n, 12)), (2, 5), axis=1))
    assert [compare_dims(f.shape[1], w) for f, w in zip(t.fields, (2, 3, 7))] == [True] * 3
    t = type_of(op.split(tv("x", (n,)), (2,)))
    assert compare_dims(t.fields[1].shape[0], n - 2) is True
    with pytest.raises(ShapeError):
        type_of(op.split(tv("x", (10,)), 3))
    assert_dims(op.broadcast_to(tv("x", (1, 4)), (n, m, 4)), n, m, 4)
    with pytest.raises(ShapeError):
        type_of(op.broadcast_to(tv("x", (3, 4)), (n, 5, 4)))
    emb = tv("w", (1000, 64))
    assert_dims(op.take(emb, tv("ids", (n, m), "int64")), n, m, 64)
    with pytest.raises(VerifyError, match="integer"):
        type_of(op.take(emb, tv("ids", (n,), "float32")))


def test_unknown_shapes_keep_rank():
    x = tv("x", None, ndim=3)
    assert type_of(op.exp(x)).ndim == 3
    assert type_of(op.sum(x, axis=1)).ndim == 2
    assert type_of(op.add(x, tv("y", None, ndim=2))).ndim == 3
    assert type_of(op.matmul(x, tv("y", None, ndim=2))).ndim == 3
    assert type_of(op.add(x, tv("y", None))).ndim == -1


def test_unknown_op_and_attribute():
    from shapeflow.ir.graph.ops import get_op, make_call

    with pytest.raises(UnsupportedError):
        get_op("no_such_op")
    with pytest.raises(UnsupportedError, match="attribute"):
        op.sum(tv("x", (n,)), axes=0)
    with pytest.raises(VerifyError):
        make_call("add", [tv("x", (n,))])
    with pytest.raises(VerifyError, match="missing attribute"):
        make_call("reshape", [tv("x", (n,))])


def test_types_are_nodes_with_structural_equality():
    n2 = Var("n2")
    assert structural_equal(TensorType((n, 4), "float32"), TensorType((n2, 4), "float32"))
    assert not structural_equal(TensorType((n, 4), "float32"), TensorType((n2, 5), "float32"))
    assert TensorType((n, IntImm("int32", 4))).shape[1].dtype == "int64"
    with pytest.raises(VerifyError):
        TensorType((n,), "float32", ndim=2)
