"""`shapeflow compile` and `shapeflow run`: an ONNX model (or a graph module in the text format) to a saved
executable, and a saved executable run on given or random inputs.

    shapeflow compile model.onnx -o model.sfa --dim seq=1..2048
    shapeflow compile model.onnx --fix-input axes=[0,2]      # an input whose value determines shapes
    shapeflow run model.sfa --shape batch=2 --shape seq=17 --bench 50

Everything a user can get wrong (a missing or malformed file, a bad --dim, an input of the wrong shape)
is a shapeflow.Error, which the command line prints as one line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shapeflow.errors import Error, ParseError, ShapeError, UnsupportedError

# A symbolic dim with neither --shape nor an input file: this value, clamped into its declared bounds.
DEFAULT_DIM = 8
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"


# -- argument types (argparse reports their errors as one line) -----------------------------------------


def dim_range(text: str) -> tuple[str, tuple[int, int]]:
    """'seq=1..2048' -> ('seq', (1, 2048)); 'seq=128' -> ('seq', (128, 128))."""
    m = re.fullmatch(rf"\s*({_NAME})\s*=\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: write NAME=LO..HI, e.g. seq=1..2048")
    lo = int(m.group(2))
    hi = int(m.group(3)) if m.group(3) is not None else lo
    if lo > hi:
        raise argparse.ArgumentTypeError(f"{text!r}: the range {lo}..{hi} is empty (LO must be <= HI)")
    return m.group(1), (lo, hi)


def dim_value(text: str) -> tuple[str, int]:
    """'seq=17' -> ('seq', 17)."""
    m = re.fullmatch(rf"\s*({_NAME})\s*=\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: write NAME=VALUE, e.g. seq=17")
    return m.group(1), int(m.group(2))


def input_file(text: str) -> tuple[str, str]:
    """'x=inputs/x.npy' -> ('x', 'inputs/x.npy')."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: write NAME=FILE.npy, e.g. x=x.npy")
    return name.strip(), path.strip()


