"""The graph well-formedness checker: each rule, with the binding named in the error."""

import pytest
from test_graph_builder import build_mlp

from shapeflow.errors import VerifyError
from shapeflow.ir import IRModule, Var
from shapeflow.ir.graph import (
    BindingBlock,
    Call,
    DataflowBlock,
    DataflowVar,
    GlobalName,
    GraphFunction,
    GraphVar,
    MatchCast,
    Op,
    SeqExpr,
    ShapeExpr,
    TensorType,
    Tuple,
    VarBinding,
    op,
    verify,
)
from shapeflow.ir.graph.ops import get_op, make_call

n = Var("n")
T = TensorType((n, 4), "float32")


def func(blocks, body, params=None, ret=None):
    params = params if params is not None else [X]
    return IRModule({"f": GraphFunction(params, SeqExpr(blocks, body), ret or T, {"global_symbol": "f"})})


X = GraphVar("x", T)


def check_fails(mod, *needles):
    with pytest.raises(VerifyError) as info:
        verify(mod)
    text = str(info.value)
    assert "function 'f'" in text
    for needle in needles:
        assert needle in text, text
    return info.value


def test_well_formed_programs_pass():
    mod, _ = build_mlp()
    verify(mod)
    y = GraphVar("y", T)
    verify(func([BindingBlock([VarBinding(y, op.exp(X))])], y))


def test_undefined_variable():
    ghost = GraphVar("ghost", T)
    y = GraphVar("y", T)
    check_fails(func([BindingBlock([VarBinding(y, op.exp(ghost))])], y), "binding 'y'", "ghost")


def test_dataflow_var_used_outside_its_block():
    lv = DataflowVar("lv", T)
    check_fails(func([DataflowBlock([VarBinding(lv, op.exp(X))])], lv), "lv", "outside")
    y = GraphVar("y", T)
    blocks = [DataflowBlock([VarBinding(lv, op.exp(X))]), BindingBlock([VarBinding(y, op.exp(lv))])]
    check_fails(func(blocks, y), "binding 'y'")


def test_dataflow_var_bound_outside_dataflow_block():
    lv = DataflowVar("lv", T)
    check_fails(func([BindingBlock([VarBinding(lv, op.exp(X))])], X), "binding 'lv'", "outside a dataflow")


def test_variable_bound_twice():
    y = GraphVar("y", T)
    block = BindingBlock([VarBinding(y, op.exp(X)), VarBinding(y, op.exp(X))])
    check_fails(func([block], y), "more than once")


def test_unknown_op():
    y = GraphVar("y", T)
    check_fails(
        func([BindingBlock([VarBinding(y, Call(Op("frobnicate"), (X,)))])], y), "binding 'y'", "frobnicate"
    )


def test_arity_and_attribute_errors():
    y = GraphVar("y", T)
    check_fails(func([BindingBlock([VarBinding(y, Call(get_op("add"), (X,)))])], y), "binding 'y'", "add")
    bad_attr = Call(get_op("sum"), (X,), {"axes": 0})
    check_fails(func([BindingBlock([VarBinding(y, bad_attr)])], y), "binding 'y'", "axes")
    bad_value = Call(get_op("sum"), (X,), {"axis": "zero"})
    check_fails(func([BindingBlock([VarBinding(y, bad_value)])], y), "binding 'y'", "axis")


def test_ill_typed_binding():
    wrong = GraphVar("wrong", TensorType((n, 5), "float32"))
    check_fails(func([BindingBlock([VarBinding(wrong, op.exp(X))])], X), "binding 'wrong'", "ill-typed")
    wrong_dtype = GraphVar("wd", TensorType((n, 4), "float16"))
    check_fails(func([BindingBlock([VarBinding(wrong_dtype, op.exp(X))])], X), "binding 'wd'", "dtype")
    # a provable shape conflict inside the call is the binding's error
    y = GraphVar("y", T)
    z = GraphVar("z", TensorType((n, 3), "float32"))
    call = Call(get_op("add"), (X, z), {})
    check_fails(func([BindingBlock([VarBinding(y, call)])], y, params=[X, z]), "binding 'y'", "broadcast")


def test_less_specific_declared_type_is_accepted():
    y = GraphVar("y", TensorType(None, "float32", ndim=2))
    verify(func([BindingBlock([VarBinding(y, op.exp(X))])], y, ret=TensorType(None, "float32", ndim=2)))


def test_return_type_mismatch():
    check_fails(func([], X, ret=TensorType((n, 4), "int32")), "return value")


def test_undefined_symbolic_variable():
    m = Var("m")
    y = GraphVar("y", TensorType((m, 2), "float32"))
    reshape = make_call("reshape", [X], {"shape": (m, 2)})
    check_fails(func([BindingBlock([VarBinding(y, reshape)])], X), "binding 'y'", "'m'")
    s = GraphVar("s", TensorType(None))
    shape_use = Call(get_op("reshape"), (X,), {"shape": (n, 4)})
    verify(func([BindingBlock([VarBinding(s, shape_use)])], X))
    check_fails(func([], Tuple((X, ShapeExpr((m,)))), ret=TensorType(None)), "'m'")


def test_match_cast_defines_symbolic_vars_for_later_use():
    m = Var("m")
    x = GraphVar("x", TensorType(None, "float32", ndim=1))
    y = GraphVar("y", TensorType((m,), "float32"))
    z = GraphVar("z", TensorType((m,), "float32"))
    blocks = [
        BindingBlock([MatchCast(y, x, y.type), VarBinding(z, make_call("reshape", [y], {"shape": (m,)}))])
    ]
    verify(func(blocks, z, params=[x], ret=z.type))


def test_call_tir_needs_a_prim_func_and_global_calls_need_a_function():
    y = GraphVar("y", T)
    call = make_call("call_tir", [GlobalName("missing"), Tuple((X,))], type_args=(T,))
    check_fails(func([BindingBlock([VarBinding(y, call)])], y), "binding 'y'", "missing")
    call = Call(GlobalName("nowhere"), (X,))
    check_fails(func([BindingBlock([VarBinding(y, call)])], y), "nowhere")
