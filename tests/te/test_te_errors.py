"""Mistakes a te user can make are shapeflow errors that name the tensor, never crashes or bare asserts."""

import pytest

from shapeflow import UnsupportedError, VerifyError, te


@pytest.fixture
def A():
    return te.placeholder((te.var("n"), 8), name="A")


def test_fcompute_returning_a_non_expression(A):
    with pytest.raises(VerifyError, match="'B'.*must return an expression.*str"):
        te.compute((4,), lambda i: "oops", name="B")
    with pytest.raises(VerifyError, match="'B'.*returned the tensor 'A'"):
        te.compute((4,), lambda i: A, name="B")
    with pytest.raises(VerifyError, match="'B'.*NoneType"):
        te.compute((4,), lambda i: None, name="B")


def test_reduction_inside_an_expression(A):
    k = te.reduce_axis((0, 8), name="k")
    with pytest.raises(VerifyError, match="'B'.*whole body"):
        te.compute((4,), lambda i: te.sum(A[i, k], axis=k) * 2.0, name="B")
    k2 = te.reduce_axis((0, 8), name="k2")
    with pytest.raises(VerifyError, match="'C'.*whole body"):
        te.compute((4,), lambda i: te.sum(te.max(A[i, k2], axis=k2) + A[i, k], axis=k), name="C")


def test_reduce_axis_used_outside_its_reduction(A):
    k = te.reduce_axis((0, 8), name="k")
    with pytest.raises(VerifyError, match="'B'.*reduce axis 'k'"):
        te.compute((4,), lambda i: A[i, k], name="B")
    with pytest.raises(VerifyError, match="'C'.*reduce axis 'k'"):
        te.compute((4,), lambda i: te.sum(A[i, k], axis=k, init=A[i, k]), name="C")


def test_reduce_axis_domain_depending_on_an_index(A):
    def triangular(i):
        k = te.reduce_axis((0, i), "k")
        return te.sum(A[i, k], axis=k)

    with pytest.raises(VerifyError, match="'B'.*depends on the index 'i'"):
        te.compute((8,), triangular, name="B")


def test_mismatched_dtypes():
    x = te.placeholder((4,), "float32", name="X")
    y = te.placeholder((4,), "float16", name="Y")
    with pytest.raises(VerifyError, match="different dtypes"):
        te.compute((4,), lambda i: te.if_then_else(i > 1, x[i], y[i]), name="Z")
    with pytest.raises(VerifyError, match="condition must be bool"):
        te.if_then_else(x[0], 1.0, 2.0)
    bad = te.comm_reducer(lambda a, b: (a + b).astype("float64"), lambda dt: te.const(0.0, dt), "bad")
    k = te.reduce_axis((0, 4), name="k")
    S = te.compute((1,), lambda i: bad(x[k], axis=k), name="S")
    with pytest.raises(VerifyError, match="'bad'.*float64.*float32"):
        te.create_prim_func([x, S])
    with pytest.raises(VerifyError, match="init has dtype"):
        te.sum(x[k], axis=k, init=te.const(0, "int32"))
    with pytest.raises(VerifyError, match="where= must be a bool"):
        te.sum(x[k], axis=k, where=x[k])


@pytest.mark.parametrize("shape", [(4.5,), ("n",), (None,), (te.var("f", "float32"),), (-1,), (True,)])
def test_shapes_must_be_integers(shape):
    with pytest.raises(VerifyError, match="tensor 'T'"):
        te.placeholder(shape, name="T")
    with pytest.raises(VerifyError, match="tensor 'T'"):
        te.compute(shape, lambda i: 1.0, name="T")


def test_bad_dtype_is_unsupported():
    with pytest.raises(UnsupportedError):
        te.placeholder((4,), "float13", name="A")


def test_indexing_mistakes(A):
    with pytest.raises(VerifyError, match="'A' has 2 dimensions but is indexed with 1"):
        A[0]
    with pytest.raises(VerifyError, match="'A'.*index 1.*integer"):
        A[0, 1.5]
    with pytest.raises(VerifyError, match="'A'.*slices"):
        A[0, 1:3]
    with pytest.raises(VerifyError, match="'A'.*scalar integer"):
        A[0, te.var("x", "float32")]


def test_fcompute_arity(A):
    with pytest.raises(VerifyError, match="'B'.*2 index arguments.*1 dimensions"):
        te.compute((4,), lambda i, j: A[i, j], name="B")


def test_reducer_axis_must_be_reduce_axes(A):
    with pytest.raises(VerifyError, match="te.sum: axis must be a te.reduce_axis"):
        te.sum(A[0, 0], axis=te.var("i"))
    k = te.reduce_axis((0, 8), name="k")
    with pytest.raises(VerifyError, match="listed twice"):
        te.sum(A[0, k], axis=[k, k])


def test_unlisted_placeholder(A):
    B = te.compute((4,), lambda i: A[i, 0] + 1.0, name="B")
    with pytest.raises(VerifyError, match="placeholder 'A' is read by 'B' but is not in the parameter list"):
        te.create_prim_func([B])


def test_undefined_scalar_variable(A):
    alpha = te.var("alpha", "float32")
    B = te.compute((4,), lambda i: A[i, 0] * alpha, name="B")
    with pytest.raises(VerifyError, match="compute 'B' uses variable 'alpha'"):
        te.create_prim_func([A, B])
    te.create_prim_func([A, alpha, B])  # listing it fixes it


def test_intermediate_shape_needs_defined_variables():
    n, m = te.var("n"), te.var("m")
    A = te.placeholder((n,), name="A")
    T = te.compute((m,), lambda i: A[0] * 2.0, name="T")
    B = te.compute((n,), lambda i: T[0], name="B")
    with pytest.raises(VerifyError, match="intermediate tensor 'T'.*'m'"):
        te.create_prim_func([A, B])


def test_parameter_list_mistakes(A):
    B = te.compute((4,), lambda i: A[i, 0], name="B")
    with pytest.raises(VerifyError, match="'A' is listed twice"):
        te.create_prim_func([A, A, B])
    with pytest.raises(VerifyError, match="parameters must be te tensors"):
        te.create_prim_func([A, "B"])
    with pytest.raises(VerifyError, match="identifier"):
        te.create_prim_func([A, B], name="not a name")


def test_var_bounds_mistakes(A):
    B = te.compute((4,), lambda i: A[i, 0], name="B")
    with pytest.raises(VerifyError, match="'m', which is not a symbolic dimension"):
        te.create_prim_func([A, B], var_bounds={"m": (1, 4)})
    with pytest.raises(VerifyError, match="empty"):
        te.create_prim_func([A, B], var_bounds={"n": (5, 4)})
    with pytest.raises(VerifyError, match="must be \\(lo, hi\\) ints"):
        te.create_prim_func([A, B], var_bounds={"n": 4})


def test_math_on_wrong_kind():
    with pytest.raises(VerifyError, match="exp needs float"):
        te.exp(te.var("i"))
    with pytest.raises(VerifyError, match="te.all: conditions must be bool"):
        te.all(te.var("i"))


def test_multi_output_with_reduction_is_rejected(A):
    k = te.reduce_axis((0, 8), name="k")
    with pytest.raises(VerifyError, match="'B'.*several outputs"):
        te.compute((4,), lambda i: (te.sum(A[i, k], axis=k), A[i, 0]), name="B")


@pytest.mark.parametrize("dom", [(3, 3), (4, 2)])
def test_constant_empty_reduce_domain(dom):
    with pytest.raises(VerifyError, match="empty domain"):
        te.reduce_axis(dom, "k")
