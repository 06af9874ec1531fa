"""Checking the arguments of a compiled kernel before native code sees them.

A `CallPlan` is built once per kernel from its PrimFunc: where each symbolic dimension is read from (a
scalar parameter, else the first parameter dimension or stride that is exactly that variable), which
dimensions, strides and offsets must then agree, the bounds of `attrs["var_bounds"]`, and which buffers are
written (they must be writeable). It yields two checkers:

- `fast(args)`: straight-line Python generated from the plan (numba's habit) for the common case: numpy
  arrays of the right dtype and layout, Python scalars. It returns the native arguments, or None when
  anything is unusual or wrong; it never explains.
- `slow(args)`: the same plan, interpreted step by step. It converts DLPack tensors and numpy scalars, and
  raises `ShapeError(function=, parameter=, dimension=, expected=, actual=)` at the first mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shapeflow.errors import ShapeError, UnsupportedError
from shapeflow.ir.dtype import DataType, to_numpy_dtype
from shapeflow.ir.expr import IntImm, PrimExpr, Var
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.buffer import Buffer
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.ir.tir.stmt import BufferStore
from shapeflow.runtime.pyabi import data_pointer
from shapeflow.runtime.shape_expr import HELPERS, to_python


@dataclass
class _Check:
    """`value` (Python source over the bound names and the array `a<i>`) must equal `expected`."""

    param: int
    what: str  # "shape" | "stride" | "offset" | "scalar"
    dim: int | None
    actual_src: str
    expected_src: str


@dataclass
class CallPlan:
    function: str
    func: PrimFunc
    symbolic: tuple[Var, ...]
    names: dict[int, str] = field(default_factory=dict)
    binds: list[tuple[str, int, str, int | None, str]] = field(default_factory=list)
    checks: list[_Check] = field(default_factory=list)
    bounds: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)
    written: set[int] = field(default_factory=set)

    @staticmethod
    def build(function: str, func: PrimFunc, symbolic: tuple[Var, ...]) -> CallPlan:
        plan = CallPlan(function, func, symbolic)
        plan._plan()
        return plan

    # -- planning ---------------------------------------------------------------------------------
    def _name(self, var: Var) -> str:
        return self.names.setdefault(id(var), f"v{len(self.names)}")

    def _plan(self) -> None:
        params = self.func.params
        for i, p in enumerate(params):
            if isinstance(p, Var):
                self.binds.append((self._name(p), i, "scalar", None, f"a{i}"))
        stored = {id(s.buffer.data) for s in collect(self.func.body, BufferStore)}
        pending = []
        for i, p in enumerate(params):
            if not isinstance(p, Buffer):
                continue
            if id(p.data) in stored:
                self.written.add(i)
            itemsize = p.dtype.bytes
            sites = [("shape", d, e, f"s{i}[{d}]") for d, e in enumerate(p.shape)]
            sites += [("stride", d, e, f"(t{i}[{d}] // {itemsize})") for d, e in enumerate(p.strides)]
            if not is_constant_zero(p.elem_offset):
                sites.append(("offset", None, p.elem_offset, "0"))  # we pass a pointer to element 0
            for what, dim, expr, source in sites:
                if what == "stride":
                    self.checks.append(_Check(i, "stride", dim, f"(t{i}[{dim}] % {itemsize})", "0"))
                if isinstance(expr, Var) and id(expr) not in self.names:
                    self.binds.append((self._name(expr), i, what, dim, source))
                else:
                    pending.append((i, what, dim, expr, source))
        for i, what, dim, expr, source in pending:
            self.checks.append(_Check(i, what, dim, source, to_python(expr, self.names)))
        for var in self.symbolic:
            if id(var) not in self.names:
                raise UnsupportedError(
                    f"function '{self.function}': symbolic dimension '{var.name}' appears only inside "
                    "expressions; it must also be a whole dimension, stride or scalar parameter"
                )
        bounds = self.func.attrs.get("var_bounds", {}) or {}
        by_name = {}
        for p in params:
            if isinstance(p, Var):
                by_name.setdefault(p.name, p)
        for var in self.symbolic:
            by_name.setdefault(var.name, var)
        for name, (lo, hi) in bounds.items():
            var = by_name.get(name)
            if var is not None:
                self.bounds.append((name, self.names[id(var)], lo, hi))

    # -- the generated fast path ----------------------------------------------------------------
    def make_fast(self, use_ids: bool):
        """A function args -> native argument tuple, or None (see the module docstring)."""
        params = self.func.params
        n = len(params)
        env: dict = {"ndarray": np.ndarray, **HELPERS}
        lines = ["def fast(args):", f"    if len(args) != {n}:", "        return None"]
        if n:
            lines.append(f"    {', '.join(f'a{i}' for i in range(n))}{',' if n == 1 else ''} = args")
        for i, p in enumerate(params):
            if isinstance(p, Buffer):
                env[f"D{i}"] = to_numpy_dtype(p.dtype)
                lines += [
                    f"    if type(a{i}) is not ndarray or a{i}.dtype is not D{i} or a{i}.ndim != {p.ndim}:",
                    "        return None",
                    f"    s{i} = a{i}.shape",
                ]
                if p.strides:
                    lines.append(f"    t{i} = a{i}.strides")
                elif p.ndim > 1:
                    lines += [f"    if not a{i}.flags.c_contiguous:", "        return None"]
                if i in self.written:
                    lines += [f"    if not a{i}.flags.writeable:", "        return None"]
            else:
                lines += _scalar_fast_check(i, p.dtype)
        for name, _param, _what, _dim, source in self.binds:
            lines.append(f"    {name} = {source}")
        for c in self.checks:
            lines += [f"    if {c.actual_src} != {c.expected_src}:", "        return None"]
        for _name, py, lo, hi in self.bounds:
            cond = " and ".join(
                x
                for x in (
                    f"{lo} <= {py}" if lo is not None else "",
                    f"{py} <= {hi}" if hi is not None else "",
                )
                if x
            )
            if cond:
                lines += [f"    if not ({cond}):", "        return None"]
        out = [
            f"id(a{i})"
            if isinstance(p, Buffer) and use_ids
            else (f"a{i}.ctypes.data" if isinstance(p, Buffer) else f"a{i}")
            for i, p in enumerate(params)
        ]
        out += [self.names[id(v)] for v in self.symbolic]
        lines.append(f"    return ({', '.join(out)}{',' if len(out) == 1 else ''})")
        exec(compile("\n".join(lines), f"<shapeflow checker {self.function}>", "exec"), env)  # noqa: S102
        return env["fast"]

    # -- the explaining slow path ---------------------------------------------------------------
    def slow(self, args) -> tuple[tuple, list]:
        """Check and convert `args`; (native arguments with raw data pointers, objects to keep alive)."""
        params = self.func.params
        fn = self.function
        if len(args) != len(params):
            raise ShapeError("wrong number of arguments", function=fn, expected=len(params), actual=len(args))
        arrays: dict[int, np.ndarray] = {}
        values: dict[int, object] = {}
        scope: dict = dict(HELPERS)
        for i, (p, arg) in enumerate(zip(params, args)):
            if isinstance(p, Buffer):
                arr = _as_array(fn, p, arg)
                arrays[i] = arr
                scope[f"a{i}"], scope[f"s{i}"], scope[f"t{i}"] = arr, arr.shape, arr.strides
            else:
                values[i] = _as_scalar(fn, p, arg)
                scope[f"a{i}"] = values[i]
        for i, arr in arrays.items():
            _check_layout(fn, params[i], arr, i in self.written)
        for name, _param, _what, _dim, source in self.binds:
            scope[name] = eval(source, scope)  # noqa: S307
        for c in self.checks:
            actual = eval(c.actual_src, scope)  # noqa: S307
            expected = eval(c.expected_src, scope)  # noqa: S307
            if actual != expected:
                p = params[c.param]
                if c.what == "stride" and c.expected_src == "0":
                    raise ShapeError(
                        "stride is not a multiple of the element size",
                        function=fn,
                        parameter=p.name,
                        dimension=c.dim,
                        expected=0,
                        actual=actual,
                    )
                raise ShapeError(
                    f"{c.what} mismatch",
                    function=fn,
                    parameter=p.name,
                    dimension=c.dim,
                    expected=expected,
                    actual=actual,
                )
        for name, py, lo, hi in self.bounds:
            value = scope[py]
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                site = next((b for b in self.binds if b[0] == py), None)
                raise ShapeError(
                    f"symbolic dimension '{name}' out of its bounds",
                    function=fn,
                    parameter=params[site[1]].name if site else None,
                    dimension=site[3] if site else None,
                    expected=(lo, hi),
                    actual=value,
                )
        native = [data_pointer(arrays[i]) if i in arrays else values[i] for i in range(len(params))]
        native += [scope[self.names[id(v)]] for v in self.symbolic]
        return tuple(native), list(arrays.values())


def _scalar_fast_check(i: int, dtype: DataType) -> list[str]:
    if dtype.is_bool:
        return [f"    if type(a{i}) is not bool:", "        return None"]
    if dtype.is_integer:
        lo, hi = dtype.min_value(), dtype.max_value()
        return [f"    if type(a{i}) is not int or not ({lo} <= a{i} <= {hi}):", "        return None"]
    return [f"    if type(a{i}) is not float:", "        return None"]


def _as_array(fn: str, p: Buffer, arg) -> np.ndarray:
    if isinstance(arg, np.ndarray):
        arr = arg
    elif hasattr(arg, "__dlpack__"):
        try:
            arr = np.from_dlpack(arg)
        except (TypeError, ValueError, RuntimeError, BufferError) as exc:
            raise ShapeError(
                f"cannot read the DLPack tensor ({exc})",
                function=fn,
                parameter=p.name,
                expected="a CPU tensor",
                actual=type(arg).__name__,
            ) from exc
    else:
        raise ShapeError(
            "not an array",
            function=fn,
            parameter=p.name,
            expected="numpy array or DLPack tensor",
            actual=type(arg).__name__,
        )
    expected = to_numpy_dtype(p.dtype)
    if arr.dtype != expected:
        raise ShapeError(
            "dtype mismatch", function=fn, parameter=p.name, expected=str(p.dtype), actual=str(arr.dtype)
        )
    if arr.ndim != p.ndim:
        raise ShapeError("rank mismatch", function=fn, parameter=p.name, expected=p.ndim, actual=arr.ndim)
    return arr


def _check_layout(fn: str, p: Buffer, arr: np.ndarray, written: bool) -> None:
    if not p.strides and not arr.flags.c_contiguous:
        raise ShapeError(
            "layout mismatch",
            function=fn,
            parameter=p.name,
            expected="C-contiguous",
            actual=f"strides {arr.strides}",
        )
    if written and not arr.flags.writeable:
        raise ShapeError(
            "the kernel writes this parameter",
            function=fn,
            parameter=p.name,
            expected="writeable array",
            actual="read-only array",
        )


def _as_scalar(fn: str, p: Var, arg):
    dtype = p.dtype
    if isinstance(arg, np.ndarray) and arg.ndim == 0:
        arg = arg.item()
    if isinstance(arg, np.generic):
        arg = arg.item()
    if dtype.is_float:
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return float(arg)
    elif dtype.is_bool:
        if isinstance(arg, (bool, int)) and arg in (0, 1):
            return int(bool(arg))
    elif isinstance(arg, int) and not isinstance(arg, bool):
        if not dtype.min_value() <= arg <= dtype.max_value():
            raise ShapeError(
                "scalar out of range",
                function=fn,
                parameter=p.name,
                expected=(dtype.min_value(), dtype.max_value()),
                actual=arg,
            )
        return arg
    raise ShapeError(
        "wrong scalar argument",
        function=fn,
        parameter=p.name,
        expected=str(dtype),
        actual=f"{type(arg).__name__} {arg!r}",
    )


def is_constant_zero(expr: PrimExpr) -> bool:
    return isinstance(expr, IntImm) and expr.value == 0
