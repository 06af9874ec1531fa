"""The VM program format and instructions on their own: JSON round trip, validation, hand-written programs
(storage and views, shapes, tuples, jumps), and the unchecked-call decision of the codegen."""

import numpy as np
import pytest
import vm_models

import shapeflow as sf
from shapeflow.runtime.vm import Program, VirtualMachine, VMFunction
from shapeflow.runtime.vm import shape_code as SC


def _vm(func: VMFunction) -> VirtualMachine:
    return VirtualMachine(Program({func.name: func}, [], 0, func.name), {}, [])


def test_program_json_round_trip_of_a_compiled_model():
    exe = sf.compile(vm_models.mlp())
    text = exe.program.to_json()
    back = Program.from_json(text)
    assert back.to_json() == text and back.dump() == exe.program.dump()


@pytest.mark.parametrize(
    "code",
    [
        [["nope", 1]],
        [["ret"]],
        [["goto", 99]],
        [["move", 0, 7], ["ret", 0]],
        [["alloc_tensor", 1, [["h", 5]], "float32"], ["ret", 1]],
        [["prim", 1, ["pow", ["c", 2], ["c", 3]]], ["ret", 1]],
        [["prim", 1, ["c", "__import__('os')"]], ["ret", 1]],
    ],
)
def test_malformed_programs_are_errors_not_crashes(code):
    with pytest.raises(sf.Error):
        _vm(VMFunction.from_json({"name": "f", "params": ["x"], "num_regs": 2, "heap": ["n"], "code": code}))


def test_storage_views_shapes_tuples_and_jumps_by_hand():
    f = VMFunction("f", ["x"], 0, ["n"])
    f.num_regs = 8
    f.emit("check_tensor", 0, "x", "float32", 1, [[0, "store", 0]])
    f.emit("alloc_storage", 1, ["mul", ["h", 0], ["c", 8]])
    f.emit("alloc_view", 2, 1, ["c", 0], [["h", 0]], "float32")
    f.emit("alloc_view", 3, 1, ["mul", ["h", 0], ["c", 4]], [["h", 0]], "float32")
    f.emit("shape", 4, [["h", 0], ["add", ["h", 0], ["c", 1]]])
    f.emit("literal", 5, False)
    f.emit("if", 5, 8)
    f.emit("ret", 0)  # skipped: the condition is false
    f.emit("tuple", 6, [2, 3, 4])
    f.emit("release_storage", 1)
    f.emit("ret", 6)
    vm = _vm(f)
    a, b, shape = vm.invoke("f", [np.arange(3, dtype="float32")])
    assert a.shape == b.shape == (3,) and shape == (3, 4)
    a[:] = 1.0
    b[:] = 2.0  # the two views are disjoint halves of one storage
    assert a.sum() == 3.0 and b.sum() == 6.0


def test_view_outside_its_storage_is_a_shape_error():
    f = VMFunction("f", ["x"], 4, ["n"])
    f.emit("check_tensor", 0, "x", "float32", 1, [[0, "store", 0]])
    f.emit("alloc_storage", 1, ["c", 8])
    f.emit("alloc_view", 2, 1, ["c", 0], [["h", 0]], "float32")
    f.emit("ret", 2)
    vm = _vm(f)
    assert vm.invoke("f", [np.zeros(2, "float32")]).shape == (2,)
    with pytest.raises(sf.ShapeError, match="storage"):
        vm.invoke("f", [np.zeros(3, "float32")])


def test_shape_code_arithmetic_matches_the_ir_semantics():
    from shapeflow.ir import Var
    from shapeflow.ir.expr import FloorDiv, FloorMod, Max, Min

    n, m = Var("n"), Var("m")
    slots = {id(n): 0, id(m): 1}
    exprs = [n * 4 + m, FloorDiv(n - 7, m), FloorMod(n - 7, m), Min(n, m) * Max(n, m)]
    fn = SC.compile_tuple([SC.encode(e, slots) for e in exprs])
    for nv, mv in [(1, 1), (3, 5), (13, 2)]:
        assert fn([nv, mv]) == (nv * 4 + mv, (nv - 7) // mv, (nv - 7) % mv, nv * mv)
    with pytest.raises(sf.VerifyError):
        SC.encode(Var("k") + 1, slots)


def test_compiled_model_calls_kernels_unchecked():
    exe = sf.compile(vm_models.mlp())
    calls = [i for i in exe.program.functions["main"].code if i[0] == "call_tir"]
    assert calls and all(i[5] is False for i in calls)  # every dim proved: straight to native code


def test_call_with_unproved_argument_goes_through_the_kernel_checks():
    from shapeflow import te
    from shapeflow.ir import Var
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op

    k = te.var("k")
    A = te.placeholder((k,), "float32", name="A")
    B = te.placeholder((k,), "float32", name="B")
    C = te.compute((k,), lambda i: A[i] + B[i], name="C")
    n = Var("n")
    x = GraphVar("x", TensorType((n,), "float32"))
    y = GraphVar("y", TensorType(None, "float32", ndim=1))  # its length is not known to match
    bb = BlockBuilder()
    bb.add_func(te.create_prim_func([A, B, C], name="add2"), "add2")
    with bb.function("main", [x, y]):
        out = bb.emit(op.call_tir("add2", [x, y], TensorType((n,), "float32")))
        bb.emit_func_output(out)
    exe = sf.compile(bb.get())
    (call,) = [i for i in exe.program.functions["main"].code if i[0] == "call_tir"]
    assert call[5] is True
    a, b = np.arange(4, dtype="float32"), np.ones(4, "float32")
    np.testing.assert_array_equal(exe(a, b), a + 1)
    with pytest.raises(sf.ShapeError) as info:
        exe(a, np.ones(5, "float32"))
    assert info.value.function == "add2" and info.value.actual == 5
