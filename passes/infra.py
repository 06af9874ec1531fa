"""The pass infrastructure: passes as frozen dataclasses, a registry by name, sequences, a pass context.

A pass (after xDSL and TVM) is a frozen dataclass whose fields are its options and whose class-level `name`
is what the command line and the fuzzer call it by. `run(mod, ctx)` returns a module; a pass that does not
apply returns the very same module object, so a driver can tell "nothing happened" with `is`.

Passes are never run by calling `run` directly from outside: `pass_(mod)` goes through the current
`PassContext`, which skips passes above its `opt_level` or named in `disabled_passes`, and calls the
instruments (print, verify, time, dump) around every leaf pass, including the passes inside a `Sequential`.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, TextIO

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc

# ---------------------------------------------------------------------------------------------
# Passes
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pass:
    """Base class of passes. Subclasses are frozen dataclasses; their fields are the pass options."""

    name: ClassVar[str] = "pass"
    # The lowest PassContext.opt_level at which the pass runs (0: always).
    opt_level: ClassVar[int] = 0

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        raise NotImplementedError(f"pass {self.name} does not implement run()")

    def __call__(self, mod_or_func, ctx: PassContext | None = None):
        """Run the pass through the context (current one by default); a PrimFunc in gives a PrimFunc out."""
        ctx = ctx or PassContext.current()
        if isinstance(mod_or_func, PrimFunc):
            name = _function_name(mod_or_func)
            out = ctx.run_pass(self, IRModule({name: mod_or_func}))
            return out[name]
        if not isinstance(mod_or_func, IRModule):
            raise UnsupportedError(
                f"pass {self.name} runs on an IRModule or PrimFunc, got {type(mod_or_func)}"
            )
        return ctx.run_pass(self, mod_or_func)

    def options(self) -> dict[str, Any]:
        """The option values of this pass instance, by option name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def spec(self) -> str:
        """A one-line description, `name(opt=value, ...)`, listing options that differ from the default."""
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.default is not dataclasses.MISSING and getattr(self, f.name) != f.default
        ]
        return f"{self.name}({', '.join(changed)})" if changed else self.name


@dataclasses.dataclass(frozen=True)
class PrimFuncPass(Pass):
    """A pass that rewrites each PrimFunc of a module independently (other functions are kept)."""

    def transform_function(self, func: PrimFunc, ctx: PassContext) -> PrimFunc:
        raise NotImplementedError(f"pass {self.name} does not implement transform_function()")

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        changed = {}
        for gname, func in mod.items():
            if isinstance(func, PrimFunc):
                new = self.transform_function(func, ctx)
                if new is not func:
                    changed[gname] = new
        if not changed:
            return mod
        return IRModule({k: changed.get(k, v) for k, v in mod.items()}, mod.attrs)


@dataclasses.dataclass(frozen=True, init=False)
class Sequential(Pass):
    """Passes run in order; instruments see each inner pass, not the sequence as a whole."""

    # `name` is an instance field here (sequences are named by whoever builds them); the dataclass puts it
    # first because the base declares it, so the constructor is written out to keep `passes` first.
    name: str = "sequential"  # type: ignore[misc]
    passes: tuple[Pass, ...] = ()

    def __init__(self, passes=(), name: str = "sequential"):
        object.__setattr__(self, "passes", tuple(passes))
        object.__setattr__(self, "name", name)
        for p in self.passes:
            if not isinstance(p, Pass):
                raise UnsupportedError(f"Sequential {self.name!r} holds a non-pass: {p!r}")

    def run(self, mod: IRModule, ctx: PassContext) -> IRModule:
        for p in self.passes:
            mod = ctx.run_pass(p, mod)
        return mod

    def spec(self) -> str:
        return f"{self.name}[{', '.join(p.spec() for p in self.passes)}]"


def _function_name(func: PrimFunc) -> str:
    name = func.attrs.get("global_symbol")
    return name if isinstance(name, str) and name.isidentifier() else "main"


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

PASSES: dict[str, type] = {}