def fixed_input(text: str) -> tuple[str, object]:
    """'axes=[0,2]' -> ('axes', [0, 2]); 'k=3' -> ('k', 3); 'shape=s.npy' -> ('shape', 's.npy') (a path,
    read by `load_fixed_inputs`)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(
            f"cannot read {text!r}: write NAME=FILE.npy or NAME=[1,2] (JSON), e.g. axes=[0,2]"
        )
    if value[0] in "[-+.0123456789" and not value.endswith(".npy"):
        try:
            return name, json.loads(value)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text!r}: {value!r} is not JSON ({exc})") from None
    return name, value


def load_fixed_inputs(pairs) -> dict:
    """{input name: value} of --fix-input options, .npy files read (an unreadable file is an Error)."""
    out = {}
    for name, value in collect_dims(pairs, "--fix-input").items():
        if isinstance(value, str):
            try:
                value = np.load(value, allow_pickle=False)
            except FileNotFoundError:
                raise Error(f"--fix-input {name}: no such file: {value}") from None
            except (OSError, ValueError, EOFError) as exc:
                raise Error(f"--fix-input {name}: cannot read {value} as a .npy array ({exc})") from None
        out[name] = value
    return out


def collect_dims(pairs, option: str = "--dim") -> dict:
    """{name: value} of repeated NAME=... options; the same name twice with different values is an error."""
    out: dict = {}
    for name, value in pairs or []:
        if name in out and out[name] != value:
            raise UnsupportedError(f"{option} {name} is given twice, as {out[name]} and {value}")
        out[name] = value
    return out


# -- models in ----------------------------------------------------------------------------------------


def load_onnx(path: Path):
    """The ModelProto in `path` (external data files next to it are read too); ParseError when it is not
    a readable, well-formed ONNX model."""
    try:
        import onnx  # noqa: PLC0415
    except ImportError:
        raise UnsupportedError("reading .onnx files needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, a missing external data file, ...
        raise ParseError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # a file cut at a field boundary still decodes, into an invalid graph
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParseError(f"{path} is not a valid ONNX model: {first}") from None
    return model


def load_source(path: str | Path):
    """What a model file holds: an onnx.ModelProto for .onnx, an IRModule for the text format."""
    path = Path(path)
    if not path.is_file():
        raise Error(f"no such file: {path}")
    if path.suffix == ".onnx":
        return load_onnx(path)
    if path.suffix == ".sfa":
        raise UnsupportedError(f"{path} is already compiled; run it with: shapeflow run {path}")
    from shapeflow.ir import parse  # noqa: PLC0415

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(
            f"cannot read {path} as text ({exc}); expected .onnx or a shapeflow IR module"
        ) from None
    return parse(text)


def import_model(source, dims: dict | None, fixed_inputs: dict | None = None):
    """An IRModule from what `load_source` returned (the ONNX frontend for ModelProtos, with the graph
    inputs in `fixed_inputs` fixed to their values)."""
    from shapeflow.ir.module import IRModule  # noqa: PLC0415

    if isinstance(source, IRModule):
        if fixed_inputs:
            raise UnsupportedError("--fix-input applies to ONNX models only")
        return source
    try:
        from shapeflow.frontend import from_onnx  # noqa: PLC0415
    except ImportError:
        raise UnsupportedError("this build of shapeflow has no ONNX frontend (shapeflow.frontend)") from None
    return from_onnx(source, dims=dims or None, fixed_inputs=fixed_inputs or None)


# -- shapeflow compile -------------------------------------------------------------------------------


def cmd_compile(args: argparse.Namespace) -> int:
    from shapeflow.cli_progress import Progress  # noqa: PLC0415
    from shapeflow.compile import compile as compile_module  # noqa: PLC0415
    from shapeflow.passes.infra import PassContext  # noqa: PLC0415

    if args.example and args.model:
        raise UnsupportedError("give a MODEL or --example, not both")
    if not args.example and not args.model:
        raise UnsupportedError("nothing to compile: give MODEL.onnx (or --example for the embedded encoder)")
    dims = collect_dims(args.dim)
    if args.example:
        from shapeflow.examples_embedded import ENCODER_DIMS, embedded_model_path  # noqa: PLC0415

        path = embedded_model_path()
        dims = {**ENCODER_DIMS, **dims}
    else:
        path = Path(args.model)
    out = Path(args.output) if args.output else Path(path.stem + ".sfa")  # in the current directory
    start = time.perf_counter()
    with Progress(enabled=False if args.quiet else None) as progress:
        progress.step(f"reading {path.name}")
        source = load_source(path)
        progress.step("importing the model")
        mod = import_model(source, dims, load_fixed_inputs(getattr(args, "fix_input", None)))
        with PassContext(instruments=[*PassContext.current().instruments, progress]):
            exe = compile_module(mod, target=args.target, dims=dims or None, dump_ir=args.dump_ir)
        progress.step(f"writing {out}")
        try:
            exe.save(out)
        except OSError as exc:
            raise Error(f"cannot write {out}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - start
    entry = exe.signature.get(exe.entry, {})
    params = ", ".join(f"{n}: {t}" for n, t in entry.get("params", []))
    print(f"compiled {path.name} -> {out} in {seconds:.1f} s")
    print(f"  {exe.entry}({params}) -> {entry.get('ret', '?')}")
    bounds = entry_bounds(exe)
    if bounds:
        print("  symbolic dims: " + ", ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in bounds.items()))
    print(f"  {len(exe.library.kernels)} kernels; run it with: shapeflow run {out}")
    return 0


# -- shapeflow run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """An entry parameter as the signature describes it: dims are ints, names, or None (an expression)."""

    name: str
    dtype: str | None
    dims: tuple | None
    text: str


def parse_type_text(name: str, text: str) -> Param:
    """'float32(batch, seq, 64)' -> Param(dtype 'float32', dims (batch, seq, 64))."""
    m = re.fullmatch(r"(\w+|\?)\((.*)\)", text.strip())
    if not m or m.group(2).startswith("ndim="):
        return Param(name, None if not m or m.group(1) == "?" else m.group(1), None, text)
    dims = []
    for part in (p.strip() for p in m.group(2).split(",")):
        if not part:
            continue
        if re.fullmatch(r"-?\d+", part):
            dims.append(int(part))
        elif re.fullmatch(_NAME, part):
            dims.append(part)
        else:
            dims.append(None)
    return Param(name, None if m.group(1) == "?" else m.group(1), tuple(dims), text)


def entry_params(exe) -> list[Param]:
    entry = exe.signature.get(exe.entry) or {}
    return [parse_type_text(n, t) for n, t in entry.get("params", [])]


def entry_bounds(exe) -> dict[str, tuple[int, int]]:
    """Declared bounds of the entry function's symbolic dims, read from its check_bounds instruction."""
    func = exe.program.functions.get(exe.entry)
    bounds: dict[str, tuple[int, int]] = {}
    for instr in func.code if func is not None else []:
        if instr[0] == "check_bounds":
            for _slot, name, lo, hi in instr[1]:
                bounds[str(name)] = (int(lo), int(hi))
    return bounds


def _random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Normal floats; ints in [0, 2) and random bools, valid as indices and masks of any model."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if kind in "iu":
        return rng.integers(0, 2, size=shape).astype(dtype)
    if kind == "b":
        return rng.random(shape) < 0.5
    raise UnsupportedError(f"cannot make random inputs of dtype {dtype}; give the input with --input")


def _parameter_name(name: str, names: list[str]) -> str:
    """The parameter `name` refers to: itself, or the ONNX input it was imported from (the frontend turns
    characters that are not word characters into "_": "input.1" is parameter "input_1")."""
    if name in names:
        return name
    safe = re.sub(r"\W", "_", name)
    for candidate in (safe, f"v_{safe}"):
        if candidate in names:
            return candidate
    raise Error(f"--input names no parameter: {name} (parameters: {', '.join(names)})")


