"""The loop-IR verifier: one test per check, each building the bad IR with the constructors (which only
check field types) and asserting the VerifyError names the problem, the node and the function."""

import pytest
from tir_interp_examples import elementwise, f32, i64, matmul, root, rowsum, serial, well_formed_examples

from shapeflow.errors import VerifyError
from shapeflow.ir import (
    EQ,
    LT,
    Add,
    And,
    Broadcast,
    Call,
    Cast,
    FloatImm,
    IntImm,
    IRModule,
    Let,
    Not,
    Ramp,
    Select,
    Var,
)
from shapeflow.ir.expr import BufferLoad
from shapeflow.ir.tir import (
    Allocate,
    AssertStmt,
    Block,
    BlockRealize,
    BufferRegion,
    BufferStore,
    DeclBuffer,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    IterType,
    IterVar,
    LetStmt,
    PrimFunc,
    Range,
    decl_buffer,
    seq,
    verify,
    well_formed,
)

TRUE = IntImm("bool", 1)


def bad(func, pattern: str) -> VerifyError:
    """Assert `func` fails verification with a message matching `pattern`, naming the function."""
    with pytest.raises(VerifyError, match=pattern) as info:
        verify(func)
    assert info.value.where and "PrimFunc" in info.value.where
    assert info.value.node is not None
    assert not well_formed(func)
    return info.value


def store_func(value, dtype="float32", shape=(4,), indices=None, extra_params=()):
    A = decl_buffer(shape, dtype, "A")
    return PrimFunc((A, *extra_params), BufferStore(A, value, indices or (i64(0),) * len(shape)))


@pytest.mark.parametrize("func", well_formed_examples(), ids=lambda f: str(f.attrs.get("global_symbol", "f")))
def test_well_formed_examples_pass(func):
    verify(func)
    assert well_formed(func)


def test_well_formed_module_and_statements_pass():
    n = Var("n")
    A = decl_buffer((n, 4), "float32", "A")
    flat = decl_buffer((n * 4,), "float32", "A_flat", data=A.data)
    T = decl_buffer((4,), "float32", "T", scope="local")
    i, j, x = Var("i"), Var("j"), Var("x", "float32")
    body = seq(
        AssertStmt(LT(i64(0), n), "n > 0"),
        DeclBuffer(flat, serial(j, n * 4, LetStmt(x, flat[j], BufferStore(flat, x + f32(1.0), (j,))))),
        Allocate(T, serial(i, i64(4), IfThenElse(EQ(i, i64(0)), BufferStore(T, f32(0.0), (i,))))),
        BufferStore(
            A,
            A.load((i64(0), Ramp(i64(0), i64(1), 4))) * Broadcast(f32(2.0), 4),
            (i64(0), Ramp(i64(0), i64(1), 4)),
        ),
    )
    mod = IRModule({"f": PrimFunc((A,), body), "g": elementwise()})
    verify(mod)
    assert well_formed(mod)


def test_undefined_variable():
    i = Var("i")
    e = bad(store_func(Cast("float32", i)), "undefined variable i")
    assert e.node is i


def test_variable_used_after_its_scope():
    A = decl_buffer((4,), "int64", "A")
    i = Var("i")
    func = PrimFunc((A,), seq(serial(i, i64(4), Evaluate(i)), BufferStore(A, i, (i64(0),))))
    bad(func, "undefined variable i")


def test_doubly_defined_variable():
    A = decl_buffer((4, 4), "float32", "A")
    i = Var("i")
    func = PrimFunc((A,), serial(i, i64(4), serial(i, i64(4), BufferStore(A, f32(0.0), (i, i)))))
    bad(func, "variable i is defined twice")
    # A loop rebinding a symbolic dimension defined by a parameter.
    n = Var("n")
    B = decl_buffer((n,), "float32", "B")
    bad(PrimFunc((B,), serial(n, i64(2), Evaluate(n))), "variable n is defined twice")
    # Sibling loops reusing one Var are two bindings as well.
    bad(PrimFunc((A,), seq(serial(i, i64(4), Evaluate(i)), serial(i, i64(4), Evaluate(i)))), "defined twice")


def test_binary_operand_dtype_mismatch():
    x = Var("x", "int32")
    e = bad(
        store_func(Add(x, i64(1)), "int32", extra_params=(x,)),
        r"operand dtype mismatch in Add: int32 vs int64",
    )
    assert isinstance(e.node, Add)