def register_pass(cls: type) -> type:
    """Class decorator: make `cls` (a frozen Pass dataclass) constructible by name through `get_pass`."""
    if not (isinstance(cls, type) and issubclass(cls, Pass) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a Pass dataclass")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"pass {cls.__name__} must be a frozen dataclass")
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise TypeError(f"two passes named {cls.name!r}: {PASSES[cls.name].__name__} and {cls.__name__}")
    cls()  # every registered pass must be constructible with its default options
    PASSES[cls.name] = cls
    return cls


def get_pass(name: str, **options) -> Pass:
    """The registered pass `name` with `options` (each must be one of its dataclass fields)."""
    cls = PASSES.get(name)
    if cls is None:
        raise UnsupportedError(f"unknown pass {name!r} (known: {', '.join(sorted(PASSES))})")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in options:
        if key not in known:
            raise UnsupportedError(
                f"pass {name!r} has no option {key!r} (options: {', '.join(known) or 'none'})"
            )
    return cls(**options)


def pass_options(name: str) -> dict[str, tuple[Any, Any]]:
    """{option: (type annotation, default)} of the registered pass `name`, for CLIs and the fuzzer."""
    cls = PASSES.get(name)
    if cls is None:
        raise UnsupportedError(f"unknown pass {name!r}")
    return {f.name: (f.type, f.default) for f in dataclasses.fields(cls)}


# ---------------------------------------------------------------------------------------------
# Instruments
# ---------------------------------------------------------------------------------------------


class PassInstrument:
    """Hooks called around every leaf pass a context runs. Subclasses override what they need."""

    def before_pass(self, pass_: Pass, mod: IRModule) -> None:
        pass

    def after_pass(self, pass_: Pass, before: IRModule, after: IRModule, seconds: float) -> None:
        pass


def _module_text(mod: IRModule) -> str:
    try:
        return mod.script()
    except Exception as exc:  # the printer is optional for debugging output; never hide the pass result
        return f"# (could not print the module: {type(exc).__name__}: {exc})\n{mod.functions!r}"


class PrintAfter(PassInstrument):
    """Print the module after the passes named in `pass_names` (all passes when None)."""

    def __init__(self, pass_names=None, stream: TextIO | None = None):
        self.pass_names = None if pass_names is None else frozenset(pass_names)
        self.stream = stream

    def after_pass(self, pass_, before, after, seconds):
        if self.pass_names is not None and pass_.name not in self.pass_names:
            return
        stream = self.stream or sys.stdout
        note = "" if after is not before else " (unchanged)"
        stream.write(f"# after {pass_.spec()}{note}\n{_module_text(after)}\n")


class VerifyAfter(PassInstrument):
    """Run the loop-IR verifier on the input and after every pass; blame the pass that broke the IR."""

    def __init__(self):
        self._good: set[int] = set()
        self._keep: list[IRModule] = []

    def _verify(self, mod: IRModule, blame: str) -> None:
        if id(mod) in self._good:
            return
        # Imported late: the verifier imports much of the IR, and the pass package must not depend on it
        # at import time.
        verify = importlib.import_module("shapeflow.ir.tir.verify").verify
        for gname, func in mod.items():
            if not isinstance(func, PrimFunc):
                continue
            try:
                verify(func)
            except VerifyError as err:
                raise VerifyError(f"{blame}, function {gname!r}: {err.message}", err.node, err.where) from err
        self._good.add(id(mod))
        self._keep.append(mod)

    def before_pass(self, pass_, mod):
        self._verify(mod, f"the input of pass '{pass_.spec()}' is ill-formed")

    def after_pass(self, pass_, before, after, seconds):
        self._verify(after, f"pass '{pass_.spec()}' produced ill-formed IR")


class TimePasses(PassInstrument):
    """Record the seconds each pass took; `summary()` is a table, slowest first."""

    def __init__(self):
        self.records: list[tuple[str, float]] = []

    def after_pass(self, pass_, before, after, seconds):
        self.records.append((pass_.name, seconds))

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, seconds in self.records:
            out[name] = out.get(name, 0.0) + seconds
        return out

    def summary(self) -> str:
        totals = self.totals()
        total = sum(totals.values())
        lines = [f"{'pass':<28} {'seconds':>10} {'share':>7}"]
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            share = 100.0 * seconds / total if total else 0.0
            lines.append(f"{name:<28} {seconds:>10.6f} {share:>6.1f}%")
        lines.append(f"{'total':<28} {total:>10.6f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class DumpIR(PassInstrument):
    """Write the module's text after every pass to `directory` as NNN_<pass>.txt (000_input.txt first)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.count = 0

    def _write(self, label: str, mod: IRModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{self.count:03d}_{label}.txt").write_text(_module_text(mod) + "\n")
        self.count += 1

    def before_pass(self, pass_, mod):
        if self.count == 0:
            self._write("input", mod)

    def after_pass(self, pass_, before, after, seconds):
        self._write(pass_.name, after)


# ---------------------------------------------------------------------------------------------
# The context
# ---------------------------------------------------------------------------------------------


class PassContext:
    """What a pipeline run is configured with: `opt_level`, a `config` dict read by passes, instruments.

    Use as a context manager; `PassContext.current()` is the innermost active one (a default otherwise).
    """

    _stack: ClassVar[list[PassContext]] = []

    def __init__(self, opt_level: int = 2, config: dict | None = None, instruments=(), disabled_passes=()):
        self.opt_level = int(opt_level)
        self.config: dict[str, Any] = dict(config or {})
        self.instruments: tuple[PassInstrument, ...] = tuple(instruments)
        self.disabled_passes = frozenset(disabled_passes)

    @classmethod
    def current(cls) -> PassContext:
        return cls._stack[-1] if cls._stack else _DEFAULT

    def __enter__(self) -> PassContext:
        PassContext._stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        PassContext._stack.remove(self)

    def should_run(self, pass_: Pass) -> bool:
        return pass_.opt_level <= self.opt_level and pass_.name not in self.disabled_passes

    def run_pass(self, pass_: Pass, mod: IRModule) -> IRModule:
        """Run one pass with the instruments around it (a Sequential's inner passes get them instead)."""
        if not self.should_run(pass_):
            return mod
        if isinstance(pass_, Sequential):
            return pass_.run(mod, self)
        for inst in self.instruments:
            inst.before_pass(pass_, mod)
        start = time.perf_counter()
        out = pass_.run(mod, self)
        seconds = time.perf_counter() - start
        if not isinstance(out, IRModule):
            raise VerifyError(f"pass '{pass_.spec()}' returned {type(out).__name__}, not an IRModule")
        for inst in self.instruments:
            inst.after_pass(pass_, mod, out, seconds)
        return out


_DEFAULT = PassContext()

__all__ = [
    "Pass",
    "PrimFuncPass",
    "Sequential",
    "PASSES",
    "register_pass",
    "get_pass",
    "pass_options",
    "PassInstrument",
    "PrintAfter",
    "VerifyAfter",
    "TimePasses",
    "DumpIR",
    "PassContext",
]