def _load_npy(name: str, path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise Error(f"--input {name}: no such file: {path}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise Error(f"--input {name}: cannot read {path} as a .npy array ({exc})") from None


def prepare_inputs(exe, given: dict[str, str], shapes: dict[str, int], seed: int):
    """The entry's arguments in order and a description of each, from --input files, with the rest random
    and sized from the symbolic dims (--shape, the dims of given inputs, then DEFAULT_DIM in bounds)."""
    params = entry_params(exe)
    names = [p.name for p in params]
    given = {_parameter_name(name, names): path for name, path in given.items()}
    bounds = entry_bounds(exe)
    symbolic = {d for p in params if p.dims for d in p.dims if isinstance(d, str)}
    bad = sorted(set(shapes) - symbolic)
    if bad:
        raise Error(
            f"--shape names no symbolic dim: {', '.join(bad)} "
            f"(the model has: {', '.join(sorted(symbolic)) or 'none'})"
        )
    values = {name: (value, "--shape") for name, value in shapes.items()}
    arrays = {name: _load_npy(name, path) for name, path in given.items()}
    for p in params:
        array = arrays.get(p.name)
        if array is None or p.dims is None or array.ndim != len(p.dims):
            continue  # a rank mismatch is reported by the executable's own argument check
        for dim, size in zip(p.dims, array.shape):
            if isinstance(dim, str) and dim not in values:
                values[dim] = (int(size), f"from --input {p.name}")
    for dim in sorted(symbolic - set(values)):
        lo, hi = bounds.get(dim, (1, None))
        value = max(lo, DEFAULT_DIM) if hi is None else min(hi, max(lo, DEFAULT_DIM))
        values[dim] = (value, "default" + (f", bounds {lo}..{hi}" if dim in bounds else ""))
    for dim, (value, why) in values.items():
        if dim in bounds and not bounds[dim][0] <= value <= bounds[dim][1]:
            lo, hi = bounds[dim]
            raise ShapeError(
                f"{dim}={value} ({why}) is outside the range {lo}..{hi} the model was compiled for",
                function=exe.entry,
            )
    rng = np.random.default_rng(seed)
    args, notes = [], []
    for p in params:
        if p.name in arrays:
            args.append(arrays[p.name])
            notes.append(
                f"{p.name}: {arrays[p.name].dtype} {tuple(arrays[p.name].shape)} from {given[p.name]}"
            )
            continue
        if p.dims is None or p.dtype is None or any(d is None for d in p.dims):
            raise Error(
                f"cannot make a random input for {p.name}: {p.text}; give it with --input {p.name}=FILE.npy"
            )
        shape = tuple(d if isinstance(d, int) else values[d][0] for d in p.dims)
        args.append(_random_array(rng, p.dtype, shape))
        notes.append(f"{p.name}: {p.dtype} {shape} random")
    dim_notes = [f"{d}={v} ({why})" for d, (v, why) in sorted(values.items())]
    return args, notes, dim_notes


def _flatten(value, prefix: str = "out") -> list[tuple[str, np.ndarray]]:
    if isinstance(value, tuple):
        return [item for i, v in enumerate(value) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, np.asarray(value))]


def summarize(name: str, array: np.ndarray) -> str:
    head = f"{name}: {array.dtype} {tuple(array.shape)}"
    if array.size == 0:
        return head + " (empty)"
    if array.dtype.kind in "fiub":
        data = array.astype(np.float64)
        finite = np.isfinite(data)
        text = f"{head}  min {data.min():.6g}  max {data.max():.6g}  mean {data.mean():.6g}"
        if not finite.all():
            text += f"  ({int((~finite).sum())} not finite)"
        return text
    return head


def cmd_run(args: argparse.Namespace) -> int:
    import shapeflow  # noqa: PLC0415

    path = Path(args.artifact)
    if not path.is_file():
        raise Error(f"no such file: {path}")
    if path.suffix == ".onnx":
        raise UnsupportedError(
            f"compile the model first: shapeflow compile {path} -o {path.with_suffix('.sfa')}"
        )
    exe = shapeflow.load(path)
    inputs, notes, dim_notes = prepare_inputs(
        exe, collect_dims(args.input, "--input"), collect_dims(args.shape, "--shape"), args.seed
    )
    if dim_notes:
        print("dims: " + ", ".join(dim_notes))
    for note in notes:
        print(f"in   {note}")
    start = time.perf_counter()
    result = exe(*inputs)
    first = time.perf_counter() - start
    outputs = _flatten(result)
    for name, array in outputs:
        print(f"out  {summarize(name, array)}")
    if args.save_outputs:
        folder = Path(args.save_outputs)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in outputs:
            np.save(folder / (re.sub(r"\W+", "_", name).strip("_") + ".npy"), array)
    line = f"latency: first call {first * 1e3:.3f} ms"
    if args.bench:
        times = []
        for _ in range(args.bench):
            t0 = time.perf_counter()
            exe(*inputs)
            times.append(time.perf_counter() - t0)
        median, best = float(np.median(times)) * 1e3, min(times) * 1e3
        line += f"; over {args.bench} runs: median {median:.3f} ms, best {best:.3f} ms"
    print(line)
    sys.stdout.flush()
    return 0
