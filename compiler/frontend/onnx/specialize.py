"""Value specialization: an ONNX model whose shapes depend on the values of some graph inputs, compiled once
per distinct value of those inputs, the way torch.compile guards on values.

    exe = shapeflow.compile("model.onnx")    # Reshape's target shape is a graph input "shape"
    exe.specialized_inputs                   # ("shape",)
    y = exe(x, np.array([3, -1]))            # compiles for shape=[3, -1], then runs
    y = exe(x2, np.array([3, -1]))           # same value: the cached executable, x2 of any size
    y = exe(x, np.array([-1]))               # another value: compiles again (LRU cache of 8)

Which inputs are specialized is discovered from the importer's refusals: a converter that needs a value at
import time (reduction axes, a Reshape/Expand/Tile/Pad/Resize size) raises UnsupportedError naming the
tensor, and the importer names the graph inputs that value is computed from (`.value_inputs`). A value
seen at a call can reveal more of them (a second Reshape further down); the set then grows and the cache
starts over. Data inputs keep their symbolic dims: one executable per value serves every data shape.

An artifact cannot specialize lazily, so `save` refuses, naming the inputs to fix with
`from_onnx(model, fixed_inputs=...)` or `shapeflow compile --fix-input NAME=...`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from shapeflow.errors import ShapeError, UnsupportedError
from shapeflow.frontend.onnx.importer import checked_model, from_onnx, load_model

log = logging.getLogger("shapeflow.specialize")

DEFAULT_CACHE_SIZE = 8


class SpecializingExecutable:
    """Callable like an Executable with every graph input of the model, in order; the inputs in
    `specialized_inputs` are read at each call and select (or compile) the executable for their values."""

    def __init__(
        self,
        model,
        build: Callable,
        specialized: list[str],
        dims: dict | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ):
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.model = model  # checked (and converted to a supported opset) once, here
        self._build = build  # IRModule -> a callable on the remaining (data) inputs
        self._dims = dims
        self._specialized = list(specialized)
        self._cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        inits = {i.name for i in model.graph.initializer}
        self.input_names = [v.name for v in model.graph.input if v.name not in inits]
        self.compiles = 0  # executables built so far (misses), for users watching recompilation
        self.hits = 0
        log.info("%s specializes on the values of input(s) %s", self._model_name(), self._specialized)

    @property
    def specialized_inputs(self) -> tuple[str, ...]:
        """The graph inputs whose values select the executable (grows when a call reveals more)."""
        return tuple(self._specialized)

    @property
    def specializations(self) -> list[dict[str, list]]:
        """The cached values, least recently used first: one {input name: value as a list} per entry."""
        return [{name: _thawed(value) for name, _, _, value in key} for key in self._cache]

    def __call__(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ShapeError(
                f"the model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                f"got {len(inputs)}",
                function="main",
            )
        values = dict(zip(self.input_names, inputs))
        runner = self._executable(values)
        return runner(*[values[name] for name in self.input_names if name not in self._specialized])

    def _executable(self, values: dict):
        while True:
            fixed = {name: _read(name, values[name]) for name in self._specialized}
            key = tuple((name, str(a.dtype), a.shape, _frozen(a.tolist())) for name, a in fixed.items())
            runner = self._cache.get(key)
            if runner is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return runner
            try:
                mod = from_onnx(self.model, dims=self._dims, fixed_inputs=fixed)
            except UnsupportedError as exc:
                more = [n for n in getattr(exc, "value_inputs", ()) if n not in self._specialized]
                if not more:
                    raise
                self._specialized += more
                self._cache.clear()  # the keys now hold more inputs
                log.info("%s also specializes on input(s) %s", self._model_name(), more)
                continue
            log.info("%s: compiling for %s", self._model_name(), _describe(fixed))
            runner = self._build(mod)
            self.compiles += 1
            self._cache[key] = runner
            if len(self._cache) > self.cache_size:
                evicted, _ = self._cache.popitem(last=False)
                log.info("%s: evicted the executable for %s", self._model_name(), evicted)
            return runner

    def save(self, path) -> None:
        names = ", ".join(repr(n) for n in self._specialized)
        raise UnsupportedError(
            f"this model's shapes depend on the values of input(s) {names}, which an artifact cannot "
            f"specialize on at run time: fix them with from_onnx(model, fixed_inputs={{...}}) or "
            f"shapeflow compile --fix-input NAME=FILE.npy|[...], then compile and save that"
        )

    def __repr__(self) -> str:
        return (
            f"<shapeflow.SpecializingExecutable on {list(self._specialized)}: "
            f"{len(self._cache)} cached of {self.cache_size}, {self.compiles} compiled>"
        )

    def _model_name(self) -> str:
        return f"ONNX model {self.model.graph.name!r}" if self.model.graph.name else "the ONNX model"


def _read(name: str, value) -> np.ndarray:
    """A specialized input's value as a numpy array (DLPack tensors are read through np.from_dlpack)."""
    if hasattr(value, "__dlpack__") and not isinstance(value, np.ndarray):
        try:
            return np.from_dlpack(value)
        except (TypeError, RuntimeError, BufferError):
            pass
    array = np.asarray(value)
    if array.dtype == object:
        raise ShapeError(f"input {name!r} must be a tensor, got {type(value).__name__}", function="main")
    return array


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _thawed(value):
    return [_thawed(v) for v in value] if isinstance(value, tuple) else value


def _describe(fixed: dict) -> str:
    return ", ".join(f"{name}={a.tolist()!r}" for name, a in fixed.items())


def specialize_or_build(
    model, build: Callable, dims: dict | None = None, cache_size: int = DEFAULT_CACHE_SIZE
):
    """`build(from_onnx(model))`, or a SpecializingExecutable over `build` when the model needs the values
    of some graph inputs at import time. Other refusals propagate."""
    model = checked_model(load_model(model))
    try:
        mod = from_onnx(model, dims=dims)
    except UnsupportedError as exc:
        names = getattr(exc, "value_inputs", None)
        if not names:
            raise
        return SpecializingExecutable(model, build, names, dims, cache_size)
    return build(mod)


def compile_onnx(model, target="cpu", dims=None, dump_ir=None, opt_level: int = 2):
    """What `shapeflow.compile` does with an ONNX model: an Executable, or a SpecializingExecutable whose
    executables are compiled with the same options."""
    from shapeflow.compile import compile as compile_module  # noqa: PLC0415

    def build(mod):
        return compile_module(mod, target=target, dims=dims, dump_ir=dump_ir, opt_level=opt_level)

    return specialize_or_build(model, build, dims)
