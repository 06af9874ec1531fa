"""Property tests over random IR from tests/strategies_tir.py: the verifier accepts every executable
function and the interpreter runs it at random shapes (sizes 1, primes, 16); on IR of every node kind the
verifier and the interpreter either succeed or raise a shapeflow Error, never crash."""

import contextlib
import signal

import numpy as np
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from strategies_tir import ir_prim_funcs, prim_funcs

from shapeflow.errors import Error, VerifyError
from shapeflow.ir import Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir import Buffer, verify
from shapeflow.ir.tir.interpreter import FunctionCompiler, run
from shapeflow.ir.tir.interpreter_values import numpy_dtype

SIZES = [1, 2, 3, 5, 7, 13, 16]


def make_arguments(func, data, rng):
    """Arrays and scalars for `func`'s parameters, with every symbolic dimension drawn from SIZES."""
    dims = {}
    for p in func.params:
        exprs = [p] if isinstance(p, Var) else [*p.shape, *p.strides, p.elem_offset]
        for e in exprs:
            for v in collect(e, Var):
                if v.dtype.is_integer and id(v) not in dims:
                    dims[id(v)] = (v, data.draw(st.sampled_from(SIZES)))
    compiler = FunctionCompiler(func, "args")
    env_items = [(compiler.slot(v), value) for v, value in dims.values()]
    args = []
    for p in func.params:
        if isinstance(p, Var):
            args.append(dims[id(p)][1] if id(p) in dims else _scalar(p.dtype))
            continue
        shape_fns = [compiler.expr(s) for s in p.shape]
        env = [None] * compiler.num_slots
        for slot, value in env_items:
            env[slot] = value
        shape = tuple(max(0, int(f(env))) for f in shape_fns)
        args.append(_array(p, shape, rng))
    return args


def _scalar(dtype):
    if dtype.is_bool:
        return True
    if dtype.is_float:
        return 1.5
    if dtype.is_handle:
        return None
    return 3


def _array(buffer: Buffer, shape, rng):
    npdt = numpy_dtype(buffer.dtype)
    if buffer.dtype.is_float:
        return rng.standard_normal(shape).astype(npdt)
    if buffer.dtype.is_bool:
        return rng.integers(0, 2, shape).astype(npdt)
    return rng.integers(-100, 100, shape).astype(npdt)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(prim_funcs(), st.data())
def test_executable_random_functions_verify_and_run(func, data):
    verify(func)
    args = make_arguments(func, data, np.random.default_rng(0))
    before = [a.copy() for a in args]
    run(func, *args)
    # Inputs are never written: only the outputs (last parameter) may change.
    for k, (a, b) in enumerate(zip(args[:-1], before[:-1])):
        np.testing.assert_array_equal(a, b, err_msg=f"input {k} was modified")
    # The meaning is deterministic: running again from the same inputs gives bit-identical outputs.
    again = [b.copy() for b in before]
    run(func, *again)
    assert args[-1].tobytes() == again[-1].tobytes()


class TooLong(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the interpreter swallows it."""


@contextlib.contextmanager
def time_budget(seconds: float):
    """Interrupt the interpreter (SIGALRM, main thread) once `seconds` of wall time have passed."""

    def alarm(signum, frame):
        raise TooLong

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(ir_prim_funcs(), st.data())
def test_any_ir_verifies_or_fails_cleanly_and_never_crashes_the_interpreter(func, data):
    try:
        verify(func)
    except VerifyError:
        pass
    try:
        args = make_arguments(func, data, np.random.default_rng(1))
    except Error:
        return  # shapes that cannot even be evaluated
    try:
        with time_budget(2.0):
            run(func, *args)
    except Error:
        pass  # a fault of the program (out of bounds, assert, unknown intrinsic...), reported as such
    except TooLong:
        reject()  # a loop extent drawn from a random expression can be huge: not a crash, just long