def test_comparison_dtype_mismatch():
    x = Var("x", "int32")
    func = store_func(Select(LT(x, i64(3)), f32(1.0), f32(0.0)), extra_params=(x,))
    bad(func, "comparison LT of mismatched dtypes int32 and int64")


def test_logic_operands_must_be_bool():
    x = Var("x", "int32")
    one = IntImm("int32", 1)
    bad(store_func(Select(And(x, one), f32(1.0), f32(0.0)), extra_params=(x,)), "And operand must be bool")
    bad(store_func(Select(Not(x), f32(1.0), f32(0.0)), extra_params=(x,)), "Not operand must be bool")
    bad(store_func(Select(x, f32(1.0), f32(0.0)), extra_params=(x,)), "Select condition must be bool")


def test_select_branch_dtype_mismatch():
    bad(store_func(Select(TRUE, f32(1.0), FloatImm("float64", 0.0))), "Select branch dtype mismatch")


def test_index_dtype_must_be_integer():
    A = decl_buffer((4,), "float32", "A")
    func = PrimFunc((A,), BufferStore(A, f32(1.0), (f32(0.0),)))
    bad(func, "index dtype must be an integer, got float32")


def test_load_and_store_rank_mismatch():
    A = decl_buffer((4, 4), "float32", "A")
    bad(PrimFunc((A,), BufferStore(A, f32(0.0), (i64(0),))), "1 indices for buffer A of rank 2")
    load = BufferLoad(A, (i64(0), i64(0), i64(0)))
    bad(PrimFunc((A,), BufferStore(A, load, (i64(0), i64(1)))), "3 indices for buffer A of rank 2")


def test_store_value_dtype_and_lanes():
    bad(store_func(FloatImm("float64", 1.0)), "store of a float64 value into A needs float32")
    ramp = Ramp(i64(0), i64(1), 4)
    bad(store_func(f32(1.0), indices=(ramp,)), "store of a float32 value into A needs float32x4")
    bad(store_func(Broadcast(f32(1.0), 4)), "needs float32 .*1 index lanes")


def test_vector_lane_rules():
    vec = Ramp(i64(0), i64(1), 4)
    bad(store_func(f32(1.0), indices=(Ramp(vec, i64(1), 4),)), "Ramp base and stride must be scalars")
    bad(
        store_func(f32(1.0), indices=(Ramp(i64(0), IntImm("int32", 1), 4),)),
        "Ramp base and stride dtypes differ",
    )
    bad(
        store_func(Broadcast(Broadcast(f32(1.0), 2), 2), indices=(Ramp(i64(0), i64(1), 4),)),
        "Broadcast of a vector",
    )
    A = decl_buffer((4, 4), "float32", "A")
    mixed = (Ramp(i64(0), i64(1), 4), Ramp(i64(0), i64(1), 2))
    bad(PrimFunc((A,), BufferStore(A, Broadcast(f32(1.0), 4), mixed)), "vector indices with different lanes")


def test_for_min_extent_dtype_must_match_loop_var():
    A = decl_buffer((4,), "float32", "A")
    i = Var("i", "int32")
    func = PrimFunc((A,), For(i, IntImm("int32", 0), i64(4), ForKind.SERIAL, Evaluate(i)))
    bad(func, "For extent has dtype int64 but loop variable i is int32")


def test_cast_to_or_from_handle():
    A = decl_buffer((4,), "int64", "A")
    bad(PrimFunc((A,), BufferStore(A, Cast("int64", A.data), (i64(0),))), "casts to or from handle")


def test_calls_of_intrinsics():
    bad(store_func(Call("float32", "no_such_op", (f32(1.0),))), "unknown intrinsic 'no_such_op'")
    bad(store_func(Call("float32", "exp", (f32(1.0), f32(2.0)))), "exp takes 1 arguments, got 2")
    bad(store_func(Call("int32", "exp", (IntImm("int32", 1),)), "int32"), "exp needs float arguments")
    bad(store_func(Call("float32", "pow", (f32(1.0), FloatImm("float64", 2.0)))), "argument dtypes differ")


