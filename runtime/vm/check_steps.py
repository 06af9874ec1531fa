"""VM steps that check values: tensors, shapes and scalars at boundaries and match_casts (storing new
symbolic dims into the heap, asserting known ones), declared bounds, and the broadcast / element-count
guards of ops whose validity inference could not prove. Each failure is a ShapeError naming the function,
the parameter or binding, the dimension, the expected (symbolic) value and the actual one."""

from __future__ import annotations

import numpy as np

from shapeflow.errors import ShapeError
from shapeflow.ir.dtype import DataType
from shapeflow.runtime.vm import shape_code as SC
from shapeflow.runtime.vm.builtins import as_array, check_prim, dim_error, to_dtype
from shapeflow.runtime.vm.steps import builds, expected_text, heap_codes, reg_index, slot_index


@builds("check_tensor")
def _check_tensor(vm, func, reg, where, dtype, ndim, dims):
    reg = reg_index(func, reg)
    want = to_dtype(dtype)
    stores = [(int(d), slot_index(func, arg)) for d, mode, arg in dims if mode == "store"]
    asserts = [
        (int(d), c, SC.compile_one(c)) for d, mode, c in dims if mode == "assert" and heap_codes(func, [c])
    ]
    fname, names = func.name, func.heap

    def step(R, H):
        a = R[reg]
        if type(a) is not np.ndarray or not a.flags.c_contiguous:
            a = R[reg] = as_array(a, fname, where)
        if want is not None and a.dtype != want:
            raise ShapeError(
                "dtype mismatch", function=fname, parameter=where, expected=dtype, actual=str(a.dtype)
            )
        if ndim >= 0 and a.ndim != ndim:
            raise ShapeError("rank mismatch", function=fname, parameter=where, expected=ndim, actual=a.ndim)
        s = a.shape
        for d, slot in stores:
            H[slot] = s[d]
        for d, code, fn in asserts:
            value = fn(H)
            if s[d] != value:
                raise dim_error(fname, where, d, expected_text(code, value, names), s[d])

    return step


@builds("assert_dim")
def _assert_dim(vm, func, reg, where, d, code):
    reg, fn = reg_index(func, reg), SC.compile_one(heap_codes(func, [code])[0])
    fname, names = func.name, func.heap

    def step(R, H):
        actual, value = R[reg].shape[d], fn(H)
        if actual != value:
            raise dim_error(fname, where, d, expected_text(code, value, names), actual)

    return step


@builds("check_shape")
def _check_shape(vm, func, reg, where, ndim, dims):
    reg = reg_index(func, reg)
    fname, names = func.name, func.heap
    stores = [(int(d), slot_index(func, arg)) for d, mode, arg in dims if mode == "store"]
    asserts = [
        (int(d), c, SC.compile_one(c)) for d, mode, c in dims if mode == "assert" and heap_codes(func, [c])
    ]

    def step(R, H):
        value = R[reg]
        if not isinstance(value, (tuple, list)) or not all(isinstance(v, (int, np.integer)) for v in value):
            raise ShapeError(
                "expected a shape",
                function=fname,
                parameter=where,
                expected="tuple of ints",
                actual=type(value).__name__,
            )
        value = R[reg] = tuple(int(v) for v in value)
        if ndim >= 0 and len(value) != ndim:
            raise ShapeError(
                "shape length mismatch", function=fname, parameter=where, expected=ndim, actual=len(value)
            )
        for d, slot in stores:
            H[slot] = value[d]
        for d, code, fn in asserts:
            want = fn(H)
            if value[d] != want:
                raise dim_error(fname, where, d, expected_text(code, want, names), value[d])

    return step


@builds("check_prim")
def _check_prim(vm, func, reg, where, dtype, mode, arg):
    reg = reg_index(func, reg)
    dt = DataType(dtype)
    slot = slot_index(func, arg) if mode == "store" else None
    fn = SC.compile_one(heap_codes(func, [arg])[0]) if mode == "assert" else None
    fname = func.name

    def step(R, H):
        value = R[reg] = check_prim(R[reg], dt, fname, where)
        if slot is not None:
            H[slot] = value
        elif fn is not None and value != fn(H):
            raise ShapeError("value mismatch", function=fname, parameter=where, expected=fn(H), actual=value)

    return step


@builds("check_bounds")
def _check_bounds(vm, func, bounds):
    checks = [(slot_index(func, s), str(n), lo, hi) for s, n, lo, hi in bounds]
    fname = func.name

    def step(R, H):
        for slot, name, lo, hi in checks:
            v = H[slot]
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ShapeError(
                    f"symbolic dim {name} out of its declared bounds",
                    function=fname,
                    parameter=name,
                    expected=f"{lo} <= {name} <= {hi}",
                    actual=v,
                )

    return step


@builds("assert_bcast")
def _assert_bcast(vm, func, where, d, code, out_code):
    fn, out_fn = (SC.compile_one(c) for c in heap_codes(func, [code, out_code]))
    fname, names = func.name, func.heap

    def step(R, H):
        value, out = fn(H), out_fn(H)
        if value != 1 and value != out:
            raise ShapeError(
                "operands cannot be broadcast together",
                function=fname,
                parameter=where,
                dimension=d,
                expected=f"{SC.describe(code, names)} == 1 or {SC.describe(out_code, names)} = {out}",
                actual=value,
            )

    return step


@builds("assert_eq")
def _assert_eq(vm, func, where, code, other, what):
    fn, other_fn = (SC.compile_one(c) for c in heap_codes(func, [code, other]))
    fname, names, what = func.name, func.heap, str(what)

    def step(R, H):
        value, want = fn(H), other_fn(H)
        if value != want:
            raise ShapeError(
                what,
                function=fname,
                parameter=where,
                expected=f"{SC.describe(other, names)} = {want}",
                actual=f"{SC.describe(code, names)} = {value}",
            )

    return step


@builds("assert_le")
def _assert_le(vm, func, where, code, other, what):
    fn, other_fn = (SC.compile_one(c) for c in heap_codes(func, [code, other]))
    fname, names, what = func.name, func.heap, str(what)

    def step(R, H):
        value, bound = fn(H), other_fn(H)
        if value > bound:
            raise ShapeError(
                what,
                function=fname,
                parameter=where,
                expected=f"{SC.describe(code, names)} <= {SC.describe(other, names)} = {bound}",
                actual=f"{SC.describe(code, names)} = {value}",
            )

    return step