def _block_func(*, iter_values=None, writes=None, reads=None, binding_dtype="int64", use_outside=False):
    A = decl_buffer((4,), "float32", "A")
    B = decl_buffer((4,), "float32", "B")
    i = Var("i", binding_dtype)
    vi = Var("vi")
    block = Block(
        "blk",
        (IterVar(vi, Range.from_extent(4)),),
        tuple(BufferRegion.full({"A": A, "B": B}[b]) for b in (reads if reads is not None else "A")),
        tuple(BufferRegion.full({"A": A, "B": B}[b]) for b in (writes if writes is not None else "B")),
        BufferStore(B, A[vi], (vi,)),
    )
    realize = BlockRealize(tuple(iter_values(i)) if iter_values else (i,), TRUE, block)
    loop = For(i, IntImm(binding_dtype, 0), IntImm(binding_dtype, 4), ForKind.SERIAL, realize)
    body = seq(loop, BufferStore(B, f32(0.0), (vi,))) if use_outside else loop
    return PrimFunc((A, B), root(body))


def test_block_binding_rules():
    verify(_block_func())
    bad(_block_func(iter_values=lambda i: (i, i)), "1 iteration variables but 2 iter_values")
    bad(_block_func(binding_dtype="int32"), r"binding of vi \(int64\) has dtype int32")
    bad(_block_func(use_outside=True), "undefined variable vi")


def test_writes_to_read_only_region_and_unlisted_buffers():
    bad(_block_func(writes="", reads="AB"), "writes to read-only region: buffer B")
    bad(_block_func(writes="A", reads="A"), "block blk writes to buffer B, which is not in its writes")


def test_buffer_not_in_scope():
    A = decl_buffer((4,), "float32", "A")
    stray = decl_buffer((4,), "float32", "stray")
    e = bad(PrimFunc((A,), BufferStore(A, stray[i64(0)], (i64(0),))), "buffer stray is used but is neither")
    assert isinstance(e.node, BufferLoad)
    # An allocation's buffer is not in scope after its body.
    T = decl_buffer((4,), "float32", "T")
    body = seq(Allocate(T, BufferStore(T, f32(0.0), (i64(0),))), BufferStore(A, T[i64(0)], (i64(0),)))
    bad(PrimFunc((A,), body), "buffer T is used")


def test_allocation_shapes_must_be_positive():
    A = decl_buffer((4,), "float32", "A")
    T = decl_buffer((4, 0), "float32", "T")
    bad(
        PrimFunc((A,), Allocate(T, Evaluate(i64(0)))),
        "allocation of T has non-positive extent 0 in dimension 1",
    )
    U = decl_buffer((-2,), "float32", "U")
    block = Block("root", (), (), (), Evaluate(i64(0)), alloc_buffers=(U,))
    bad(PrimFunc((A,), BlockRealize((), TRUE, block)), "allocation of U has non-positive extent -2")


def test_decl_buffer_needs_defined_storage():
    A = decl_buffer((4,), "float32", "A")
    orphan = decl_buffer((4,), "float32", "orphan")
    bad(PrimFunc((A,), DeclBuffer(orphan, Evaluate(i64(0)))), "its storage orphan is not defined")


def test_conditions_must_be_bool_and_lets_typed():
    A = decl_buffer((4,), "float32", "A")
    bad(PrimFunc((A,), IfThenElse(i64(1), Evaluate(i64(0)))), "IfThenElse condition must be a scalar bool")
    bad(PrimFunc((A,), AssertStmt(i64(1), "m")), "AssertStmt condition must be a scalar bool")
    x = Var("x", "int32")
    bad(PrimFunc((A,), LetStmt(x, i64(1), Evaluate(x))), "LetStmt binds x of int32 to a value of int64")
    y = Var("y", "float32")
    bad(store_func(Let(y, FloatImm("float64", 1.0), f32(1.0))), "Let binds y of float32")


def test_module_errors_name_the_function():
    broken = PrimFunc((decl_buffer((4,), "float32", "A"),), Evaluate(Var("ghost")))
    with pytest.raises(VerifyError, match="in PrimFunc broken_fn: undefined variable ghost") as info:
        verify(IRModule({"ok": matmul(), "broken_fn": broken}))
    assert info.value.where == "PrimFunc broken_fn"
    assert not well_formed(IRModule({"ok": rowsum(), "broken_fn": broken}))


def test_reduce_block_without_realize_iter_vars():
    vk = Var("vk")
    block = Block("r", (IterVar(vk, Range.from_extent(4), IterType.REDUCE),), (), (), Evaluate(vk))
    bad(PrimFunc((), block), "no BlockRealize binds them")
